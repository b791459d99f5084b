//! `reactor_address_t` (API.md §6.2): building one from a socket address, checking one the host gives
//! us, and formatting it ("127.0.0.1:80", "[::1]:80", "/run/x.sock", "@name").

use super::sys::{self, SockAddr};
use crate::status::{Error, Result};
use crate::types::{
    REACTOR_ADDRESS_HOST_MAX, REACTOR_FAMILY_INET, REACTOR_FAMILY_INET6, REACTOR_FAMILY_UNIX,
    reactor_address_t,
};
use std::net::{IpAddr, SocketAddr};
use std::os::raw::c_char;

/// An all-zero address (family 0: not a valid address until filled in).
pub fn empty() -> reactor_address_t {
    reactor_address_t {
        family: 0,
        port: 0,
        flow_info: 0,
        scope_id: 0,
        host: [0; REACTOR_ADDRESS_HOST_MAX],
    }
}

/// The numeric address of an IP socket address (IPv4-mapped IPv6 addresses stay IPv6, as the socket
/// reported them).
pub fn from_socket_addr(addr: &SocketAddr) -> reactor_address_t {
    let mut out = empty();
    match addr {
        SocketAddr::V4(v4) => {
            out.family = REACTOR_FAMILY_INET;
            out.port = v4.port();
            set_host_display(&mut out, v4.ip());
        }
        SocketAddr::V6(v6) => {
            out.family = REACTOR_FAMILY_INET6;
            out.port = v6.port();
            out.flow_info = v6.flowinfo();
            out.scope_id = v6.scope_id();
            set_host_display(&mut out, v6.ip());
        }
    }
    out
}

/// The numeric address of any socket address the library handles (UNIX: the path, "@name" for an
/// abstract name, "" for an unnamed socket).
pub fn from_sock_addr(addr: &SockAddr) -> reactor_address_t {
    match addr {
        SockAddr::Ip(ip) => from_socket_addr(ip),
        SockAddr::Unix(path) => {
            let mut out = empty();
            out.family = REACTOR_FAMILY_UNIX;
            let text = match path.split_first() {
                Some((0, name)) => format!("@{}", String::from_utf8_lossy(name)),
                _ => String::from_utf8_lossy(path).into_owned(),
            };
            set_host(&mut out, &text);
            out
        }
    }
}

/// The socket address of a UNIX path as the API takes it ("@name" = Linux abstract name).
/// `Error::InvalidAddress` if it does not fit `sun_path` or holds a NUL.
pub fn unix_sock_addr(path: &str) -> Result<SockAddr> {
    let bytes = path.as_bytes();
    // "" and "@" (an abstract name of no bytes) name nothing (API.md §6.7).
    if bytes.is_empty() || bytes == b"@" || bytes.contains(&0) {
        return Err(Error::InvalidAddress);
    }
    let raw: Vec<u8> = match bytes.strip_prefix(b"@") {
        Some(name) => std::iter::once(0).chain(name.iter().copied()).collect(),
        None => bytes.to_vec(),
    };
    // A filesystem path needs room for its NUL; an abstract name fills the array exactly at most.
    let room = sys::unix_path_capacity() - usize::from(raw[0] != 0);
    if raw.len() > room {
        return Err(Error::InvalidAddress);
    }
    Ok(SockAddr::Unix(raw))
}

/// Copies `host` into the address (truncated to fit, always NUL-terminated: every caller passes text
/// known to fit, a numeric IP or a checked path).
pub fn set_host(out: &mut reactor_address_t, host: &str) {
    let bytes = host.as_bytes();
    let n = bytes.len().min(REACTOR_ADDRESS_HOST_MAX - 1);
    for (dst, src) in out.host.iter_mut().zip(&bytes[..n]) {
        *dst = *src as c_char;
    }
    out.host[n] = 0;
}

/// Formats `host` into the address's host field with no allocation (an accept or a read of a
/// datagram does this for every peer).
fn set_host_display(out: &mut reactor_address_t, host: impl std::fmt::Display) {
    struct HostField<'a> {
        field: &'a mut [c_char; REACTOR_ADDRESS_HOST_MAX],
        len: usize,
    }
    impl std::fmt::Write for HostField<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            for &byte in s.as_bytes() {
                if self.len + 1 >= self.field.len() {
                    return Err(std::fmt::Error); // truncated, as set_host truncates
                }
                self.field[self.len] = byte as c_char;
                self.len += 1;
            }
            Ok(())
        }
    }
    let mut field = HostField {
        field: &mut out.host,
        len: 0,
    };
    let _ = std::fmt::Write::write_fmt(&mut field, format_args!("{host}"));
    let len = field.len;
    out.host[len] = 0;
}

/// The host text of an address: up to its NUL (`Error::Invalid` if there is none, or it is not UTF-8).
pub fn host_str(a: &reactor_address_t) -> Result<String> {
    let end = a.host.iter().position(|&c| c == 0).ok_or(Error::Invalid)?;
    let bytes: Vec<u8> = a.host[..end].iter().map(|&c| c as u8).collect();
    String::from_utf8(bytes).map_err(|_| Error::Invalid)
}

/// The socket address of a numeric INET or INET6 address a host gave us (its family must match its
/// host; a v6 address keeps its scope id). Anything else (a name, UNIX, an unknown family):
/// `Error::InvalidAddress`.
pub fn to_socket_addr(a: &reactor_address_t) -> Result<SocketAddr> {
    let host = host_str(a).map_err(|_| Error::InvalidAddress)?;
    let ip: IpAddr = host.parse().map_err(|_| Error::InvalidAddress)?;
    match (a.family, ip) {
        (REACTOR_FAMILY_INET, IpAddr::V4(v4)) => Ok(SocketAddr::from((v4, a.port))),
        (REACTOR_FAMILY_INET6, IpAddr::V6(v6)) => Ok(SocketAddr::V6(std::net::SocketAddrV6::new(
            v6,
            a.port,
            a.flow_info,
            a.scope_id,
        ))),
        _ => Err(Error::InvalidAddress),
    }
}

/// The text form: "127.0.0.1:80", "[::1]:80", "/run/x.sock", "@name", "" (an unnamed UNIX socket).
/// `Error::Invalid` for an unknown family or a host without its NUL.
pub fn format(a: &reactor_address_t) -> Result<String> {
    let host = host_str(a)?;
    match a.family {
        REACTOR_FAMILY_INET => Ok(format!("{host}:{}", a.port)),
        REACTOR_FAMILY_INET6 => Ok(format!("[{host}]:{}", a.port)),
        REACTOR_FAMILY_UNIX => Ok(host),
        _ => Err(Error::Invalid),
    }
}

/// An IP literal as the API accepts one: "127.0.0.1", "::1", and for IPv6 an optional "%scope"
/// (a numeric interface index or an interface name); no brackets, no port.
pub fn parse_ip_literal(text: &str) -> Option<(IpAddr, u32)> {
    let (ip, scope) = match text.split_once('%') {
        Some((ip, scope)) => (ip, Some(scope)),
        None => (text, None),
    };
    let ip: IpAddr = ip.parse().ok()?;
    let scope_id = match (ip, scope) {
        (_, None) => 0,
        (IpAddr::V4(_), Some(_)) => return None,
        (IpAddr::V6(_), Some(scope)) => scope_index(scope)?,
    };
    Some((ip, scope_id))
}

fn scope_index(scope: &str) -> Option<u32> {
    if let Ok(index) = scope.parse::<u32>() {
        return Some(index);
    }
    let name = std::ffi::CString::new(scope).ok()?;
    let index = sys::interface_index(&name);
    (index != 0).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

    #[test]
    fn socket_addresses_format_as_api_md_shows() {
        let v4 = from_socket_addr(&SocketAddr::from((Ipv4Addr::LOCALHOST, 80)));
        assert_eq!(v4.family, REACTOR_FAMILY_INET);
        assert_eq!(format(&v4).unwrap(), "127.0.0.1:80");
        let v6 = from_socket_addr(&SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::LOCALHOST,
            443,
            7,
            3,
        )));
        assert_eq!(
            (v6.family, v6.port, v6.flow_info, v6.scope_id),
            (REACTOR_FAMILY_INET6, 443, 7, 3)
        );
        assert_eq!(host_str(&v6).unwrap(), "::1", "no %scope in host");
        assert_eq!(format(&v6).unwrap(), "[::1]:443");
    }

    #[test]
    fn unix_and_bad_addresses() {
        let mut a = empty();
        a.family = REACTOR_FAMILY_UNIX;
        set_host(&mut a, "@name");
        assert_eq!(format(&a).unwrap(), "@name");
        set_host(&mut a, "");
        assert_eq!(format(&a).unwrap(), "");
        a.family = 9;
        assert_eq!(format(&a), Err(Error::Invalid));
        a.family = REACTOR_FAMILY_UNIX;
        a.host = [b'x' as c_char; REACTOR_ADDRESS_HOST_MAX];
        assert_eq!(format(&a), Err(Error::Invalid), "no NUL");
        assert_eq!(unix_sock_addr(""), Err(Error::InvalidAddress));
        assert_eq!(unix_sock_addr("@"), Err(Error::InvalidAddress));
        assert_eq!(unix_sock_addr("@x"), Ok(SockAddr::Unix(vec![0, b'x'])));
    }

    #[test]
    fn ip_literals() {
        assert_eq!(
            parse_ip_literal("10.0.0.1"),
            Some((IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 0))
        );
        assert_eq!(
            parse_ip_literal("fe80::1%2"),
            Some(("fe80::1".parse().unwrap(), 2))
        );
        assert_eq!(parse_ip_literal("10.0.0.1%2"), None);
        assert_eq!(parse_ip_literal("[::1]"), None);
        assert_eq!(parse_ip_literal("localhost"), None);
        assert_eq!(parse_ip_literal("fe80::1%no-such-interface-x"), None);
    }
}
