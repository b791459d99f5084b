//! Client connectors (API.md §6.3, Twisted's IConnector): one destination, attempts that resolve the
//! name, try its addresses in order within the timeout and end in `connection_made` or
//! `connection_failed`, and the connection they make.
//!
//! The connector owns the host's user data. It is released once three things are over: the attempt,
//! the connection, and the host's hold on the handle (`reactor_connector_release`, or no handle at
//! all). A new attempt (`reactor_connector_connect`) may start from inside `connection_failed` or
//! `connection_lost`: the connector is idle again before they run.

use super::address;
use super::later::{self, Later};
use super::resolve::Outcome;
use super::stream::{Socket, Transport};
use super::sys::{self, SockAddr};
use crate::backend::{Interest, PollEvent, Token};
use crate::callback::{Callback, UserData, call_connection_failed};
use crate::handles::{ConnectorTable, HandleTable};
use crate::reactor::entry;
use crate::reactor::{Reactor, Shared, Source};
use crate::status::{Error, Result};
use crate::time::TimerRecord;
use crate::types::{
    REACTOR_CONNECTOR_CONNECTED, REACTOR_CONNECTOR_CONNECTING, REACTOR_CONNECTOR_DISCONNECTED,
    reactor_address_t, reactor_connector_t, reactor_protocol_t, reactor_t,
};
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::os::raw::{c_int, c_void};
use std::rc::Rc;
use std::sync::Arc;

/// Where a connector connects.
#[derive(Clone)]
pub enum Destination {
    /// A host as the caller gave it (an IP literal or a name) and a port.
    Tcp {
        host: String,
        port: u16,
    },
    Unix {
        path: String,
    },
}

pub struct ConnectSpec {
    pub destination: Destination,
    /// Whole attempt, name resolution included; 0 = none.
    pub timeout: f64,
    /// TCP: the local address to bind before connecting.
    pub bind: Option<SocketAddr>,
    pub protocol: Rc<reactor_protocol_t>,
}

/// A connector handle's entry: enough to find the connector from any thread (release).
pub struct HandleEntry {
    reactor: usize,
    shared: Arc<Shared>,
    id: u64,
}

static CONNECTORS: ConnectorTable<HandleEntry> = HandleTable::new();

enum Attempt {
    /// No attempt and no connection.
    Idle,
    Resolving,
    Connecting {
        fd: OwnedFd,
        token: Token,
        rest: Vec<SockAddr>,
    },
    /// The attempt failed (or was stopped); `connection_failed` is on its way.
    Failing,
    Connected {
        transport: usize,
    },
}

pub struct Connector {
    id: u64,
    /// The host's handle, while it holds it (0: never had one, or released).
    handle: Cell<usize>,
    spec: ConnectSpec,
    data: RefCell<Option<UserData>>,
    attempt: RefCell<Attempt>,
    timer: RefCell<Option<Arc<TimerRecord>>>,
    /// The error of the last address tried, reported if no address works.
    last_error: Cell<Option<Error>>,
}

/// The reactor (C handle) and id behind a connector handle.
pub fn lookup(handle: *const c_void) -> Option<(usize, u64)> {
    CONNECTORS.with(handle, |e| (e.reactor, e.id))
}

/// `reactor_connector_release`, any thread: the handle dies now; the connector learns of it now on its
/// reactor's thread, else on a later pass. A reactor already freed released the user data then.
pub fn release_handle(handle: *mut c_void) {
    let Some(entry) = CONNECTORS.remove(handle) else {
        return;
    };
    let r = entry.reactor as *const reactor_t;
    if let Ok(claim) = entry::claim(r, false) {
        if !claim.shared.is_poisoned() {
            entry::reactor(&claim).connector_released(entry.id);
        }
        return;
    }
    let id = entry.id;
    let _ = entry
        .shared
        .push_unpinned(|| crate::reactor::ThreadCall::Task(Box::new(Later::ConnectorReleased(id))));
}

/// The reason for the errno of a failed connect.
fn connect_error(errno: i32) -> Error {
    match errno {
        libc::ECONNREFUSED => Error::ConnectionRefused,
        libc::ETIMEDOUT => Error::Timeout,
        e => Error::Os(e),
    }
}

impl Connector {
    /// Creates a connector and starts its first attempt. With `want_handle`, the host gets a handle
    /// (returned). If the attempt cannot start, the data `make_data` built goes back to the caller
    /// unreleased.
    pub fn start(
        reactor: &Reactor,
        spec: ConnectSpec,
        want_handle: bool,
        make_data: impl FnOnce() -> UserData,
    ) -> Result<*mut reactor_connector_t> {
        let id = reactor.net.borrow_mut().next_connector_id();
        let handle = if want_handle {
            CONNECTORS.insert(Box::new(HandleEntry {
                reactor: reactor.handle() as usize,
                shared: reactor.shared.clone(),
                id,
            }))? as usize
        } else {
            0
        };
        let connector = Rc::new(Connector {
            id,
            handle: Cell::new(handle),
            spec,
            data: RefCell::new(None),
            attempt: RefCell::new(Attempt::Idle),
            timer: RefCell::new(None),
            last_error: Cell::new(None),
        });
        // The data first: an attempt may connect at once (its transport needs the data).
        *connector.data.borrow_mut() = Some(make_data());
        if let Err(e) = connector.begin(reactor) {
            if handle != 0 {
                drop(CONNECTORS.remove(handle as *const c_void));
            }
            // Refused: the data stays the caller's (not released).
            if let Some(data) = connector.data.borrow_mut().take() {
                data.into_raw();
            }
            return Err(e);
        }
        reactor.net.borrow_mut().connectors.insert(id, connector);
        Ok(handle as *mut reactor_connector_t)
    }

    fn ud(&self) -> *mut c_void {
        self.data
            .borrow()
            .as_ref()
            .map_or(std::ptr::null_mut(), |d| d.ptr())
    }

    pub fn state(&self) -> c_int {
        match &*self.attempt.borrow() {
            Attempt::Idle | Attempt::Failing => REACTOR_CONNECTOR_DISCONNECTED,
            Attempt::Resolving | Attempt::Connecting { .. } => REACTOR_CONNECTOR_CONNECTING,
            Attempt::Connected { .. } => REACTOR_CONNECTOR_CONNECTED,
        }
    }

    pub fn destination(&self) -> reactor_address_t {
        let mut out = address::empty();
        match &self.spec.destination {
            Destination::Tcp { host, port } => {
                out.family = if host.contains(':') {
                    crate::types::REACTOR_FAMILY_INET6
                } else {
                    crate::types::REACTOR_FAMILY_INET
                };
                out.port = *port;
                address::set_host(&mut out, host);
            }
            Destination::Unix { path } => {
                out.family = crate::types::REACTOR_FAMILY_UNIX;
                address::set_host(&mut out, path);
            }
        }
        out
    }

    /// Starts an attempt (the connector is idle): the timer, then the name or the addresses.
    fn begin(self: &Rc<Self>, reactor: &Reactor) -> Result<()> {
        match &self.spec.destination {
            Destination::Unix { path } => {
                let addr = address::unix_sock_addr(path)?;
                self.arm_timer(reactor);
                self.try_addresses(reactor, vec![addr]);
            }
            Destination::Tcp { host, port } => match address::parse_ip_literal(host) {
                Some((ip, scope)) => {
                    let addr = match ip {
                        std::net::IpAddr::V4(v4) => SocketAddr::from((v4, *port)),
                        std::net::IpAddr::V6(v6) => {
                            SocketAddr::V6(std::net::SocketAddrV6::new(v6, *port, 0, scope))
                        }
                    };
                    self.arm_timer(reactor);
                    self.try_addresses(reactor, vec![SockAddr::Ip(addr)]);
                }
                None => {
                    reactor.resolve_for_connector(host, *port, self.id)?;
                    *self.attempt.borrow_mut() = Attempt::Resolving;
                    self.arm_timer(reactor);
                }
            },
        }
        Ok(())
    }

    fn arm_timer(self: &Rc<Self>, reactor: &Reactor) {
        if self.spec.timeout <= 0.0 {
            return;
        }
        let record = Arc::new(TimerRecord::new());
        let callback = Callback {
            func: connector_timed_out,
            data: UserData::new(self.id as usize as *mut c_void, None),
        };
        reactor.call_later(self.spec.timeout, callback, Some(record.clone()));
        *self.timer.borrow_mut() = Some(record);
    }

    fn disarm_timer(&self, reactor: &Reactor) {
        if let Some(record) = self.timer.borrow_mut().take() {
            let _ = reactor.cancel_call(&record);
        }
    }

    /// Tries the addresses in order; the first that connects wins.
    fn try_addresses(self: &Rc<Self>, reactor: &Reactor, mut addrs: Vec<SockAddr>) {
        addrs.reverse(); // popped from the end: in order
        while let Some(addr) = addrs.pop() {
            match self.connect_one(&addr) {
                Ok((fd, true)) => return self.connected(reactor, fd, None),
                Ok((fd, false)) => {
                    let raw = sys::raw(&fd);
                    match reactor.register_source(raw, Interest::WRITE, self.clone()) {
                        Ok(token) => {
                            *self.attempt.borrow_mut() = Attempt::Connecting {
                                fd,
                                token,
                                rest: addrs,
                            };
                            return;
                        }
                        Err(e) => self.last_error.set(Some(e)),
                    }
                }
                Err(e) => self.last_error.set(Some(e)),
            }
        }
        let reason = self.last_error.take().unwrap_or(Error::ConnectionRefused);
        self.fail(reactor, reason);
    }

    /// A non-blocking connect: `(fd, true)` if it connected at once.
    fn connect_one(&self, addr: &SockAddr) -> Result<(OwnedFd, bool)> {
        let fd = sys::stream_socket(addr.domain()).map_err(Error::Os)?;
        if let (Some(bind), SockAddr::Ip(target)) = (self.spec.bind, addr)
            && bind.is_ipv4() == target.is_ipv4()
        {
            sys::bind(sys::raw(&fd), &SockAddr::Ip(bind)).map_err(|e| match e {
                libc::EADDRINUSE => Error::AddressInUse,
                libc::EADDRNOTAVAIL => Error::InvalidAddress,
                e => Error::Os(e),
            })?;
        }
        match sys::connect(sys::raw(&fd), addr) {
            Ok(()) => Ok((fd, true)),
            Err(libc::EINPROGRESS) | Err(libc::EAGAIN) => Ok((fd, false)),
            Err(e) => Err(connect_error(e)),
        }
    }

    /// The attempt's socket is writable: connected, or failed. `reported` is an error the backend
    /// delivered with the event (kqueue), used when the socket no longer holds it.
    fn on_writable(self: &Rc<Self>, reactor: &Reactor, reported: Option<i32>) {
        let attempt = std::mem::replace(&mut *self.attempt.borrow_mut(), Attempt::Idle);
        let Attempt::Connecting { fd, token, rest } = attempt else {
            *self.attempt.borrow_mut() = attempt;
            return;
        };
        let error = match sys::take_error(sys::raw(&fd)) {
            0 => reported.unwrap_or(0),
            e => e,
        };
        match error {
            // The transport takes over this registration (one backend update, not two).
            0 => self.connected(reactor, fd, Some(token)),
            e => {
                let _ = reactor.deregister_source(token);
                self.last_error.set(Some(connect_error(e)));
                drop(fd);
                self.try_addresses(reactor, rest);
            }
        }
    }

    fn connected(self: &Rc<Self>, reactor: &Reactor, fd: OwnedFd, registered: Option<Token>) {
        self.disarm_timer(reactor);
        let ud = self.ud();
        let data = move || UserData::new(ud, None);
        let socket = Socket {
            fd,
            unix: matches!(self.spec.destination, Destination::Unix { .. }),
            registered,
        };
        match Transport::open(
            reactor,
            socket,
            self.spec.protocol.clone(),
            data,
            Some(self.id),
        ) {
            Ok(transport) => *self.attempt.borrow_mut() = Attempt::Connected { transport },
            Err(e) => {
                if let Some(token) = registered {
                    let _ = reactor.deregister_source(token);
                }
                self.fail(reactor, e)
            }
        }
    }

    /// Ends the attempt: `connection_failed(reason)` on a later pass.
    fn fail(self: &Rc<Self>, reactor: &Reactor, reason: Error) {
        self.abandon_attempt(reactor);
        if later::queue(reactor, Later::ConnectionFailed(self.id, reason.code())).is_err() {
            self.deliver_failure(reactor, reason.code());
        }
    }

    /// Stops whatever the attempt holds (timer, lookup, socket); `connection_failed` is owed.
    fn abandon_attempt(&self, reactor: &Reactor) {
        self.disarm_timer(reactor);
        reactor.drop_connector_resolve(self.id);
        let attempt = std::mem::replace(&mut *self.attempt.borrow_mut(), Attempt::Failing);
        if let Attempt::Connecting { token, fd, .. } = attempt {
            let _ = reactor.deregister_source(token);
            drop(fd);
        }
    }

    /// `connection_failed`, then the connector is idle (and maybe released).
    pub fn deliver_failure(self: &Rc<Self>, reactor: &Reactor, reason: c_int) {
        if !matches!(*self.attempt.borrow(), Attempt::Failing) {
            return;
        }
        *self.attempt.borrow_mut() = Attempt::Idle;
        if let Some(cb) = self.spec.protocol.connection_failed {
            // A host without a handle (it never asked for one, or released it) still gets a usable
            // connector for the callback (API.md §6.7): a handle that dies when it returns.
            let lent = (self.handle.get() == 0)
                .then(|| {
                    CONNECTORS.insert(Box::new(HandleEntry {
                        reactor: reactor.handle() as usize,
                        shared: reactor.shared.clone(),
                        id: self.id,
                    }))
                })
                .and_then(|inserted| inserted.ok())
                .map(|h| h as usize);
            if let Some(lent) = lent {
                self.handle.set(lent);
            }
            let handle = self.handle.get() as *mut reactor_connector_t;
            let ud = self.ud();
            reactor.invoke(|| call_connection_failed(cb, handle, reason, ud));
            if let Some(lent) = lent {
                // Released inside the callback: `host_released` has already reset the handle.
                if self.handle.get() == lent {
                    self.handle.set(0);
                }
                drop(CONNECTORS.remove(lent as *const c_void));
            }
        }
        self.release_if_done(reactor);
    }

    /// Releases the user data once no attempt, no connection and no host handle is left.
    fn release_if_done(self: &Rc<Self>, reactor: &Reactor) {
        if self.handle.get() != 0 || !matches!(*self.attempt.borrow(), Attempt::Idle) {
            return;
        }
        let removed = reactor.net.borrow_mut().connectors.remove(&self.id);
        drop(removed);
        let data = self.data.borrow_mut().take();
        if let Some(data) = data {
            reactor.retire(data);
        }
    }

    // ----- the host's calls and the reactor's events ----------------------------------------

    pub fn stop_connecting(self: &Rc<Self>, reactor: &Reactor) -> Result<()> {
        match *self.attempt.borrow() {
            Attempt::Resolving | Attempt::Connecting { .. } => {}
            _ => return Err(Error::AlreadyCalled),
        }
        self.fail(reactor, Error::Cancelled);
        Ok(())
    }

    pub fn disconnect(self: &Rc<Self>, reactor: &Reactor) -> Result<()> {
        let transport = match *self.attempt.borrow() {
            Attempt::Connected { transport } => Some(transport),
            Attempt::Resolving | Attempt::Connecting { .. } => None,
            Attempt::Idle | Attempt::Failing => return Ok(()),
        };
        match transport {
            Some(handle) => {
                let transport = reactor.net.borrow().transport(handle);
                match transport {
                    Some(t) => t.lose_connection(reactor),
                    None => Ok(()),
                }
            }
            None => self.stop_connecting(reactor),
        }
    }

    pub fn connect_again(self: &Rc<Self>, reactor: &Reactor) -> Result<()> {
        if !matches!(*self.attempt.borrow(), Attempt::Idle) {
            return Err(Error::Busy);
        }
        self.begin(reactor)
    }

    pub fn resolved(self: &Rc<Self>, reactor: &Reactor, outcome: Outcome) {
        if !matches!(*self.attempt.borrow(), Attempt::Resolving) {
            return;
        }
        match outcome {
            Outcome::Found(addrs) => {
                self.try_addresses(reactor, addrs.into_iter().map(SockAddr::Ip).collect())
            }
            // Whatever an installed resolver said, a connector reports DNS (API.md §8.6).
            Outcome::Failed(_) | Outcome::Status(_) => self.fail(reactor, Error::Dns),
        }
    }

    pub fn timed_out(self: &Rc<Self>, reactor: &Reactor) {
        self.timer.borrow_mut().take();
        if matches!(
            *self.attempt.borrow(),
            Attempt::Resolving | Attempt::Connecting { .. }
        ) {
            self.fail(reactor, Error::Timeout);
        }
    }

    pub fn transport_ended(self: &Rc<Self>, reactor: &Reactor) {
        if matches!(*self.attempt.borrow(), Attempt::Connected { .. }) {
            *self.attempt.borrow_mut() = Attempt::Idle;
            self.release_if_done(reactor);
        }
    }

    pub fn host_released(self: &Rc<Self>, reactor: &Reactor) {
        self.handle.set(0);
        self.release_if_done(reactor);
    }

    /// The end of a reactor's run: a pending attempt fails with `REACTOR_E_CANCELLED` now.
    fn shut_down(self: &Rc<Self>, reactor: &Reactor) {
        if matches!(
            *self.attempt.borrow(),
            Attempt::Resolving | Attempt::Connecting { .. }
        ) {
            self.abandon_attempt(reactor);
            self.deliver_failure(reactor, Error::Cancelled.code());
        }
    }
}

impl Source for Connector {
    fn ready(self: Rc<Self>, reactor: &Reactor, event: PollEvent) {
        self.on_writable(reactor, event.reported_error());
    }

    // Shutdown reaches every connector through `Reactor::shutdown_connectors` (one resolving a name
    // has no source in the registry).
}

impl Drop for Connector {
    /// `reactor_free`: release only. The host's handle stays the host's (it answers
    /// `REACTOR_E_INVALID` for the reactor, then is released by `reactor_connector_release`).
    fn drop(&mut self) {
        if let Attempt::Connecting { fd, .. } =
            std::mem::replace(self.attempt.get_mut(), Attempt::Idle)
        {
            drop(fd);
        }
        drop(self.data.get_mut().take());
    }
}

/// The connect timeout's timer callback (an internal delayed call, like Twisted's connector
/// timeouts): the connector id travels as the user data.
unsafe extern "C" fn connector_timed_out(r: *mut reactor_t, ud: *mut c_void) {
    let id = ud as usize as u64;
    if let Ok(claim) = entry::claim(r, false) {
        let reactor = entry::reactor(&claim);
        let connector = reactor.net.borrow().connector(id);
        if let Some(connector) = connector {
            connector.timed_out(reactor);
        }
    }
}

impl Reactor {
    /// The DURING phase of "shutdown": every attempt in progress gets
    /// `connection_failed(REACTOR_E_CANCELLED)`, oldest connector first.
    pub(crate) fn shutdown_connectors(&self) {
        let mut all: Vec<Rc<Connector>> = self.net.borrow().connectors.values().cloned().collect();
        all.sort_by_key(|c| c.id);
        for connector in all {
            connector.shut_down(self);
        }
    }

    pub(crate) fn connector_resolved(&self, id: u64, outcome: Outcome) {
        let connector = self.net.borrow().connector(id);
        if let Some(connector) = connector {
            connector.resolved(self, outcome);
        }
    }

    pub(crate) fn connector_transport_ended(&self, id: u64) {
        let connector = self.net.borrow().connector(id);
        if let Some(connector) = connector {
            connector.transport_ended(self);
        }
    }

    pub(crate) fn connector_released(&self, id: u64) {
        let connector = self.net.borrow().connector(id);
        if let Some(connector) = connector {
            connector.host_released(self);
        }
    }

    pub(crate) fn connector_failed(&self, id: u64, reason: c_int) {
        let connector = self.net.borrow().connector(id);
        if let Some(connector) = connector {
            connector.deliver_failure(self, reason);
        }
    }
}
