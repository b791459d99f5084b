//! Networking (API.md §6): the layer on top of the loop that transports, ports and datagrams build on.
//! One file per concern: addresses, the socket system calls (`sys`, the only `unsafe` here), listening
//! ports, stream transports and their write buffer, name resolution, and the work that must run on a
//! later pass (`later`).
//!
//! Ports and transports are internal sources of the reactor's registry, owned by the reactor (`Net`)
//! and reached from C through handle tables whose entries hold only the owning reactor's handle: a
//! call finds the reactor, claims it (reactor thread only), then looks the object up by its handle.

pub mod address;
mod handles;
mod later;
pub mod listen;
pub mod resolve;
pub mod stream;
pub mod sys;
mod write_buffer;

pub use handles::{port_reactor, transport_reactor};

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::rc::Rc;

/// The reactor's network objects (owner-only part of the reactor).
#[derive(Default)]
pub struct Net {
    ports: HashMap<usize, Rc<listen::Port>>,
    transports: HashMap<usize, Rc<stream::Transport>>,
    /// Given up to accept (and close) one peer when the process is out of fds.
    spare_fd: Option<OwnedFd>,
    /// Scratch space for reads, lent to one read at a time.
    read_buffer: Vec<u8>,
}

impl Net {
    pub fn port(&self, handle: usize) -> Option<Rc<listen::Port>> {
        self.ports.get(&handle).cloned()
    }

    pub fn transport(&self, handle: usize) -> Option<Rc<stream::Transport>> {
        self.transports.get(&handle).cloned()
    }

    /// Every object, for `reactor_free` (closed and released when the last reference drops).
    pub fn take_all(&mut self) -> (Vec<Rc<listen::Port>>, Vec<Rc<stream::Transport>>) {
        (
            self.ports.drain().map(|(_, p)| p).collect(),
            self.transports.drain().map(|(_, t)| t).collect(),
        )
    }
}
