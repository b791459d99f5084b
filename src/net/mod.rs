//! Networking (API.md §6): the layer on top of the loop that transports, ports and datagrams build on.
//! One file per concern: addresses, the socket system calls (`sys`, the only `unsafe` here), listening
//! ports, stream transports and their write buffer, name resolution, and the work that must run on a
//! later pass (`later`).
//!
//! Ports and transports are internal sources of the reactor's registry, owned by the reactor (`Net`)
//! and reached from C through handle tables whose entries hold only the owning reactor's handle: a
//! call finds the reactor, claims it (reactor thread only), then looks the object up by its handle.

pub mod address;
mod bind;
pub mod connect;
pub mod datagram;
pub(crate) mod handles;
pub(crate) mod later;
pub mod listen;
pub mod resolve;
mod slots;
pub mod stream;
pub mod sys;
mod sys_datagram;
pub(crate) mod write_buffer;

pub use handles::{datagram_reactor, port_reactor, resolution_reactor, transport_reactor};

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::rc::Rc;

/// Hashing for the library's own ids and handles: one multiplication (Fibonacci hashing spreads
/// consecutive ids, and handles that differ in their low slot bits, over the table), where the
/// default SipHash guards against hostile keys that these are not. A connection's connector is
/// looked up several times in its life, a datagram port on every write (SipHash was about 100
/// instructions of each `reactor_udp_write`).
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHash;

pub(crate) struct IdHasher(u64);

impl std::hash::BuildHasher for IdHash {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = (self.0 ^ id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_usize(&mut self, handle: usize) {
        self.write_u64(handle as u64);
    }
}

/// The reactor's network objects (owner-only part of the reactor).
#[derive(Default)]
pub struct Net {
    ports: HashMap<usize, Rc<listen::Port>, IdHash>,
    /// By the slot index of their handles (`slots::Slots`: one word per connection).
    transports: slots::Slots<Rc<stream::Transport>>,
    pub(crate) connectors: HashMap<u64, Rc<connect::Connector>, IdHash>,
    next_connector: u64,
    /// Given up to accept (and close) one peer when the process is out of fds.
    spare_fd: Option<OwnedFd>,
    /// Scratch space for reads, lent to one read at a time.
    pub(crate) read_buffer: Vec<u8>,
    pub(crate) datagrams: HashMap<usize, Rc<datagram::DatagramPort>, IdHash>,
    /// Receive buffers of datagram ports, lent to one read at a time (`None` while lent: putting
    /// them back then drops nothing).
    datagram_buffers: Option<sys_datagram::DatagramBuffers>,
}

impl Net {
    pub fn port(&self, handle: usize) -> Option<Rc<listen::Port>> {
        self.ports.get(&handle).cloned()
    }

    pub fn transport(&self, handle: usize) -> Option<Rc<stream::Transport>> {
        let index = handles::transport_index(handle)?;
        self.transports
            .get(index)
            .filter(|t| t.handle_value() == handle)
            .cloned()
    }

    fn add_transport(&mut self, transport: Rc<stream::Transport>) {
        if let Some(index) = handles::transport_index(transport.handle_value()) {
            self.transports.insert(index, transport);
        }
    }

    fn remove_transport(&mut self, handle: usize) -> Option<Rc<stream::Transport>> {
        let index = handles::transport_index(handle)?;
        self.transports
            .remove_if(index, |t| t.handle_value() == handle)
    }

    /// The datagram receive buffers, for one read (new ones if a read holds them already).
    pub(crate) fn lend_datagram_buffers(&mut self) -> sys_datagram::DatagramBuffers {
        self.datagram_buffers.take().unwrap_or_default()
    }

    pub(crate) fn return_datagram_buffers(&mut self, buffers: sys_datagram::DatagramBuffers) {
        self.datagram_buffers = Some(buffers);
    }

    pub fn datagram(&self, handle: usize) -> Option<Rc<datagram::DatagramPort>> {
        self.datagrams.get(&handle).cloned()
    }

    pub fn connector(&self, id: u64) -> Option<Rc<connect::Connector>> {
        self.connectors.get(&id).cloned()
    }

    fn next_connector_id(&mut self) -> u64 {
        self.next_connector += 1;
        self.next_connector
    }

    /// Every object, for `reactor_free` (closed and released when the last reference drops).
    pub fn take_all(&mut self) -> Everything {
        Everything {
            _ports: self.ports.drain().map(|(_, p)| p).collect(),
            _transports: self.transports.drain(),
            _connectors: self.connectors.drain().map(|(_, c)| c).collect(),
            _datagrams: self.datagrams.drain().map(|(_, d)| d).collect(),
        }
    }
}

/// What `Net::take_all` hands over, to be dropped outside the reactor's borrows.
pub struct Everything {
    _ports: Vec<Rc<listen::Port>>,
    _transports: Vec<Rc<stream::Transport>>,
    _connectors: Vec<Rc<connect::Connector>>,
    _datagrams: Vec<Rc<datagram::DatagramPort>>,
}
