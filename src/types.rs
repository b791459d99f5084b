//! The C-visible types of `reactor.h`: opaque handles, callback signatures, versioned structs, flags.
#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int, c_void};

/// Opaque reactor handle (`reactor_new` / `reactor_free`).
pub struct reactor_t {
    _opaque: [u8; 0],
}

/// Opaque handle to a scheduled delayed call (`reactor_call_later`); valid until released.
pub struct reactor_delayed_call_t {
    _opaque: [u8; 0],
}

/// Opaque coalescing wake-up handle (`reactor_async_new`).
pub struct reactor_async_t {
    _opaque: [u8; 0],
}

/// Opaque handle that can call into a reactor from any thread, even after the reactor is freed.
pub struct reactor_remote_t {
    _opaque: [u8; 0],
}

/// Opaque thread-pool handle: a pool of its own (`reactor_threadpool_new` / `reactor_threadpool_free`), or
/// the reactor's pool, borrowed (`reactor_get_thread_pool`).
pub struct reactor_threadpool_t {
    _opaque: [u8; 0],
}

/// Largest `max_threads` a thread pool accepts (libuv's limit too).
pub const REACTOR_THREADPOOL_MAX_THREADS: usize = 1024;

/// Which poller a reactor uses (`REACTOR_BACKEND_*`).
pub type reactor_backend_t = c_int;
/// epoll on Linux, poll elsewhere (kqueue once its backend lands), unless `REACTOR_BACKEND` says
/// otherwise.
pub const REACTOR_BACKEND_DEFAULT: reactor_backend_t = 0;
pub const REACTOR_BACKEND_EPOLL: reactor_backend_t = 1;
pub const REACTOR_BACKEND_POLL: reactor_backend_t = 2;
pub const REACTOR_BACKEND_KQUEUE: reactor_backend_t = 3;

/// Phase of a system event trigger (`REACTOR_PHASE_*`).
pub type reactor_phase_t = c_int;
pub const REACTOR_PHASE_BEFORE: reactor_phase_t = 0;
pub const REACTOR_PHASE_DURING: reactor_phase_t = 1;
pub const REACTOR_PHASE_AFTER: reactor_phase_t = 2;

/// Log levels passed to `reactor_log_fn`.
pub const REACTOR_LOG_ERROR: c_int = 1;
pub const REACTOR_LOG_WARN: c_int = 2;
pub const REACTOR_LOG_INFO: c_int = 3;

/// Readiness bits passed to `reactor_fd_fn`.
pub const REACTOR_READABLE: u32 = 1;
pub const REACTOR_WRITABLE: u32 = 2;
pub const REACTOR_HANGUP: u32 = 4;
pub const REACTOR_ERROR: u32 = 8;
/// The reactor is shutting down; the registration is removed after this call.
pub const REACTOR_SHUTDOWN: u32 = 16;

/// Frees user data when the library drops a registration. Called exactly once.
pub type reactor_release_fn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;
/// A plain callback on the reactor thread.
pub type reactor_cb_fn = Option<unsafe extern "C" fn(r: *mut reactor_t, user_data: *mut c_void)>;
/// Receives log messages; `message` is valid only during the call.
pub type reactor_log_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, level: c_int, message: *const c_char)>;
/// A system event trigger. Return `REACTOR_OK`, `REACTOR_PENDING` (BEFORE phase: hold the event), or a
/// negative status (logged; the other triggers still run).
pub type reactor_trigger_fn = Option<
    unsafe extern "C" fn(r: *mut reactor_t, trigger_id: u64, user_data: *mut c_void) -> c_int,
>;
/// A host signal handler (`reactor_add_signal_handler`): runs on the reactor thread, on a pass after
/// the delivery (never in signal context); deliveries before it runs may coalesce into one call.
pub type reactor_signal_fn =
    Option<unsafe extern "C" fn(r: *mut reactor_t, signum: c_int, user_data: *mut c_void)>;
/// fd readiness callback; `events` is a mask of `REACTOR_READABLE` ... `REACTOR_SHUTDOWN`.
pub type reactor_fd_fn =
    Option<unsafe extern "C" fn(r: *mut reactor_t, fd: c_int, events: u32, user_data: *mut c_void)>;

/// A thread-pool job: runs on a pool thread; the user data's release runs after it, on the same thread.
pub type reactor_work_fn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;
/// The work half of `reactor_call_in_thread_with_callback`: runs on a pool thread, returns a result for
/// `reactor_done_fn`.
pub type reactor_work_result_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void) -> *mut c_void>;
/// The completion half of `reactor_call_in_thread_with_callback`: runs on the reactor thread with the
/// work function's result.
pub type reactor_done_fn =
    Option<unsafe extern "C" fn(r: *mut reactor_t, result: *mut c_void, user_data: *mut c_void)>;

/// Opaque listening-port handle (`reactor_listen_tcp`, `_unix`); valid until it stops listening.
pub struct reactor_port_t {
    _opaque: [u8; 0],
}

/// Opaque stream-transport handle; valid until its `connection_lost` returns.
pub struct reactor_transport_t {
    _opaque: [u8; 0],
}

/// Opaque connector handle (clients); the host owns it until `reactor_connector_release`.
pub struct reactor_connector_t {
    _opaque: [u8; 0],
}

/// A stream protocol's callbacks (API.md §6.3). Fill with `reactor_protocol_init`, then set what you
/// need; every callback may be NULL. Copied by the call that receives it (up to `struct_size`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct reactor_protocol_t {
    pub struct_size: u32,
    pub connection_made: Option<unsafe extern "C" fn(t: *mut reactor_transport_t, ud: *mut c_void)>,
    pub data_received: Option<
        unsafe extern "C" fn(
            t: *mut reactor_transport_t,
            data: *const u8,
            len: usize,
            ud: *mut c_void,
        ),
    >,
    /// Set = half-close aware: the peer's FIN calls this and the transport stays open for writing.
    pub read_connection_lost:
        Option<unsafe extern "C" fn(t: *mut reactor_transport_t, ud: *mut c_void)>,
    pub write_connection_lost:
        Option<unsafe extern "C" fn(t: *mut reactor_transport_t, ud: *mut c_void)>,
    pub connection_lost:
        Option<unsafe extern "C" fn(t: *mut reactor_transport_t, reason: c_int, ud: *mut c_void)>,
    /// Clients only.
    pub connection_failed:
        Option<unsafe extern "C" fn(c: *mut reactor_connector_t, reason: c_int, ud: *mut c_void)>,
    /// UNIX only; the fd is the host's.
    pub file_descriptor_received:
        Option<unsafe extern "C" fn(t: *mut reactor_transport_t, fd: c_int, ud: *mut c_void)>,
}

/// A producer feeding a transport (Twisted's IPushProducer / IPullProducer). Every callback may be
/// NULL.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct reactor_producer_t {
    pub struct_size: u32,
    pub pause_producing: Option<unsafe extern "C" fn(t: *mut reactor_transport_t, ud: *mut c_void)>,
    pub resume_producing:
        Option<unsafe extern "C" fn(t: *mut reactor_transport_t, ud: *mut c_void)>,
    pub stop_producing: Option<unsafe extern "C" fn(t: *mut reactor_transport_t, ud: *mut c_void)>,
}

/// Server side: called for each accepted connection, before `connection_made`. `*conn_ud` starts as
/// the port's ud and `*conn_release` as NULL; return `REACTOR_OK` to accept, a negative status to
/// refuse (the socket is then closed cleanly).
pub type reactor_build_protocol_fn = Option<
    unsafe extern "C" fn(
        port: *mut reactor_port_t,
        peer: *const reactor_address_t,
        port_ud: *mut c_void,
        conn_ud: *mut *mut c_void,
        conn_release: *mut reactor_release_fn,
    ) -> c_int,
>;

/// `reactor_listen_options_t.flags`: `SO_REUSEPORT` (several reactors, or processes, on one port).
pub const REACTOR_LISTEN_REUSE_PORT: u32 = 1;
/// `reactor_listen_options_t.flags`: an IPv6 port that does not also accept IPv4 (`IPV6_V6ONLY`).
pub const REACTOR_LISTEN_IPV6_ONLY: u32 = 2;

/// Options of `reactor_listen_tcp` / `_unix`. Fill with `reactor_listen_options_init` first.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct reactor_listen_options_t {
    pub struct_size: u32,
    /// Default `SOMAXCONN`.
    pub backlog: i32,
    /// `REACTOR_LISTEN_REUSE_PORT`, `REACTOR_LISTEN_IPV6_ONLY`.
    pub flags: u32,
    /// UNIX socket file permissions, default 0666.
    pub mode: u32,
}

/// Options of `reactor_connect_tcp` / `_unix`. Fill with `reactor_connect_options_init` first.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct reactor_connect_options_t {
    pub struct_size: u32,
    /// The whole attempt, name resolution included; default 30; 0 = none.
    pub timeout_s: f64,
    /// TCP: the local address to bind (Twisted's bindAddress), an IP literal; NULL = any.
    pub bind_host: *const c_char,
    pub bind_port: u16,
}

/// `reactor_connector_state`: no attempt and no connection.
pub const REACTOR_CONNECTOR_DISCONNECTED: c_int = 0;
/// `reactor_connector_state`: an attempt is in progress.
pub const REACTOR_CONNECTOR_CONNECTING: c_int = 1;
/// `reactor_connector_state`: connected.
pub const REACTOR_CONNECTOR_CONNECTED: c_int = 2;

/// Address families of `reactor_address_t` (`REACTOR_FAMILY_*`).
pub const REACTOR_FAMILY_INET: u32 = 1;
pub const REACTOR_FAMILY_INET6: u32 = 2;
pub const REACTOR_FAMILY_UNIX: u32 = 3;

/// Bytes in `reactor_address_t::host`, NUL included.
pub const REACTOR_ADDRESS_HOST_MAX: usize = 256;

/// A network address (API.md §6.2). Addresses the library reports are always numeric.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct reactor_address_t {
    /// `REACTOR_FAMILY_*`.
    pub family: u32,
    /// Host byte order; 0 for UNIX.
    pub port: u16,
    /// IPv6 only.
    pub flow_info: u32,
    /// IPv6 only (interface index).
    pub scope_id: u32,
    /// NUL-terminated: a numeric IP ("127.0.0.1", "::1", no "%scope"), a UNIX path, "@name" for a
    /// Linux abstract socket, "" for an unnamed UNIX socket.
    pub host: [c_char; 256],
}

/// The result of `reactor_resolve`, on the reactor thread: `REACTOR_OK` with `count` >= 1 addresses,
/// or a failure (`REACTOR_E_DNS`, `REACTOR_E_CANCELLED`) with none. `addrs` is valid only during the
/// call.
pub type reactor_resolve_fn = Option<
    unsafe extern "C" fn(
        r: *mut reactor_t,
        status: c_int,
        addrs: *const reactor_address_t,
        count: usize,
        user_data: *mut c_void,
    ),
>;

/// Opaque handle to one request of an installed resolver (`reactor_resolver_t.resolve`); valid until
/// it is completed with `reactor_resolution_complete` or the reactor shuts down.
pub struct reactor_resolution_t {
    _opaque: [u8; 0],
}

/// An installed resolver's lookup (API.md §8.3): called on the reactor thread, inside
/// `reactor_resolve` or `reactor_connect_tcp`, for a host name (never an IP literal). Return
/// `REACTOR_OK` and complete `res` with `reactor_resolution_complete` (inside the call or later), or a
/// negative status to fail the request.
pub type reactor_resolver_resolve_fn = Option<
    unsafe extern "C" fn(
        r: *mut reactor_t,
        host: *const c_char,
        port: u16,
        family: u32,
        res: *mut reactor_resolution_t,
        user_data: *mut c_void,
    ) -> c_int,
>;

/// A pluggable name resolver (Twisted's IReactorPluggableNameResolver), for
/// `reactor_install_resolver`. Set `struct_size` to `sizeof(reactor_resolver_t)`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct reactor_resolver_t {
    pub struct_size: u32,
    pub resolve: reactor_resolver_resolve_fn,
}

/// Opaque datagram-port handle (`reactor_listen_udp`, `_unix_datagram`, `reactor_connect_unix_datagram`,
/// `reactor_adopt_datagram_port`); valid until its `stop_protocol` callback returns.
pub struct reactor_udp_t {
    _opaque: [u8; 0],
}

/// The callbacks of a datagram protocol (Twisted's DatagramProtocol). Every callback may be NULL.
/// Fill with `reactor_datagram_protocol_init` first.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct reactor_datagram_protocol_t {
    pub struct_size: u32,
    /// Once, on a later pass after the port opens (always before `stop_protocol`).
    pub start_protocol: Option<unsafe extern "C" fn(u: *mut reactor_udp_t, user_data: *mut c_void)>,
    /// One datagram (truncated at `max_packet_size`); `from` is numeric and valid only during the call.
    pub datagram_received: Option<
        unsafe extern "C" fn(
            u: *mut reactor_udp_t,
            data: *const u8,
            len: usize,
            from: *const reactor_address_t,
            user_data: *mut c_void,
        ),
    >,
    /// Connected mode: the peer refused a datagram (ICMP port unreachable), on a later pass.
    pub connection_refused:
        Option<unsafe extern "C" fn(u: *mut reactor_udp_t, user_data: *mut c_void)>,
    /// Once, on a later pass after the port stops; the handle dies when it returns.
    pub stop_protocol: Option<unsafe extern "C" fn(u: *mut reactor_udp_t, user_data: *mut c_void)>,
}

/// `reactor_udp_options_t.flags`: several sockets on one port (`SO_REUSEADDR` + `SO_REUSEPORT`,
/// Twisted's listenMultiple). `REACTOR_LISTEN_IPV6_ONLY` applies too.
pub const REACTOR_UDP_LISTEN_MULTIPLE: u32 = 4;

/// Options of the datagram ports. Fill with `reactor_udp_options_init` first.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct reactor_udp_options_t {
    pub struct_size: u32,
    /// Default 8192; longer datagrams are truncated; 0 is refused.
    pub max_packet_size: usize,
    /// `REACTOR_UDP_LISTEN_MULTIPLE`, `REACTOR_LISTEN_IPV6_ONLY`.
    pub flags: u32,
    /// UNIX datagram socket file permissions, default 0666.
    pub mode: u32,
    /// `reactor_connect_unix_datagram`: the local path to bind; NULL = an unnamed socket.
    pub bind_path: *const c_char,
}

/// Options for `reactor_new`. Fill with `reactor_options_init` first.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct reactor_options_t {
    /// `sizeof(reactor_options_t)` as the caller knows it.
    pub struct_size: u32,
    /// `REACTOR_BACKEND_DEFAULT`, `_EPOLL`, `_POLL` or `_KQUEUE`.
    pub backend: reactor_backend_t,
    /// Default 1: SIGINT/SIGTERM stop the reactor; dispositions are restored after `run`.
    pub install_signal_handlers: c_int,
    /// Default 0; 1 = time advances only through `reactor_clock_advance`.
    pub manual_clock: c_int,
    /// Maximum size of the reactor's thread pool (default 10, never 0).
    pub thread_pool_max: usize,
}

/// Loop statistics (`reactor_stats`). Counters never decrease; `fds_registered` and `timers_pending`
/// are current values.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct reactor_stats_t {
    pub struct_size: u32,
    pub iterations: u64,
    pub polls: u64,
    pub wakeups: u64,
    pub callbacks: u64,
    pub timers_fired: u64,
    pub thread_calls: u64,
    pub fds_registered: u64,
    pub timers_pending: u64,
    pub backend_ctl_calls: u64,
    /// Seconds spent blocked in the poller.
    pub idle_seconds: f64,
}

/// Thread-pool statistics (`reactor_threadpool_stats`). `completed` and `stolen` never decrease; the
/// others are current values.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct reactor_threadpool_stats_t {
    pub struct_size: u32,
    /// Live worker threads.
    pub workers: u64,
    /// Workers parked, waiting for work.
    pub idle: u64,
    /// Jobs waiting to start.
    pub queued: u64,
    /// Jobs run to completion.
    pub completed: u64,
    /// Jobs a worker took from another worker's deque.
    pub stolen: u64,
}

/// Points for `reactor_test_inject_panic`: the start of the next pass of `run` or `iterate`.
pub const REACTOR_TEST_PANIC_NEXT_PASS: u32 = 1;
/// Points for `reactor_test_inject_panic`: right after the next host callback returns.
pub const REACTOR_TEST_PANIC_AFTER_CALLBACK: u32 = 2;
/// Points for `reactor_test_inject_panic`: inside the next reactor-thread API call.
pub const REACTOR_TEST_PANIC_IN_CALL: u32 = 3;

/// Opaque handle to a spawned child process (`reactor_spawn_process`); valid until its
/// `process_ended` callback returns (or `reactor_free`).
pub struct reactor_process_t {
    _opaque: [u8; 0],
}

/// The callbacks of a process protocol (Twisted's ProcessProtocol). Every callback may be NULL. Fill
/// with `reactor_process_protocol_init` first.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct reactor_process_protocol_t {
    pub struct_size: u32,
    /// First, on a later pass after the spawn.
    pub connection_made:
        Option<unsafe extern "C" fn(p: *mut reactor_process_t, user_data: *mut c_void)>,
    /// Bytes the child wrote to one of its READ fds (the pty's output comes as fd 1); `data` is valid
    /// only during the call.
    pub child_data_received: Option<
        unsafe extern "C" fn(
            p: *mut reactor_process_t,
            child_fd: c_int,
            data: *const u8,
            len: usize,
            user_data: *mut c_void,
        ),
    >,
    /// Once per pipe (and once for a pty, as fd 1) when it closes, from either side.
    pub child_connection_lost: Option<
        unsafe extern "C" fn(p: *mut reactor_process_t, child_fd: c_int, user_data: *mut c_void),
    >,
    /// As soon as the child is reaped, even with pipes still open. `reason` is `REACTOR_OK` for exit
    /// status 0, else `REACTOR_E_PROCESS_TERMINATED`; `exit_code` is -1 when a signal killed it,
    /// `term_signal` 0 when it exited.
    pub process_exited: Option<
        unsafe extern "C" fn(
            p: *mut reactor_process_t,
            reason: c_int,
            exit_code: c_int,
            term_signal: c_int,
            user_data: *mut c_void,
        ),
    >,
    /// Once the child is reaped and every pipe has closed (same arguments as `process_exited`); the
    /// handle dies when it returns, then `release(user_data)` runs.
    pub process_ended: Option<
        unsafe extern "C" fn(
            p: *mut reactor_process_t,
            reason: c_int,
            exit_code: c_int,
            term_signal: c_int,
            user_data: *mut c_void,
        ),
    >,
}

/// `reactor_child_fd_t.kind`: a pipe the child writes and the parent reads (Twisted's 'r').
pub const REACTOR_CHILD_FD_READ: c_int = 1;
/// `reactor_child_fd_t.kind`: a pipe the parent writes and the child reads (Twisted's 'w').
pub const REACTOR_CHILD_FD_WRITE: c_int = 2;
/// `reactor_child_fd_t.kind`: the parent's fd `parent_fd`, duplicated into the child.
pub const REACTOR_CHILD_FD_INHERIT: c_int = 3;

/// One entry of a child-fd map: what the child finds at fd number `child_fd`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct reactor_child_fd_t {
    pub child_fd: c_int,
    /// `REACTOR_CHILD_FD_READ`, `_WRITE` or `_INHERIT`.
    pub kind: c_int,
    /// For `REACTOR_CHILD_FD_INHERIT`: the parent's open fd; ignored otherwise.
    pub parent_fd: c_int,
}

/// Options of `reactor_spawn_process`. Fill with `reactor_spawn_options_init` first.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct reactor_spawn_options_t {
    pub struct_size: u32,
    /// NULL-terminated "NAME=value" list; NULL = an empty environment (Twisted's default).
    pub env: *const *const c_char,
    /// 1: the parent's environment (`env` must then be NULL).
    pub inherit_env: c_int,
    /// The child's working directory; NULL = the parent's.
    pub cwd: *const c_char,
    /// -1 = unchanged. A uid change as root also resets the supplementary groups (initgroups).
    pub uid: i64,
    /// -1 = unchanged.
    pub gid: i64,
    /// The child-fd map; NULL (with `child_fd_count` 0) = {0: WRITE, 1: READ, 2: READ}.
    pub child_fds: *const reactor_child_fd_t,
    pub child_fd_count: usize,
    /// 1: the child gets a pseudo-terminal as fds 0, 1 and 2 (with `child_fds` → `REACTOR_E_INVALID`).
    pub use_pty: c_int,
}
