//! Networking at the C boundary (API.md §6): addresses and name resolution so far.

use super::{guarded_value, on_owner};
use crate::callback::UserData;
use crate::net::address;
use crate::status::{Error, Result, reactor_status_t::REACTOR_OK};
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

/// A C string argument as UTF-8 text: NULL or not UTF-8 → `REACTOR_E_INVALID`.
///
/// # Safety
/// `text` is NULL or a NUL-terminated string that outlives the returned slice.
unsafe fn c_text<'a>(text: *const c_char) -> Result<&'a str> {
    if text.is_null() {
        return Err(Error::Invalid);
    }
    // SAFETY: non-NULL and NUL-terminated (the caller's contract).
    unsafe { CStr::from_ptr(text) }
        .to_str()
        .map_err(|_| Error::Invalid)
}
