//! Work on network objects that must run on a later pass ("callbacks never run inside the call that
//! caused them", API.md §6.1). It waits in the reactor's `LaterQueue` (reactor thread only: no lock,
//! no allocation per item), which the next pass runs where it runs thread calls, carrying the
//! object's handle, not the object. Work from other threads (a connector handle released there)
//! comes through the reactor's call queue instead (`ReactorTask`).

use crate::callback::UserData;
use crate::reactor::{Reactor, ReactorTask};
use crate::status::Error;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::os::raw::c_int;

pub(crate) enum Later {
    /// Deliver `connection_made`.
    ConnectionMade(usize),
    /// End the connection with the reason then recorded on the transport.
    End(usize),
    /// The write side was asked to close and the buffer is empty: shut it down, then
    /// `write_connection_lost`.
    CloseWrite(usize),
    /// A pull producer's `resume_producing`.
    ResumeProducer(usize),
    /// A stopped port's release.
    Release(UserData),
    /// A connector's attempt ended: `connection_failed(reason)`.
    ConnectionFailed(u64, c_int),
    /// The host released its connector handle from another thread.
    ConnectorReleased(u64),
    /// A datagram port's `start_protocol`.
    StartProtocol(usize),
    /// A stopped datagram port's `stop_protocol`, then its end.
    StopProtocol(usize),
    /// A connected datagram port's `connection_refused`.
    ConnectionRefused(usize),
    /// A child process's work (`crate::process`).
    Process(usize, crate::process::ProcessWork),
}

impl ReactorTask for Later {
    fn run(self: Box<Self>, reactor: &Reactor) {
        (*self).run_now(reactor);
    }
}

impl Later {
    fn run_now(self, reactor: &Reactor) {
        match self {
            Later::ConnectionMade(handle) => {
                if let Some(t) = reactor.net.borrow().transport(handle) {
                    t.deliver_connection_made(reactor);
                }
            }
            Later::End(handle) => {
                let transport = reactor.net.borrow().transport(handle);
                if let Some(t) = transport {
                    t.end_now(reactor);
                }
            }
            Later::CloseWrite(handle) => {
                let transport = reactor.net.borrow().transport(handle);
                if let Some(t) = transport {
                    t.close_write_now(reactor);
                }
            }
            Later::ResumeProducer(handle) => {
                let transport = reactor.net.borrow().transport(handle);
                if let Some(t) = transport {
                    t.resume_pull_producer(reactor);
                }
            }
            Later::Release(data) => reactor.retire(data),
            Later::ConnectionFailed(id, reason) => reactor.connector_failed(id, reason),
            Later::ConnectorReleased(id) => reactor.connector_released(id),
            Later::StartProtocol(handle) => {
                let port = reactor.net.borrow().datagram(handle);
                if let Some(port) = port {
                    port.deliver_start(reactor);
                }
            }
            Later::StopProtocol(handle) => {
                let port = reactor.net.borrow().datagram(handle);
                if let Some(port) = port {
                    port.finish(reactor);
                }
            }
            Later::Process(handle, work) => work.run(reactor, handle),
            Later::ConnectionRefused(handle) => {
                let port = reactor.net.borrow().datagram(handle);
                if let Some(port) = port {
                    port.deliver_refused(reactor);
                }
            }
        }
    }
}

/// The reactor's later work, in order.
#[derive(Default)]
pub struct LaterQueue {
    queued: RefCell<VecDeque<Later>>,
    /// An emptied batch, kept for its capacity.
    spare: RefCell<VecDeque<Later>>,
}

impl LaterQueue {
    pub fn is_empty(&self) -> bool {
        self.queued.borrow().is_empty()
    }

    /// Runs the work queued before this call (work it queues waits for the next pass, so a pull
    /// producer that asks again and again cannot hold the loop). A crash stops it: the rest stays
    /// queued, in order.
    #[inline]
    pub fn run_queued(&self, reactor: &Reactor) {
        // Every pass asks; most find nothing, so the check is inlined and the work is not.
        if !self.is_empty() {
            self.run_batch(reactor);
        }
    }

    #[inline(never)]
    fn run_batch(&self, reactor: &Reactor) {
        let mut batch = std::mem::replace(
            &mut *self.queued.borrow_mut(),
            std::mem::take(&mut *self.spare.borrow_mut()),
        );
        while let Some(work) = batch.pop_front() {
            if reactor.is_crashing() {
                let mut queued = self.queued.borrow_mut();
                while let Some(newer) = queued.pop_front() {
                    batch.push_back(newer);
                }
                *queued = batch;
                return;
            }
            work.run_now(reactor);
        }
        *self.spare.borrow_mut() = batch;
    }

    /// Everything still queued (`reactor_free`: dropped, so only releases run).
    pub fn take_all(&self) -> VecDeque<Later> {
        std::mem::take(&mut *self.queued.borrow_mut())
    }
}

/// Queues `work` for the next pass. Refused only once the reactor stopped for good (its network
/// objects are then closed already) or is poisoned; the work is dropped then (a release still runs).
pub fn queue(reactor: &Reactor, work: Later) -> Result<(), c_int> {
    if reactor.is_finished() {
        return Err(Error::Closed.code());
    }
    if reactor.shared.is_poisoned() {
        return Err(Error::Internal.code());
    }
    reactor.later.queued.borrow_mut().push_back(work);
    Ok(())
}
