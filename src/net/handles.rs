//! The handle tables of ports, transports and datagram ports. A slot holds nothing but its owning reactor's handle,
//! kept in the slot's tag (no allocation per connection): the objects themselves live on the reactor
//! thread (`super::Net`), found by the handle's slot index.

use crate::handles::{DatagramTable, HandleTable, PortTable, ResolutionTable, TransportTable};
use crate::reactor::REACTORS;
use crate::status::{Error, Result};
use std::os::raw::c_void;

/// What a port or transport slot holds: nothing (zero-sized, so boxing it allocates nothing).
pub struct Owned;

pub static PORTS: PortTable<Owned> = HandleTable::new();
pub static TRANSPORTS: TransportTable<Owned> = HandleTable::new();
pub static DATAGRAMS: DatagramTable<Owned> = HandleTable::new();
pub static RESOLUTIONS: ResolutionTable<Owned> = HandleTable::new();

const _: () = assert!(
    crate::handles::REACTOR.index_bits + crate::handles::REACTOR.generation_bits <= 32,
    "a reactor handle must fit a slot's tag"
);

/// The tag that names `reactor` (a live reactor handle).
pub(crate) fn reactor_tag(reactor: usize) -> Result<u32> {
    REACTORS
        .offset_of(reactor as *const c_void)
        .ok_or(Error::Internal)
}

pub(crate) fn tagged_reactor(tag: u32) -> usize {
    REACTORS.handle_at(tag) as usize
}

/// The reactor a port handle belongs to (`None`: not a live port).
pub fn port_reactor(handle: *const c_void) -> Option<usize> {
    PORTS.tag(handle).map(tagged_reactor)
}

/// The reactor a transport handle belongs to (`None`: not a live transport).
pub fn transport_reactor(handle: *const c_void) -> Option<usize> {
    TRANSPORTS.tag(handle).map(tagged_reactor)
}

/// The reactor a datagram-port handle belongs to (`None`: not a live datagram port).
pub fn datagram_reactor(handle: *const c_void) -> Option<usize> {
    DATAGRAMS.tag(handle).map(tagged_reactor)
}

/// The slot index of a transport handle (its place in its reactor's `Net::transports`).
pub fn transport_index(handle: usize) -> Option<usize> {
    TRANSPORTS.index_of(handle as *const c_void)
}

/// The reactor a resolution handle belongs to (`None`: completed, cancelled or made up).
pub fn resolution_reactor(handle: *const c_void) -> Option<usize> {
    RESOLUTIONS.tag(handle).map(tagged_reactor)
}

pub fn new_resolution(reactor: usize) -> Result<usize> {
    RESOLUTIONS
        .insert_tagged(Box::new(Owned), reactor_tag(reactor)?)
        .map(|h| h as usize)
}

pub fn end_resolution(handle: usize) {
    drop(RESOLUTIONS.remove(handle as *const c_void));
}

pub fn new_port(reactor: usize) -> Result<usize> {
    PORTS
        .insert_tagged(Box::new(Owned), reactor_tag(reactor)?)
        .map(|h| h as usize)
}

pub fn new_transport(reactor: usize) -> Result<usize> {
    TRANSPORTS
        .insert_tagged(Box::new(Owned), reactor_tag(reactor)?)
        .map(|h| h as usize)
}

pub fn new_datagram(reactor: usize) -> Result<usize> {
    DATAGRAMS
        .insert_tagged(Box::new(Owned), reactor_tag(reactor)?)
        .map(|h| h as usize)
}

pub fn end_datagram(handle: usize) {
    drop(DATAGRAMS.remove(handle as *const c_void));
}

pub fn end_port(handle: usize) {
    drop(PORTS.remove(handle as *const c_void));
}

pub fn end_transport(handle: usize) {
    drop(TRANSPORTS.remove(handle as *const c_void));
}
