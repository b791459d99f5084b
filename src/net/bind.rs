//! Binding local addresses: what listening ports and datagram ports share — the address of an
//! `interface` argument, IPV6_V6ONLY, `bind` with its errors mapped, and the socket files of UNIX
//! paths (their mode, and unlinking them when the port ends).

use super::address;
use super::sys::{self, SockAddr};
use crate::status::{Error, Result};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6};
use std::os::fd::OwnedFd;
use std::os::raw::c_int;

/// The local address for `port` on `interface`: "" = all IPv4 addresses, else an IP literal ("::"
/// makes an IPv6 address; "fe80::1%eth0" carries its scope). Anything else →
/// `Error::InvalidAddress`.
pub fn interface_address(port: u16, interface: &str) -> Result<SockAddr> {
    let (ip, scope) = if interface.is_empty() {
        (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
    } else {
        address::parse_ip_literal(interface).ok_or(Error::InvalidAddress)?
    };
    Ok(SockAddr::Ip(match ip {
        IpAddr::V4(v4) => SocketAddr::from((v4, port)),
        IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)),
    }))
}

/// IPV6_V6ONLY, set explicitly either way (API.md §6.7), on an IPv6 socket; nothing for others.
pub fn set_ipv6_only(fd: &OwnedFd, addr: &SockAddr, only: bool) -> Result<()> {
    if addr.domain() != libc::AF_INET6 {
        return Ok(());
    }
    sys::set_int_option(
        sys::raw(fd),
        libc::IPPROTO_IPV6,
        libc::IPV6_V6ONLY,
        c_int::from(only),
    )
    .map_err(Error::Os)
}

/// `bind`: an address in use → `Error::AddressInUse`, one this host does not have →
/// `Error::InvalidAddress`, others `Error::Os`.
pub fn bind(fd: &OwnedFd, addr: &SockAddr) -> Result<()> {
    sys::bind(sys::raw(fd), addr).map_err(|e| match e {
        libc::EADDRINUSE => Error::AddressInUse,
        libc::EADDRNOTAVAIL => Error::InvalidAddress,
        e => Error::Os(e),
    })
}

/// After binding `addr`: a UNIX path's file gets `mode` and is returned, to be removed when the port
/// ends (an abstract name or an IP address has none). If the mode cannot be set the file is removed
/// again.
pub fn claim_socket_file(addr: &SockAddr, mode: u32) -> Result<Option<Vec<u8>>> {
    let file = match addr {
        SockAddr::Unix(raw) if raw.first() != Some(&0) => raw.clone(),
        _ => return Ok(None),
    };
    if let Err(e) = sys::chmod(&file, mode) {
        sys::unlink(&file);
        return Err(Error::Os(e));
    }
    Ok(Some(file))
}

/// Removes a socket file of ours (`claim_socket_file`), if there is one.
pub fn remove_socket_file(file: &Option<Vec<u8>>) {
    if let Some(path) = file {
        sys::unlink(path);
    }
}
