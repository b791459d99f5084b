//! IReactorFDSet at the C boundary.

use super::{check_list_args, on_owner, write_list};
use crate::callback::UserData;
use crate::reactor::{Direction, FdHandler};
use crate::status::Error;
use crate::types::*;
use std::os::raw::{c_int, c_void};

fn add(
    r: *mut reactor_t,
    fd: c_int,
    direction: Direction,
    func: reactor_fd_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
) -> c_int {
    on_owner(r, |reactor| {
        if fd < 0 {
            return Err(Error::Invalid);
        }
        let func = func.ok_or(Error::Invalid)?;
        reactor.add_fd_handler(
            fd,
            direction,
            FdHandler {
                func,
                data: UserData::new(ud, release),
            },
        )
    })
}

/// Calls `fn(r, fd, events, ud)` whenever `fd` is readable (events: `REACTOR_READABLE`, plus
/// `REACTOR_HANGUP`/`REACTOR_ERROR`). Replaces (and releases) an existing reader of `fd`. A negative or
/// internal fd gives `REACTOR_E_INVALID`; an fd that is not open, an OS status.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_add_reader(
    r: *mut reactor_t,
    fd: c_int,
    cb: reactor_fd_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
) -> c_int {
    add(r, fd, Direction::Read, cb, ud, release)
}

/// Like `reactor_add_reader`, for writability (`REACTOR_WRITABLE`).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_add_writer(
    r: *mut reactor_t,
    fd: c_int,
    cb: reactor_fd_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
) -> c_int {
    add(r, fd, Direction::Write, cb, ud, release)
}

/// Removes the reader of `fd` (its release runs). Not registered: `REACTOR_E_NOT_FOUND`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_remove_reader(r: *mut reactor_t, fd: c_int) -> c_int {
    on_owner(r, |reactor| reactor.remove_fd_handler(fd, Direction::Read))
}

/// Removes the writer of `fd` (its release runs). Not registered: `REACTOR_E_NOT_FOUND`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_remove_writer(r: *mut reactor_t, fd: c_int) -> c_int {
    on_owner(r, |reactor| reactor.remove_fd_handler(fd, Direction::Write))
}

/// Removes every reader and writer (their releases run); writes up to `cap` of the fds (each once,
/// ascending) to `out_fds` and their total to `out_count` (required; `out_fds` may be NULL if `cap` is 0).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_remove_all(
    r: *mut reactor_t,
    out_fds: *mut c_int,
    cap: usize,
    out_count: *mut usize,
) -> c_int {
    on_owner(r, |reactor| {
        check_list_args(out_fds, cap, out_count)?;
        let fds = reactor.remove_all_fds();
        // SAFETY: the caller's array has room for `cap` ints; `out_count` is non-NULL (checked).
        unsafe { write_list(&fds, out_fds, cap, out_count) };
        Ok(())
    })
}

/// # Safety
/// `out_fds` has room for `cap` ints (or is NULL with `cap` 0); `out_count` is NULL or writable.
unsafe fn list_fds(
    r: *const reactor_t,
    direction: Direction,
    out_fds: *mut c_int,
    cap: usize,
    out_count: *mut usize,
) -> c_int {
    on_owner(r, |reactor| {
        check_list_args(out_fds, cap, out_count)?;
        let fds = reactor.fds_with(direction);
        // SAFETY: forwarded caller contract; `out_count` is non-NULL (checked).
        unsafe { write_list(&fds, out_fds, cap, out_count) };
        Ok(())
    })
}

/// The fds that have a reader (ascending; internal fds are never listed): up to `cap` into `out_fds`,
/// the total into `out_count` (required).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_get_readers(
    r: *const reactor_t,
    out_fds: *mut c_int,
    cap: usize,
    out_count: *mut usize,
) -> c_int {
    // SAFETY: forwarded caller contract.
    unsafe { list_fds(r, Direction::Read, out_fds, cap, out_count) }
}

/// The fds that have a writer (ascending; internal fds are never listed): up to `cap` into `out_fds`,
/// the total into `out_count` (required).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_get_writers(
    r: *const reactor_t,
    out_fds: *mut c_int,
    cap: usize,
    out_count: *mut usize,
) -> c_int {
    // SAFETY: forwarded caller contract.
    unsafe { list_fds(r, Direction::Write, out_fds, cap, out_count) }
}
