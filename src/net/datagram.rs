//! Datagram ports (API.md §6.6, Twisted's udp.Port and unix.DatagramPort): a UDP or UNIX datagram
//! socket, its protocol's callbacks, connected mode and the multicast options.
//!
//! Life: `open` registers the socket and queues `start_protocol`; `stop` closes the socket at once
//! and queues `stop_protocol`, after which the handle dies and the release runs. Reads take batches
//! (`recvmmsg` on Linux) and deliver each datagram with no borrow held, stopping at about 256 KiB
//! per readiness event so other work runs. Writes go out at once (one system call each): the host
//! learns each datagram's fate from the call (a full buffer is `REACTOR_E_OS(EAGAIN)`), which a
//! queue of sends would hide.

use super::address;
use super::bind;
use super::handles;
use super::later::{self, Later};
use super::sys::{self, SockAddr};
use super::sys_datagram as dgram;
use crate::backend::{Interest, PollEvent, Token};
use crate::callback::{UserData, call_datagram_received, call_udp};
use crate::reactor::{Reactor, Source};
use crate::status::{Error, Result};
use crate::types::{
    REACTOR_LISTEN_IPV6_ONLY, REACTOR_LOG_ERROR, REACTOR_UDP_LISTEN_MULTIPLE, reactor_address_t,
    reactor_datagram_protocol_t, reactor_udp_options_t, reactor_udp_t,
};
use std::cell::{Cell, RefCell};
use std::ffi::CStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::{OwnedFd, RawFd};
use std::os::raw::{c_int, c_void};
use std::rc::Rc;

/// Bytes read per readiness event before other work runs (Twisted's `maxThroughput`).
const READ_BUDGET: usize = 256 * 1024;
/// Datagrams read per readiness event at most (empty datagrams count nothing against the bytes).
const READ_MAX_DATAGRAMS: usize = 4096;
/// Receive buffer space for one batch, and the most datagrams in one batch.
const BATCH_BYTES: usize = 256 * 1024;
const BATCH_MAX: usize = 64;

/// Defaults of `reactor_udp_options_t`.
pub fn default_options() -> reactor_udp_options_t {
    reactor_udp_options_t {
        struct_size: std::mem::size_of::<reactor_udp_options_t>() as u32,
        max_packet_size: 8192,
        flags: 0,
        mode: 0o666,
        bind_path: std::ptr::null(),
    }
}

/// Checks the options' values (API.md §6.7: `max_packet_size` 0, unknown flags, a mode above 07777
/// → `Error::Invalid`).
pub fn check_options(options: &reactor_udp_options_t) -> Result<()> {
    let known = REACTOR_UDP_LISTEN_MULTIPLE | REACTOR_LISTEN_IPV6_ONLY;
    if options.max_packet_size == 0 || options.flags & !known != 0 || options.mode > 0o7777 {
        return Err(Error::Invalid);
    }
    Ok(())
}

/// The address family of a port.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Family {
    V4,
    V6,
    Unix,
}

/// The socket for `reactor_listen_udp`: `interface` "" = all IPv4 addresses, else an IP literal.
pub fn udp_socket(port: u16, interface: &str, options: &reactor_udp_options_t) -> Result<OwnedFd> {
    let addr = bind::interface_address(port, interface)?;
    let fd = dgram::datagram_socket(addr.domain()).map_err(Error::Os)?;
    let raw = sys::raw(&fd);
    if options.flags & REACTOR_UDP_LISTEN_MULTIPLE != 0 {
        sys::set_int_option(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1).map_err(Error::Os)?;
        sys::set_int_option(raw, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1).map_err(Error::Os)?;
    }
    bind::set_ipv6_only(&fd, &addr, options.flags & REACTOR_LISTEN_IPV6_ONLY != 0)?;
    bind::bind(&fd, &addr)?;
    Ok(fd)
}

/// Binds a UNIX datagram socket to `path` (an existing path → `Error::AddressInUse`, never
/// unlinked), with `mode` for a file; the file to unlink when the port ends (none for "@name").
fn bind_unix(fd: &OwnedFd, path: &str, mode: u32) -> Result<Option<Vec<u8>>> {
    let addr = address::unix_sock_addr(path)?;
    bind::bind(fd, &addr)?;
    bind::claim_socket_file(&addr, mode)
}

/// The socket for `reactor_listen_unix_datagram`, and its file to unlink at the end.
pub fn unix_socket(
    path: &str,
    options: &reactor_udp_options_t,
) -> Result<(OwnedFd, Option<Vec<u8>>)> {
    address::unix_sock_addr(path)?; // a bad path is refused before a socket is made
    let fd = dgram::datagram_socket(libc::AF_UNIX).map_err(Error::Os)?;
    let file = bind_unix(&fd, path, options.mode)?;
    Ok((fd, file))
}

/// The socket for `reactor_connect_unix_datagram`: bound to `bind_path` if given (else unnamed),
/// connected to `path`; errors are reported here (a missing path → `Error::Os(ENOENT)`).
pub fn connected_unix_socket(
    path: &str,
    bind_path: Option<&str>,
    options: &reactor_udp_options_t,
) -> Result<(OwnedFd, Option<Vec<u8>>, SockAddr)> {
    let peer = address::unix_sock_addr(path)?;
    if let Some(local) = bind_path {
        address::unix_sock_addr(local)?;
    }
    let fd = dgram::datagram_socket(libc::AF_UNIX).map_err(Error::Os)?;
    let file = match bind_path {
        Some(local) => bind_unix(&fd, local, options.mode)?,
        None => None,
    };
    if let Err(e) = sys::connect(sys::raw(&fd), &peer) {
        bind::remove_socket_file(&file);
        return Err(match e {
            libc::ECONNREFUSED => Error::ConnectionRefused,
            e => Error::Os(e),
        });
    }
    Ok((fd, file, peer))
}

/// `reactor_adopt_datagram_port`: a non-blocking duplicate of the host's INET or INET6 datagram
/// socket (a closed fd → `Error::Invalid`; anything else → `Error::Unsupported`).
pub fn adopt_socket(fd: RawFd) -> Result<OwnedFd> {
    let domain = sys::socket_domain(fd).map_err(|e| match e {
        libc::EBADF => Error::Invalid,
        _ => Error::Unsupported,
    })?;
    if domain != libc::AF_INET && domain != libc::AF_INET6 {
        return Err(Error::Unsupported);
    }
    if dgram::socket_type(fd).map_err(|_| Error::Unsupported)? != libc::SOCK_DGRAM {
        return Err(Error::Unsupported);
    }
    sys::duplicate_nonblocking(fd).map_err(Error::Os)
}

pub struct DatagramPort {
    handle: usize,
    /// Taken (closed) when the port stops.
    fd: Cell<Option<OwnedFd>>,
    token: Cell<Option<Token>>,
    protocol: reactor_datagram_protocol_t,
    data: Cell<UserData>,
    max_packet: usize,
    family: Family,
    /// Connected mode: the only peer.
    connected: RefCell<Option<SockAddr>>,
    /// `start_protocol` ran.
    started: Cell<bool>,
    /// Stopped: the socket is closed and `stop_protocol` is on its way.
    stopping: Cell<bool>,
    /// The handle is dead (after `stop_protocol`, at shutdown or free).
    ended: Cell<bool>,
    /// A UNIX socket file of ours, unlinked when the port stops.
    unlink_path: Option<Vec<u8>>,
    /// The last sender, formatted: a peer usually sends many datagrams in a row. Lent to each read
    /// (`None` meanwhile), so callbacks get a reference to it and no borrow is held while they run.
    last_sender: Cell<Option<Box<Sender>>>,
    /// The last destination written to (replies usually go to one peer).
    last_destination: RefCell<Option<LastDestination>>,
    /// How the next readiness event reads (see `ReadPace`).
    pace: Cell<ReadPace>,
}

/// How much a readiness event reads. A port that was ready on the pass before too has a queue
/// (the poll is level-triggered: datagrams left behind make the socket ready at once), and reads
/// `recvmmsg` batches until the queue is empty or the budget is spent. Otherwise it reads once: one
/// datagram with `recvmsg` if its last read found at most one (request/response traffic: a
/// `recvmmsg` that finds one tries the queue a second time), else one batch (a full batch is not
/// followed by a probe of an empty queue). Whatever is left makes the port ready on the next pass,
/// which then reads on. What a host sees is the same either way: the same datagrams, in order.
#[derive(Clone, Copy, Default)]
struct ReadPace {
    /// The last readiness event found at most one datagram.
    sparse: bool,
    /// The reactor pass (`iterations`) of the last readiness event.
    pass: u64,
}

impl DatagramPort {
    /// Makes a port of a bound datagram socket: registered, reachable by handle, `start_protocol` on
    /// a later pass. `connected`: the peer a connected socket already has. `make_data` builds the
    /// host's user data once nothing can fail any more (on error it is not called, and a file this
    /// port would unlink is unlinked).
    pub fn open(
        reactor: &Reactor,
        fd: OwnedFd,
        protocol: reactor_datagram_protocol_t,
        max_packet: usize,
        unlink_path: Option<Vec<u8>>,
        connected: Option<SockAddr>,
        make_data: impl FnOnce() -> UserData,
    ) -> Result<*mut reactor_udp_t> {
        let family = match sys::socket_domain(sys::raw(&fd)) {
            Ok(libc::AF_INET) => Family::V4,
            Ok(libc::AF_INET6) => Family::V6,
            Ok(libc::AF_UNIX) => Family::Unix,
            _ => return Err(Error::Unsupported),
        };
        let handle = match handles::new_datagram(reactor.handle() as usize) {
            Ok(handle) => handle,
            Err(e) => {
                bind::remove_socket_file(&unlink_path);
                return Err(e);
            }
        };
        let port = Rc::new(DatagramPort {
            handle,
            fd: Cell::new(None),
            token: Cell::new(None),
            protocol,
            data: Cell::new(UserData::none()),
            max_packet,
            family,
            connected: RefCell::new(connected),
            started: Cell::new(false),
            stopping: Cell::new(false),
            ended: Cell::new(false),
            unlink_path,
            last_sender: Cell::new(None),
            last_destination: RefCell::new(None),
            pace: Cell::new(ReadPace::default()),
        });
        let registered = reactor
            .register_source(sys::raw(&fd), Interest::READ, port.clone())
            .and_then(|token| {
                later::queue(reactor, Later::StartProtocol(handle))
                    .map(|()| token)
                    .map_err(|code| {
                        let _ = reactor.deregister_source(token);
                        if code == Error::Internal.code() {
                            Error::Internal
                        } else {
                            Error::Closed
                        }
                    })
            });
        match registered {
            Ok(token) => port.token.set(Some(token)),
            Err(e) => {
                port.ended.set(true);
                handles::end_datagram(handle);
                bind::remove_socket_file(&port.unlink_path);
                return Err(e);
            }
        }
        port.fd.set(Some(fd));
        port.data.set(make_data());
        reactor.net.borrow_mut().datagrams.insert(handle, port);
        Ok(handle as *mut reactor_udp_t)
    }

    fn handle(&self) -> *mut reactor_udp_t {
        self.handle as *mut reactor_udp_t
    }

    fn raw_fd(&self) -> Option<RawFd> {
        sys::raw_in(&self.fd)
    }

    fn ud(&self) -> *mut c_void {
        UserData::ptr_in(&self.data)
    }

    /// The open socket (`Error::Closed` once stopping).
    fn open_fd(&self) -> Result<RawFd> {
        self.raw_fd().ok_or(Error::Closed)
    }

    pub fn fileno(&self) -> c_int {
        self.raw_fd().unwrap_or(-1)
    }

    // ----- callbacks --------------------------------------------------------------------------

    fn call(
        &self,
        reactor: &Reactor,
        cb: Option<unsafe extern "C" fn(*mut reactor_udp_t, *mut c_void)>,
    ) {
        if let Some(cb) = cb {
            let (handle, ud) = (self.handle(), self.ud());
            reactor.invoke(|| call_udp(cb, handle, ud));
        }
    }

    /// `start_protocol`, once (`Later::StartProtocol`, or before `stop_protocol` if that comes
    /// first).
    pub fn deliver_start(&self, reactor: &Reactor) {
        if self.started.replace(true) || self.ended.get() {
            return;
        }
        self.call(reactor, self.protocol.start_protocol);
    }

    /// `connection_refused` (`Later::ConnectionRefused`), while the port is open.
    pub fn deliver_refused(&self, reactor: &Reactor) {
        if !self.stopping.get() && !self.ended.get() {
            self.call(reactor, self.protocol.connection_refused);
        }
    }

    /// The end: `start_protocol` if it never ran, `stop_protocol`, then the handle dies and the
    /// release runs (`Later::StopProtocol`, or at shutdown).
    pub fn finish(self: &Rc<Self>, reactor: &Reactor) {
        if self.ended.get() {
            return;
        }
        self.deliver_start(reactor);
        self.call(reactor, self.protocol.stop_protocol);
        self.ended.set(true);
        handles::end_datagram(self.handle);
        let removed = reactor.net.borrow_mut().datagrams.remove(&self.handle);
        drop(removed);
        reactor.retire(self.data.take());
    }

    /// Closes the socket (and unlinks a file of ours) now; the rest of the end is `finish`.
    fn close_socket(&self, reactor: &Reactor) {
        if let Some(token) = self.token.take() {
            let _ = reactor.deregister_source(token);
        }
        drop(self.fd.take());
        bind::remove_socket_file(&self.unlink_path);
        self.stopping.set(true);
    }

    /// `stop_listening`: the socket closes now; `stop_protocol` and the release come on a later
    /// pass. A second call does nothing.
    pub fn stop(self: &Rc<Self>, reactor: &Reactor) {
        if self.stopping.get() {
            return;
        }
        self.close_socket(reactor);
        // Refused only once the reactor stopped for good: `reactor_free` then releases it.
        let _ = later::queue(reactor, Later::StopProtocol(self.handle));
    }

    // ----- reading ----------------------------------------------------------------------------

    fn read_some(self: &Rc<Self>, reactor: &Reactor) {
        let pass = reactor.stats.iterations.get();
        let pace = self.pace.get();
        let queued = pass == pace.pass.wrapping_add(1);
        let one_only = pace.sparse && !queued;
        let mut buffers = reactor.net.borrow_mut().lend_datagram_buffers();
        let mut sender = self.last_sender.take().unwrap_or_default();
        buffers.prepare(self.max_packet, BATCH_BYTES, BATCH_MAX);
        let most = if one_only { 1 } else { buffers.slots() };
        let mut bytes = 0;
        let mut count = 0;
        'reading: while bytes < READ_BUDGET && count < READ_MAX_DATAGRAMS {
            let Some(fd) = self.raw_fd() else { break };
            let received = match dgram::recv_datagrams(fd, &mut buffers, most) {
                Ok(n) => n,
                Err(libc::EINTR) => continue,
                Err(libc::ECONNREFUSED) => {
                    // A connected port's earlier datagram was refused; the socket reads on.
                    if self.connected.borrow().is_some() {
                        let _ = later::queue(reactor, Later::ConnectionRefused(self.handle));
                    }
                    continue;
                }
                Err(e) => {
                    if e != libc::EAGAIN && e != libc::EWOULDBLOCK {
                        reactor.log(
                            REACTOR_LOG_ERROR,
                            &format!(
                                "datagram receive failed: {}",
                                std::io::Error::from_raw_os_error(e)
                            ),
                        );
                    }
                    break;
                }
            };
            for i in 0..received {
                let (data, from) = buffers.datagram(i);
                bytes += data.len();
                count += 1;
                sender.update(from);
                if let Some(cb) = self.protocol.datagram_received {
                    let (handle, ud) = (self.handle(), self.ud());
                    let from = &sender.formatted;
                    reactor.invoke(|| call_datagram_received(cb, handle, data, from, ud));
                }
                if self.stopping.get() {
                    break 'reading; // stopped inside the callback: nothing more is delivered
                }
            }
            if !queued || received < most {
                break; // one read was wanted, or the queue was empty (a later datagram makes the
                // socket readable again)
            }
        }
        reactor.net.borrow_mut().return_datagram_buffers(buffers);
        self.last_sender.set(Some(sender));
        self.pace.set(ReadPace {
            sparse: count <= 1,
            pass,
        });
    }

    // ----- writing ----------------------------------------------------------------------------

    /// The destination of a write or connect: an IP literal of the port's family with a port other
    /// than 0, or (UNIX) a path.
    fn destination(&self, host: &str, port: u16) -> Result<SockAddr> {
        match self.family {
            Family::Unix => address::unix_sock_addr(host),
            Family::V4 | Family::V6 => {
                let (ip, scope) = address::parse_ip_literal(host).ok_or(Error::InvalidAddress)?;
                if port == 0 {
                    return Err(Error::InvalidAddress);
                }
                match (self.family, ip) {
                    (Family::V4, IpAddr::V4(v4)) => Ok(SockAddr::Ip(SocketAddr::from((v4, port)))),
                    (Family::V6, IpAddr::V6(v6)) => Ok(SockAddr::Ip(SocketAddr::V6(
                        SocketAddrV6::new(v6, port, 0, scope),
                    ))),
                    _ => Err(Error::InvalidAddress),
                }
            }
        }
    }

    /// Makes `host`:`port` the port's last destination (a reply usually goes where the last one
    /// went, and then nothing is checked, parsed or converted again). Text that is not UTF-8 is
    /// `Error::InvalidAddress`; a bad destination leaves the last one as it was.
    fn remember_destination(&self, host: &CStr, port: u16) -> Result<()> {
        if let Some(last) = &*self.last_destination.borrow()
            && last.port == port
            && *last.host == *host.to_bytes()
        {
            return Ok(());
        }
        let text = host.to_str().map_err(|_| Error::InvalidAddress)?;
        let addr = self.destination(text, port)?;
        *self.last_destination.borrow_mut() = Some(LastDestination {
            host: host.to_bytes().into(),
            port,
            raw: addr.to_raw(),
            addr,
        });
        Ok(())
    }

    /// `udp_write`/`writev`: one datagram of `parts`, to `dest` (host, port) or, with `None`, to the
    /// connected peer.
    pub fn write(
        &self,
        reactor: &Reactor,
        parts: &[&[u8]],
        dest: Option<(&CStr, u16)>,
    ) -> Result<()> {
        let fd = self.open_fd()?;
        let connected = self.connected.borrow().is_some();
        let sent = match dest {
            None if !connected => return Err(Error::InvalidAddress),
            None => dgram::send_datagram(fd, parts, None),
            Some((host, port)) => {
                self.remember_destination(host, port)?;
                let last = self.last_destination.borrow();
                let last = last.as_ref().ok_or(Error::Internal)?;
                match &*self.connected.borrow() {
                    Some(peer) if !same_peer(peer, &last.addr) => {
                        return Err(Error::InvalidAddress);
                    }
                    Some(_) => dgram::send_datagram(fd, parts, None),
                    None => dgram::send_datagram(fd, parts, Some(&last.raw)),
                }
            }
        };
        match sent {
            Ok(_) => Ok(()),
            Err(libc::EMSGSIZE) => Err(Error::MessageTooLong),
            Err(libc::ECONNREFUSED) => {
                // An earlier datagram was refused: connected ports hear of it on a later pass.
                if connected {
                    let _ = later::queue(reactor, Later::ConnectionRefused(self.handle));
                }
                Ok(())
            }
            Err(e) if e == libc::EWOULDBLOCK => Err(Error::Os(libc::EAGAIN)),
            Err(e) => Err(Error::Os(e)),
        }
    }

    /// `udp_connect`: connected mode with one peer (a second connect → `Error::Busy`).
    pub fn connect(&self, host: &str, port: u16) -> Result<()> {
        let fd = self.open_fd()?;
        if self.connected.borrow().is_some() {
            return Err(Error::Busy);
        }
        let peer = self.destination(host, port)?;
        sys::connect(fd, &peer).map_err(|e| match e {
            libc::ECONNREFUSED => Error::ConnectionRefused,
            e => Error::Os(e),
        })?;
        *self.connected.borrow_mut() = Some(peer);
        Ok(())
    }

    pub fn host(&self) -> Result<reactor_address_t> {
        let fd = self.open_fd()?;
        let addr = sys::local_addr(fd).map_err(Error::Os)?;
        Ok(address::from_sock_addr(&addr))
    }

    // ----- options ----------------------------------------------------------------------------

    /// The socket of an IP port (UNIX ports have no broadcast or multicast: `Error::Unsupported`).
    fn ip_fd(&self) -> Result<RawFd> {
        if self.family == Family::Unix {
            return Err(Error::Unsupported);
        }
        self.open_fd()
    }

    pub fn set_broadcast(&self, on: bool) -> Result<()> {
        let fd = self.ip_fd()?;
        dgram::set_int(fd, libc::SOL_SOCKET, libc::SO_BROADCAST, c_int::from(on)).map_err(Error::Os)
    }

    pub fn broadcast(&self) -> Result<bool> {
        let fd = self.ip_fd()?;
        dgram::get_int(fd, libc::SOL_SOCKET, libc::SO_BROADCAST)
            .map(|v| v != 0)
            .map_err(Error::Os)
    }

    /// Joins (`join`) or leaves `group` on `interface` (None: the system's choice).
    pub fn membership(&self, group: &str, interface: Option<&str>, join: bool) -> Result<()> {
        let fd = self.ip_fd()?;
        let (group, _) = address::parse_ip_literal(group).ok_or(Error::InvalidAddress)?;
        if !group.is_multicast() {
            return Err(Error::InvalidAddress);
        }
        let result = match (self.family, group) {
            (Family::V4, IpAddr::V4(group)) => {
                let interface = match interface {
                    Some(text) if !text.is_empty() => ipv4_interface(text)?,
                    _ => Ipv4Addr::UNSPECIFIED,
                };
                dgram::ipv4_membership(fd, group, interface, join)
            }
            (Family::V6, IpAddr::V6(group)) => {
                let index = match interface {
                    Some(text) if !text.is_empty() => ipv6_interface_index(text)?,
                    _ => 0,
                };
                dgram::ipv6_membership(fd, group, index, join)
            }
            _ => return Err(Error::InvalidAddress),
        };
        result.map_err(Error::Os)
    }

    pub fn set_ttl(&self, ttl: c_int) -> Result<()> {
        let fd = self.ip_fd()?;
        let ttl = u8::try_from(ttl).map_err(|_| Error::Invalid)?;
        match self.family {
            Family::V4 => dgram::set_ipv4_multicast_byte(fd, libc::IP_MULTICAST_TTL, ttl),
            _ => dgram::set_int(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_MULTICAST_HOPS,
                c_int::from(ttl),
            ),
        }
        .map_err(Error::Os)
    }

    pub fn ttl(&self) -> Result<c_int> {
        let fd = self.ip_fd()?;
        match self.family {
            Family::V4 => {
                dgram::get_ipv4_multicast_byte(fd, libc::IP_MULTICAST_TTL).map(c_int::from)
            }
            _ => dgram::get_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS),
        }
        .map_err(Error::Os)
    }

    pub fn set_loopback(&self, on: bool) -> Result<()> {
        let fd = self.ip_fd()?;
        match self.family {
            Family::V4 => dgram::set_ipv4_multicast_byte(fd, libc::IP_MULTICAST_LOOP, u8::from(on)),
            _ => dgram::set_int(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_MULTICAST_LOOP,
                c_int::from(on),
            ),
        }
        .map_err(Error::Os)
    }

    pub fn loopback(&self) -> Result<bool> {
        let fd = self.ip_fd()?;
        match self.family {
            Family::V4 => {
                dgram::get_ipv4_multicast_byte(fd, libc::IP_MULTICAST_LOOP).map(|v| v != 0)
            }
            _ => dgram::get_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP).map(|v| v != 0),
        }
        .map_err(Error::Os)
    }

    /// IPv4: an interface address; IPv6: a name ("lo"), an index ("1") or an address.
    pub fn set_outgoing_interface(&self, interface: &str) -> Result<()> {
        let fd = self.ip_fd()?;
        match self.family {
            Family::V4 => dgram::set_ipv4_multicast_interface(fd, ipv4_interface(interface)?),
            _ => {
                let index = ipv6_interface_index(interface)?;
                dgram::set_int(
                    fd,
                    libc::IPPROTO_IPV6,
                    libc::IPV6_MULTICAST_IF,
                    index as c_int,
                )
            }
        }
        .map_err(Error::Os)
    }

    /// IPv4: the interface address (0.0.0.0: the system's choice); IPv6: "::" with `scope_id` =
    /// the interface index (0: the system's choice).
    pub fn outgoing_interface(&self) -> Result<reactor_address_t> {
        let fd = self.ip_fd()?;
        match self.family {
            Family::V4 => {
                let ip = dgram::get_ipv4_multicast_interface(fd).map_err(Error::Os)?;
                Ok(address::from_socket_addr(&SocketAddr::from((ip, 0))))
            }
            _ => {
                let index = dgram::get_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF)
                    .map_err(Error::Os)?;
                let addr = SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, index as u32);
                Ok(address::from_socket_addr(&SocketAddr::V6(addr)))
            }
        }
    }
}

/// The `from` of the datagrams a read delivers, formatted once per run of datagrams from one peer.
/// `addr` `None` is an unnamed UNIX sender (family UNIX, host "").
struct Sender {
    addr: Option<SockAddr>,
    formatted: reactor_address_t,
}

impl Default for Sender {
    fn default() -> Sender {
        let mut formatted = address::empty();
        formatted.family = crate::types::REACTOR_FAMILY_UNIX;
        Sender {
            addr: None,
            formatted,
        }
    }
}

impl Sender {
    fn update(&mut self, from: Option<SockAddr>) {
        if from == self.addr {
            return;
        }
        *self = match from {
            Some(addr) => Sender {
                formatted: address::from_sock_addr(&addr),
                addr: Some(addr),
            },
            None => Sender::default(),
        };
    }
}

/// A destination as a host gave it (the bytes of its C string, valid UTF-8), parsed, and in the
/// system's form, ready for the next `sendto` to it.
struct LastDestination {
    host: Box<[u8]>,
    port: u16,
    addr: SockAddr,
    raw: (libc::sockaddr_storage, libc::socklen_t),
}

/// Whether a write's destination is the connected peer (IPv6 scope ids compared only when given).
fn same_peer(peer: &SockAddr, to: &SockAddr) -> bool {
    match (peer, to) {
        (SockAddr::Ip(SocketAddr::V6(a)), SockAddr::Ip(SocketAddr::V6(b))) => {
            a.ip() == b.ip()
                && a.port() == b.port()
                && (b.scope_id() == 0 || a.scope_id() == b.scope_id())
        }
        (a, b) => a == b,
    }
}

/// An IPv4 interface given by its address.
fn ipv4_interface(text: &str) -> Result<Ipv4Addr> {
    match address::parse_ip_literal(text) {
        Some((IpAddr::V4(ip), _)) => Ok(ip),
        _ => Err(Error::InvalidAddress),
    }
}

/// An IPv6 interface given by name, index or address.
fn ipv6_interface_index(text: &str) -> Result<u32> {
    if let Ok(index) = text.parse::<u32>() {
        return Ok(index);
    }
    if let Some((ip, _)) = address::parse_ip_literal(text) {
        return match ip {
            IpAddr::V6(v6) => dgram::interface_index_of(v6).ok_or(Error::InvalidAddress),
            IpAddr::V4(_) => Err(Error::InvalidAddress),
        };
    }
    let name = std::ffi::CString::new(text).map_err(|_| Error::InvalidAddress)?;
    let index = sys::interface_index(&name);
    if index == 0 {
        Err(Error::InvalidAddress)
    } else {
        Ok(index)
    }
}

impl Source for DatagramPort {
    fn ready(self: Rc<Self>, reactor: &Reactor, _event: PollEvent) {
        if !self.stopping.get() {
            self.read_some(reactor);
        }
    }

    /// Shutdown: the socket closes, then `start_protocol` (if it never ran), `stop_protocol` and the
    /// release, now.
    fn shutdown(self: Rc<Self>, reactor: &Reactor) {
        self.close_socket(reactor);
        self.finish(reactor);
    }
}

impl Drop for DatagramPort {
    /// `reactor_free` (or a port that never got going): close, unlink, kill the handle, release only.
    fn drop(&mut self) {
        if self.fd.get_mut().take().is_some()
            && let Some(path) = &self.unlink_path
        {
            sys::unlink(path);
        }
        if !self.ended.get() {
            handles::end_datagram(self.handle);
        }
        drop(self.data.take());
    }
}
