//! `reactor_resolve` (API.md §6.5): IP literals resolve at once, names with `getaddrinfo` on the
//! reactor's thread pool; either way the callback runs on a later pass, on the reactor thread, then the
//! host's release. A resolve still pending when the reactor shuts down gets `REACTOR_E_CANCELLED` (in
//! the DURING phase of "shutdown"); one pending at `reactor_free` only has its release run.
//!
//! The reactor keeps each pending request's callback and user data (`Resolves`); the pool job carries
//! only the name and the request's id, so a late answer (after a cancel, or for a freed reactor) finds
//! nothing to call and is dropped.
//!
//! A host may install its own resolver (API.md §8.3, `reactor_install_resolver`): names then go to its
//! `resolve` function, inside the call that asked (as Twisted's resolveHostName), with a
//! `reactor_resolution_t` handle that it completes, once, with `reactor_resolution_complete`. The
//! answer still reaches the asker on a later pass. A replaced resolver stays until its last request
//! ends, then its user data is released (on a later pass).

use super::address;
use super::handles::{end_resolution, new_resolution};
use super::later::{self, Later};
use crate::callback::{ResolveFn, ResolverFn, UserData, call_resolve};
use crate::reactor::{Reactor, ReactorTask, ThreadCall};
use crate::status::{Error, Result, reactor_status_t};
use crate::threadpool::{Job, RunContext, Task};
use crate::types::{
    REACTOR_FAMILY_INET, REACTOR_FAMILY_INET6, reactor_address_t, reactor_resolution_t,
};
use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::net::{IpAddr, SocketAddr, SocketAddrV6, ToSocketAddrs};
use std::os::raw::c_int;

/// Resolves in progress, by id (owner-only part of the reactor).
#[derive(Default)]
pub struct Resolves {
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    /// The host's resolver (`None`: getaddrinfo on the thread pool).
    installed: Option<Installed>,
    /// Replaced resolvers with requests still out; each is released when its last one ends.
    retired: Vec<Installed>,
    /// Requests handed to a host resolver, by their `reactor_resolution_t` handle.
    requests: HashMap<usize, Request>,
    next_generation: u64,
}

/// An installed resolver.
struct Installed {
    generation: u64,
    func: ResolverFn,
    data: UserData,
    /// Its requests not yet completed (or cancelled).
    outstanding: usize,
}

/// One request of a host resolver.
struct Request {
    id: u64,
    port: u16,
    family: u32,
    generation: u64,
}

impl Resolves {
    /// A request left the resolver of `generation`: a retired resolver with none left is handed back
    /// for release.
    fn request_ended(&mut self, generation: u64) -> Option<UserData> {
        if let Some(installed) = self
            .installed
            .as_mut()
            .filter(|i| i.generation == generation)
        {
            installed.outstanding -= 1;
            return None;
        }
        let position = self
            .retired
            .iter()
            .position(|i| i.generation == generation)?;
        self.retired[position].outstanding -= 1;
        if self.retired[position].outstanding == 0 {
            Some(self.retired.remove(position).data)
        } else {
            None
        }
    }
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
    /// A host resolver's negative status, passed on as it is.
    Status(c_int),
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
                    Outcome::Status(status) => (*status, Vec::new()),
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
        if self.is_finished() {
            return Err(Error::Closed);
        }
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
            None if self.resolves.borrow().installed.is_some() => {
                self.ask_host_resolver(id, host, port, family)?;
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

    /// Hands a name to the installed resolver, inside this call. A request it fails (a non-zero
    /// return) before completing it ends with that status (positive ones: INVALID).
    fn ask_host_resolver(&self, id: u64, host: &str, port: u16, family: u32) -> Result<()> {
        let c_host = CString::new(host).map_err(|_| Error::Invalid)?;
        let (func, ud, generation) = {
            let resolves = self.resolves.borrow();
            let installed = resolves.installed.as_ref().ok_or(Error::Internal)?;
            (installed.func, installed.data.ptr(), installed.generation)
        };
        let handle = new_resolution(self.handle() as usize)?;
        {
            let mut resolves = self.resolves.borrow_mut();
            resolves.requests.insert(
                handle,
                Request {
                    id,
                    port,
                    family,
                    generation,
                },
            );
            if let Some(installed) = resolves.installed.as_mut() {
                installed.outstanding += 1;
            }
        }
        let status = self.invoke(|| {
            // SAFETY: a host-supplied function pointer, checked non-NULL when installed; the
            // host name outlives the call.
            unsafe {
                func(
                    self.handle(),
                    c_host.as_ptr(),
                    port,
                    family,
                    handle as *mut reactor_resolution_t,
                    ud,
                )
            }
        });
        if status != 0 {
            // If `resolve` completed the request before failing, the completion stands.
            let status = if status > 0 {
                Error::Invalid.code()
            } else {
                status
            };
            if self.resolves.borrow().requests.contains_key(&handle) {
                self.end_request(handle, Outcome::Status(status))?;
            }
        }
        Ok(())
    }

    /// `reactor_resolution_complete`: the answer goes to whoever still waits, on a later pass.
    pub fn complete_resolution(
        &self,
        handle: usize,
        status: c_int,
        addrs: &[reactor_address_t],
    ) -> Result<()> {
        if status > 0 {
            return Err(Error::Invalid);
        }
        let (port, family) = {
            let resolves = self.resolves.borrow();
            let request = resolves.requests.get(&handle).ok_or(Error::Invalid)?;
            (request.port, request.family)
        };
        let outcome = if status < 0 {
            Outcome::Status(status)
        } else {
            // Copied: numeric INET/INET6 entries only, with the requested port; none left → DNS.
            let found = addrs
                .iter()
                .filter_map(|a| address::to_socket_addr(a).ok())
                .map(|mut a| {
                    a.set_port(port);
                    a
                });
            outcome(found, family)
        };
        self.end_request(handle, outcome)
    }

    /// Ends a host resolver's request: its handle goes, its answer is queued for a later pass (and
    /// dropped there if nobody waits any more), a retired resolver with nothing left is released.
    fn end_request(&self, handle: usize, outcome: Outcome) -> Result<()> {
        let (request, retired) = {
            let mut resolves = self.resolves.borrow_mut();
            let request = resolves.requests.remove(&handle).ok_or(Error::Invalid)?;
            let retired = resolves.request_ended(request.generation);
            (request, retired)
        };
        end_resolution(handle);
        if let Some(data) = retired {
            let _ = later::queue(self, Later::Release(data));
        }
        let answer = Answer {
            id: request.id,
            outcome,
        };
        self.shared
            .push_unpinned(|| ThreadCall::Task(Box::new(answer)))
            .map_err(|_| Error::Closed)
    }

    /// `reactor_install_resolver`: `None` restores getaddrinfo. The previous resolver is released
    /// once its requests have ended (on a later pass); `data` of a NULL resolver right away on a
    /// later pass.
    pub fn install_resolver(&self, func: Option<ResolverFn>, data: UserData) {
        let (previous, unused) = {
            let mut resolves = self.resolves.borrow_mut();
            resolves.next_generation += 1;
            let generation = resolves.next_generation;
            let (installed, unused) = match func {
                Some(func) => (
                    Some(Installed {
                        generation,
                        func,
                        data,
                        outstanding: 0,
                    }),
                    None,
                ),
                None => (None, Some(data)),
            };
            let previous = std::mem::replace(&mut resolves.installed, installed);
            let previous = match previous {
                Some(old) if old.outstanding > 0 => {
                    resolves.retired.push(old);
                    None
                }
                other => other.map(|old| old.data),
            };
            (previous, unused)
        };
        for data in [previous, unused].into_iter().flatten() {
            // Released on a later pass, never inside the call that replaced it (a reactor stopped
            // for good refuses the work, which releases it at once).
            let _ = later::queue(self, Later::Release(data));
        }
    }

    /// Forgets a connector's lookup (it was cancelled or timed out): its answer will call nothing.
    pub(crate) fn drop_connector_resolve(&self, connector: u64) {
        self.resolves
            .borrow_mut()
            .pending
            .retain(|_, p| !matches!(p, Pending::Connector(c) if *c == connector));
    }

    /// The DURING phase of "shutdown": every pending resolve gets `REACTOR_E_CANCELLED`, oldest first.
    /// Host resolvers' requests become stale (completing them → INVALID).
    pub(crate) fn cancel_resolves(&self) {
        let (handles, retired) = {
            let mut resolves = self.resolves.borrow_mut();
            let handles: Vec<usize> = resolves.requests.drain().map(|(h, _)| h).collect();
            if let Some(installed) = resolves.installed.as_mut() {
                installed.outstanding = 0;
            }
            let retired: Vec<UserData> = resolves.retired.drain(..).map(|i| i.data).collect();
            (handles, retired)
        };
        for handle in handles {
            end_resolution(handle);
        }
        for data in retired {
            self.retire(data);
        }
        let pending = std::mem::take(&mut self.resolves.borrow_mut().pending);
        for (_, request) in pending {
            // Connectors cancel their own attempts in the same shutdown step.
            if let Pending::Host { cb, data } = request {
                finish(self, cb, data, Error::Cancelled.code(), &[]);
            }
        }
    }

    /// `reactor_free`: the pending requests, whose user data is released (no callback runs), and the
    /// resolvers' user data; host resolvers' request handles end.
    pub(crate) fn take_resolves(&mut self) -> Resolves {
        let resolves = std::mem::take(self.resolves.get_mut());
        for handle in resolves.requests.keys() {
            end_resolution(*handle);
        }
        resolves
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
            Outcome::Failed(_) | Outcome::Status(_) => panic!("found"),
        }
        match outcome([v4, v6], REACTOR_FAMILY_INET6) {
            Outcome::Found(addrs) => {
                assert_eq!(addrs, vec![v6]);
            }
            Outcome::Failed(_) | Outcome::Status(_) => panic!("found"),
        }
        assert!(matches!(
            outcome([v4], REACTOR_FAMILY_INET6),
            Outcome::Failed(Error::Dns)
        ));
    }

    #[test]
    fn host_addresses_become_socket_addresses_only_when_numeric_ip() {
        let mut a = address::from_socket_addr(&"[fe80::1%3]:9".parse().unwrap());
        a.port = 1;
        let found = address::to_socket_addr(&a).unwrap();
        assert_eq!(found, "[fe80::1%3]:1".parse().unwrap());
        address::set_host(&mut a, "example.org");
        assert_eq!(address::to_socket_addr(&a), Err(Error::InvalidAddress));
        let mut b = address::from_socket_addr(&"127.0.0.1:5".parse().unwrap());
        b.family = REACTOR_FAMILY_INET6; // the other family's text
        assert_eq!(address::to_socket_addr(&b), Err(Error::InvalidAddress));
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
