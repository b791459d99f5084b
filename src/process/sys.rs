//! The process system calls: pipes, ptys, exit watching (pidfd), reaping one pid, signals. Every
//! function takes and returns plain values (owned fds, errnos), so the rest of `process` is safe.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::raw::c_int;

pub type Errno = c_int;

pub fn errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn check(value: c_int) -> Result<c_int, Errno> {
    if value < 0 { Err(errno()) } else { Ok(value) }
}

/// Takes ownership of a fresh fd.
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass fds they just created and nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn set_cloexec(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: plain system call on our own fd.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) }).map(drop)
}

pub fn set_nonblocking(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: plain system calls on our own fd.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) }).map(drop)
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> Result<(OwnedFd, OwnedFd), Errno> {
    let mut fds = [-1; 2];
    #[cfg(not(target_vendor = "apple"))]
    // SAFETY: `fds` has room for two fds.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    #[cfg(target_vendor = "apple")]
    // SAFETY: as above.
    check(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
    let (read_end, write_end) = (owned(fds[0]), owned(fds[1]));
    #[cfg(target_vendor = "apple")]
    {
        set_cloexec(read_end.as_raw_fd())?;
        set_cloexec(write_end.as_raw_fd())?;
    }
    Ok((read_end, write_end))
}

/// A close-on-exec UNIX stream socket pair (a child's input: `send(MSG_NOSIGNAL)` never raises
/// SIGPIPE, which a pipe's `write` would).
pub fn socket_pair() -> Result<(OwnedFd, OwnedFd), Errno> {
    let mut fds = [-1; 2];
    #[cfg(not(target_vendor = "apple"))]
    let kind = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
    #[cfg(target_vendor = "apple")]
    let kind = libc::SOCK_STREAM;
    // SAFETY: `fds` has room for two fds.
    check(unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, fds.as_mut_ptr()) })?;
    let (ours, theirs) = (owned(fds[0]), owned(fds[1]));
    #[cfg(target_vendor = "apple")]
    {
        set_cloexec(ours.as_raw_fd())?;
        set_cloexec(theirs.as_raw_fd())?;
        let one: c_int = 1;
        // SAFETY: the option value is a live c_int of the size passed.
        unsafe {
            libc::setsockopt(
                ours.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_NOSIGPIPE,
                (&one as *const c_int).cast(),
                std::mem::size_of::<c_int>() as libc::socklen_t,
            )
        };
    }
    Ok((ours, theirs))
}

/// A pseudo-terminal: (master, slave), both close-on-exec.
pub fn open_pty() -> Result<(OwnedFd, OwnedFd), Errno> {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: out-parameters for two fds; NULL name, termios and window size are allowed.
    check(unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    })?;
    let (master, slave) = (owned(master), owned(slave));
    set_cloexec(master.as_raw_fd())?;
    set_cloexec(slave.as_raw_fd())?;
    Ok((master, slave))
}

/// Whether `fd` is open in this process.
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the fd's flags.
    fd >= 0 && unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0
}

/// Reads the child's exec report: `Ok(None)` when the pipe closed empty (exec worked), `Ok(Some)`
/// with the child's errno, `Err` when the pipe itself failed (then nobody knows: the caller stops
/// the child).
pub fn read_report(fd: RawFd) -> Result<Option<Errno>, Errno> {
    let mut bytes = [0u8; 4];
    let mut got = 0;
    while got < bytes.len() {
        // SAFETY: the rest of `bytes` is writable.
        let n = unsafe { libc::read(fd, bytes[got..].as_mut_ptr().cast(), bytes.len() - got) };
        match n {
            0 => break,
            n if n > 0 => got += n as usize,
            _ if errno() == libc::EINTR => continue,
            _ => return Err(errno()),
        }
    }
    match got {
        0 => Ok(None),
        4 => Ok(Some(Errno::from_ne_bytes(bytes))),
        _ => Err(libc::EIO),
    }
}

/// Waits for `pid` (a child whose exec failed: it exits at once).
pub fn wait_blocking(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: `status` is writable; `pid` is our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 && errno() == libc::EINTR {}
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(c_int),
    Signal(c_int),
    /// Someone else reaped it (SIGCHLD ignored by the host, or its own `waitpid(-1)`).
    Unknown,
}

/// `waitpid(pid, WNOHANG)`: None while the child runs.
pub fn try_reap(pid: libc::pid_t) -> Option<Exit> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is writable; `pid` is our own child.
        let got = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if got == 0 {
            return None;
        }
        if got < 0 {
            match errno() {
                libc::EINTR => continue,
                _ => return Some(Exit::Unknown),
            }
        }
        if libc::WIFEXITED(status) {
            return Some(Exit::Code(libc::WEXITSTATUS(status)));
        }
        if libc::WIFSIGNALED(status) {
            return Some(Exit::Signal(libc::WTERMSIG(status)));
        }
        // Stopped or continued (not asked for; some kernels report it anyway): still running.
        return None;
    }
}

/// `kill(pid, signal)`.
pub fn kill(pid: libc::pid_t, signal: c_int) -> Result<(), Errno> {
    // SAFETY: plain system call.
    check(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// A pidfd for our child `pid` (readable once it exits). `Err(ENOSYS)` where the kernel (or
/// valgrind) does not know `pidfd_open`.
#[cfg(target_os = "linux")]
pub fn pidfd_open(pid: libc::pid_t) -> Result<OwnedFd, Errno> {
    // SAFETY: plain system call; the pidfd is close-on-exec by default.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        Err(errno())
    } else {
        Ok(owned(fd as RawFd))
    }
}

#[cfg(not(target_os = "linux"))]
pub fn pidfd_open(_pid: libc::pid_t) -> Result<OwnedFd, Errno> {
    Err(libc::ENOSYS)
}

pub fn is_root() -> bool {
    // SAFETY: plain system call.
    unsafe { libc::geteuid() == 0 }
}

/// The supplementary groups `uid` gets (initgroups, computed in the parent): its user's groups
/// from the group database with `gid` (or the user's own group) first; just that group when the
/// uid has no user entry.
pub fn groups_of(uid: libc::uid_t, gid: Option<libc::gid_t>) -> Vec<libc::gid_t> {
    let mut buffer = vec![0u8; 16384];
    // SAFETY: zeroed passwd is valid; getpwuid_r fills it with pointers into `buffer`.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are live and sized as passed.
    let status = unsafe {
        libc::getpwuid_r(
            uid,
            &mut entry,
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            &mut found,
        )
    };
    if status != 0 || found.is_null() {
        // SAFETY: plain system call.
        return vec![gid.unwrap_or_else(|| unsafe { libc::getegid() })];
    }
    let base = gid.unwrap_or(entry.pw_gid);
    let mut groups: Vec<libc::gid_t> = vec![0; 256];
    loop {
        let mut count = groups.len() as c_int;
        // SAFETY: `pw_name` points into `buffer` (live); `groups` has `count` slots.
        let got = unsafe {
            libc::getgrouplist(
                entry.pw_name,
                base as _,
                groups.as_mut_ptr().cast(),
                &mut count,
            )
        };
        if got >= 0 {
            groups.truncate(count.max(0) as usize);
            return groups;
        }
        if groups.len() >= 65536 {
            return vec![base];
        }
        let larger = (count.max(0) as usize).max(groups.len() * 2);
        groups.resize(larger, 0);
    }
}

/// The fd limit (the fallback close loop stops there).
pub fn open_max() -> c_int {
    // SAFETY: plain library call.
    let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) };
    if max <= 0 {
        1024
    } else {
        max.min(c_int::MAX as libc::c_long) as c_int
    }
}

/// One past the highest signal number.
pub fn signal_limit() -> c_int {
    if cfg!(target_os = "linux") { 65 } else { 32 }
}

/// The C library's own signals (glibc: 32 and 33, below SIGRTMIN), which its `sigaction` refuses
/// (a sanitizer's `sigaction` may not).
pub fn kept_by_libc(signal: c_int) -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    return (32..libc::SIGRTMIN()).contains(&signal);
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    return {
        let _ = signal;
        false
    };
}

/// Sets `signal`'s disposition to SIG_DFL. On Linux through the raw system call, which also takes
/// the C library's own signals. An all-zero kernel sigaction is SIG_DFL with no flags and an empty
/// mask on every architecture.
///
/// # Safety
/// Changes the calling process's signal state (call in a freshly forked child only).
pub unsafe fn default_disposition(signal: c_int) {
    #[cfg(target_os = "linux")]
    {
        let zeroed = [0u64; 8];
        // SAFETY: a readable all-zero kernel sigaction; the old one is not asked for.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                zeroed.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
    }
    #[cfg(not(target_os = "linux"))]
    // SAFETY: a zeroed sigaction with SIG_DFL; plain system call.
    unsafe {
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(signal, &default, std::ptr::null_mut());
    }
}

/// Closes `low..=high` (in a freshly forked child): `close_range` where the kernel has it, else one
/// `close` per fd below `open_max`.
///
/// # Safety
/// Closes fds of the calling process: call in the child only.
pub unsafe fn close_range(low: c_int, high: c_int, open_max: c_int) {
    if low > high || low < 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system call.
        let done = unsafe { libc::syscall(libc::SYS_close_range, low as u32, high as u32, 0u32) };
        if done == 0 {
            return;
        }
    }
    let end = high.min(open_max.saturating_sub(1));
    for fd in low..=end {
        // SAFETY: plain system call (the caller's contract).
        unsafe { libc::close(fd) };
    }
}

/// A function of the C library by name (None: this C library lacks it).
pub fn lookup(name: &CStr) -> Option<*mut libc::c_void> {
    // SAFETY: dlsym with the default handle and a NUL-terminated name.
    let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!found.is_null()).then_some(found)
}

/// Whether the process runs under valgrind (its preload library is in LD_PRELOAD).
pub fn under_valgrind() -> bool {
    std::env::var_os("LD_PRELOAD").is_some_and(|v| v.to_string_lossy().contains("vgpreload"))
}

/// Whether `path` names a file this process may execute (`access(X_OK)` and not a directory).
pub fn executable(path: &CStr) -> Result<(), Errno> {
    // SAFETY: NUL-terminated path.
    check(unsafe { libc::access(path.as_ptr(), libc::X_OK) })?;
    // SAFETY: zeroed stat is valid; stat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: NUL-terminated path, writable stat.
    check(unsafe { libc::stat(path.as_ptr(), &mut st) })?;
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        return Err(libc::EACCES);
    }
    Ok(())
}

/// The program `execvp` would run for `name`: as given when it contains a '/', else the first
/// executable `dir/name` along the parent's PATH (unset: the C library's default, "/bin:/usr/bin").
/// Errors: ENOENT when nothing matches, EACCES when a match exists but none is executable. A
/// relative path with a '/' is the child's to resolve after its `chdir` (`elsewhere`): exec reports.
pub fn find_program(name: &[u8], elsewhere: bool) -> Result<CString, Errno> {
    if name.is_empty() {
        return Err(libc::ENOENT);
    }
    if name.contains(&b'/') {
        let path = CString::new(name).map_err(|_| libc::EINVAL)?;
        if !(elsewhere && name[0] != b'/') {
            executable(&path)?;
        }
        return Ok(path);
    }
    let search = std::env::var_os("PATH")
        .map(std::os::unix::ffi::OsStringExt::into_vec)
        .unwrap_or_else(|| b"/bin:/usr/bin".to_vec());
    let mut denied = false;
    for dir in search.split(|&b| b == b':') {
        let mut candidate = if dir.is_empty() {
            Vec::new()
        } else {
            let mut d = dir.to_vec();
            d.push(b'/');
            d
        };
        candidate.extend_from_slice(name);
        let Ok(candidate) = CString::new(candidate) else {
            continue;
        };
        match executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(libc::EACCES) => denied = true,
            Err(_) => {}
        }
    }
    Err(if denied { libc::EACCES } else { libc::ENOENT })
}

/// A non-blocking call that may succeed later (EAGAIN/EWOULDBLOCK, or interrupted).
pub fn try_again(errno: Errno) -> bool {
    errno == libc::EAGAIN || errno == libc::EWOULDBLOCK || errno == libc::EINTR
}

/// `read(2)` into `buf`.
pub fn read(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 { Err(errno()) } else { Ok(n as usize) }
}

/// Writes from several buffers in order; returns the bytes taken. A WRITE pipe (a socket) sends
/// with `MSG_NOSIGNAL`; the pty master never raises SIGPIPE (a closed slave gives EIO).
pub fn write_vectored(
    fd: RawFd,
    kind: super::spawn::PipeKind,
    bufs: &[&[u8]],
) -> Result<usize, Errno> {
    if kind == super::spawn::PipeKind::Write {
        return crate::net::sys::send_vectored(fd, bufs);
    }
    let iov: Vec<libc::iovec> = bufs
        .iter()
        .take(64)
        .map(|b| libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        })
        .collect();
    // SAFETY: every iovec points to a live buffer of its length.
    let n = unsafe { libc::writev(fd, iov.as_ptr(), iov.len() as c_int) };
    if n < 0 { Err(errno()) } else { Ok(n as usize) }
}
