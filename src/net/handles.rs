//! The handle tables of ports and transports. An entry holds only the owning reactor's handle (an
//! opaque token): the objects themselves live on the reactor thread (`super::Net`).

use crate::handles::{HandleTable, PortTable, TransportTable};
use crate::status::Result;
use std::os::raw::c_void;

pub struct Owner {
    pub reactor: usize,
}

pub static PORTS: PortTable<Owner> = HandleTable::new();
pub static TRANSPORTS: TransportTable<Owner> = HandleTable::new();

/// The reactor a port handle belongs to (`None`: not a live port).
pub fn port_reactor(handle: *const c_void) -> Option<usize> {
    PORTS.with(handle, |owner| owner.reactor)
}

/// The reactor a transport handle belongs to (`None`: not a live transport).
pub fn transport_reactor(handle: *const c_void) -> Option<usize> {
    TRANSPORTS.with(handle, |owner| owner.reactor)
}

pub fn new_port(reactor: usize) -> Result<usize> {
    PORTS
        .insert(Box::new(Owner { reactor }))
        .map(|h| h as usize)
}

pub fn new_transport(reactor: usize) -> Result<usize> {
    TRANSPORTS
        .insert(Box::new(Owner { reactor }))
        .map(|h| h as usize)
}

pub fn end_port(handle: usize) {
    drop(PORTS.remove(handle as *const c_void));
}

pub fn end_transport(handle: usize) {
    drop(TRANSPORTS.remove(handle as *const c_void));
}
