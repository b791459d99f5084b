//! `reactor_resolve` (API.md §6.5): IP literals resolve at once, names with `getaddrinfo` on the
//! reactor's thread pool; either way the callback runs on a later pass, on the reactor thread, then the
//! host's release. A resolve still pending when the reactor shuts down gets `REACTOR_E_CANCELLED` (in
//! the DURING phase of "shutdown"); one pending at `reactor_free` only has its release run.
//!
//! The reactor keeps each pending request's callback and user data (`Resolves`); the pool job carries
//! only the name and the request's id, so a late answer (after a cancel, or for a freed reactor) finds
//! nothing to call and is dropped.

use super::address;
use crate::callback::{ResolveFn, UserData, call_resolve};
use crate::reactor::{Reactor, ReactorTask, ThreadCall};
use crate::status::{Error, Result, reactor_status_t};
use crate::threadpool::{Job, RunContext, Task};
use crate::types::{REACTOR_FAMILY_INET, REACTOR_FAMILY_INET6, reactor_address_t};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6, ToSocketAddrs};
use std::os::raw::c_int;

/// Resolves in progress, by id (owner-only part of the reactor).
#[derive(Default)]
pub struct Resolves {
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
}

/// Who waits for an answer: the host's callback, or a connector of the library.
enum Pending {
    Host { cb: ResolveFn, data: UserData },
    Connector(u64),
}

/// What a lookup found: addresses (at least one), or the failure to report.
pub enum Outcome {
    Found(Vec<SocketAddr>),
    Failed(Error),
}

/// Which families a request accepts (`family` 0 = any).
fn accepts(family: u32, ip: &IpAddr) -> bool {
    match family {
        REACTOR_FAMILY_INET => ip.is_ipv4(),
        REACTOR_FAMILY_INET6 => ip.is_ipv6(),
        _ => true,
    }
}

/// The outcome for a list of socket addresses: those of the wanted family, in the order given, without
/// repeats; none is a DNS failure.
fn outcome(found: impl IntoIterator<Item = SocketAddr>, family: u32) -> Outcome {
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for addr in found {
        if accepts(family, &addr.ip()) && !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    if addrs.is_empty() {
        Outcome::Failed(Error::Dns)
    } else {
        Outcome::Found(addrs)
    }
}

/// Looks a name up with the system resolver (blocking: pool threads only).
fn lookup(host: &str, port: u16, family: u32) -> Outcome {
    match (host, port).to_socket_addrs() {
        Ok(found) => outcome(found, family),
        Err(_) => Outcome::Failed(Error::Dns),
    }
}

/// The pool job of a name lookup.
struct LookupJob {
    id: u64,
    host: String,
    port: u16,
    family: u32,
}

impl Task for LookupJob {
    fn run(self: Box<Self>, cx: &RunContext<'_>) {
        let outcome = lookup(&self.host, self.port, self.family);
        if let Some(shared) = cx.reactor {
            // Refused only for a reactor that is gone or stopped for good: then nobody waits.
            let _ = shared.push_unpinned(|| {
                ThreadCall::Task(Box::new(Answer {
                    id: self.id,
                    outcome,
                }))
            });
        }
    }
}

/// A request's answer on its way to the reactor thread.
struct Answer {
    id: u64,
    outcome: Outcome,
}

impl ReactorTask for Answer {
    fn run(self: Box<Self>, reactor: &Reactor) {
        let Some(pending) = reactor.resolves.borrow_mut().pending.remove(&self.id) else {
            return; // cancelled by shutdown meanwhile
        };
        match pending {
            Pending::Connector(id) => reactor.connector_resolved(id, self.outcome),
            Pending::Host { cb, data } => {
                let (status, addrs) = match &self.outcome {
                    Outcome::Found(found) => (
                        reactor_status_t::REACTOR_OK as c_int,
                        found.iter().map(address::from_socket_addr).collect(),
                    ),
                    Outcome::Failed(error) => (error.code(), Vec::new()),
                };
                finish(reactor, cb, data, status, &addrs);
            }
        }
    }
}

/// Calls back with the result, then releases the user data (after the callback, outside any borrow).
fn finish(
    reactor: &Reactor,
    cb: ResolveFn,
    data: UserData,
    status: c_int,
    addrs: &[reactor_address_t],
) {
    reactor.invoke(|| call_resolve(cb, reactor.handle(), status, addrs, data.ptr()));
    reactor.retire(data);
}

impl Reactor {
    /// `reactor_resolve`: checks the request, starts it, and only then builds the host's user data
    /// (`make_data`), so a refused request leaves it with the host.
    pub fn resolve(
        &self,
        host: &str,
        port: u16,
        family: u32,
        cb: ResolveFn,
        make_data: impl FnOnce() -> UserData,
    ) -> Result<()> {
        if host.is_empty() || !matches!(family, 0 | REACTOR_FAMILY_INET | REACTOR_FAMILY_INET6) {
            return Err(Error::Invalid);
        }
        let id = self.start_resolve(host, port, family)?;
        let data = make_data();
        self.resolves
            .borrow_mut()
            .pending
            .insert(id, Pending::Host { cb, data });
        Ok(())
    }

    /// A name lookup for a connector: the answer goes to `connector_resolved`.
    pub(crate) fn resolve_for_connector(
        &self,
        host: &str,
        port: u16,
        connector: u64,
    ) -> Result<()> {
        let id = self.start_resolve(host, port, 0)?;
        self.resolves
            .borrow_mut()
            .pending
            .insert(id, Pending::Connector(connector));
        Ok(())
    }

    /// Starts a request (the caller records who waits for it under the returned id).
    fn start_resolve(&self, host: &str, port: u16, family: u32) -> Result<u64> {
        let id = {
            let mut resolves = self.resolves.borrow_mut();
            resolves.next_id += 1;
            resolves.next_id
        };
        match address::parse_ip_literal(host) {
            // A literal needs no resolver: its answer goes through the reactor's own queue, which
            // runs it on a later pass.
            Some((ip, scope_id)) => {
                let addr = match ip {
                    IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope_id)),
                    IpAddr::V4(v4) => SocketAddr::from((v4, port)),
                };
                let answer = Answer {
                    id,
                    outcome: outcome([addr], family),
                };
                self.shared
                    .push_unpinned(|| ThreadCall::Task(Box::new(answer)))?;
            }
            None => {
                let job = Job::Task(Box::new(LookupJob {
                    id,
                    host: host.to_string(),
                    port,
                    family,
                }));
                self.pool.get_or_create()?;
                if let Err(job) = self.pool.submit(job) {
                    job.abandon();
                    return Err(Error::Closed);
                }
            }
        }
        Ok(id)
    }

    /// Forgets a connector's lookup (it was cancelled or timed out): its answer will call nothing.
    pub(crate) fn drop_connector_resolve(&self, connector: u64) {
        self.resolves
            .borrow_mut()
            .pending
            .retain(|_, p| !matches!(p, Pending::Connector(c) if *c == connector));
    }

    /// The DURING phase of "shutdown": every pending resolve gets `REACTOR_E_CANCELLED`, oldest first.
    pub(crate) fn cancel_resolves(&self) {
        let pending = std::mem::take(&mut self.resolves.borrow_mut().pending);
        for (_, request) in pending {
            // Connectors cancel their own attempts in the same shutdown step.
            if let Pending::Host { cb, data } = request {
                finish(self, cb, data, Error::Cancelled.code(), &[]);
            }
        }
    }

    /// `reactor_free`: the pending requests, whose user data is released (no callback runs).
    pub(crate) fn take_resolves(&mut self) -> Resolves {
        std::mem::take(self.resolves.get_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn outcomes_filter_by_family_and_drop_repeats() {
        let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, 7));
        let v6: SocketAddr = "[::1]:7".parse().unwrap();
        match outcome([v4, v6, v4], 0) {
            Outcome::Found(addrs) => assert_eq!(addrs, vec![v4, v6]),
            Outcome::Failed(_) => panic!("found"),
        }
        match outcome([v4, v6], REACTOR_FAMILY_INET6) {
            Outcome::Found(addrs) => {
                assert_eq!(addrs, vec![v6]);
            }
            Outcome::Failed(_) => panic!("found"),
        }
        assert!(matches!(
            outcome([v4], REACTOR_FAMILY_INET6),
            Outcome::Failed(Error::Dns)
        ));
    }

    #[test]
    fn localhost_resolves_and_nonsense_does_not() {
        assert!(matches!(
            lookup("localhost", 80, REACTOR_FAMILY_INET),
            Outcome::Found(_)
        ));
        assert!(matches!(
            lookup("no-such-host.invalid", 80, 0),
            Outcome::Failed(Error::Dns)
        ));
    }
}
