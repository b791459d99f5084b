//! The socket system calls networking needs: the one `unsafe` edge of `net`. Every function takes and
//! returns plain Rust values (owned fds, socket addresses, errnos), so the rest of the layer is safe.
//! Sockets are created non-blocking and close-on-exec; sends use `MSG_NOSIGNAL`, so no write ever
//! raises SIGPIPE in the host.

use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::raw::c_int;

/// An errno.
pub type Errno = i32;

pub(super) fn last_errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// A socket address the library uses: IP, or UNIX (a path; a leading NUL byte marks a Linux abstract
/// name; empty = unnamed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockAddr {
    Ip(SocketAddr),
    Unix(Vec<u8>),
}

/// Bytes available for a UNIX socket path (`sun_path`), the terminating NUL of a filesystem path
/// included.
pub fn unix_path_capacity() -> usize {
    // SAFETY: an all-zero sockaddr_un is a valid value.
    let addr: libc::sockaddr_un = unsafe { zeroed() };
    addr.sun_path.len()
}

impl SockAddr {
    pub fn domain(&self) -> c_int {
        match self {
            SockAddr::Ip(SocketAddr::V4(_)) => libc::AF_INET,
            SockAddr::Ip(SocketAddr::V6(_)) => libc::AF_INET6,
            SockAddr::Unix(_) => libc::AF_UNIX,
        }
    }

    /// The raw form for bind/connect.
    pub(super) fn to_raw(&self) -> (libc::sockaddr_storage, libc::socklen_t) {
        // SAFETY: an all-zero sockaddr_storage is valid; each arm writes a smaller sockaddr into it.
        let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
        let len = match self {
            SockAddr::Ip(SocketAddr::V4(v4)) => {
                // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
                let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = v4.port().to_be();
                sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
                size_of::<libc::sockaddr_in>()
            }
            SockAddr::Ip(SocketAddr::V6(v6)) => {
                // SAFETY: as above.
                let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = v6.port().to_be();
                sin6.sin6_flowinfo = v6.flowinfo().to_be();
                sin6.sin6_addr.s6_addr = v6.ip().octets();
                sin6.sin6_scope_id = v6.scope_id();
                size_of::<libc::sockaddr_in6>()
            }
            SockAddr::Unix(path) => {
                // SAFETY: as above.
                let sun = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_un) };
                sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
                let n = path.len().min(sun.sun_path.len());
                for (dst, src) in sun.sun_path.iter_mut().zip(&path[..n]) {
                    *dst = *src as libc::c_char;
                }
                let base = std::mem::offset_of!(libc::sockaddr_un, sun_path);
                // A filesystem path is NUL-terminated; an abstract name counts exactly its bytes.
                let abstract_name = path.first() == Some(&0);
                base + n + usize::from(!abstract_name && n < sun.sun_path.len())
            }
        };
        (storage, len as libc::socklen_t)
    }

    pub(super) fn from_raw(
        storage: &libc::sockaddr_storage,
        len: libc::socklen_t,
    ) -> Option<SockAddr> {
        let len = len as usize;
        // Only the first `len` bytes are the address: the rest may be left from an earlier call
        // (receive buffers are reused, and an unnamed UNIX sender's address has length 0).
        if len
            < std::mem::offset_of!(libc::sockaddr_storage, ss_family)
                + size_of::<libc::sa_family_t>()
        {
            return None;
        }
        match storage.ss_family as c_int {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let sin = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Some(SockAddr::Ip(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(sin.sin_port),
                ))))
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let sin6 = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
                Some(SockAddr::Ip(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    u32::from_be(sin6.sin6_flowinfo),
                    sin6.sin6_scope_id,
                ))))
            }
            libc::AF_UNIX => {
                // SAFETY: the family says the storage holds a sockaddr_un.
                let sun = unsafe { &*(storage as *const _ as *const libc::sockaddr_un) };
                let base = std::mem::offset_of!(libc::sockaddr_un, sun_path);
                let n = len.saturating_sub(base).min(sun.sun_path.len());
                let mut path: Vec<u8> = sun.sun_path[..n].iter().map(|&c| c as u8).collect();
                if path.first() != Some(&0) {
                    // A filesystem path: up to its NUL.
                    if let Some(end) = path.iter().position(|&b| b == 0) {
                        path.truncate(end);
                    }
                }
                Some(SockAddr::Unix(path))
            }
            _ => None,
        }
    }
}

pub(super) fn check(ret: c_int) -> Result<c_int, Errno> {
    if ret < 0 { Err(last_errno()) } else { Ok(ret) }
}

/// Where `socket` and `accept4` take SOCK_NONBLOCK | SOCK_CLOEXEC (one call, no window in which a
/// fork could inherit the fd). Elsewhere (macOS) the flags are set right after, with `fcntl`.
#[cfg(not(target_vendor = "apple"))]
pub(super) const ATOMIC_FLAGS: c_int = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;

/// Makes a fresh fd close-on-exec and non-blocking (where that could not be asked atomically), and
/// keeps writes on it from raising SIGPIPE where MSG_NOSIGNAL alone does not (macOS: SO_NOSIGPIPE).
#[cfg(target_vendor = "apple")]
pub(super) fn finish_fd(fd: &OwnedFd) -> Result<(), Errno> {
    let raw = fd.as_raw_fd();
    // SAFETY: plain system calls on our own fd.
    check(unsafe { libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC) })?;
    // SAFETY: as above.
    let flags = check(unsafe { libc::fcntl(raw, libc::F_GETFL) })?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    let _ = set_int_option(raw, libc::SOL_SOCKET, libc::SO_NOSIGPIPE, 1);
    Ok(())
}

/// A new non-blocking, close-on-exec stream socket.
pub fn stream_socket(domain: c_int) -> Result<OwnedFd, Errno> {
    #[cfg(not(target_vendor = "apple"))]
    // SAFETY: plain system call.
    let fd = check(unsafe { libc::socket(domain, libc::SOCK_STREAM | ATOMIC_FLAGS, 0) })?;
    #[cfg(target_vendor = "apple")]
    // SAFETY: plain system call.
    let fd = check(unsafe { libc::socket(domain, libc::SOCK_STREAM, 0) })?;
    // SAFETY: a fresh fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    #[cfg(target_vendor = "apple")]
    finish_fd(&fd)?;
    Ok(fd)
}

pub fn set_int_option(fd: RawFd, level: c_int, name: c_int, value: c_int) -> Result<(), Errno> {
    // SAFETY: the option value is a live c_int of the size passed.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const c_int).cast(),
            size_of::<c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

pub fn get_int_option(fd: RawFd, level: c_int, name: c_int) -> Result<c_int, Errno> {
    let mut value: c_int = 0;
    let mut len = size_of::<c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and sized as passed.
    check(unsafe {
        libc::getsockopt(fd, level, name, (&mut value as *mut c_int).cast(), &mut len)
    })?;
    Ok(value)
}

/// Closing with RST: `SO_LINGER` on with a zero timeout.
pub fn set_linger_zero(fd: RawFd) -> Result<(), Errno> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the option value is a live linger struct of the size passed.
    check(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    })
    .map(drop)
}

pub fn bind(fd: RawFd, addr: &SockAddr) -> Result<(), Errno> {
    let (storage, len) = addr.to_raw();
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    check(unsafe { libc::bind(fd, (&storage as *const libc::sockaddr_storage).cast(), len) })
        .map(drop)
}

/// A non-blocking connect: `Err(EINPROGRESS)` while it goes on.
pub fn connect(fd: RawFd, addr: &SockAddr) -> Result<(), Errno> {
    let (storage, len) = addr.to_raw();
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    check(unsafe { libc::connect(fd, (&storage as *const libc::sockaddr_storage).cast(), len) })
        .map(drop)
}

pub fn listen(fd: RawFd, backlog: c_int) -> Result<(), Errno> {
    // SAFETY: plain system call.
    check(unsafe { libc::listen(fd, backlog) }).map(drop)
}

/// Accepts one pending connection: `Ok(None)` when there is none (EAGAIN).
pub fn accept(fd: RawFd, want_peer: bool) -> Result<Option<(OwnedFd, Option<SockAddr>)>, Errno> {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // Without a use for the peer's address the kernel need not copy it out.
    let (addr, len_ptr): (*mut libc::sockaddr, *mut libc::socklen_t) = if want_peer {
        (
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    } else {
        (std::ptr::null_mut(), std::ptr::null_mut())
    };
    #[cfg(not(target_vendor = "apple"))]
    // SAFETY: `addr`/`len_ptr` are both null or point to live `storage`/`len`, sized as passed.
    let ret = unsafe { libc::accept4(fd, addr, len_ptr, ATOMIC_FLAGS) };
    #[cfg(target_vendor = "apple")]
    // SAFETY: `addr`/`len_ptr` are both null or point to live `storage`/`len`, sized as passed.
    let ret = unsafe { libc::accept(fd, addr, len_ptr) };
    if ret < 0 {
        let errno = last_errno();
        return if errno == libc::EAGAIN || errno == libc::EWOULDBLOCK {
            Ok(None)
        } else {
            Err(errno)
        };
    }
    // SAFETY: a fresh fd that nothing else owns.
    let conn = unsafe { OwnedFd::from_raw_fd(ret) };
    #[cfg(target_vendor = "apple")]
    finish_fd(&conn)?;
    let peer = if want_peer {
        SockAddr::from_raw(&storage, len)
    } else {
        None
    };
    Ok(Some((conn, peer)))
}

fn name_of(
    fd: RawFd,
    call: unsafe extern "C" fn(c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> c_int,
) -> Result<SockAddr, Errno> {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage`/`len` are live and sized as passed.
    check(unsafe {
        call(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    })?;
    SockAddr::from_raw(&storage, len).ok_or(libc::EAFNOSUPPORT)
}

pub fn local_addr(fd: RawFd) -> Result<SockAddr, Errno> {
    name_of(fd, libc::getsockname)
}

pub fn peer_addr(fd: RawFd) -> Result<SockAddr, Errno> {
    name_of(fd, libc::getpeername)
}

/// Reads into `buf`: `Ok(0)` is end of stream; EAGAIN comes back as `Err(EAGAIN)`.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        Err(last_errno())
    } else {
        Ok(n as usize)
    }
}

/// Iovecs of one vectored send, on the stack.
const SEND_IOV: usize = 64;

/// Sends from several buffers in order, without SIGPIPE; returns the bytes taken. One buffer is a
/// plain `send`; more go in one `sendmsg` (at most 64 per call, on the stack).
pub fn send_vectored(fd: RawFd, bufs: &[&[u8]]) -> Result<usize, Errno> {
    if let [one] = bufs {
        // SAFETY: `one` is readable for its length.
        let n = unsafe { libc::send(fd, one.as_ptr().cast(), one.len(), libc::MSG_NOSIGNAL) };
        return if n < 0 {
            Err(last_errno())
        } else {
            Ok(n as usize)
        };
    }
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; SEND_IOV];
    let count = bufs.len().min(SEND_IOV);
    for (slot, b) in iov.iter_mut().zip(bufs) {
        slot.iov_base = b.as_ptr() as *mut libc::c_void;
        slot.iov_len = b.len();
    }
    // SAFETY: all-zero is a valid msghdr.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = count as _;
    // SAFETY: `msg` points to `iov`, whose buffers are live for the call.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(last_errno())
    } else {
        Ok(n as usize)
    }
}

/// Most fds passed in one message (and received in one read).
pub const MAX_PASSED_FDS: usize = 16;

/// Like `send_vectored`, with `fds` attached to the first byte (SCM_RIGHTS; UNIX sockets).
pub fn send_with_fds(fd: RawFd, bufs: &[&[u8]], fds: &[RawFd]) -> Result<usize, Errno> {
    if fds.is_empty() {
        return send_vectored(fd, bufs);
    }
    let iov: Vec<libc::iovec> = bufs
        .iter()
        .take(SEND_IOV)
        .map(|b| libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        })
        .collect();
    let payload = std::mem::size_of_val(fds);
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(payload as u32) } as usize;
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: all-zero is a valid msghdr.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = iov.len() as _;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `control` has room for one header with `payload` bytes (CMSG_SPACE); the macros only
    // compute addresses inside it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload as u32) as _;
        std::ptr::copy_nonoverlapping(
            fds.as_ptr(),
            libc::CMSG_DATA(cmsg).cast::<RawFd>(),
            fds.len(),
        );
    }
    // SAFETY: `msg` points to live buffers for the call.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(last_errno())
    } else {
        Ok(n as usize)
    }
}

/// Reads into `buf` and collects fds passed with the bytes (close-on-exec). `Ok((0, _))` is end of
/// stream.
pub fn recv_with_fds(fd: RawFd, buf: &mut [u8]) -> Result<(usize, Vec<OwnedFd>), Errno> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let payload = MAX_PASSED_FDS * size_of::<RawFd>();
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(payload as u32) } as usize;
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: all-zero is a valid msghdr.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    #[cfg(not(target_vendor = "apple"))]
    let flags = libc::MSG_CMSG_CLOEXEC;
    #[cfg(target_vendor = "apple")]
    let flags = 0; // macOS has no MSG_CMSG_CLOEXEC: received fds get FD_CLOEXEC below
    // SAFETY: `msg` points to live, writable buffers of the sizes given.
    let n = unsafe { libc::recvmsg(fd, &mut msg, flags) };
    if n < 0 {
        return Err(last_errno());
    }
    let mut fds = Vec::new();
    // SAFETY: the kernel filled `control` up to msg_controllen; the CMSG macros walk it within those
    // bounds, and each SCM_RIGHTS payload holds whole fds that are now ours.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let bytes = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
                for i in 0..bytes / size_of::<RawFd>() {
                    let raw = data.cast::<RawFd>().add(i).read_unaligned();
                    #[cfg(target_vendor = "apple")]
                    libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC);
                    fds.push(OwnedFd::from_raw_fd(raw));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, fds))
}

pub fn shutdown_write(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: plain system call.
    check(unsafe { libc::shutdown(fd, libc::SHUT_WR) }).map(drop)
}

/// The pending error of a socket (`SO_ERROR`), 0 for none.
pub fn take_error(fd: RawFd) -> Errno {
    get_int_option(fd, libc::SOL_SOCKET, libc::SO_ERROR).unwrap_or_else(|e| e)
}

/// The socket's family (from its local name: `SO_DOMAIN` is Linux-only), to check adopted fds and
/// tell TCP from UNIX. A non-socket → ENOTSOCK.
pub fn socket_domain(fd: RawFd) -> Result<c_int, Errno> {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage`/`len` are live and sized as passed.
    check(unsafe {
        libc::getsockname(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    })?;
    Ok(c_int::from(storage.ss_family))
}

/// A close-on-exec duplicate of `fd`.
pub fn duplicate(fd: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: plain system call.
    let copy = check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// A close-on-exec, non-blocking duplicate of `fd`.
pub fn duplicate_nonblocking(fd: RawFd) -> Result<OwnedFd, Errno> {
    let copy = duplicate(fd)?;
    // SAFETY: plain system calls on our own fd.
    let flags = check(unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    Ok(copy)
}

pub fn chmod(path: &[u8], mode: u32) -> Result<(), Errno> {
    let path = std::ffi::CString::new(path).map_err(|_| libc::EINVAL)?;
    // SAFETY: a valid NUL-terminated path.
    check(unsafe { libc::chmod(path.as_ptr(), mode as libc::mode_t) }).map(drop)
}

pub fn unlink(path: &[u8]) {
    if let Ok(path) = std::ffi::CString::new(path) {
        // SAFETY: a valid NUL-terminated path; failure (already gone) is fine.
        unsafe { libc::unlink(path.as_ptr()) };
    }
}

/// An fd kept open to be given up when the process runs out of fds (accept at EMFILE).
pub fn open_spare_fd() -> Option<OwnedFd> {
    // SAFETY: a valid NUL-terminated path.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    // SAFETY: a fresh fd that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The index of the network interface called `name`, 0 if there is none.
pub fn interface_index(name: &std::ffi::CStr) -> u32 {
    // SAFETY: a valid NUL-terminated string; the call only reads it.
    unsafe { libc::if_nametoindex(name.as_ptr()) }
}

/// The number of the fd kept in `cell` (a network object's socket; `None` once closed).
pub fn raw_in(cell: &std::cell::Cell<Option<OwnedFd>>) -> Option<RawFd> {
    let fd = cell.take();
    let raw = fd.as_ref().map(raw);
    cell.set(fd);
    raw
}

pub fn raw(fd: &OwnedFd) -> RawFd {
    fd.as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_reported_length_of_an_address_counts() {
        let v4 = SockAddr::Ip("127.0.0.1:4000".parse().unwrap());
        let (storage, len) = v4.to_raw();
        assert_eq!(SockAddr::from_raw(&storage, len), Some(v4));
        // An unnamed UNIX sender: length 0 over a buffer that still holds an earlier address.
        assert_eq!(SockAddr::from_raw(&storage, 0), None);
        // Shorter than its family's address: not that family's address.
        assert_eq!(SockAddr::from_raw(&storage, len - 1), None);
        // A UNIX address with nothing after the family is the unnamed one.
        let (mut storage, _) = SockAddr::Unix(b"/tmp/x".to_vec()).to_raw();
        let family_only = std::mem::offset_of!(libc::sockaddr_un, sun_path) as libc::socklen_t;
        assert_eq!(
            SockAddr::from_raw(&storage, family_only),
            Some(SockAddr::Unix(Vec::new()))
        );
        storage.ss_family = libc::AF_INET as libc::sa_family_t;
        assert_eq!(SockAddr::from_raw(&storage, family_only), None);
    }
}
