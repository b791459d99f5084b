//! The datagram system calls (API.md §6.6): sockets, batched receives (`recvmmsg` on Linux, a
//! `recvfrom` loop elsewhere), sends with an optional destination, and the socket options of
//! IMulticastTransport. Like `sys`, an `unsafe` edge that hands plain Rust values to the rest.

use super::sys::{Errno, SockAddr, check, last_errno};
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::raw::c_int;

/// A new non-blocking, close-on-exec datagram socket.
pub fn datagram_socket(domain: c_int) -> Result<OwnedFd, Errno> {
    #[cfg(not(target_vendor = "apple"))]
    // SAFETY: plain system call.
    let fd =
        check(unsafe { libc::socket(domain, libc::SOCK_DGRAM | super::sys::ATOMIC_FLAGS, 0) })?;
    #[cfg(target_vendor = "apple")]
    // SAFETY: plain system call.
    let fd = check(unsafe { libc::socket(domain, libc::SOCK_DGRAM, 0) })?;
    // SAFETY: a fresh fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    #[cfg(target_vendor = "apple")]
    super::sys::finish_fd(&fd)?;
    Ok(fd)
}

/// Receive buffers for a batch of datagrams: `count` slots of `size` bytes each, with room for each
/// sender's address. Kept by the reactor and reused for every read (no allocation per read).
#[derive(Default)]
pub struct DatagramBuffers {
    data: Vec<u8>,
    size: usize,
    names: Vec<libc::sockaddr_storage>,
    /// Per received datagram: its length and the length of its sender's address.
    received: Vec<(usize, libc::socklen_t)>,
    /// The system call's own arrays, pointed at `data` and `names` before each call.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    iovs: Vec<libc::iovec>,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    headers: Vec<libc::mmsghdr>,
}

impl DatagramBuffers {
    /// Lays the buffers out for datagrams of at most `size` bytes, about `total` bytes in all (at
    /// least one slot, at most `max_count`).
    pub fn prepare(&mut self, size: usize, total: usize, max_count: usize) {
        let count = (total / size.max(1)).clamp(1, max_count);
        if self.size != size || self.names.len() != count {
            self.size = size;
            self.data.resize(size * count, 0);
            // SAFETY: all-zero is a valid sockaddr_storage.
            self.names.resize(count, unsafe { zeroed() });
            #[cfg(any(target_os = "linux", target_os = "android"))]
            self.point_headers(count);
        }
        self.received.clear();
    }

    /// Points the system call's headers at the slots and address buffers (once per layout; a
    /// receive then only resets what the kernel wrote).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn point_headers(&mut self, count: usize) {
        let size = self.size;
        let base = self.data.as_mut_ptr();
        self.iovs = (0..count)
            .map(|i| libc::iovec {
                // SAFETY: slot `i` lies inside `data` (count * size bytes).
                iov_base: unsafe { base.add(i * size) }.cast(),
                iov_len: size,
            })
            .collect();
        // SAFETY: all-zero is a valid mmsghdr.
        self.headers = vec![unsafe { zeroed() }; count];
        for i in 0..count {
            let header = &mut self.headers[i].msg_hdr;
            header.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            header.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_iov = &mut self.iovs[i];
            header.msg_iovlen = 1;
        }
    }

    /// The number of slots: a receive that fills fewer found the socket's queue empty.
    pub fn slots(&self) -> usize {
        self.names.len()
    }

    /// The `i`th datagram received (cut to the slot size) and its sender (`None` for an unnamed
    /// UNIX sender or an unknown family).
    pub fn datagram(&self, i: usize) -> (&[u8], Option<SockAddr>) {
        let (len, name_len) = self.received[i];
        let start = i * self.size;
        let bytes = &self.data[start..start + len.min(self.size)];
        (bytes, SockAddr::from_raw(&self.names[i], name_len))
    }
}

/// Receives as many datagrams as are waiting, up to `most` and the batch's slots: `Ok(0)` is never
/// returned (no datagram → `Err(EAGAIN)`). Longer datagrams are cut to the slot size.
pub fn recv_datagrams(
    fd: RawFd,
    buffers: &mut DatagramBuffers,
    most: usize,
) -> Result<usize, Errno> {
    buffers.received.clear();
    let count = buffers.names.len().min(most);
    if count == 0 {
        return Err(libc::EINVAL);
    }
    recv_batch(fd, buffers, count)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn recv_batch(fd: RawFd, buffers: &mut DatagramBuffers, count: usize) -> Result<usize, Errno> {
    if count == 1 {
        return recv_one(fd, buffers);
    }
    // SAFETY: `headers` holds `count` headers pointed at live slots and address buffers of the sizes
    // given (`point_headers`, redone whenever the layout changes); no timeout.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            buffers.headers.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(last_errno());
    }
    let n = n as usize;
    let full_name = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    for i in 0..n {
        let header = &mut buffers.headers[i];
        let entry = (header.msg_len as usize, header.msg_hdr.msg_namelen);
        buffers.received.push(entry);
        // Ready for the next receive: the kernel wrote the address length.
        header.msg_hdr.msg_namelen = full_name;
    }
    Ok(n)
}

/// One datagram with `recvmsg` into the first slot: cheaper than a `recvmmsg` that finds one
/// (which tries the socket's queue once more).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn recv_one(fd: RawFd, buffers: &mut DatagramBuffers) -> Result<usize, Errno> {
    let header = &mut buffers.headers[0].msg_hdr;
    // SAFETY: the first header points at the first slot and its address buffer, of the sizes given
    // (`point_headers`).
    let n = unsafe { libc::recvmsg(fd, header, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(last_errno());
    }
    buffers.received.push((n as usize, header.msg_namelen));
    header.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    Ok(1)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn recv_batch(fd: RawFd, buffers: &mut DatagramBuffers, count: usize) -> Result<usize, Errno> {
    let size = buffers.size;
    for i in 0..count {
        let mut name_len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let slot = &mut buffers.data[i * size..(i + 1) * size];
        // SAFETY: `slot` is writable for `size` bytes; the name buffer and its length are live.
        let n = unsafe {
            libc::recvfrom(
                fd,
                slot.as_mut_ptr().cast(),
                size,
                0,
                (&mut buffers.names[i] as *mut libc::sockaddr_storage).cast(),
                &mut name_len,
            )
        };
        if n < 0 {
            let errno = last_errno();
            return if i > 0 { Ok(i) } else { Err(errno) };
        }
        buffers.received.push((n as usize, name_len));
    }
    Ok(count)
}

/// Sends one datagram made of `parts` (to `to`, an address in the system's form, or to the connected
/// peer), without SIGPIPE.
pub fn send_datagram(
    fd: RawFd,
    parts: &[&[u8]],
    to: Option<&(libc::sockaddr_storage, libc::socklen_t)>,
) -> Result<usize, Errno> {
    // More buffers than one `sendmsg` takes (IOV_MAX, 1024 on Linux): joined into one datagram.
    const MOST_IOVECS: usize = 1024;
    if parts.len() > MOST_IOVECS {
        let joined = parts.concat();
        return send_datagram(fd, &[&joined], to);
    }
    let (name, name_len) = match to {
        Some((storage, len)) => ((storage as *const libc::sockaddr_storage).cast(), *len),
        None => (std::ptr::null(), 0),
    };
    loop {
        let n = if let [one] = parts {
            // SAFETY: `one` is readable for its length; `name` is null or a live address of
            // `name_len` bytes.
            unsafe {
                libc::sendto(
                    fd,
                    one.as_ptr().cast(),
                    one.len(),
                    libc::MSG_NOSIGNAL,
                    name,
                    name_len,
                )
            }
        } else {
            let mut iov: Vec<libc::iovec> = parts
                .iter()
                .map(|p| libc::iovec {
                    iov_base: p.as_ptr() as *mut libc::c_void,
                    iov_len: p.len(),
                })
                .collect();
            // SAFETY: all-zero is a valid msghdr.
            let mut msg: libc::msghdr = unsafe { zeroed() };
            msg.msg_name = name.cast_mut().cast();
            msg.msg_namelen = name_len;
            msg.msg_iov = iov.as_mut_ptr();
            msg.msg_iovlen = iov.len() as _;
            // SAFETY: `msg` points to live iovecs and (optionally) a live address.
            unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) }
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let errno = last_errno();
        if errno != libc::EINTR {
            return Err(errno);
        }
    }
}

/// Sets a socket option whose value is a plain struct or integer.
fn set_option<T: Copy>(fd: RawFd, level: c_int, name: c_int, value: &T) -> Result<(), Errno> {
    // SAFETY: `value` is a live `T` of the size passed.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Reads a socket option whose value is a plain struct or integer (all-zero is a valid `T`).
fn get_option<T: Copy>(fd: RawFd, level: c_int, name: c_int) -> Result<T, Errno> {
    // SAFETY: the callers' `T`s (integers, in_addr) are valid when all-zero.
    let mut value: T = unsafe { zeroed() };
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and sized as passed.
    check(unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut T).cast(), &mut len) })?;
    Ok(value)
}

fn in_addr(ip: Ipv4Addr) -> libc::in_addr {
    libc::in_addr {
        s_addr: u32::from(ip).to_be(),
    }
}

/// Joins (`join`) or leaves an IPv4 group on the interface with address `interface`.
pub fn ipv4_membership(
    fd: RawFd,
    group: Ipv4Addr,
    interface: Ipv4Addr,
    join: bool,
) -> Result<(), Errno> {
    let request = libc::ip_mreq {
        imr_multiaddr: in_addr(group),
        imr_interface: in_addr(interface),
    };
    let name = if join {
        libc::IP_ADD_MEMBERSHIP
    } else {
        libc::IP_DROP_MEMBERSHIP
    };
    set_option(fd, libc::IPPROTO_IP, name, &request)
}

/// Joins or leaves an IPv6 group on interface `index` (0: the system's choice).
pub fn ipv6_membership(fd: RawFd, group: Ipv6Addr, index: u32, join: bool) -> Result<(), Errno> {
    let request = libc::ipv6_mreq {
        ipv6mr_multiaddr: libc::in6_addr {
            s6_addr: group.octets(),
        },
        ipv6mr_interface: index as _,
    };
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let name = if join {
        libc::IPV6_ADD_MEMBERSHIP
    } else {
        libc::IPV6_DROP_MEMBERSHIP
    };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let name = if join {
        libc::IPV6_JOIN_GROUP
    } else {
        libc::IPV6_LEAVE_GROUP
    };
    set_option(fd, libc::IPPROTO_IPV6, name, &request)
}

/// The small integer options of IPv4 multicast (TTL, loopback): an int on Linux, a byte on the BSDs
/// and macOS.
#[cfg(any(target_os = "linux", target_os = "android"))]
type MulticastByte = c_int;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
type MulticastByte = u8;

/// Sets IP_MULTICAST_TTL or IP_MULTICAST_LOOP (`value` 0–255).
#[allow(clippy::unnecessary_cast)] // `MulticastByte` is `u8` off Linux
pub fn set_ipv4_multicast_byte(fd: RawFd, name: c_int, value: u8) -> Result<(), Errno> {
    set_option(fd, libc::IPPROTO_IP, name, &(value as MulticastByte))
}

#[allow(clippy::unnecessary_cast)] // `MulticastByte` is `u8` off Linux
pub fn get_ipv4_multicast_byte(fd: RawFd, name: c_int) -> Result<u8, Errno> {
    get_option::<MulticastByte>(fd, libc::IPPROTO_IP, name).map(|v| v as u8)
}

/// The IPv4 outgoing multicast interface, by address.
pub fn set_ipv4_multicast_interface(fd: RawFd, interface: Ipv4Addr) -> Result<(), Errno> {
    set_option(
        fd,
        libc::IPPROTO_IP,
        libc::IP_MULTICAST_IF,
        &in_addr(interface),
    )
}

pub fn get_ipv4_multicast_interface(fd: RawFd) -> Result<Ipv4Addr, Errno> {
    let addr: libc::in_addr = get_option(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF)?;
    Ok(Ipv4Addr::from(u32::from_be(addr.s_addr)))
}

/// The index of the interface that has IPv6 address `address` (`None` if no interface has it).
pub fn interface_index_of(address: Ipv6Addr) -> Option<u32> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `list` receives a list we free below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return None;
    }
    let mut found = None;
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: a node of the list getifaddrs gave us, alive until freeifaddrs.
        let node = unsafe { &*entry };
        entry = node.ifa_next;
        if node.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: a non-null address of the node; the family tells its real type.
        let family = c_int::from(unsafe { (*node.ifa_addr).sa_family });
        if family != libc::AF_INET6 {
            continue;
        }
        // SAFETY: an AF_INET6 address is a sockaddr_in6.
        let sin6 = unsafe { &*(node.ifa_addr as *const libc::sockaddr_in6) };
        if Ipv6Addr::from(sin6.sin6_addr.s6_addr) == address {
            // SAFETY: the node's name is a NUL-terminated string.
            let index = unsafe { libc::if_nametoindex(node.ifa_name) };
            if index != 0 {
                found = Some(index);
                break;
            }
        }
    }
    // SAFETY: the list from getifaddrs above, freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

/// The socket type (`SOCK_STREAM`, `SOCK_DGRAM`...).
pub fn socket_type(fd: RawFd) -> Result<c_int, Errno> {
    get_option::<c_int>(fd, libc::SOL_SOCKET, libc::SO_TYPE)
}

/// An int-valued option (IPv6 multicast hops, loop and interface index; SO_BROADCAST).
pub fn set_int(fd: RawFd, level: c_int, name: c_int, value: c_int) -> Result<(), Errno> {
    set_option(fd, level, name, &value)
}

pub fn get_int(fd: RawFd, level: c_int, name: c_int) -> Result<c_int, Errno> {
    get_option::<c_int>(fd, level, name)
}
