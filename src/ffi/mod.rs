//! The C boundary: every `extern "C"` function of `reactor.h`, and nothing else.
//!
//! One shape for every export: its body is a single call to one of the boundary helpers below, which
//! do, in this order, the handle lookup (generation-checked: stale or made-up handles give
//! `REACTOR_E_INVALID`), the ownership claim or pin (`REACTOR_E_WRONG_THREAD` from a foreign thread,
//! before any argument is looked at), the poison check (`REACTOR_E_INTERNAL`), then the body under
//! `catch_unwind` (a Rust panic never crosses into C: it poisons the reactor and returns
//! `REACTOR_E_INTERNAL`), and the status mapping. Bodies check their arguments before they take
//! ownership of user data (`UserData::new` comes last), so an error leaves the data with the host.
//!
//! Which exports are `unsafe extern "C"`: exactly those that read or write through a raw pointer
//! argument other than a handle (out-parameters, option structs, strings, arrays) — pointers only the
//! caller can vouch for. Handles are checked by the tables and never dereferenced, so functions taking
//! only handles and values are safe `extern "C"`.

mod core;
mod events;
mod fd;
mod net;
mod pool;
mod process;
mod signals;
mod threads;
mod time;
mod udp;

use crate::reactor::entry::{self, Claimed};
use crate::reactor::{FaultPoint, Reactor, ReactorEntry};
use crate::status::{Error, Result, to_status};
use crate::types::{REACTOR_LOG_ERROR, reactor_t};
use std::os::raw::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A function without a reactor: panic guard and status mapping.
fn guarded(body: impl FnOnce() -> Result<()>) -> c_int {
    catch_unwind(AssertUnwindSafe(body))
        .map(to_status)
        .unwrap_or(Error::Internal.code())
}

/// A function without a reactor that returns a value: `neutral` if it panics.
fn guarded_value<T>(neutral: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(neutral)
}

/// Runs `body` under a claim on a non-poisoned reactor; a panic poisons it. Between
/// `reactor_before_daemonize` and `reactor_after_daemonize` every call is refused with
/// `REACTOR_E_BUSY` (except `after_daemonize`, see `claimed_daemonizing`).
fn claimed<T>(claim: &Claimed<'_>, body: impl FnOnce(&Claimed<'_>) -> Result<T>) -> Result<T> {
    if claim.shared.is_daemonizing() {
        return Err(Error::Busy);
    }
    claimed_daemonizing(claim, body)
}

/// `claimed` without the daemonize check (for `reactor_after_daemonize`).
fn claimed_daemonizing<T>(
    claim: &Claimed<'_>,
    body: impl FnOnce(&Claimed<'_>) -> Result<T>,
) -> Result<T> {
    if claim.shared.is_poisoned() {
        return Err(Error::Internal);
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        entry::reactor(claim).fault(FaultPoint::InCall);
        body(claim)
    }));
    outcome.unwrap_or_else(|panic| {
        claim.shared.poison();
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        entry::reactor(claim).log(
            REACTOR_LOG_ERROR,
            &format!("internal error, the reactor is poisoned: {what}"),
        );
        Err(Error::Internal)
    })
}

/// A reactor-thread function: claim (WRONG_THREAD from other threads), poison check, panic guard.
fn on_owner(r: *const reactor_t, body: impl FnOnce(&Reactor) -> Result<()>) -> c_int {
    to_status(owner_result(r, body))
}

/// Like `on_owner`, for bodies that produce a value (used by other boundary helpers).
fn owner_result<T>(r: *const reactor_t, body: impl FnOnce(&Reactor) -> Result<T>) -> Result<T> {
    let claim = entry::claim(r, false)?;
    claimed(&claim, |claim| body(entry::reactor(claim)))
}

/// `reactor_run`: like `on_owner`, but a foreign thread takes the reactor over if it is idle.
fn on_owner_adopting(r: *const reactor_t, body: impl FnOnce(&Claimed<'_>) -> Result<()>) -> c_int {
    let result = entry::claim(r, true).and_then(|claim| claimed(&claim, body));
    to_status(result)
}

/// A reactor-thread getter that cannot return a status: `neutral` for bad handles, foreign threads,
/// poisoned reactors and panics.
fn read_owner<T>(r: *const reactor_t, neutral: T, body: impl FnOnce(&Reactor) -> T) -> T {
    owner_result(r, |reactor| Ok(body(reactor))).unwrap_or(neutral)
}

/// An any-thread function on a reactor: pinned (so `reactor_free` waits or refuses), poison check,
/// panic guard. With `open`, a reactor whose run ended with stop gives `REACTOR_E_CLOSED`.
fn on_any_thread(
    r: *const reactor_t,
    open: bool,
    body: impl FnOnce(&ReactorEntry) -> Result<()>,
) -> c_int {
    let result = if open {
        entry::pin_open(r)
    } else {
        entry::pin(r)
    }
    .and_then(|entry| {
        if entry.shared.is_poisoned() {
            return Err(Error::Internal);
        }
        catch_unwind(AssertUnwindSafe(|| body(&entry))).unwrap_or_else(|_| {
            entry.shared.poison();
            Err(Error::Internal)
        })
    });
    to_status(result)
}

/// Writes `value` through `out` if it is not NULL.
///
/// # Safety
/// `out` is NULL or valid for a write of `T`.
unsafe fn write_out<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL and valid (the caller's contract).
        unsafe { out.write(value) }
    }
}

/// The host's buffer of `len` bytes (`len` 0: empty, whatever `data` is; NULL `data` with `len` > 0
/// → `REACTOR_E_INVALID`).
///
/// # Safety
/// `data` is NULL or points to `len` readable bytes that outlive the returned slice's use.
unsafe fn host_bytes<'a>(data: *const std::os::raw::c_void, len: usize) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(Error::Invalid);
    }
    // SAFETY: non-NULL and readable for `len` bytes (the caller's contract).
    Ok(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
}

/// `out_count` is required (without it a caller cannot tell a truncated list); `out` only if `cap` > 0.
fn check_list_args(out: *mut c_int, cap: usize, out_count: *mut usize) -> Result<()> {
    if (out.is_null() && cap > 0) || out_count.is_null() {
        Err(Error::Invalid)
    } else {
        Ok(())
    }
}

/// Copies `values` into the caller's array (up to `cap`) and the total into `out_count`.
///
/// # Safety
/// `out` has room for `cap` ints (or is NULL with `cap` 0); `out_count` is valid for a write.
unsafe fn write_list(values: &[c_int], out: *mut c_int, cap: usize, out_count: *mut usize) {
    if !out.is_null() {
        for (i, value) in values.iter().take(cap).enumerate() {
            // SAFETY: `out` has room for `cap` ints (the caller's contract); i < cap.
            unsafe { out.add(i).write(*value) }
        }
    }
    // SAFETY: the caller's contract.
    unsafe { write_out(out_count, values.len()) }
}

/// Largest versioned struct we accept (the kernel's extensible-struct rule caps at a page too).
const MAX_STRUCT_SIZE: usize = 4096;

/// Checks a versioned struct's `struct_size` (its first field): at least the first released size
/// (`known`), and any bytes beyond what this library knows must be zero (else `REACTOR_E_UNSUPPORTED`).
/// Input and output structs alike (API.md §7).
///
/// # Safety
/// `base` is non-NULL and points to at least `struct_size` readable bytes when that is in range.
unsafe fn check_struct_size<S>(base: *const S) -> Result<usize> {
    let known = std::mem::size_of::<S>();
    // SAFETY: struct_size (a u32) is the first field of every versioned struct.
    let size = unsafe { base.cast::<u32>().read_unaligned() } as usize;
    if size < known || size > MAX_STRUCT_SIZE {
        return Err(Error::Invalid);
    }
    // SAFETY: the caller vouches for `size` bytes.
    let tail = unsafe { std::slice::from_raw_parts(base.cast::<u8>().add(known), size - known) };
    if tail.iter().any(|&b| b != 0) {
        Err(Error::Unsupported)
    } else {
        Ok(size)
    }
}

/// The buffers of a host's `struct iovec` array, empty ones left out. `iovcnt` < 0, NULL `iov` with
/// `iovcnt` > 0, or an entry with a NULL base and a length → `REACTOR_E_INVALID`.
///
/// # Safety
/// `iov` is NULL or points to `iovcnt` readable entries whose buffers are readable for the returned
/// slices' lifetime.
unsafe fn iovec_slices<'a>(iov: *const libc::iovec, iovcnt: c_int) -> Result<Vec<&'a [u8]>> {
    let count = usize::try_from(iovcnt).map_err(|_| Error::Invalid)?;
    if count == 0 {
        return Ok(Vec::new());
    }
    if iov.is_null() {
        return Err(Error::Invalid);
    }
    // SAFETY: `iov` has `count` readable entries (the caller's contract).
    let entries = unsafe { std::slice::from_raw_parts(iov, count) };
    let mut parts = Vec::with_capacity(count);
    for entry in entries.iter().filter(|e| e.iov_len > 0) {
        if entry.iov_base.is_null() {
            return Err(Error::Invalid);
        }
        // SAFETY: each buffer is readable for its length (the caller's contract).
        parts.push(unsafe {
            std::slice::from_raw_parts(entry.iov_base.cast::<u8>(), entry.iov_len)
        });
    }
    Ok(parts)
}

/// Reads the host's versioned input struct: NULL → `default()` (or `REACTOR_E_INVALID` when there is
/// none), else `check_struct_size`'s rules, then our part of it.
///
/// # Safety
/// `p` is NULL or points to at least `struct_size` readable bytes.
unsafe fn read_versioned<S: Copy>(p: *const S, default: Option<fn() -> S>) -> Result<S> {
    if p.is_null() {
        return default.map(|make| make()).ok_or(Error::Invalid);
    }
    // SAFETY: non-NULL and readable for its struct_size (the caller's contract).
    unsafe { check_struct_size(p) }?;
    // SAFETY: at least size_of::<S>() readable bytes (checked above).
    Ok(unsafe { p.read_unaligned() })
}

/// Writes an output struct of ours (whose first field is `struct_size`) into the caller's, after
/// `check_struct_size`; the caller's `struct_size` is kept, the tail it has beyond ours stays zero.
///
/// # Safety
/// As `check_struct_size`, and the bytes are writable.
unsafe fn write_versioned<S: Copy>(out: *mut S, mut value: S, size: usize) {
    // SAFETY: struct_size is the first field; we write it back as the caller gave it.
    unsafe {
        (&mut value as *mut S)
            .cast::<u32>()
            .write_unaligned(size as u32)
    };
    // SAFETY: the caller's struct has `size` >= size_of::<S>() writable bytes.
    unsafe { out.write(value) }
}
