//! Datagram ports at the C boundary (API.md §6.6): UDP, multicast, UNIX datagram sockets.

use super::net::c_text;
use super::{guarded_value, on_owner, owner_result, read_versioned};
use crate::callback::UserData;
use crate::net::datagram::{self, DatagramPort};
use crate::net::sys::SockAddr;
use crate::reactor::Reactor;
use crate::status::{Error, Result, to_status};
use crate::types::*;
use std::ffi::CStr;
use std::os::fd::OwnedFd;
use std::os::raw::{c_char, c_int, c_void};
use std::rc::Rc;

/// Fills `p` with NULL callbacks and its `struct_size`. NULL is ignored.
///
/// Thread-safety: any thread.
///
/// # Safety
/// `p` is NULL or points to a writable `reactor_datagram_protocol_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_datagram_protocol_init(p: *mut reactor_datagram_protocol_t) {
    let value = reactor_datagram_protocol_t {
        struct_size: std::mem::size_of::<reactor_datagram_protocol_t>() as u32,
        start_protocol: None,
        datagram_received: None,
        connection_refused: None,
        stop_protocol: None,
    };
    // SAFETY: NULL or writable (the caller's contract).
    unsafe { super::write_out(p, value) }
}

/// Fills `o` with the defaults: `max_packet_size` 8192, no flags, mode 0666, no `bind_path`. NULL is
/// ignored.
///
/// Thread-safety: any thread.
///
/// # Safety
/// `o` is NULL or points to a writable `reactor_udp_options_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_udp_options_init(o: *mut reactor_udp_options_t) {
    // SAFETY: NULL or writable (the caller's contract).
    unsafe { super::write_out(o, datagram::default_options()) }
}

/// Copies the host's datagram protocol (versioned struct rules; NULL → `REACTOR_E_INVALID`).
///
/// # Safety
/// `p` is NULL or points to `struct_size` readable bytes.
unsafe fn read_protocol(
    p: *const reactor_datagram_protocol_t,
) -> Result<reactor_datagram_protocol_t> {
    // SAFETY: the caller's contract.
    unsafe { read_versioned(p, None) }
}

/// The options (NULL = defaults; versioned struct rules; values checked).
///
/// # Safety
/// `o` is NULL or points to `struct_size` readable bytes.
unsafe fn read_options(o: *const reactor_udp_options_t) -> Result<reactor_udp_options_t> {
    // SAFETY: the caller's contract.
    let options = unsafe { read_versioned(o, Some(datagram::default_options)) }?;
    datagram::check_options(&options)?;
    Ok(options)
}

/// Makes the port and hands out its handle (`out` may be NULL: the port then lives until shutdown or
/// `reactor_free`).
#[allow(clippy::too_many_arguments)]
fn open_port(
    reactor: &Reactor,
    fd: OwnedFd,
    protocol: reactor_datagram_protocol_t,
    options: &reactor_udp_options_t,
    unlink: Option<Vec<u8>>,
    connected: Option<SockAddr>,
    ud: *mut c_void,
    release: reactor_release_fn,
    out: *mut *mut reactor_udp_t,
) -> Result<()> {
    let port = DatagramPort::open(
        reactor,
        fd,
        protocol,
        options.max_packet_size,
        unlink,
        connected,
        || UserData::new(ud, release),
    )?;
    // SAFETY: NULL or writable (the caller's contract).
    unsafe { super::write_out(out, port) };
    Ok(())
}

/// Opens a UDP port on `port` (0 = a free one) of `interface`: NULL or "" = all IPv4 addresses, an IP
/// literal ("::" makes an IPv6 port, dual-stack unless `REACTOR_LISTEN_IPV6_ONLY`).
/// `REACTOR_UDP_LISTEN_MULTIPLE` lets several sockets share the port. `proto->start_protocol` runs on
/// a later pass; each datagram (cut to `opts->max_packet_size`) calls `datagram_received`.
/// `release(ud)` runs after `stop_protocol` (or in `reactor_free`). `out` may be NULL (no handle; the
/// port lives until shutdown or `reactor_free`). Errors: NULL `proto`, bad struct sizes or option
/// values → `REACTOR_E_INVALID`; `interface` not an IP literal → `REACTOR_E_INVALID_ADDRESS`; the port
/// taken → `REACTOR_E_ADDRESS_IN_USE`; other socket errors → `REACTOR_E_OS(errno)`. On error `ud`
/// stays the caller's.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `interface` is NULL or NUL-terminated; `opts` and `proto` are NULL or readable versioned structs;
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn reactor_listen_udp(
    r: *mut reactor_t,
    port: u16,
    interface: *const c_char,
    opts: *const reactor_udp_options_t,
    proto: *const reactor_datagram_protocol_t,
    ud: *mut c_void,
    release: reactor_release_fn,
    out: *mut *mut reactor_udp_t,
) -> c_int {
    on_owner(r, |reactor| {
        // SAFETY: the caller's contract for each pointer.
        let protocol = unsafe { read_protocol(proto) }?;
        // SAFETY: as above.
        let options = unsafe { read_options(opts) }?;
        let interface = if interface.is_null() {
            ""
        } else {
            // SAFETY: NUL-terminated (the caller's contract).
            unsafe { c_text(interface) }.map_err(|_| Error::InvalidAddress)?
        };
        let fd = datagram::udp_socket(port, interface, &options)?;
        open_port(
            reactor, fd, protocol, &options, None, None, ud, release, out,
        )
    })
}

/// Opens a UNIX datagram port bound to `path`: a filesystem path (created with `opts->mode`, unlinked
/// when the port ends; an existing path → `REACTOR_E_ADDRESS_IN_USE`, never unlinked) or "@name", a
/// Linux abstract name. A bad path → `REACTOR_E_INVALID_ADDRESS`. Otherwise as `reactor_listen_udp`.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `opts` and `proto` are NULL or readable versioned structs; `out`
/// is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_listen_unix_datagram(
    r: *mut reactor_t,
    path: *const c_char,
    opts: *const reactor_udp_options_t,
    proto: *const reactor_datagram_protocol_t,
    ud: *mut c_void,
    release: reactor_release_fn,
    out: *mut *mut reactor_udp_t,
) -> c_int {
    on_owner(r, |reactor| {
        // SAFETY: the caller's contract for each pointer.
        let protocol = unsafe { read_protocol(proto) }?;
        // SAFETY: as above.
        let options = unsafe { read_options(opts) }?;
        // SAFETY: as above.
        let path = unsafe { c_text(path) }?;
        let (fd, unlink) = datagram::unix_socket(path, &options)?;
        open_port(
            reactor, fd, protocol, &options, unlink, None, ud, release, out,
        )
    })
}

/// Opens a UNIX datagram port connected to `path` (Twisted's connectUNIXDatagram): bound to
/// `opts->bind_path` if set (same rules as `reactor_listen_unix_datagram`'s path), else unnamed.
/// Errors come back from this call: a path nobody listens on → `REACTOR_E_OS(ENOENT)` or
/// `REACTOR_E_CONNECTION_REFUSED`. Writes may then pass NULL as the destination. Otherwise as
/// `reactor_listen_udp`.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `opts` (with its `bind_path`) and `proto` are NULL or readable
/// versioned structs; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_connect_unix_datagram(
    r: *mut reactor_t,
    path: *const c_char,
    opts: *const reactor_udp_options_t,
    proto: *const reactor_datagram_protocol_t,
    ud: *mut c_void,
    release: reactor_release_fn,
    out: *mut *mut reactor_udp_t,
) -> c_int {
    on_owner(r, |reactor| {
        // SAFETY: the caller's contract for each pointer.
        let protocol = unsafe { read_protocol(proto) }?;
        // SAFETY: as above.
        let options = unsafe { read_options(opts) }?;
        // SAFETY: as above.
        let path = unsafe { c_text(path) }?;
        let bind_path = if options.bind_path.is_null() {
            None
        } else {
            // SAFETY: NUL-terminated (the caller's contract).
            Some(unsafe { c_text(options.bind_path) }?)
        };
        let (fd, unlink, peer) = datagram::connected_unix_socket(path, bind_path, &options)?;
        open_port(
            reactor,
            fd,
            protocol,
            &options,
            unlink,
            Some(peer),
            ud,
            release,
            out,
        )
    })
}

/// Makes a port of the host's bound INET or INET6 datagram socket `fd` (anything else →
/// `REACTOR_E_UNSUPPORTED`; a negative or closed fd → `REACTOR_E_INVALID`). The library duplicates the
/// fd (the caller keeps its own; both are non-blocking afterwards); stopping closes the library's copy
/// without `shutdown()`. Otherwise as `reactor_listen_udp`.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `opts` and `proto` are NULL or readable versioned structs; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_adopt_datagram_port(
    r: *mut reactor_t,
    fd: c_int,
    opts: *const reactor_udp_options_t,
    proto: *const reactor_datagram_protocol_t,
    ud: *mut c_void,
    release: reactor_release_fn,
    out: *mut *mut reactor_udp_t,
) -> c_int {
    on_owner(r, |reactor| {
        // SAFETY: the caller's contract for each pointer.
        let protocol = unsafe { read_protocol(proto) }?;
        // SAFETY: as above.
        let options = unsafe { read_options(opts) }?;
        let copy = datagram::adopt_socket(fd)?;
        open_port(
            reactor, copy, protocol, &options, None, None, ud, release, out,
        )
    })
}

/// Runs `body` on a live datagram port, on its reactor's thread.
fn on_port<T>(
    u: *const reactor_udp_t,
    body: impl FnOnce(&Reactor, &Rc<DatagramPort>) -> Result<T>,
) -> Result<T> {
    let r = crate::net::datagram_reactor(u.cast()).ok_or(Error::Invalid)? as *const reactor_t;
    owner_result(r, |reactor| {
        let port = reactor
            .net
            .borrow()
            .datagram(u as usize)
            .ok_or(Error::Invalid)?;
        body(reactor, &port)
    })
}

/// A destination argument: NULL `host` = none (the connected peer).
///
/// # Safety
/// `host` is NULL or NUL-terminated.
unsafe fn destination<'a>(host: *const c_char, port: u16) -> Option<(&'a CStr, u16)> {
    if host.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated (the caller's contract). Its text is checked (UTF-8,
    // else INVALID_ADDRESS) only when it differs from the port's last destination.
    Some((unsafe { CStr::from_ptr(host) }, port))
}

/// Sends one datagram of `len` bytes (0 is allowed) to `host`:`port` — an IP literal of the port's
/// family (UNIX ports: the peer's path, `port` ignored) — or, with NULL `host`, to the connected
/// peer. Errors: NULL `data` with `len` > 0 → `REACTOR_E_INVALID`; a stopped port →
/// `REACTOR_E_CLOSED`; NULL `host` on an unconnected port, a name, the other family, port 0, or a
/// destination other than the connected one → `REACTOR_E_INVALID_ADDRESS`; too long →
/// `REACTOR_E_MESSAGE_TOO_LONG`; socket buffer full → `REACTOR_E_OS(EAGAIN)` (the datagram is
/// dropped). On a connected port a refusal reported by the system returns OK and
/// `connection_refused` runs on a later pass.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `data` is NULL or points to `len` readable bytes; `host` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_udp_write(
    u: *mut reactor_udp_t,
    data: *const c_void,
    len: usize,
    host: *const c_char,
    port: u16,
) -> c_int {
    to_status(on_port(u, |reactor, udp| {
        // SAFETY: the caller's contract.
        let bytes = unsafe { super::host_bytes(data, len) }?;
        // SAFETY: the caller's contract.
        let dest = unsafe { destination(host, port) };
        udp.write(reactor, &[bytes], dest)
    }))
}

/// `reactor_udp_write` of one datagram gathered from `iovcnt` buffers. `iovcnt` < 0, NULL `iov` with
/// `iovcnt` > 0, or an entry with a NULL base and a length → `REACTOR_E_INVALID`.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `iov` is NULL or points to `iovcnt` readable `struct iovec`s whose buffers are readable; `host` is
/// NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_udp_writev(
    u: *mut reactor_udp_t,
    iov: *const libc::iovec,
    iovcnt: c_int,
    host: *const c_char,
    port: u16,
) -> c_int {
    to_status(on_port(u, |reactor, udp| {
        // SAFETY: the caller's contract.
        let mut parts = unsafe { super::iovec_slices(iov, iovcnt) }?;
        if parts.is_empty() {
            parts.push(&[]);
        }
        // SAFETY: the caller's contract.
        let dest = unsafe { destination(host, port) };
        udp.write(reactor, &parts, dest)
    }))
}

/// Connected mode (Twisted's connect): only datagrams from `host`:`port` are received, and writes may
/// pass NULL as the destination. `host` must be an IP literal of the port's family (UNIX ports: a
/// path). Errors: NULL `host` → `REACTOR_E_INVALID`; a name, the other family or port 0 →
/// `REACTOR_E_INVALID_ADDRESS`; already connected → `REACTOR_E_BUSY`; a stopped port →
/// `REACTOR_E_CLOSED`.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `host` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_udp_connect(
    u: *mut reactor_udp_t,
    host: *const c_char,
    port: u16,
) -> c_int {
    to_status(on_port(u, |_, udp| {
        if host.is_null() {
            return Err(Error::Invalid);
        }
        // SAFETY: NUL-terminated (the caller's contract).
        let host = unsafe { c_text(host) }.map_err(|_| Error::InvalidAddress)?;
        udp.connect(host, port)
    }))
}

/// Stops the port: the socket is closed (a UNIX path unlinked) before this returns and no datagram is
/// delivered any more; `stop_protocol` runs on a later pass, then the handle dies and `release(ud)`
/// runs. Until then writes → `REACTOR_E_CLOSED` and a second stop → `REACTOR_OK`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_udp_stop_listening(u: *mut reactor_udp_t) -> c_int {
    to_status(on_port(u, |reactor, udp| {
        udp.stop(reactor);
        Ok(())
    }))
}

/// Writes `value` to a non-NULL out-parameter (NULL → `REACTOR_E_INVALID`).
///
/// # Safety
/// `out` is NULL or writable.
unsafe fn put<T>(out: *mut T, value: Result<T>) -> Result<()> {
    if out.is_null() {
        return Err(Error::Invalid);
    }
    let value = value?;
    // SAFETY: non-NULL and writable (the caller's contract).
    unsafe { out.write(value) };
    Ok(())
}

/// The port's local address (numeric; the real port when it was 0; "" for an unnamed UNIX socket).
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_udp_get_host(
    u: *const reactor_udp_t,
    out: *mut reactor_address_t,
) -> c_int {
    // SAFETY: the caller's contract.
    to_status(on_port(u, |_, udp| unsafe { put(out, udp.host()) }))
}

/// Allows (`on` non-zero) or forbids sending to broadcast addresses (`SO_BROADCAST`; UDP ports only,
/// else `REACTOR_E_UNSUPPORTED`).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_udp_set_broadcast_allowed(u: *mut reactor_udp_t, on: c_int) -> c_int {
    to_status(on_port(u, |_, udp| udp.set_broadcast(on != 0)))
}

/// Whether sending to broadcast addresses is allowed (1 or 0 in `*out`).
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_udp_get_broadcast_allowed(
    u: *const reactor_udp_t,
    out: *mut c_int,
) -> c_int {
    // SAFETY: the caller's contract.
    to_status(on_port(u, |_, udp| unsafe {
        put(out, udp.broadcast().map(c_int::from))
    }))
}

/// Joins or leaves (`join`) a multicast group (shared by both FFI functions).
///
/// # Safety
/// `group` and `interface` are NULL or NUL-terminated.
unsafe fn membership(
    u: *mut reactor_udp_t,
    group: *const c_char,
    interface: *const c_char,
    join: bool,
) -> c_int {
    to_status(on_port(u, |_, udp| {
        if group.is_null() {
            return Err(Error::Invalid);
        }
        // SAFETY: NUL-terminated (the caller's contract).
        let group = unsafe { c_text(group) }.map_err(|_| Error::InvalidAddress)?;
        let interface = if interface.is_null() {
            None
        } else {
            // SAFETY: as above.
            Some(unsafe { c_text(interface) }.map_err(|_| Error::InvalidAddress)?)
        };
        udp.membership(group, interface, join)
    }))
}

/// Joins multicast `group` (an IP literal of the port's family) on `interface` (NULL = the system's
/// choice; IPv4: an interface address; IPv6: a name such as "lo", an index or an address). A bad
/// group or interface → `REACTOR_E_INVALID_ADDRESS` (NULL `group` → `REACTOR_E_INVALID`); a refused
/// join → `REACTOR_E_OS(errno)`; a UNIX port → `REACTOR_E_UNSUPPORTED`.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `group` and `interface` are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_udp_join_group(
    u: *mut reactor_udp_t,
    group: *const c_char,
    interface: *const c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { membership(u, group, interface, true) }
}

/// Leaves multicast `group` (as `reactor_udp_join_group`).
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `group` and `interface` are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_udp_leave_group(
    u: *mut reactor_udp_t,
    group: *const c_char,
    interface: *const c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { membership(u, group, interface, false) }
}

/// The multicast TTL (IPv6: hop limit), 0–255 (else `REACTOR_E_INVALID`).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_udp_set_ttl(u: *mut reactor_udp_t, ttl: c_int) -> c_int {
    to_status(on_port(u, |_, udp| udp.set_ttl(ttl)))
}

/// The multicast TTL (IPv6: hop limit).
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_udp_get_ttl(u: *const reactor_udp_t, out: *mut c_int) -> c_int {
    // SAFETY: the caller's contract.
    to_status(on_port(u, |_, udp| unsafe { put(out, udp.ttl()) }))
}

/// Whether the port's own multicast datagrams loop back to the host (`on` non-zero).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_udp_set_loopback_mode(u: *mut reactor_udp_t, on: c_int) -> c_int {
    to_status(on_port(u, |_, udp| udp.set_loopback(on != 0)))
}

/// The multicast loopback mode (1 or 0 in `*out`).
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_udp_get_loopback_mode(
    u: *const reactor_udp_t,
    out: *mut c_int,
) -> c_int {
    // SAFETY: the caller's contract.
    to_status(on_port(u, |_, udp| unsafe {
        put(out, udp.loopback().map(c_int::from))
    }))
}

/// The interface outgoing multicast datagrams leave by: IPv4 an interface address; IPv6 a name
/// ("lo"), an index ("1") or an address. A bad one → `REACTOR_E_INVALID_ADDRESS` (NULL →
/// `REACTOR_E_INVALID`).
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `interface` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_udp_set_outgoing_interface(
    u: *mut reactor_udp_t,
    interface: *const c_char,
) -> c_int {
    to_status(on_port(u, |_, udp| {
        if interface.is_null() {
            return Err(Error::Invalid);
        }
        // SAFETY: NUL-terminated (the caller's contract).
        let interface = unsafe { c_text(interface) }.map_err(|_| Error::InvalidAddress)?;
        udp.set_outgoing_interface(interface)
    }))
}

/// The outgoing multicast interface: IPv4 its address ("0.0.0.0": the system's choice); IPv6 "::"
/// with `scope_id` = the interface index (0: the system's choice).
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_udp_get_outgoing_interface(
    u: *const reactor_udp_t,
    out: *mut reactor_address_t,
) -> c_int {
    // SAFETY: the caller's contract.
    to_status(on_port(u, |_, udp| unsafe {
        put(out, udp.outgoing_interface())
    }))
}

/// The port's socket fd; -1 for a dead or stopped port, a bad handle or a foreign thread.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_udp_fileno(u: *const reactor_udp_t) -> c_int {
    guarded_value(-1, || on_port(u, |_, udp| Ok(udp.fileno())).unwrap_or(-1))
}
