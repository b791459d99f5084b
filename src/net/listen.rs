//! Listening ports (API.md §6.3): a listening TCP or UNIX socket that accepts connections, asks the
//! host's `build_protocol` about each one and makes a transport of it.

use super::address;
use super::bind;
use super::handles;
use super::later::{self, Later};
use super::stream::{Socket, Transport};
use super::sys::{self, SockAddr};
use crate::backend::{Interest, PollEvent, Token};
use crate::callback::{UserData, call_build_protocol};
use crate::reactor::{Reactor, Source};
use crate::status::{Error, Result};
use crate::types::{
    REACTOR_LISTEN_IPV6_ONLY, REACTOR_LISTEN_REUSE_PORT, REACTOR_LOG_ERROR, REACTOR_LOG_WARN,
    reactor_address_t, reactor_build_protocol_fn, reactor_listen_options_t, reactor_port_t,
    reactor_protocol_t,
};
use std::cell::{Cell, RefCell};
use std::os::fd::OwnedFd;
use std::os::raw::c_int;
use std::rc::Rc;

/// Connections accepted per readiness event (several per event, as Twisted and libuv do, but bounded
/// so one busy port cannot starve the rest of the loop).
const ACCEPTS_PER_EVENT: usize = 64;

/// Defaults of `reactor_listen_options_t`.
pub fn default_options() -> reactor_listen_options_t {
    reactor_listen_options_t {
        struct_size: std::mem::size_of::<reactor_listen_options_t>() as u32,
        backlog: libc::SOMAXCONN,
        flags: 0,
        mode: 0o666,
    }
}

/// What a port needs besides its socket.
pub struct PortSpec {
    pub protocol: Rc<reactor_protocol_t>,
    pub build: reactor_build_protocol_fn,
}

pub struct Port {
    handle: usize,
    fd: RefCell<Option<OwnedFd>>,
    token: Cell<Option<Token>>,
    spec: PortSpec,
    data: RefCell<Option<UserData>>,
    /// A UNIX socket file of ours, unlinked when the port stops.
    unlink_path: Option<Vec<u8>>,
    accepting: Cell<bool>,
    /// A UNIX socket (its connections are UNIX transports).
    unix: bool,
}

/// The socket for `reactor_listen_tcp`: `interface` NULL or "" = all IPv4 addresses.
pub fn tcp_socket(
    port: u16,
    interface: &str,
    options: &reactor_listen_options_t,
) -> Result<OwnedFd> {
    let addr = bind::interface_address(port, interface)?;
    let fd = sys::stream_socket(addr.domain()).map_err(Error::Os)?;
    let raw = sys::raw(&fd);
    sys::set_int_option(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1).map_err(Error::Os)?;
    if options.flags & REACTOR_LISTEN_REUSE_PORT != 0 {
        sys::set_int_option(raw, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1).map_err(Error::Os)?;
    }
    bind::set_ipv6_only(&fd, &addr, options.flags & REACTOR_LISTEN_IPV6_ONLY != 0)?;
    bind_and_listen(&fd, &addr, options)?;
    Ok(fd)
}

/// The socket for `reactor_listen_unix`, and the path to unlink when the port stops (none for an
/// abstract name). An existing path is never unlinked here: `Error::AddressInUse`.
pub fn unix_socket(
    path: &str,
    options: &reactor_listen_options_t,
) -> Result<(OwnedFd, Option<Vec<u8>>)> {
    let addr = address::unix_sock_addr(path)?;
    let fd = sys::stream_socket(libc::AF_UNIX).map_err(Error::Os)?;
    bind_and_listen(&fd, &addr, options)?;
    let file = bind::claim_socket_file(&addr, options.mode)?;
    Ok((fd, file))
}

fn bind_and_listen(
    fd: &OwnedFd,
    addr: &SockAddr,
    options: &reactor_listen_options_t,
) -> Result<()> {
    bind::bind(fd, addr)?;
    let raw = sys::raw(fd);
    let backlog = if options.backlog > 0 {
        options.backlog
    } else {
        libc::SOMAXCONN
    };
    sys::listen(raw, backlog).map_err(Error::Os)
}

impl Port {
    /// Makes a port of a listening socket: registered, reachable by handle. `make_data` builds the
    /// host's user data only once nothing can fail any more.
    pub fn open(
        reactor: &Reactor,
        fd: OwnedFd,
        spec: PortSpec,
        unlink_path: Option<Vec<u8>>,
        make_data: impl FnOnce() -> UserData,
    ) -> Result<*mut reactor_port_t> {
        let handle = match handles::new_port(reactor.handle() as usize) {
            Ok(handle) => handle,
            Err(e) => {
                bind::remove_socket_file(&unlink_path);
                return Err(e);
            }
        };
        let port = Rc::new(Port {
            handle,
            fd: RefCell::new(None),
            token: Cell::new(None),
            spec,
            data: RefCell::new(None),
            unlink_path,
            accepting: Cell::new(true),
            unix: sys::socket_domain(sys::raw(&fd)) == Ok(libc::AF_UNIX),
        });
        match reactor.register_source(sys::raw(&fd), Interest::READ, port.clone()) {
            Ok(token) => port.token.set(Some(token)),
            Err(e) => {
                handles::end_port(handle);
                bind::remove_socket_file(&port.unlink_path);
                return Err(e);
            }
        }
        *port.fd.borrow_mut() = Some(fd);
        *port.data.borrow_mut() = Some(make_data());
        reactor.net.borrow_mut().ports.insert(handle, port);
        Ok(handle as *mut reactor_port_t)
    }

    pub fn fileno(&self) -> c_int {
        self.fd.borrow().as_ref().map_or(-1, sys::raw)
    }

    pub fn host(&self) -> Result<reactor_address_t> {
        let fd = self.fileno();
        let addr = sys::local_addr(fd).map_err(Error::Os)?;
        Ok(address::from_sock_addr(&addr))
    }

    /// `stop_listening`: the socket is closed (and a UNIX file unlinked) now; the release runs on a
    /// later pass (or now, during shutdown). The handle is dead afterwards.
    pub fn stop(self: &Rc<Self>, reactor: &Reactor, release_now: bool) {
        if let Some(token) = self.token.take() {
            let _ = reactor.deregister_source(token);
        }
        drop(self.fd.borrow_mut().take());
        bind::remove_socket_file(&self.unlink_path);
        handles::end_port(self.handle);
        let removed = reactor.net.borrow_mut().ports.remove(&self.handle);
        drop(removed);
        let data = self.data.borrow_mut().take();
        if let Some(data) = data {
            if release_now {
                reactor.retire(data);
            } else if let Err(_code) = later::queue(reactor, Later::Release(data)) {
                // The reactor stopped for good meanwhile: the work (and the release in it) was
                // dropped, which ran the release.
            }
        }
    }

    pub fn set_accepting(&self, reactor: &Reactor, on: bool) -> Result<()> {
        let token = self.token.get().ok_or(Error::Invalid)?;
        let interest = if on {
            Interest::READ
        } else {
            Interest::default()
        };
        reactor.modify_source(token, interest)?;
        self.accepting.set(on);
        Ok(())
    }

    fn accept_some(self: &Rc<Self>, reactor: &Reactor) {
        for _ in 0..ACCEPTS_PER_EVENT {
            if !self.accepting.get() {
                return;
            }
            let Some(fd) = self.fd.borrow().as_ref().map(sys::raw) else {
                return;
            };
            match sys::accept(fd, self.spec.build.is_some()) {
                Ok(None) => return,
                Ok(Some((conn, peer))) => self.accepted(reactor, conn, peer),
                Err(libc::ECONNABORTED | libc::EINTR | libc::EPROTO) => {}
                Err(e @ (libc::EMFILE | libc::ENFILE)) => {
                    shed_one_peer(reactor, fd, e);
                    return;
                }
                Err(e) => {
                    reactor.log(
                        REACTOR_LOG_ERROR,
                        &format!("accept failed: {}", std::io::Error::from_raw_os_error(e)),
                    );
                    return;
                }
            }
        }
    }

    fn accepted(self: &Rc<Self>, reactor: &Reactor, conn: OwnedFd, peer: Option<SockAddr>) {
        let port_ud = self
            .data
            .borrow()
            .as_ref()
            .map_or(std::ptr::null_mut(), |d| d.ptr());
        let (conn_ud, conn_release) = match self.spec.build {
            Some(build) => {
                // Only `build_protocol` sees the peer's address: formatted for it alone.
                let peer = peer.map_or_else(
                    || {
                        let mut a = address::empty();
                        a.family = crate::types::REACTOR_FAMILY_UNIX;
                        a
                    },
                    |p| address::from_sock_addr(&p),
                );
                let handle = self.handle as *mut reactor_port_t;
                let (status, ud, release) =
                    reactor.invoke(|| call_build_protocol(build, handle, &peer, port_ud));
                if status < 0 {
                    return; // refused: `conn` closes cleanly when dropped
                }
                (ud, release)
            }
            None => (port_ud, None),
        };
        // Handed over by `build_protocol`: released here if the transport cannot be made.
        let data = UserData::new(conn_ud, conn_release);
        let socket = Socket {
            fd: conn,
            unix: self.unix,
            registered: None,
        };
        if let Err(e) = Transport::open(
            reactor,
            socket,
            self.spec.protocol.clone(),
            move || data,
            None,
        ) {
            reactor.log(
                REACTOR_LOG_ERROR,
                &format!("an accepted connection could not be set up: {e:?}"),
            );
        }
    }
}

/// Out of fds: accept the pending peer with the reserved fd and close it at once, so the listening
/// socket stops being readable for it and the loop does not spin (Twisted's test_closePeerOnEMFILE).
fn shed_one_peer(reactor: &Reactor, listener: c_int, errno: i32) {
    let spare = reactor.net.borrow_mut().spare_fd.take();
    drop(spare);
    if let Ok(Some((conn, _))) = sys::accept(listener, false) {
        drop(conn);
    }
    reactor.net.borrow_mut().spare_fd = sys::open_spare_fd();
    reactor.log(
        REACTOR_LOG_WARN,
        &format!(
            "out of file descriptors ({}): a pending connection was closed",
            std::io::Error::from_raw_os_error(errno)
        ),
    );
}

impl Source for Port {
    fn ready(self: Rc<Self>, reactor: &Reactor, _event: PollEvent) {
        self.accept_some(reactor);
    }

    fn shutdown(self: Rc<Self>, reactor: &Reactor) {
        self.stop(reactor, true);
    }
}

impl Drop for Port {
    /// `reactor_free`: close, unlink, kill the handle, release only.
    fn drop(&mut self) {
        if self.fd.get_mut().take().is_some() {
            bind::remove_socket_file(&self.unlink_path);
            handles::end_port(self.handle);
        }
        drop(self.data.get_mut().take());
    }
}

impl Reactor {
    /// Keeps an fd in reserve for accepting at EMFILE (opened with the first port).
    pub(crate) fn reserve_spare_fd(&self) {
        let mut net = self.net.borrow_mut();
        if net.spare_fd.is_none() {
            net.spare_fd = sys::open_spare_fd();
        }
    }
}
