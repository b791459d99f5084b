//! Registrations of C callbacks and their user data.
//!
//! `UserData` owns the host's pointer: dropping it calls the host's `release` exactly once. Every place that
//! drops one must do so outside any `RefCell` borrow, because `release` may re-enter the API.
//! This module holds the only calls into host code.

use crate::types::reactor_t;
use std::os::raw::{c_char, c_int, c_void};

pub type CbFn = unsafe extern "C" fn(*mut reactor_t, *mut c_void);
pub type FdFn = unsafe extern "C" fn(*mut reactor_t, c_int, u32, *mut c_void);
pub type SignalFn = unsafe extern "C" fn(*mut reactor_t, c_int, *mut c_void);
pub type ResolverFn = unsafe extern "C" fn(
    *mut reactor_t,
    *const c_char,
    u16,
    u32,
    *mut crate::types::reactor_resolution_t,
    *mut c_void,
) -> c_int;
pub type TriggerFn = unsafe extern "C" fn(*mut reactor_t, u64, *mut c_void) -> c_int;
pub type LogFn = unsafe extern "C" fn(*mut c_void, c_int, *const c_char);
pub type ReleaseFn = unsafe extern "C" fn(*mut c_void);
/// A thread-pool job (`reactor_work_fn`).
pub type WorkFn = unsafe extern "C" fn(*mut c_void);
/// The work half of `reactor_call_in_thread_with_callback` (`reactor_work_result_fn`).
pub type WorkResultFn = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
/// The reactor-thread half of `reactor_call_in_thread_with_callback` (`reactor_done_fn`).
pub type DoneFn = unsafe extern "C" fn(*mut reactor_t, *mut c_void, *mut c_void);

/// The result callback of `reactor_resolve` (`reactor_resolve_fn`).
pub type ResolveFn = unsafe extern "C" fn(
    *mut reactor_t,
    c_int,
    *const crate::types::reactor_address_t,
    usize,
    *mut c_void,
);

/// The host's user data plus its release hook; released on drop.
pub struct UserData {
    ptr: *mut c_void,
    release: Option<ReleaseFn>,
}

// SAFETY: the host hands us opaque pointers and promises (API.md §1) that its callbacks and release hooks
// may run on the reactor thread, or on the freeing thread; we never dereference them.
unsafe impl Send for UserData {}

impl UserData {
    pub fn new(ptr: *mut c_void, release: Option<ReleaseFn>) -> UserData {
        UserData { ptr, release }
    }

    /// No data and nothing to release.
    pub const fn none() -> UserData {
        UserData {
            ptr: std::ptr::null_mut(),
            release: None,
        }
    }

    pub fn ptr(&self) -> *mut c_void {
        self.ptr
    }

    /// The pointer of the data kept in `cell` (a network object's; the cell keeps it).
    pub fn ptr_in(cell: &std::cell::Cell<UserData>) -> *mut c_void {
        let data = cell.take();
        let ptr = data.ptr;
        cell.set(data);
        ptr
    }

    /// Dropping it calls the host's release hook.
    pub fn has_release(&self) -> bool {
        self.release.is_some()
    }

    /// Gives the pointer back without releasing it (the host keeps ownership).
    pub fn into_raw(self) -> *mut c_void {
        let ptr = self.ptr;
        std::mem::forget(self);
        ptr
    }
}

impl Default for UserData {
    fn default() -> Self {
        UserData::none()
    }
}

impl Drop for UserData {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: a host-supplied release hook, called exactly once with the pointer it was given.
            unsafe { release(self.ptr) }
        }
    }
}

/// A plain callback with its data: timers, thread calls, call_when_running.
pub struct Callback {
    pub func: CbFn,
    pub data: UserData,
}

impl Callback {
    pub fn call(&self, reactor: *mut reactor_t) {
        // SAFETY: host-supplied function pointer, checked non-NULL at registration.
        unsafe { (self.func)(reactor, self.data.ptr()) }
    }
}

/// Calls an fd callback from its copied-out parts (so no borrow is held during the call).
pub fn call_fd(func: FdFn, reactor: *mut reactor_t, fd: c_int, events: u32, ud: *mut c_void) {
    // SAFETY: host-supplied function pointer, checked non-NULL at registration.
    unsafe { func(reactor, fd, events, ud) }
}

pub fn call_signal(func: SignalFn, reactor: *mut reactor_t, signum: c_int, ud: *mut c_void) {
    // SAFETY: host-supplied function pointer, checked non-NULL at registration.
    unsafe { func(reactor, signum, ud) }
}

pub fn call_trigger(func: TriggerFn, reactor: *mut reactor_t, id: u64, ud: *mut c_void) -> c_int {
    // SAFETY: host-supplied function pointer, checked non-NULL at registration.
    unsafe { func(reactor, id, ud) }
}

pub fn call_plain(func: CbFn, reactor: *mut reactor_t, ud: *mut c_void) {
    // SAFETY: host-supplied function pointer, checked non-NULL at registration.
    unsafe { func(reactor, ud) }
}

pub fn call_work(func: WorkFn, ud: *mut c_void) {
    // SAFETY: host-supplied function pointer, checked non-NULL at submission.
    unsafe { func(ud) }
}

pub fn call_work_result(func: WorkResultFn, ud: *mut c_void) -> *mut c_void {
    // SAFETY: host-supplied function pointer, checked non-NULL at submission.
    unsafe { func(ud) }
}

pub fn call_done(func: DoneFn, reactor: *mut reactor_t, result: *mut c_void, ud: *mut c_void) {
    // SAFETY: host-supplied function pointer, checked non-NULL at submission.
    unsafe { func(reactor, result, ud) }
}

/// Calls a resolve callback with its result (`addrs` valid for the call only).
pub fn call_resolve(
    func: ResolveFn,
    reactor: *mut reactor_t,
    status: c_int,
    addrs: &[crate::types::reactor_address_t],
    ud: *mut c_void,
) {
    let list = if addrs.is_empty() {
        std::ptr::null()
    } else {
        addrs.as_ptr()
    };
    // SAFETY: host-supplied function pointer, checked non-NULL at registration; the list outlives
    // the call.
    unsafe { func(reactor, status, list, addrs.len(), ud) }
}

/// Calls a transport callback that takes only the transport (connection_made, read/write_connection_lost).
pub fn call_transport(
    func: unsafe extern "C" fn(*mut crate::types::reactor_transport_t, *mut c_void),
    transport: *mut crate::types::reactor_transport_t,
    ud: *mut c_void,
) {
    // SAFETY: host-supplied function pointer, copied from the host's protocol struct.
    unsafe { func(transport, ud) }
}

/// Calls `data_received` (`data` valid for the call only).
pub fn call_data_received(
    func: unsafe extern "C" fn(
        *mut crate::types::reactor_transport_t,
        *const u8,
        usize,
        *mut c_void,
    ),
    transport: *mut crate::types::reactor_transport_t,
    data: &[u8],
    ud: *mut c_void,
) {
    // SAFETY: host-supplied function pointer; `data` outlives the call.
    unsafe { func(transport, data.as_ptr(), data.len(), ud) }
}

/// Calls `file_descriptor_received` (the fd is the host's from here on).
pub fn call_fd_received(
    func: unsafe extern "C" fn(*mut crate::types::reactor_transport_t, c_int, *mut c_void),
    transport: *mut crate::types::reactor_transport_t,
    fd: c_int,
    ud: *mut c_void,
) {
    // SAFETY: host-supplied function pointer.
    unsafe { func(transport, fd, ud) }
}

/// Calls `connection_lost`.
pub fn call_connection_lost(
    func: unsafe extern "C" fn(*mut crate::types::reactor_transport_t, c_int, *mut c_void),
    transport: *mut crate::types::reactor_transport_t,
    reason: c_int,
    ud: *mut c_void,
) {
    // SAFETY: host-supplied function pointer.
    unsafe { func(transport, reason, ud) }
}

/// Calls `connection_failed`.
pub fn call_connection_failed(
    func: unsafe extern "C" fn(*mut crate::types::reactor_connector_t, c_int, *mut c_void),
    connector: *mut crate::types::reactor_connector_t,
    reason: c_int,
    ud: *mut c_void,
) {
    // SAFETY: host-supplied function pointer.
    unsafe { func(connector, reason, ud) }
}

/// Calls a port's `build_protocol`; returns its status with the connection's user data and release.
pub fn call_build_protocol(
    func: unsafe extern "C" fn(
        *mut crate::types::reactor_port_t,
        *const crate::types::reactor_address_t,
        *mut c_void,
        *mut *mut c_void,
        *mut crate::types::reactor_release_fn,
    ) -> c_int,
    port: *mut crate::types::reactor_port_t,
    peer: &crate::types::reactor_address_t,
    port_ud: *mut c_void,
) -> (c_int, *mut c_void, crate::types::reactor_release_fn) {
    let mut conn_ud = port_ud;
    let mut conn_release: crate::types::reactor_release_fn = None;
    // SAFETY: host-supplied function pointer; every pointer passed is live for the call.
    let status = unsafe { func(port, peer, port_ud, &mut conn_ud, &mut conn_release) };
    (status, conn_ud, conn_release)
}

pub fn call_log(func: LogFn, ud: *mut c_void, level: c_int, message: &std::ffi::CStr) {
    // SAFETY: host-supplied function pointer; `message` outlives the call.
    unsafe { func(ud, level, message.as_ptr()) }
}

/// Calls a datagram port's `start_protocol`, `stop_protocol` or `connection_refused`.
pub fn call_udp(
    func: unsafe extern "C" fn(*mut crate::types::reactor_udp_t, *mut c_void),
    port: *mut crate::types::reactor_udp_t,
    ud: *mut c_void,
) {
    // SAFETY: host-supplied function pointer, copied from the host's protocol struct.
    unsafe { func(port, ud) }
}

/// Calls `datagram_received` (`data` and `from` valid for the call only).
pub fn call_datagram_received(
    func: unsafe extern "C" fn(
        *mut crate::types::reactor_udp_t,
        *const u8,
        usize,
        *const crate::types::reactor_address_t,
        *mut c_void,
    ),
    port: *mut crate::types::reactor_udp_t,
    data: &[u8],
    from: &crate::types::reactor_address_t,
    ud: *mut c_void,
) {
    // SAFETY: host-supplied function pointer; `data` and `from` outlive the call.
    unsafe { func(port, data.as_ptr(), data.len(), from, ud) }
}
