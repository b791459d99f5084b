//! Starting a child: the pipes, the child-fd plan, and fork+exec or `posix_spawn` (the only `unsafe`
//! of processes, with `sys`).
//!
//! Everything the child needs is built in the parent first (C strings, pointer arrays, the fd moves,
//! the supplementary groups), because after `fork` in a threaded process the child may only make
//! async-signal-safe calls: no allocation, no lock. The child then:
//! 1. resets every signal disposition to the default and empties its signal mask;
//! 2. (pty) starts a session and takes the pty as its controlling terminal;
//! 3. moves every source fd above the highest target, then `dup2`s each to its target (so a source
//!    that is another entry's target is never overwritten before it is used);
//! 4. closes every fd that is not a target (the exec-failure pipe stays until `exec` closes it);
//! 5. changes directory, groups, gid and uid;
//! 6. `execve`s. A failure at any step writes its errno to the close-on-exec pipe and exits 127: the
//!    parent reads 0 bytes when `exec` worked, or the errno, then reaps the child before returning.
//!
//! The fast path, `posix_spawn` (glibc runs it with `clone(CLONE_VFORK)`: no page-table copy), is
//! taken when nothing needs a step it cannot do (no uid/gid change, no pty) and the C library has
//! the extensions it needs (`posix_spawn_file_actions_addclosefrom_np`, `_addchdir_np`; looked up at
//! run time, so the library still loads on an older glibc).

use super::sys;
use crate::types::{REACTOR_CHILD_FD_INHERIT, REACTOR_CHILD_FD_READ, REACTOR_CHILD_FD_WRITE};
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::raw::{c_char, c_int};
use std::sync::OnceLock;

/// What the parent keeps of a child fd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeKind {
    /// The child writes, the parent reads.
    Read,
    /// The parent writes, the child reads (a socket pair: sends never raise SIGPIPE).
    Write,
    /// The pty master: the child's 0, 1 and 2.
    Pty,
}

/// A child fd to set up.
#[derive(Debug, Clone, Copy)]
pub struct ChildFd {
    pub child_fd: c_int,
    pub kind: c_int,
    pub parent_fd: c_int,
}

/// A checked request (see `options.rs`).
pub struct Request {
    /// Programs to try in order (the PATH search is done in the parent).
    pub program: CString,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    pub cwd: Option<CString>,
    pub uid: Option<libc::uid_t>,
    pub gid: Option<libc::gid_t>,
    pub fds: Vec<ChildFd>,
    pub pty: bool,
}

/// A started child and the parent's ends of its pipes.
pub struct Spawned {
    pub pid: libc::pid_t,
    pub pipes: Vec<(c_int, PipeKind, OwnedFd)>,
}

/// The parent's and the child's end of each pipe, made before the child starts.
struct Pipes {
    parent: Vec<(c_int, PipeKind, OwnedFd)>,
    /// (target, source): what the child gets where. Sources are the child ends below, or the
    /// host's inherited fds.
    moves: Vec<(c_int, RawFd)>,
    /// The child ends, closed in the parent once the child has its copies.
    child_ends: Vec<OwnedFd>,
    pty_slave: Option<RawFd>,
}

fn make_pipes(request: &Request) -> Result<Pipes, c_int> {
    let mut pipes = Pipes {
        parent: Vec::new(),
        moves: Vec::new(),
        child_ends: Vec::new(),
        pty_slave: None,
    };
    if request.pty {
        let (master, slave) = sys::open_pty()?;
        sys::set_nonblocking(master.as_raw_fd())?;
        for target in 0..3 {
            pipes.moves.push((target, slave.as_raw_fd()));
        }
        pipes.pty_slave = Some(slave.as_raw_fd());
        pipes.parent.push((1, PipeKind::Pty, master));
        pipes.child_ends.push(slave);
        return Ok(pipes);
    }
    for fd in &request.fds {
        match fd.kind {
            REACTOR_CHILD_FD_READ => {
                let (read_end, write_end) = sys::pipe()?;
                sys::set_nonblocking(read_end.as_raw_fd())?;
                pipes.moves.push((fd.child_fd, write_end.as_raw_fd()));
                pipes.parent.push((fd.child_fd, PipeKind::Read, read_end));
                pipes.child_ends.push(write_end);
            }
            REACTOR_CHILD_FD_WRITE => {
                let (ours, theirs) = sys::socket_pair()?;
                sys::set_nonblocking(ours.as_raw_fd())?;
                pipes.moves.push((fd.child_fd, theirs.as_raw_fd()));
                pipes.parent.push((fd.child_fd, PipeKind::Write, ours));
                pipes.child_ends.push(theirs);
            }
            REACTOR_CHILD_FD_INHERIT => pipes.moves.push((fd.child_fd, fd.parent_fd)),
            _ => return Err(libc::EINVAL),
        }
    }
    Ok(pipes)
}

/// Starts the child. On error nothing is left behind (a child whose exec failed is reaped).
pub fn spawn(request: &Request) -> Result<Spawned, c_int> {
    let pipes = make_pipes(request)?;
    let pid = match fast_path(request, &pipes) {
        Some(result) => result?,
        None => fork_exec(request, &pipes)?,
    };
    drop(pipes.child_ends);
    Ok(Spawned {
        pid,
        pipes: pipes.parent,
    })
}

/// NULL-terminated pointer arrays over C strings (valid while the strings live).
fn pointers(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The fds the child keeps, ascending.
fn sorted_targets(moves: &[(c_int, RawFd)]) -> Vec<c_int> {
    let mut targets: Vec<c_int> = moves.iter().map(|&(t, _)| t).collect();
    targets.sort_unstable();
    targets.dedup();
    targets
}

// ----- fork + exec ------------------------------------------------------------------------------

/// Everything the child reads, prepared in the parent.
struct ChildPlan<'a> {
    program: &'a CStr,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
    cwd: Option<&'a CStr>,
    uid: Option<libc::uid_t>,
    gid: Option<libc::gid_t>,
    groups: Option<Vec<libc::gid_t>>,
    moves: &'a [(c_int, RawFd)],
    /// Scratch space for the moved copies (written by the child in its own memory).
    moved: Vec<RawFd>,
    targets: Vec<c_int>,
    pty_slave: Option<RawFd>,
    /// Sources are moved to fds at or above this (above every target).
    move_floor: c_int,
    open_max: c_int,
}

fn fork_exec(request: &Request, pipes: &Pipes) -> Result<libc::pid_t, c_int> {
    let argv = pointers(&request.argv);
    let envp = pointers(&request.env);
    let groups = match request.uid {
        Some(uid) if sys::is_root() => Some(sys::groups_of(uid, request.gid)),
        _ => None,
    };
    let targets = sorted_targets(&pipes.moves);
    let mut plan = ChildPlan {
        program: &request.program,
        argv,
        envp,
        cwd: request.cwd.as_deref(),
        uid: request.uid,
        gid: request.gid,
        groups,
        moves: &pipes.moves,
        moved: vec![-1; pipes.moves.len()],
        move_floor: targets.last().map_or(0, |&t| t + 1),
        targets,
        pty_slave: pipes.pty_slave,
        open_max: sys::open_max(),
    };
    let (report_read, report_write) = sys::pipe()?;
    // SAFETY: the child only makes async-signal-safe calls on memory prepared above (`child_main`).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(sys::errno());
    }
    if pid == 0 {
        // SAFETY: in the child right after fork; never returns.
        unsafe { child_main(&mut plan, report_write.as_raw_fd()) }
    }
    drop(report_write);
    match sys::read_report(report_read.as_raw_fd()) {
        Ok(None) => Ok(pid),
        Ok(Some(errno)) => {
            sys::wait_blocking(pid);
            Err(errno)
        }
        Err(errno) => {
            // Whether exec worked is unknown: the child is stopped rather than half reported.
            let _ = sys::kill(pid, libc::SIGKILL);
            sys::wait_blocking(pid);
            Err(errno)
        }
    }
}

/// The child between fork and exec. Only async-signal-safe calls; no allocation, no panic.
///
/// # Safety
/// Call only in a freshly forked child.
unsafe fn child_main(plan: &mut ChildPlan<'_>, report: RawFd) -> ! {
    // SAFETY: async-signal-safe system calls on prepared data, in the child only.
    unsafe {
        reset_signals();
        if let Some(slave) = plan.pty_slave {
            if libc::setsid() < 0 {
                fail(report);
            }
            #[allow(clippy::useless_conversion)]
            if libc::ioctl(slave, libc::TIOCSCTTY.into(), 0) < 0 {
                fail(report);
            }
        }
        // The report pipe must survive the fd shuffle: moved above every target too.
        let report = match libc::fcntl(report, libc::F_DUPFD_CLOEXEC, plan.move_floor) {
            moved if moved >= 0 => moved,
            _ => fail(report),
        };
        for (i, &(_, source)) in plan.moves.iter().enumerate() {
            let copy = libc::fcntl(source, libc::F_DUPFD_CLOEXEC, plan.move_floor);
            if copy < 0 {
                fail(report);
            }
            *plan.moved.as_mut_ptr().add(i) = copy;
        }
        for (i, &(target, _)) in plan.moves.iter().enumerate() {
            if libc::dup2(*plan.moved.as_ptr().add(i), target) < 0 {
                fail(report);
            }
        }
        close_all_but(&plan.targets, report, plan.open_max);
        if let Some(cwd) = plan.cwd
            && libc::chdir(cwd.as_ptr()) < 0
        {
            fail(report);
        }
        if let Some(groups) = &plan.groups
            && libc::setgroups(groups.len() as _, groups.as_ptr()) < 0
        {
            fail(report);
        }
        if let Some(gid) = plan.gid
            && libc::setgid(gid) < 0
        {
            fail(report);
        }
        if let Some(uid) = plan.uid
            && libc::setuid(uid) < 0
        {
            fail(report);
        }
        reset_libc_signals();
        libc::execve(
            plan.program.as_ptr(),
            plan.argv.as_ptr(),
            plan.envp.as_ptr(),
        );
        fail(report)
    }
}

/// The child's failure: errno to the parent through the report pipe, then exit 127.
///
/// # Safety
/// Call only in the child.
unsafe fn fail(report: RawFd) -> ! {
    let bytes = sys::errno().to_ne_bytes();
    // SAFETY: async-signal-safe calls.
    unsafe {
        libc::write(report, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127)
    }
}

/// Default dispositions for every signal and an empty mask (the child starts clean). The C
/// library's own signals (glibc: 32 and 33) keep their handlers until `reset_libc_signals`, right
/// before exec: `setuid`/`setgid` may still need them (glibc's setxid broadcast).
///
/// # Safety
/// Async-signal-safe; changes the calling process's signal state (call in the child only).
unsafe fn reset_signals() {
    // SAFETY: zeroed sigaction/sigset structs are valid; plain system calls.
    unsafe {
        for signal in 1..sys::signal_limit() {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP && !sys::kept_by_libc(signal) {
                sys::default_disposition(signal);
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// The C library's own signals to the default, right before exec: a host started by glibc's
/// posix_spawn (as `cargo test` starts its tests) ignores them, and exec keeps an ignored signal.
///
/// # Safety
/// As `reset_signals`; call after the last `setuid`/`setgid`.
unsafe fn reset_libc_signals() {
    for signal in 1..sys::signal_limit() {
        if sys::kept_by_libc(signal) {
            // SAFETY: the caller's contract.
            unsafe { sys::default_disposition(signal) };
        }
    }
}

/// Closes every fd but `targets` (ascending) and `keep`.
///
/// # Safety
/// Async-signal-safe; closes the calling process's fds (call in the child only).
unsafe fn close_all_but(targets: &[c_int], keep: RawFd, open_max: c_int) {
    let mut next = 0;
    for &target in targets {
        // SAFETY: the caller's contract.
        unsafe { close_range_except(next, target - 1, keep, open_max) };
        next = target + 1;
    }
    // SAFETY: as above.
    unsafe { close_range_except(next, c_int::MAX, keep, open_max) };
}

/// Closes `low..=high` except `keep`.
///
/// # Safety
/// As `close_all_but`.
unsafe fn close_range_except(low: c_int, high: c_int, keep: RawFd, open_max: c_int) {
    if low > high {
        return;
    }
    // SAFETY: the caller's contract.
    unsafe {
        if (low..=high).contains(&keep) {
            sys::close_range(low, keep - 1, open_max);
            sys::close_range(keep + 1, high, open_max);
        } else {
            sys::close_range(low, high, open_max);
        }
    }
}

// ----- posix_spawn ------------------------------------------------------------------------------

type AddCloseFrom = unsafe extern "C" fn(*mut libc::posix_spawn_file_actions_t, c_int) -> c_int;
type AddChdir = unsafe extern "C" fn(*mut libc::posix_spawn_file_actions_t, *const c_char) -> c_int;

/// The C library's `posix_spawn` extensions the fast path needs (None: use fork).
struct SpawnExtensions {
    close_from: AddCloseFrom,
    chdir: Option<AddChdir>,
}

fn extensions() -> Option<&'static SpawnExtensions> {
    static FOUND: OnceLock<Option<SpawnExtensions>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            if std::env::var_os("REACTOR_SPAWN_FORK").is_some() || sys::under_valgrind() {
                // Valgrind runs glibc's clone(CLONE_VM | CLONE_VFORK) as a plain fork, and then
                // the child's exec error never reaches the parent: fork + exec reports it.
                return None;
            }
            let close_from = sys::lookup(c"posix_spawn_file_actions_addclosefrom_np")?;
            // SAFETY: the C library's function of this name has this signature.
            let close_from: AddCloseFrom = unsafe { std::mem::transmute(close_from) };
            let chdir = sys::lookup(c"posix_spawn_file_actions_addchdir_np")
                // SAFETY: as above.
                .map(|f| unsafe { std::mem::transmute::<*mut libc::c_void, AddChdir>(f) });
            Some(SpawnExtensions { close_from, chdir })
        })
        .as_ref()
}

/// glibc's `sigfillset` leaves out the two signals it keeps for itself (32 and 33), and its
/// posix_spawn then sets them to SIG_IGN in the child, which exec keeps. The child must start with
/// every disposition at its default (API.md §8.1): their bits are set by hand (glibc's child reads
/// the set with its unchecked `__sigismember`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn include_libc_signals(set: &mut libc::sigset_t) {
    // SAFETY: glibc's sigset_t is an array of unsigned longs, bit (signal - 1) per signal.
    let words = unsafe {
        std::slice::from_raw_parts_mut(
            (set as *mut libc::sigset_t).cast::<libc::c_ulong>(),
            std::mem::size_of::<libc::sigset_t>() / std::mem::size_of::<libc::c_ulong>(),
        )
    };
    let bits = libc::c_ulong::BITS as usize;
    for signal in [32usize, 33] {
        words[(signal - 1) / bits] |= 1 << ((signal - 1) % bits);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn include_libc_signals(_set: &mut libc::sigset_t) {}

/// Child fds above this go through fork (each fd below the highest target that is not a target
/// costs one close action).
const FAST_PATH_MAX_TARGET: c_int = 64;

/// `posix_spawn`, when the request allows it; None: take the fork path.
fn fast_path(request: &Request, pipes: &Pipes) -> Option<Result<libc::pid_t, c_int>> {
    if request.pty || request.uid.is_some() || request.gid.is_some() {
        return None;
    }
    let ext = extensions()?;
    if request.cwd.is_some() && ext.chdir.is_none() {
        return None;
    }
    let targets = sorted_targets(&pipes.moves);
    let highest = *targets.last().unwrap_or(&-1);
    if highest >= FAST_PATH_MAX_TARGET {
        return None;
    }
    let highest_source = pipes.moves.iter().map(|&(_, s)| s).max().unwrap_or(-1);
    let floor = highest.max(highest_source) + 1;
    if floor + pipes.moves.len() as c_int > sys::open_max() {
        return None;
    }
    let argv = pointers(&request.argv);
    let envp = pointers(&request.env);
    // SAFETY: the actions and attributes are initialised before use and destroyed after; every
    // pointer passed lives until posix_spawn returns.
    unsafe {
        let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        if libc::posix_spawn_file_actions_init(&mut actions) != 0 {
            return None;
        }
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        if libc::posix_spawnattr_init(&mut attr) != 0 {
            libc::posix_spawn_file_actions_destroy(&mut actions);
            return None;
        }
        let mut ok = true;
        for (i, &(_, source)) in pipes.moves.iter().enumerate() {
            ok &= libc::posix_spawn_file_actions_adddup2(&mut actions, source, floor + i as c_int)
                == 0;
        }
        for (i, &(target, _)) in pipes.moves.iter().enumerate() {
            ok &= libc::posix_spawn_file_actions_adddup2(&mut actions, floor + i as c_int, target)
                == 0;
        }
        for fd in 0..highest {
            if targets.binary_search(&fd).is_err() {
                ok &= libc::posix_spawn_file_actions_addclose(&mut actions, fd) == 0;
            }
        }
        ok &= (ext.close_from)(&mut actions, highest + 1) == 0;
        if let (Some(cwd), Some(chdir)) = (&request.cwd, ext.chdir) {
            ok &= chdir(&mut actions, cwd.as_ptr()) == 0;
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        include_libc_signals(&mut all);
        ok &= libc::posix_spawnattr_setsigmask(&mut attr, &empty) == 0;
        ok &= libc::posix_spawnattr_setsigdefault(&mut attr, &all) == 0;
        ok &= libc::posix_spawnattr_setflags(
            &mut attr,
            (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as _,
        ) == 0;
        let result = if ok {
            let mut pid: libc::pid_t = 0;
            let status = libc::posix_spawn(
                &mut pid,
                request.program.as_ptr(),
                &actions,
                &attr,
                argv.as_ptr().cast(),
                envp.as_ptr().cast(),
            );
            Some(if status == 0 { Ok(pid) } else { Err(status) })
        } else {
            None
        };
        libc::posix_spawnattr_destroy(&mut attr);
        libc::posix_spawn_file_actions_destroy(&mut actions);
        result
    }
}
