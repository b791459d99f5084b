//! Networking at the C boundary (API.md §6): addresses and name resolution so far.

use super::{guarded_value, on_owner};
use crate::callback::UserData;
use crate::net::address;
use crate::status::{Error, Result, reactor_status_t::REACTOR_OK, to_status};
use crate::types::*;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};

/// Writes the text form of `a` into `buf` (`cap` bytes): "127.0.0.1:80", "[::1]:80", "/run/x.sock",
/// "@name", "" for an unnamed UNIX socket. Always NUL-terminates when `cap` > 0: too small → the text
/// cut to fit and `REACTOR_E_INVALID`; NULL `a`, an unknown family or a host without its NUL → "" and
/// `REACTOR_E_INVALID`; NULL `buf` or `cap` 0 → `REACTOR_E_INVALID`.
///
/// Thread-safety: any thread.
///
/// # Safety
/// `a` is NULL or points to a readable `reactor_address_t`; `buf` is NULL or points to `cap` writable
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_address_format(
    a: *const reactor_address_t,
    buf: *mut c_char,
    cap: usize,
) -> c_int {
    if buf.is_null() || cap == 0 {
        return Error::Invalid.code();
    }
    guarded_value(Error::Internal.code(), || {
        // SAFETY: non-NULL `a` is readable (the caller's contract).
        let text = match unsafe { a.as_ref() } {
            Some(a) => address::format(a),
            None => Err(Error::Invalid),
        };
        let (bytes, status) = match &text {
            Ok(text) if text.len() < cap => (text.as_bytes(), REACTOR_OK as c_int),
            Ok(text) => (&text.as_bytes()[..cap - 1], Error::Invalid.code()),
            Err(e) => (&b""[..], e.code()),
        };
        // SAFETY: `buf` has `cap` writable bytes and `bytes.len()` < `cap`.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), bytes.len());
            *buf.add(bytes.len()) = 0;
        }
        status
    })
}

/// Resolves `host` (an IP literal, optionally with "%scope" for IPv6, or a name) for `port`.
/// `family`: 0 (any), `REACTOR_FAMILY_INET` or `REACTOR_FAMILY_INET6`. Never blocks: names are looked
/// up with `getaddrinfo` on the reactor's thread pool (which starts when the reactor runs), literals
/// without it. `cb(r, status, addrs, count, ud)` runs on a later pass: `REACTOR_OK` with at least one
/// address (numeric, in the resolver's order, no repeats), `REACTOR_E_DNS` with none, or
/// `REACTOR_E_CANCELLED` when the reactor shuts down first; then `release(ud)`. At `reactor_free` only
/// the release runs. Errors: NULL `host` or `cb`, an empty host, another family → `REACTOR_E_INVALID`;
/// after a run that ended with stop → `REACTOR_E_CLOSED` (`ud` stays the caller's).
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `host` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_resolve(
    r: *mut reactor_t,
    host: *const c_char,
    port: u16,
    family: u32,
    cb: reactor_resolve_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
) -> c_int {
    on_owner(r, |reactor| {
        let cb = cb.ok_or(Error::Invalid)?;
        // SAFETY: NULL or NUL-terminated (the caller's contract).
        let host = unsafe { c_text(host) }?;
        reactor.resolve(host, port, family, cb, || UserData::new(ud, release))
    })
}

/// Installs a resolver for host names (Twisted's IReactorPluggableNameResolver, API.md §8.3):
/// `reactor_resolve` and `reactor_connect_tcp` hand names (never IP literals) to
/// `resolver->resolve(r, host, port, family, res, ud)`, inside the call; it completes `res` with
/// `reactor_resolution_complete` inside or later, or returns a negative status to fail the request.
/// The asker hears back on a later pass. `resolver` NULL restores the default (getaddrinfo on the
/// thread pool); a NULL `resolve` or a bad `struct_size` → `REACTOR_E_INVALID` (`ud` stays the
/// caller's). The replaced resolver's `ud` is released on a later pass once its requests have ended;
/// with a NULL `resolver`, `ud` itself is released on a later pass. At shutdown pending requests end
/// with `REACTOR_E_CANCELLED` and their handles become stale.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `resolver` is NULL or points to `resolver->struct_size` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_install_resolver(
    r: *mut reactor_t,
    resolver: *const reactor_resolver_t,
    ud: *mut c_void,
    release: reactor_release_fn,
) -> c_int {
    on_owner(r, |reactor| {
        let func = if resolver.is_null() {
            None
        } else {
            // SAFETY: non-NULL and readable for its struct_size (the caller's contract).
            let resolver = unsafe { read_versioned(resolver, None) }?;
            Some(resolver.resolve.ok_or(Error::Invalid)?)
        };
        reactor.install_resolver(func, UserData::new(ud, release));
        Ok(())
    })
}

/// Completes a request of an installed resolver, exactly once: `status` `REACTOR_OK` with `count`
/// addresses (copied; only numeric INET/INET6 entries are kept, each with the requested port; none
/// left → the asker gets `REACTOR_E_DNS`), or a negative status for the asker (`reactor_connect_tcp`
/// reports `REACTOR_E_DNS` whatever it is). A positive status, NULL `addrs` with `count` > 0 →
/// `REACTOR_E_INVALID` and the request stays pending; a completed, cancelled (shutdown) or made-up
/// `res` → `REACTOR_E_INVALID`; another thread → `REACTOR_E_WRONG_THREAD` (the request stays pending:
/// hand it over with `reactor_call_from_thread`).
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `addrs` is NULL or points to `count` readable addresses.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_resolution_complete(
    res: *mut reactor_resolution_t,
    status: c_int,
    addrs: *const reactor_address_t,
    count: usize,
) -> c_int {
    let Some(r) = crate::net::resolution_reactor(res as *const c_void) else {
        return Error::Invalid.code();
    };
    on_owner(r as *mut reactor_t, |reactor| {
        let addrs: &[reactor_address_t] = match (addrs.is_null(), count) {
            (_, 0) => &[],
            (true, _) => return Err(Error::Invalid),
            // SAFETY: `count` readable entries (the caller's contract).
            (false, n) => unsafe { std::slice::from_raw_parts(addrs, n) },
        };
        reactor.complete_resolution(res as usize, status, addrs)
    })
}

/// A C string argument as UTF-8 text: NULL or not UTF-8 → `REACTOR_E_INVALID`.
///
/// # Safety
/// `text` is NULL or a NUL-terminated string that outlives the returned slice.
pub(super) unsafe fn c_text<'a>(text: *const c_char) -> Result<&'a str> {
    if text.is_null() {
        return Err(Error::Invalid);
    }
    // SAFETY: non-NULL and NUL-terminated (the caller's contract).
    unsafe { CStr::from_ptr(text) }
        .to_str()
        .map_err(|_| Error::Invalid)
}

// ----- stream protocols, ports and transports (API.md §6.3, §6.4) ----------------------------------

use super::{owner_result, read_versioned};
use crate::net::listen::{self, Port, PortSpec};
use crate::net::stream::{TcpOption, Transport};
use crate::reactor::Reactor;
use std::rc::Rc;

/// Fills `p` with NULL callbacks and its `struct_size`. NULL is ignored.
///
/// Thread-safety: any thread.
///
/// # Safety
/// `p` is NULL or points to a writable `reactor_protocol_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_protocol_init(p: *mut reactor_protocol_t) {
    let value = reactor_protocol_t {
        struct_size: std::mem::size_of::<reactor_protocol_t>() as u32,
        connection_made: None,
        data_received: None,
        read_connection_lost: None,
        write_connection_lost: None,
        connection_lost: None,
        connection_failed: None,
        file_descriptor_received: None,
    };
    // SAFETY: NULL or writable (the caller's contract).
    unsafe { super::write_out(p, value) }
}

/// Fills `o` with the defaults: backlog `SOMAXCONN`, no flags, mode 0666. NULL is ignored.
///
/// Thread-safety: any thread.
///
/// # Safety
/// `o` is NULL or points to a writable `reactor_listen_options_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_listen_options_init(o: *mut reactor_listen_options_t) {
    // SAFETY: NULL or writable (the caller's contract).
    unsafe { super::write_out(o, listen::default_options()) }
}

/// Copies the host's protocol (versioned struct rules; NULL → `REACTOR_E_INVALID`).
///
/// # Safety
/// `p` is NULL or points to `struct_size` readable bytes.
unsafe fn read_protocol(p: *const reactor_protocol_t) -> Result<reactor_protocol_t> {
    // SAFETY: the caller's contract.
    unsafe { read_versioned(p, None) }
}

/// The listen options (NULL = defaults; versioned struct rules).
///
/// # Safety
/// `o` is NULL or points to `struct_size` readable bytes.
unsafe fn read_listen_options(
    o: *const reactor_listen_options_t,
) -> Result<reactor_listen_options_t> {
    // SAFETY: the caller's contract.
    unsafe { read_versioned(o, Some(listen::default_options)) }
}

/// Listens on TCP `port` (0 = a free one) of `interface`: NULL or "" = all IPv4 addresses, an IP
/// literal ("::" makes an IPv6 port). The socket listens when the call returns; `SO_REUSEADDR` is
/// set. Accepted connections call `build(port, peer, ud, &conn_ud, &conn_release)` (NULL: the
/// connection's ud is `ud`), then `proto->connection_made` on a later pass. `release(ud)` runs on
/// a later pass after the port stops (`reactor_port_stop_listening`, shutdown) or in `reactor_free`.
/// `out` may be NULL: no handle, and the port lives until shutdown or `reactor_free`.
/// Errors: NULL `proto`, bad struct sizes → `REACTOR_E_INVALID`; `interface` not an IP
/// literal → `REACTOR_E_INVALID_ADDRESS`; port in use → `REACTOR_E_ADDRESS_IN_USE`; other bind errors
/// → `REACTOR_E_OS(errno)`. On error `ud` stays the caller's.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `interface` is NULL or NUL-terminated; `opts` and `proto` are NULL or readable versioned structs;
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn reactor_listen_tcp(
    r: *mut reactor_t,
    port: u16,
    interface: *const c_char,
    opts: *const reactor_listen_options_t,
    proto: *const reactor_protocol_t,
    build: reactor_build_protocol_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
    out: *mut *mut reactor_port_t,
) -> c_int {
    on_owner(r, |reactor| {
        // SAFETY: the caller's contract for each pointer.
        let protocol = unsafe { read_protocol(proto) }?;
        // SAFETY: as above.
        let options = unsafe { read_listen_options(opts) }?;
        let interface = if interface.is_null() {
            ""
        } else {
            // SAFETY: NUL-terminated (the caller's contract).
            unsafe { c_text(interface) }.map_err(|_| Error::InvalidAddress)?
        };
        let fd = listen::tcp_socket(port, interface, &options)?;
        open_port(reactor, fd, None, protocol, build, ud, release, out)
    })
}

/// Listens on a UNIX socket: `path` is a filesystem path (created with `opts->mode`, unlinked when
/// the port stops; an existing path → `REACTOR_E_ADDRESS_IN_USE`, never unlinked) or "@name", a Linux
/// abstract name. A path longer than `sun_path` → `REACTOR_E_INVALID_ADDRESS`. Otherwise as
/// `reactor_listen_tcp`.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `opts` and `proto` are NULL or readable versioned structs; `out`
/// is NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn reactor_listen_unix(
    r: *mut reactor_t,
    path: *const c_char,
    opts: *const reactor_listen_options_t,
    proto: *const reactor_protocol_t,
    build: reactor_build_protocol_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
    out: *mut *mut reactor_port_t,
) -> c_int {
    on_owner(r, |reactor| {
        // SAFETY: the caller's contract for each pointer.
        let protocol = unsafe { read_protocol(proto) }?;
        // SAFETY: as above.
        let options = unsafe { read_listen_options(opts) }?;
        // SAFETY: as above.
        let path = unsafe { c_text(path) }?;
        let (fd, unlink) = listen::unix_socket(path, &options)?;
        open_port(reactor, fd, unlink, protocol, build, ud, release, out)
    })
}

#[allow(clippy::too_many_arguments)]
fn open_port(
    reactor: &Reactor,
    fd: std::os::fd::OwnedFd,
    unlink: Option<Vec<u8>>,
    protocol: reactor_protocol_t,
    build: reactor_build_protocol_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
    out: *mut *mut reactor_port_t,
) -> Result<()> {
    reactor.reserve_spare_fd();
    let spec = PortSpec {
        protocol: Rc::new(protocol),
        build,
    };
    let port = Port::open(reactor, fd, spec, unlink, || UserData::new(ud, release))?;
    // SAFETY: `out` is non-NULL and writable (checked by the caller, the caller's contract).
    unsafe { super::write_out(out, port) };
    Ok(())
}

/// Runs `body` on a live port, on its reactor's thread.
fn on_port<T>(
    p: *const reactor_port_t,
    body: impl FnOnce(&Reactor, &Rc<Port>) -> Result<T>,
) -> Result<T> {
    let r = crate::net::port_reactor(p.cast()).ok_or(Error::Invalid)? as *const reactor_t;
    owner_result(r, |reactor| {
        let port = reactor
            .net
            .borrow()
            .port(p as usize)
            .ok_or(Error::Invalid)?;
        body(reactor, &port)
    })
}

/// Runs `body` on a live transport, on its reactor's thread.
fn on_transport<T>(
    t: *const reactor_transport_t,
    body: impl FnOnce(&Reactor, &Rc<Transport>) -> Result<T>,
) -> Result<T> {
    let r = crate::net::transport_reactor(t.cast()).ok_or(Error::Invalid)? as *const reactor_t;
    owner_result(r, |reactor| {
        let transport = reactor
            .net
            .borrow()
            .transport(t as usize)
            .ok_or(Error::Invalid)?;
        body(reactor, &transport)
    })
}

/// The address the port listens on (numeric; the real port when it was 0).
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_port_get_host(
    p: *const reactor_port_t,
    out: *mut reactor_address_t,
) -> c_int {
    to_status(on_port(p, |_, port| {
        if out.is_null() {
            return Err(Error::Invalid);
        }
        let host = port.host()?;
        // SAFETY: non-NULL and writable (the caller's contract).
        unsafe { super::write_out(out, host) };
        Ok(())
    }))
}

/// Stops listening: the socket is closed before this returns (the port can be bound again at once; a
/// UNIX path is unlinked) and the handle is dead; the port's release runs on a later pass. Connections
/// already accepted go on. A second call → `REACTOR_E_INVALID`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_port_stop_listening(p: *mut reactor_port_t) -> c_int {
    to_status(on_port(p, |reactor, port| {
        port.stop(reactor, false);
        Ok(())
    }))
}

/// Stops accepting (pending peers wait in the backlog).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_port_pause_accepting(p: *mut reactor_port_t) -> c_int {
    to_status(on_port(p, |reactor, port| {
        port.set_accepting(reactor, false)
    }))
}

/// Accepts again after `reactor_port_pause_accepting`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_port_resume_accepting(p: *mut reactor_port_t) -> c_int {
    to_status(on_port(p, |reactor, port| {
        port.set_accepting(reactor, true)
    }))
}

/// The listening socket's fd; -1 for a bad handle (or a foreign thread).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_port_fileno(p: *const reactor_port_t) -> c_int {
    guarded_value(-1, || on_port(p, |_, port| Ok(port.fileno())).unwrap_or(-1))
}

/// Queues `len` bytes (copied) to send in order. Never blocks and never reports a socket error (an
/// error ends the connection with `connection_lost`). `len` 0 → OK; NULL `data` with `len` > 0 →
/// `REACTOR_E_INVALID`; after `lose_connection`, `lose_write_connection` or the end of the connection
/// → `REACTOR_E_CLOSED` (nothing sent).
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `data` is NULL or points to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_transport_write(
    t: *mut reactor_transport_t,
    data: *const c_void,
    len: usize,
) -> c_int {
    to_status(on_transport(t, |reactor, transport| {
        // SAFETY: the caller's contract.
        let bytes = unsafe { super::host_bytes(data, len) }?;
        transport.write(reactor, &[bytes])
    }))
}

/// `reactor_transport_write` of several buffers in order (Twisted's writeSequence; each is copied,
/// nothing is joined for the caller). `iovcnt` < 0, NULL `iov` with `iovcnt` > 0, or an entry with a
/// NULL base and a length → `REACTOR_E_INVALID`.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `iov` is NULL or points to `iovcnt` readable `struct iovec`s whose buffers are readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_transport_writev(
    t: *mut reactor_transport_t,
    iov: *const libc::iovec,
    iovcnt: c_int,
) -> c_int {
    to_status(on_transport(t, |reactor, transport| {
        // SAFETY: the caller's contract.
        let parts = unsafe { super::iovec_slices(iov, iovcnt) }?;
        transport.write(reactor, &parts)
    }))
}

/// Twisted's loseConnection: reading stops at once, buffered bytes are flushed, then the socket is
/// closed and `connection_lost(REACTOR_OK)` runs (never inside this call). Again: `REACTOR_OK`, nothing.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_transport_lose_connection(t: *mut reactor_transport_t) -> c_int {
    to_status(on_transport(t, |reactor, transport| {
        transport.lose_connection(reactor)
    }))
}

/// Twisted's abortConnection: buffered bytes are discarded, the peer gets a reset, and
/// `connection_lost(REACTOR_E_CONNECTION_ABORTED)` runs on a later pass. Idempotent; after
/// `lose_connection` it still aborts.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_transport_abort_connection(t: *mut reactor_transport_t) -> c_int {
    to_status(on_transport(t, |reactor, transport| {
        transport.abort_connection(reactor)
    }))
}

/// Half-close: after the buffer drains, `shutdown(SHUT_WR)`, then `write_connection_lost` (later
/// pass); reading goes on. When the read side is closed too, the connection ends with
/// `connection_lost(REACTOR_OK)`. Already closing → `REACTOR_E_CLOSED`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_transport_lose_write_connection(t: *mut reactor_transport_t) -> c_int {
    to_status(on_transport(t, |reactor, transport| {
        transport.lose_write_connection(reactor)
    }))
}

/// Stops `data_received` before it returns (until `reactor_transport_resume_reading`); a FIN or error
/// that arrives meanwhile is delivered after the resume.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_transport_pause_reading(t: *mut reactor_transport_t) -> c_int {
    to_status(on_transport(t, |reactor, transport| {
        transport.pause_reading(reactor)
    }))
}

/// Reads again after `reactor_transport_pause_reading` (nothing on a closing transport).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_transport_resume_reading(t: *mut reactor_transport_t) -> c_int {
    to_status(on_transport(t, |reactor, transport| {
        transport.resume_reading(reactor)
    }))
}

/// Sets the write buffer's high and low water marks (defaults 65536 and 0), for producers.
/// `low` > `high` → `REACTOR_E_INVALID`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_transport_set_write_buffer_limits(
    t: *mut reactor_transport_t,
    high: usize,
    low: usize,
) -> c_int {
    to_status(on_transport(t, |_, transport| {
        transport.set_write_buffer_limits(high, low)
    }))
}

/// Bytes written but not yet taken by the socket.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_transport_get_write_buffer_size(
    t: *const reactor_transport_t,
    out: *mut usize,
) -> c_int {
    to_status(on_transport(t, |_, transport| {
        if out.is_null() {
            return Err(Error::Invalid);
        }
        // SAFETY: non-NULL and writable (the caller's contract).
        unsafe { super::write_out(out, transport.write_buffer_size()) };
        Ok(())
    }))
}

/// Writes an address the transport reports into `out` (NULL → `REACTOR_E_INVALID`).
///
/// # Safety
/// `out` is NULL or writable.
unsafe fn address_out(
    t: *const reactor_transport_t,
    out: *mut reactor_address_t,
    peer: bool,
) -> c_int {
    to_status(on_transport(t, |_, transport| {
        if out.is_null() {
            return Err(Error::Invalid);
        }
        let addr = if peer {
            transport.peer()
        } else {
            transport.host()
        }?;
        // SAFETY: non-NULL and writable (the caller's contract).
        unsafe { super::write_out(out, addr) };
        Ok(())
    }))
}

/// The local address of the connection (numeric).
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_transport_get_host(
    t: *const reactor_transport_t,
    out: *mut reactor_address_t,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { address_out(t, out, false) }
}

/// The peer's address (numeric; "" for an unnamed UNIX peer).
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_transport_get_peer(
    t: *const reactor_transport_t,
    out: *mut reactor_address_t,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { address_out(t, out, true) }
}

/// Sets a TCP option of a transport (a UNIX transport → `REACTOR_E_UNSUPPORTED`).
fn set_tcp_option(t: *mut reactor_transport_t, option: TcpOption, on: c_int) -> c_int {
    to_status(on_transport(t, |_, transport| {
        transport.set_tcp_option(option, on != 0)
    }))
}

/// Reads a TCP option of a transport into `out` (1 or 0; NULL → `REACTOR_E_INVALID`).
///
/// # Safety
/// `out` is NULL or writable.
unsafe fn get_tcp_option(
    t: *const reactor_transport_t,
    option: TcpOption,
    out: *mut c_int,
) -> c_int {
    to_status(on_transport(t, |_, transport| {
        if out.is_null() {
            return Err(Error::Invalid);
        }
        let on = transport.tcp_option(option)?;
        // SAFETY: non-NULL and writable (the caller's contract).
        unsafe { super::write_out(out, c_int::from(on)) };
        Ok(())
    }))
}

/// Sets TCP_NODELAY (off by default, as in Twisted). On a UNIX transport → `REACTOR_E_UNSUPPORTED`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_transport_set_tcp_nodelay(
    t: *mut reactor_transport_t,
    on: c_int,
) -> c_int {
    set_tcp_option(t, TcpOption::NoDelay, on)
}

/// Reads TCP_NODELAY into `out` (1 or 0). On a UNIX transport → `REACTOR_E_UNSUPPORTED`.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_transport_get_tcp_nodelay(
    t: *const reactor_transport_t,
    out: *mut c_int,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { get_tcp_option(t, TcpOption::NoDelay, out) }
}

/// Sets SO_KEEPALIVE. On a UNIX transport → `REACTOR_E_UNSUPPORTED`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_transport_set_tcp_keepalive(
    t: *mut reactor_transport_t,
    on: c_int,
) -> c_int {
    set_tcp_option(t, TcpOption::KeepAlive, on)
}

/// Reads SO_KEEPALIVE into `out` (1 or 0). On a UNIX transport → `REACTOR_E_UNSUPPORTED`.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_transport_get_tcp_keepalive(
    t: *const reactor_transport_t,
    out: *mut c_int,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { get_tcp_option(t, TcpOption::KeepAlive, out) }
}

/// The connection's fd; -1 for a bad handle (or a foreign thread).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_transport_fileno(t: *const reactor_transport_t) -> c_int {
    guarded_value(-1, || {
        on_transport(t, |_, transport| Ok(transport.fileno())).unwrap_or(-1)
    })
}

// ----- client connectors (API.md §6.3) ---------------------------------------------------------

use crate::net::connect::{self, ConnectSpec, Connector, Destination};

fn default_connect_options() -> reactor_connect_options_t {
    reactor_connect_options_t {
        struct_size: std::mem::size_of::<reactor_connect_options_t>() as u32,
        timeout_s: 30.0,
        bind_host: std::ptr::null(),
        bind_port: 0,
    }
}

/// Fills `o` with the defaults: timeout 30 s, no local address. NULL is ignored.
///
/// Thread-safety: any thread.
///
/// # Safety
/// `o` is NULL or points to a writable `reactor_connect_options_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_connect_options_init(o: *mut reactor_connect_options_t) {
    // SAFETY: NULL or writable (the caller's contract).
    unsafe { super::write_out(o, default_connect_options()) }
}

/// The connect options (NULL = defaults; versioned struct rules): the timeout (finite, >= 0, else
/// `REACTOR_E_INVALID`) and the TCP local address (an IP literal, else
/// `REACTOR_E_INVALID_ADDRESS`).
///
/// # Safety
/// `o` is NULL or points to `struct_size` readable bytes, its `bind_host` NULL or NUL-terminated.
unsafe fn read_connect_options(
    o: *const reactor_connect_options_t,
) -> Result<(f64, Option<std::net::SocketAddr>)> {
    // SAFETY: the caller's contract.
    let options = unsafe { read_versioned(o, Some(default_connect_options)) }?;
    if !options.timeout_s.is_finite() || options.timeout_s < 0.0 {
        return Err(Error::Invalid);
    }
    let bind = if options.bind_host.is_null() {
        (options.bind_port != 0).then(|| {
            std::net::SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, options.bind_port))
        })
    } else {
        // SAFETY: NUL-terminated (the caller's contract).
        let host = unsafe { c_text(options.bind_host) }.map_err(|_| Error::InvalidAddress)?;
        let (ip, scope) =
            crate::net::address::parse_ip_literal(host).ok_or(Error::InvalidAddress)?;
        Some(match ip {
            std::net::IpAddr::V4(v4) => std::net::SocketAddr::from((v4, options.bind_port)),
            std::net::IpAddr::V6(v6) => std::net::SocketAddr::V6(std::net::SocketAddrV6::new(
                v6,
                options.bind_port,
                0,
                scope,
            )),
        })
    };
    Ok((options.timeout_s, bind))
}

#[allow(clippy::too_many_arguments)]
fn start_connector(
    reactor: &Reactor,
    destination: Destination,
    timeout: f64,
    bind: Option<std::net::SocketAddr>,
    protocol: reactor_protocol_t,
    ud: *mut c_void,
    release: reactor_release_fn,
    out: *mut *mut reactor_connector_t,
) -> Result<()> {
    let spec = ConnectSpec {
        destination,
        timeout,
        bind,
        protocol: Rc::new(protocol),
    };
    let handle = Connector::start(reactor, spec, !out.is_null(), || UserData::new(ud, release))?;
    // SAFETY: NULL or writable (the caller's contract).
    unsafe { super::write_out(out, handle) };
    Ok(())
}

/// Connects to `host` (an IP literal or a name, resolved on the thread pool) and `port` over TCP,
/// trying the addresses in order within `opts->timeout_s`. Never calls back inside the call:
/// `connection_made` (success) or `connection_failed` (`REACTOR_E_CONNECTION_REFUSED`,
/// `REACTOR_E_TIMEOUT`, `REACTOR_E_DNS`, `REACTOR_E_CANCELLED`, `REACTOR_E_OS(errno)`) comes on a
/// later pass. The connector owns `ud`: `release(ud)` runs once no attempt or connection is in
/// progress and the host holds no connector handle (`out` NULL: none; else until
/// `reactor_connector_release`). Errors: NULL `host` or `proto`, bad struct sizes →
/// `REACTOR_E_INVALID`; port 0 or a bad `bind_host` → `REACTOR_E_INVALID_ADDRESS`; after a run that
/// ended with stop → `REACTOR_E_CLOSED`. On error `ud` stays the caller's.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `host` is NULL or NUL-terminated; `opts` and `proto` are NULL or readable versioned structs;
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn reactor_connect_tcp(
    r: *mut reactor_t,
    host: *const c_char,
    port: u16,
    opts: *const reactor_connect_options_t,
    proto: *const reactor_protocol_t,
    ud: *mut c_void,
    release: reactor_release_fn,
    out: *mut *mut reactor_connector_t,
) -> c_int {
    on_owner(r, |reactor| {
        // SAFETY: the caller's contract for each pointer.
        let host = unsafe { c_text(host) }?;
        // SAFETY: as above.
        let protocol = unsafe { read_protocol(proto) }?;
        // SAFETY: as above.
        let (timeout, bind) = unsafe { read_connect_options(opts) }?;
        if host.is_empty() || port == 0 {
            return Err(Error::InvalidAddress);
        }
        let destination = Destination::Tcp {
            host: host.to_string(),
            port,
        };
        start_connector(
            reactor,
            destination,
            timeout,
            bind,
            protocol,
            ud,
            release,
            out,
        )
    })
}

/// Connects to the UNIX socket `path` ("@name": a Linux abstract name); otherwise as
/// `reactor_connect_tcp` (a path longer than `sun_path` → `REACTOR_E_INVALID_ADDRESS`; a missing
/// socket fails with `REACTOR_E_OS(ENOENT)` or `REACTOR_E_CONNECTION_REFUSED` on a later pass).
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `opts` and `proto` are NULL or readable versioned structs; `out`
/// is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_connect_unix(
    r: *mut reactor_t,
    path: *const c_char,
    opts: *const reactor_connect_options_t,
    proto: *const reactor_protocol_t,
    ud: *mut c_void,
    release: reactor_release_fn,
    out: *mut *mut reactor_connector_t,
) -> c_int {
    on_owner(r, |reactor| {
        // SAFETY: the caller's contract for each pointer.
        let path = unsafe { c_text(path) }?;
        // SAFETY: as above.
        let protocol = unsafe { read_protocol(proto) }?;
        // SAFETY: as above.
        let (timeout, _) = unsafe { read_connect_options(opts) }?;
        crate::net::address::unix_sock_addr(path)?;
        let destination = Destination::Unix {
            path: path.to_string(),
        };
        start_connector(
            reactor,
            destination,
            timeout,
            None,
            protocol,
            ud,
            release,
            out,
        )
    })
}

/// Runs `body` on a connector the host holds, on its reactor's thread.
fn on_connector<T>(
    c: *const reactor_connector_t,
    body: impl FnOnce(&Reactor, &Rc<Connector>) -> Result<T>,
) -> Result<T> {
    let (r, id) = connect::lookup(c.cast()).ok_or(Error::Invalid)?;
    owner_result(r as *const reactor_t, |reactor| {
        let connector = reactor.net.borrow().connector(id).ok_or(Error::Invalid)?;
        body(reactor, &connector)
    })
}

/// `REACTOR_CONNECTOR_DISCONNECTED`, `_CONNECTING` or `_CONNECTED`, or a status (bad handle, wrong
/// thread).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_connector_state(c: *const reactor_connector_t) -> c_int {
    guarded_value(Error::Internal.code(), || {
        on_connector(c, |_, connector| Ok(connector.state())).unwrap_or_else(|e| e.code())
    })
}

/// Stops an attempt in progress: `connection_failed(REACTOR_E_CANCELLED)` on a later pass. No attempt
/// in progress → `REACTOR_E_ALREADY_CALLED`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_connector_stop_connecting(c: *mut reactor_connector_t) -> c_int {
    to_status(on_connector(c, |reactor, connector| {
        connector.stop_connecting(reactor)
    }))
}

/// Stops a connecting attempt or loses the connection (`lose_connection`); idle: nothing.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_connector_disconnect(c: *mut reactor_connector_t) -> c_int {
    to_status(on_connector(c, |reactor, connector| {
        connector.disconnect(reactor)
    }))
}

/// Starts a new attempt with the same destination, options, protocol and `ud`, once the previous
/// one has ended (also from inside `connection_failed` / `connection_lost`: that is how a host
/// reconnects). An attempt or connection in progress → `REACTOR_E_BUSY`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_connector_connect(c: *mut reactor_connector_t) -> c_int {
    to_status(on_connector(c, |reactor, connector| {
        connector.connect_again(reactor)
    }))
}

/// The destination as it was given (a name stays a name; for TCP the family says whether the host
/// text has a ':') and its port.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_connector_get_destination(
    c: *const reactor_connector_t,
    out: *mut reactor_address_t,
) -> c_int {
    to_status(on_connector(c, |_, connector| {
        if out.is_null() {
            return Err(Error::Invalid);
        }
        // SAFETY: non-NULL and writable (the caller's contract).
        unsafe { super::write_out(out, connector.destination()) };
        Ok(())
    }))
}

/// Gives up the host's connector handle (not usable afterwards); the attempt or connection goes on.
/// The connector's release runs once nothing is in progress: inside this call on the reactor thread,
/// on a later pass when called from another thread. NULL and stale handles are ignored.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_connector_release(c: *mut reactor_connector_t) {
    guarded_value((), || connect::release_handle(c.cast()))
}

// ----- producers, zero-copy writes, adopted sockets (API.md §6.3, §6.4) -----------------------

/// Sends the caller's buffer without copying it; `release(ud)` runs once the library no longer needs
/// it (sent, or the connection ended), on a later pass or event, never inside this call. `len` 0 →
/// OK (released on the next pass). NULL `data` with `len` > 0 → `REACTOR_E_INVALID`; after
/// `lose_connection`, `lose_write_connection` or the end → `REACTOR_E_CLOSED`, and the buffer stays
/// the caller's (no release).
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `data` points to `len` readable bytes that stay valid and unchanged until `release(ud)` runs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_transport_write_zerocopy(
    t: *mut reactor_transport_t,
    data: *const c_void,
    len: usize,
    release: reactor_release_fn,
    ud: *mut c_void,
) -> c_int {
    to_status(on_transport(t, |reactor, transport| {
        if data.is_null() && len > 0 {
            return Err(Error::Invalid);
        }
        let ptr = if len == 0 {
            std::ptr::NonNull::<u8>::dangling().as_ptr().cast_const()
        } else {
            data.cast::<u8>()
        };
        // SAFETY: the caller's contract (readable and stable until the release runs).
        unsafe { transport.write_zerocopy(reactor, ptr, len, || UserData::new(ud, release)) }
    }))
}

/// Registers a producer (IConsumer). `streaming` 1 (push): `pause_producing` once the buffered bytes
/// go above the high mark (possibly inside a write), `resume_producing` when they fall to the low
/// mark. `streaming` 0 (pull): `resume_producing` on a later pass and each time the buffer drains to
/// the low mark; never paused. At the end of the connection: `stop_producing`, then `release(ud)`
/// (before `connection_lost`). A registered producer holds `lose_connection` until it is
/// unregistered. A second one → `REACTOR_E_BUSY`; a closing or closed transport → `REACTOR_E_CLOSED`;
/// NULL `p` or a bad struct size → `REACTOR_E_INVALID` (`ud` stays the caller's on error).
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `p` is NULL or points to `struct_size` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_transport_register_producer(
    t: *mut reactor_transport_t,
    p: *const reactor_producer_t,
    streaming: c_int,
    ud: *mut c_void,
    release: reactor_release_fn,
) -> c_int {
    to_status(on_transport(t, |reactor, transport| {
        // SAFETY: the caller's contract.
        let callbacks = unsafe { read_versioned(p, None) }?;
        transport.register_producer(reactor, callbacks, streaming != 0, || {
            UserData::new(ud, release)
        })
    }))
}

/// Unregisters the producer (its release runs after the current callback); a `lose_connection` that
/// waited for it goes on. None registered → `REACTOR_E_NOT_FOUND`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_transport_unregister_producer(t: *mut reactor_transport_t) -> c_int {
    to_status(on_transport(t, |reactor, transport| {
        transport.unregister_producer(reactor)
    }))
}

/// A duplicate (close-on-exec, non-blocking) of the host's socket `fd`, which must be a stream socket
/// of family INET, INET6 or UNIX (`listening` says which state it must be in); else
/// `REACTOR_E_UNSUPPORTED` (`REACTOR_E_INVALID` for a negative or closed fd).
fn adopt_fd(fd: c_int, listening: bool) -> Result<std::os::fd::OwnedFd> {
    if fd < 0 {
        return Err(Error::Invalid);
    }
    let domain = crate::net::sys::socket_domain(fd).map_err(|e| match e {
        libc::EBADF => Error::Invalid,
        _ => Error::Unsupported,
    })?;
    if !matches!(domain, libc::AF_INET | libc::AF_INET6 | libc::AF_UNIX) {
        return Err(Error::Unsupported);
    }
    let stream = crate::net::sys::get_int_option(fd, libc::SOL_SOCKET, libc::SO_TYPE)
        .map_err(|_| Error::Unsupported)?;
    let accepting = crate::net::sys::get_int_option(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN)
        .map_err(|_| Error::Unsupported)?;
    if stream != libc::SOCK_STREAM || (accepting != 0) != listening {
        return Err(Error::Unsupported);
    }
    crate::net::sys::duplicate_nonblocking(fd).map_err(Error::Os)
}

/// Makes a port of the host's listening socket `fd` (a stream socket of family INET, INET6 or UNIX,
/// listening; else `REACTOR_E_UNSUPPORTED`). The library duplicates the fd, so the caller keeps (and
/// may close) its own; stopping the port closes the library's copy without `shutdown()`, so other
/// holders keep working. Otherwise as `reactor_listen_tcp`.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `proto` is NULL or a readable versioned struct; `out` is NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn reactor_adopt_stream_port(
    r: *mut reactor_t,
    fd: c_int,
    proto: *const reactor_protocol_t,
    build: reactor_build_protocol_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
    out: *mut *mut reactor_port_t,
) -> c_int {
    on_owner(r, |reactor| {
        // SAFETY: the caller's contract.
        let protocol = unsafe { read_protocol(proto) }?;
        let copy = adopt_fd(fd, true)?;
        open_port(reactor, copy, None, protocol, build, ud, release, out)
    })
}

/// Makes a transport of the host's connected socket `fd` (a stream socket of family INET, INET6 or
/// UNIX; else `REACTOR_E_UNSUPPORTED`); the library duplicates the fd. `connection_made` comes on a
/// later pass; `release(ud)` after `connection_lost`. `out` may be NULL.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `proto` is NULL or a readable versioned struct; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_adopt_stream_connection(
    r: *mut reactor_t,
    fd: c_int,
    proto: *const reactor_protocol_t,
    ud: *mut c_void,
    release: reactor_release_fn,
    out: *mut *mut reactor_transport_t,
) -> c_int {
    on_owner(r, |reactor| {
        // SAFETY: the caller's contract.
        let protocol = unsafe { read_protocol(proto) }?;
        let copy = adopt_fd(fd, false)?;
        let socket = crate::net::stream::Socket {
            unix: crate::net::sys::socket_domain(crate::net::sys::raw(&copy)) == Ok(libc::AF_UNIX),
            fd: copy,
            registered: None,
        };
        let data = || UserData::new(ud, release);
        match Transport::open(reactor, socket, Rc::new(protocol), data, None) {
            Ok(handle) => {
                // SAFETY: NULL or writable (the caller's contract).
                unsafe { super::write_out(out, handle as *mut reactor_transport_t) };
                Ok(())
            }
            Err(e) => Err(e),
        }
    })
}

/// UNIX transports (IUNIXTransport): queues a duplicate of `fd` to go with the next written bytes (at
/// least one byte must follow each fd; order is kept). The caller keeps its own `fd`. On a TCP
/// transport → `REACTOR_E_UNSUPPORTED`; a bad `fd` → `REACTOR_E_INVALID`; closing or closed →
/// `REACTOR_E_CLOSED`. The receiver gets each fd through `file_descriptor_received` before the bytes
/// it came with (without that callback the library closes it).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_transport_send_file_descriptor(
    t: *mut reactor_transport_t,
    fd: c_int,
) -> c_int {
    to_status(on_transport(t, |_, transport| {
        if fd < 0 {
            return Err(Error::Invalid);
        }
        transport.send_file_descriptor(fd)
    }))
}
