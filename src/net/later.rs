//! Work on network objects that must run on a later pass ("callbacks never run inside the call that
//! caused them", API.md §6.1). It travels through the reactor's own call queue, which runs it at the
//! start of the next pass, carrying the object's handle, not the object (the queue is `Send`).

use crate::callback::UserData;
use crate::reactor::{Reactor, ReactorTask, ThreadCall};
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
}

impl ReactorTask for Later {
    fn run(self: Box<Self>, reactor: &Reactor) {
        match *self {
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
        }
    }
}

/// Queues `work` for the next pass. Refused only once the reactor stopped for good (its network
/// objects are then closed already); the work is dropped then (a release still runs).
pub fn queue(reactor: &Reactor, work: Later) -> Result<(), c_int> {
    reactor
        .shared
        .push_unpinned(|| ThreadCall::Task(Box::new(work)))
        .map_err(|e| e.code())
}
