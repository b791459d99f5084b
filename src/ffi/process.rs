//! Child processes at the C boundary (API.md §8.1, Twisted's IReactorProcess).

use super::{guarded_value, owner_result, read_versioned};
use crate::callback::UserData;
use crate::process::child::Process;
use crate::process::options::{self, SpawnArgs};
use crate::reactor::Reactor;
use crate::status::{Error, Result, to_status};
use crate::types::*;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::rc::Rc;

/// Fills `p` with NULL callbacks and its `struct_size`. NULL is ignored.
///
/// Thread-safety: any thread.
///
/// # Safety
/// `p` is NULL or points to a writable `reactor_process_protocol_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_process_protocol_init(p: *mut reactor_process_protocol_t) {
    let value = reactor_process_protocol_t {
        struct_size: std::mem::size_of::<reactor_process_protocol_t>() as u32,
        connection_made: None,
        child_data_received: None,
        child_connection_lost: None,
        process_exited: None,
        process_ended: None,
    };
    // SAFETY: NULL or writable (the caller's contract).
    unsafe { super::write_out(p, value) }
}

fn default_spawn_options() -> reactor_spawn_options_t {
    reactor_spawn_options_t {
        struct_size: std::mem::size_of::<reactor_spawn_options_t>() as u32,
        env: std::ptr::null(),
        inherit_env: 0,
        cwd: std::ptr::null(),
        uid: -1,
        gid: -1,
        child_fds: std::ptr::null(),
        child_fd_count: 0,
        use_pty: 0,
    }
}

/// Fills `o` with the defaults: an empty environment, the parent's directory, uid and gid
/// unchanged (-1), the default child-fd map {0: WRITE, 1: READ, 2: READ}, no pty. NULL is ignored.
///
/// Thread-safety: any thread.
///
/// # Safety
/// `o` is NULL or points to a writable `reactor_spawn_options_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_spawn_options_init(o: *mut reactor_spawn_options_t) {
    // SAFETY: NULL or writable (the caller's contract).
    unsafe { super::write_out(o, default_spawn_options()) }
}

/// Copies a NULL-terminated array of C strings (NULL → `REACTOR_E_INVALID`).
///
/// # Safety
/// `list` is NULL or a NULL-terminated array of NUL-terminated strings.
unsafe fn string_list(list: *const *const c_char) -> Result<Vec<CString>> {
    if list.is_null() {
        return Err(Error::Invalid);
    }
    let mut strings = Vec::new();
    for i in 0.. {
        // SAFETY: the array is NULL-terminated, so entries up to the terminator are readable.
        let entry = unsafe { *list.add(i) };
        if entry.is_null() {
            break;
        }
        // SAFETY: each entry is NUL-terminated (the caller's contract).
        strings.push(unsafe { CStr::from_ptr(entry) }.to_owned());
    }
    Ok(strings)
}

/// Copies the spawn arguments out of the host's memory (flags other than 0 and 1 → INVALID).
///
/// # Safety
/// As `reactor_spawn_process`.
unsafe fn spawn_args(
    executable: *const c_char,
    argv: *const *const c_char,
    o: &reactor_spawn_options_t,
) -> Result<SpawnArgs> {
    if executable.is_null() || !matches!(o.inherit_env, 0 | 1) || !matches!(o.use_pty, 0 | 1) {
        return Err(Error::Invalid);
    }
    if o.child_fds.is_null() && o.child_fd_count > 0 {
        return Err(Error::Invalid);
    }
    // SAFETY: the caller's contract for every pointer.
    unsafe {
        Ok(SpawnArgs {
            executable: CStr::from_ptr(executable).to_owned(),
            argv: string_list(argv)?,
            env: if o.env.is_null() {
                None
            } else {
                Some(string_list(o.env)?)
            },
            inherit_env: o.inherit_env == 1,
            cwd: (!o.cwd.is_null()).then(|| CStr::from_ptr(o.cwd).to_owned()),
            uid: o.uid,
            gid: o.gid,
            child_fds: (!o.child_fds.is_null())
                .then(|| std::slice::from_raw_parts(o.child_fds, o.child_fd_count).to_vec()),
            use_pty: o.use_pty == 1,
        })
    }
}

/// Spawns `executable` (Twisted's spawnProcess): without a '/', it is searched in the parent's PATH.
/// `argv` (NULL-terminated; `argv[0]` passed as given) and `opts` (NULL = defaults, see
/// `reactor_spawn_options_init`) say what the child gets; only its mapped fds are open in it, its
/// signal dispositions are the defaults and its mask is empty. `proto`'s callbacks follow:
/// `connection_made` (later pass), `child_data_received` / `child_connection_lost` per pipe,
/// `process_exited` when the child is reaped, `process_ended` once it is reaped and every pipe has
/// closed — then the handle dies and `release(ud)` runs. `out` may be NULL.
///
/// Errors: NULL `executable`, `argv` or `proto`, bad struct sizes, `env` with `inherit_env`, a
/// bad child-fd map (negative or repeated child fd, unknown kind, INHERIT of a closed fd, NULL
/// `child_fds` with a count), `child_fds` with `use_pty`, uid/gid outside -1..2^32-2 →
/// `REACTOR_E_INVALID`; a program that is missing or not executable, or a failed chdir/setuid in
/// the child → `REACTOR_E_OS(errno)` (the child is reaped before this returns); after a run that
/// ended with stop → `REACTOR_E_CLOSED`. On error nothing is called and `ud` stays the caller's.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `executable` is NULL or NUL-terminated; `argv` is NULL or a NULL-terminated array of
/// NUL-terminated strings; `opts` and `proto` are NULL or readable versioned structs whose `env`,
/// `cwd` and `child_fds` are NULL or valid as documented; `out` is NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn reactor_spawn_process(
    r: *mut reactor_t,
    executable: *const c_char,
    argv: *const *const c_char,
    opts: *const reactor_spawn_options_t,
    proto: *const reactor_process_protocol_t,
    ud: *mut c_void,
    release: reactor_release_fn,
    out: *mut *mut reactor_process_t,
) -> c_int {
    to_status(owner_result(r, |reactor| {
        // SAFETY: the caller's contract for each pointer.
        let protocol = unsafe { read_versioned(proto, None) }?;
        // SAFETY: as above.
        let options = unsafe { read_versioned(opts, Some(default_spawn_options)) }?;
        // SAFETY: as above.
        let args = unsafe { spawn_args(executable, argv, &options) }?;
        let request = options::request(args)?;
        let handle = reactor.spawn_process(request, protocol, || UserData::new(ud, release))?;
        // SAFETY: NULL or writable (the caller's contract).
        unsafe { super::write_out(out, handle as *mut reactor_process_t) };
        Ok(())
    }))
}

/// Runs `body` on a live process, on its reactor's thread.
fn on_process<T>(
    p: *const reactor_process_t,
    body: impl FnOnce(&Reactor, &Rc<Process>) -> Result<T>,
) -> Result<T> {
    let r = crate::process::process_reactor(p.cast()).ok_or(Error::Invalid)? as *const reactor_t;
    owner_result(r, |reactor| {
        let process = reactor.process(p as usize).ok_or(Error::Invalid)?;
        body(reactor, &process)
    })
}

/// Queues `len` bytes (copied) for the child's fd `child_fd` (a WRITE pipe, or 0 of a pty),
/// written in order as the pipe takes them. Checks in this order: NULL `data` with `len` > 0 →
/// `REACTOR_E_INVALID`; not a WRITE pipe of this child → `REACTOR_E_INVALID`; closed, closing, or
/// inside `process_ended` → `REACTOR_E_CLOSED`; `len` 0 → OK. A child that closed its end makes
/// the pipe lost (`child_connection_lost` on a later pass); never SIGPIPE.
///
/// Thread-safety: reactor thread only.
///
/// # Safety
/// `data` is NULL or points to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_process_write_to_child(
    p: *mut reactor_process_t,
    child_fd: c_int,
    data: *const c_void,
    len: usize,
) -> c_int {
    to_status(on_process(p, |reactor, process| {
        // SAFETY: the caller's contract.
        let bytes = unsafe { super::host_bytes(data, len) }?;
        process.write(reactor, child_fd, bytes)
    }))
}

/// Closes the parent's end of the pipe at `child_fd` (a WRITE pipe after its buffered bytes are
/// written; a pty closes for any of 0, 1, 2); `child_connection_lost` comes on a later pass. Not a
/// pipe of this child → `REACTOR_E_INVALID`; already closed → OK, no effect.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_process_close_child_fd(
    p: *mut reactor_process_t,
    child_fd: c_int,
) -> c_int {
    to_status(on_process(p, |reactor, process| {
        process.close_child_fd(reactor, child_fd)
    }))
}

/// Closes the pipes at 0, 2 and 1, in that order (Twisted's loseConnection); other child fds stay.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_process_lose_connection(p: *mut reactor_process_t) -> c_int {
    to_status(on_process(p, |reactor, process| {
        process.lose_connection(reactor)
    }))
}

/// Sends `signum` to the child. A number outside 1..NSIG-1 or one the C library reserves →
/// `REACTOR_E_INVALID` (checked first); the child already reaped → `REACTOR_E_PROCESS_EXITED`.
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_process_signal(p: *mut reactor_process_t, signum: c_int) -> c_int {
    to_status(on_process(p, |_, process| {
        if !crate::reactor::signals::valid_signal_number(signum) {
            return Err(Error::Invalid);
        }
        process.signal(signum)
    }))
}

/// The child's pid: > 0 from the spawn until `process_ended` is called; 0 inside `process_ended`,
/// for a dead or made-up handle, and from another thread.
///
/// Thread-safety: reactor thread only (other threads get 0).
#[unsafe(no_mangle)]
pub extern "C" fn reactor_process_pid(p: *const reactor_process_t) -> c_int {
    guarded_value(0, || {
        on_process(p, |_, process| Ok(process.pid())).unwrap_or(0)
    })
}
