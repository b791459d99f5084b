//! Stream transports (API.md §6.4): a connected TCP or UNIX socket, its protocol's callbacks, its
//! write buffer and Twisted's closing rules.
//!
//! Every host callback is called with no borrow of the transport's state held, so the host may call
//! back into any transport function from inside it. A connection ends in exactly one place
//! (`end_now`): the socket is closed, `connection_lost` runs (once, and only after `connection_made`),
//! then the handle dies and the protocol's release runs.

use super::address;
use super::handles;
use super::later::{self, Later};
use super::sys;
use super::write_buffer::{HostBytes, WriteBuffer};
use crate::backend::{Interest, PollEvent, Token};
use crate::callback::{
    UserData, call_connection_lost, call_data_received, call_fd_received, call_transport,
};
use crate::reactor::{Reactor, Source};
use crate::status::{Error, Result, os_status, reactor_status_t};
use crate::types::{
    REACTOR_ERROR, REACTOR_HANGUP, REACTOR_READABLE, REACTOR_WRITABLE, reactor_address_t,
    reactor_producer_t, reactor_protocol_t, reactor_transport_t,
};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::num::NonZeroU64;
use std::os::fd::{OwnedFd, RawFd};
use std::os::raw::{c_int, c_void};
use std::rc::Rc;

/// Bytes one `recv` takes (the reactor's scratch buffer).
const READ_SIZE: usize = 64 * 1024;
/// Reads per readable event at most, while each fills the buffer: a fast sender costs one poll per
/// 256 KiB rather than per 64 KiB (libuv reads up to 32 times), and other sources still get their
/// turn after 256 KiB (the bound the datagram ports keep too).
const READS_PER_EVENT: usize = 4;
/// Default high / low water marks of the write buffer (Twisted's).
const DEFAULT_HIGH: usize = 64 * 1024;
const DEFAULT_LOW: usize = 0;

#[derive(Default)]
struct State {
    /// `connection_made` was delivered (so `connection_lost` is owed).
    made: bool,
    /// `end_now` ran.
    ended: bool,
    /// An end is queued for a later pass, with this reason.
    end_reason: Option<Reason>,
    reading_paused: bool,
    /// The peer's FIN was delivered to a half-close aware protocol.
    read_closed: bool,
    /// `lose_connection`: no more reading; close once the buffer is flushed.
    disconnecting: bool,
    /// `lose_write_connection`: shut the write side down once the buffer is flushed.
    closing_write: bool,
    /// The write side is shut down.
    write_closed: bool,
    /// Taken off the backend: the socket hung up while nothing was wanted from it (reading paused,
    /// nothing to write), so a level-triggered poll would report it forever.
    parked: bool,
    /// What the backend was last told.
    interest: Interest,
    /// Made on first need and kept: most connections never need it (see `Outgoing`).
    outgoing: Option<Box<Outgoing>>,
}

/// A status code in two bytes: every status fits (`REACTOR_E_OS` keeps errno in 1..=4095, so the
/// lowest is -14095). It keeps `State` at 24 bytes and a transport at 88, which with the `Rc`
/// counts is malloc's 112-byte class instead of 128 (a server holds one per connection).
#[derive(Clone, Copy)]
struct Reason(i16);

impl Reason {
    fn new(status: c_int) -> Reason {
        // Unreachable fallback for a status outside i16: report it as an I/O error.
        Reason(i16::try_from(status).unwrap_or(EIO_STATUS))
    }

    fn status(self) -> c_int {
        c_int::from(self.0)
    }
}

/// `REACTOR_E_OS(EIO)`, which fits in a `Reason`.
const EIO_STATUS: i16 = -(crate::status::REACTOR_E_OS_BASE as i16 + libc::EIO as i16);

/// The part of a transport's state that only some connections need, boxed on first use so that an
/// idle connection, or one whose writes always go out at once, carries none of it: bytes the socket
/// has not taken yet, custom water marks, a producer, fds to pass.
struct Outgoing {
    out: WriteBuffer,
    high: usize,
    low: usize,
    producer: Option<Producer>,
    /// A streaming producer was told to pause.
    producer_paused: bool,
    /// A pull producer's `resume_producing` is queued for the next pass.
    resume_queued: bool,
    /// Bytes handed to the socket since this was made: a byte's number is `sent + its place in
    /// `out``, which is how an fd to pass names the byte it goes with.
    sent: u64,
    /// Fds to pass (UNIX), each with the number of the byte it goes with (the first byte written
    /// after it).
    fds_out: VecDeque<(u64, OwnedFd)>,
}

impl Default for Outgoing {
    fn default() -> Self {
        Outgoing {
            out: WriteBuffer::default(),
            high: DEFAULT_HIGH,
            low: DEFAULT_LOW,
            producer: None,
            producer_paused: false,
            resume_queued: false,
            sent: 0,
            fds_out: VecDeque::new(),
        }
    }
}

impl Outgoing {
    /// One send of the buffered bytes. With fds to pass: those due at the next byte ride along, and
    /// the send stops before the byte the next fd is due at.
    fn send_buffered(&self, fd: RawFd) -> std::result::Result<usize, sys::Errno> {
        let slices = self.out.slices();
        if self.fds_out.is_empty() {
            return sys::send_vectored(fd, &slices);
        }
        let fds = &self.fds_out;
        let first_at = fds.front().map_or(0, |(at, _)| *at);
        let due: Vec<RawFd> = fds
            .iter()
            .take_while(|(at, _)| *at == self.sent)
            .take(sys::MAX_PASSED_FDS)
            .map(|(_, f)| sys::raw(f))
            .collect();
        let next_at = if due.is_empty() {
            Some(first_at)
        } else {
            fds.get(due.len()).map(|(at, _)| *at)
        };
        let mut limit = next_at.map_or(usize::MAX, |at| (at - self.sent) as usize);
        if limit == 0 {
            limit = usize::MAX; // several fds due at one byte beyond one message's worth
        }
        let mut cut: Vec<&[u8]> = Vec::with_capacity(slices.len());
        for s in slices {
            if limit == 0 {
                break;
            }
            let take = s.len().min(limit);
            cut.push(&s[..take]);
            limit -= take;
        }
        sys::send_with_fds(fd, &cut, &due)
    }

    /// Accounts for `n` buffered bytes handed to the socket: fds that went with the first of them are
    /// done. Gives back the lent buffers that are now all sent.
    fn sent(&mut self, n: usize) -> Vec<UserData> {
        if n == 0 {
            return Vec::new();
        }
        self.sent_directly(n);
        self.out.consume(n)
    }

    /// Accounts for `n` bytes handed to the socket (buffered or not).
    fn sent_directly(&mut self, n: usize) {
        let first = self.sent;
        let mut passed = 0;
        while passed < sys::MAX_PASSED_FDS
            && self.fds_out.front().is_some_and(|(at, _)| *at == first)
        {
            self.fds_out.pop_front();
            passed += 1;
        }
        self.sent += n as u64;
    }
}

impl State {
    /// Bytes buffered, not yet taken by the socket.
    fn buffered(&self) -> usize {
        self.outgoing.as_ref().map_or(0, |o| o.out.len())
    }

    fn producer(&self) -> Option<&Producer> {
        self.outgoing.as_ref()?.producer.as_ref()
    }

    fn outgoing(&mut self) -> &mut Outgoing {
        self.outgoing.get_or_insert_default()
    }

    /// Nothing is waiting to go out (so a write may go to the socket directly).
    fn nothing_queued(&self) -> bool {
        self.outgoing
            .as_ref()
            .is_none_or(|o| o.out.is_empty() && o.fds_out.is_empty())
    }

    /// Takes the buffered bytes out (on an end or abort), with the lent buffers to hand back.
    fn clear_buffer(&mut self) -> Vec<UserData> {
        self.outgoing
            .as_mut()
            .map_or_else(Vec::new, |o| o.out.clear())
    }
}

/// A registered producer (IConsumer): its callbacks, push or pull, and its user data.
struct Producer {
    callbacks: reactor_producer_t,
    streaming: bool,
    data: UserData,
}

/// Which producer callback to make.
#[derive(Clone, Copy)]
enum ProducerCall {
    Pause,
    Resume,
    Stop,
}

/// The TCP options a host can switch (API.md §6.4).
#[derive(Clone, Copy)]
pub enum TcpOption {
    NoDelay,
    KeepAlive,
}

impl TcpOption {
    fn sockopt(self) -> (c_int, c_int) {
        match self {
            TcpOption::NoDelay => (libc::IPPROTO_TCP, libc::TCP_NODELAY),
            TcpOption::KeepAlive => (libc::SOL_SOCKET, libc::SO_KEEPALIVE),
        }
    }
}

/// A connected socket to make a transport of: its family, and the registration a connector already
/// has for it (handed over instead of registering anew).
pub struct Socket {
    pub fd: OwnedFd,
    pub unix: bool,
    pub registered: Option<Token>,
}

/// Kept small (88 bytes): a server holds one per connection (see the idle-connections benchmark).
pub struct Transport {
    handle: usize,
    /// Closed (taken) when the connection ends.
    fd: Cell<Option<OwnedFd>>,
    token: Cell<Option<Token>>,
    /// Shared with the port or connector that made it.
    protocol: Rc<reactor_protocol_t>,
    /// The protocol's user data (released after `connection_lost`; empty once released).
    data: Cell<UserData>,
    /// A client connection: the connector that made it owns the user data and hears of the end.
    connector: Option<NonZeroU64>,
    unix: bool,
    state: RefCell<State>,
}

// The size the comment on `Transport` promises (64-bit targets).
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Transport>() <= 88);

impl Transport {
    /// Wraps a connected socket: registered for reading, reachable by handle, `connection_made` on
    /// the next pass. `make_data` builds the protocol's user data (released after `connection_lost`)
    /// once nothing can fail any more: on error it is not called (so a closure holding data the host
    /// already handed over drops it, and one that would wrap the caller's data never wraps it).
    /// `connector` made it (client side).
    pub fn open(
        reactor: &Reactor,
        socket: Socket,
        protocol: Rc<reactor_protocol_t>,
        make_data: impl FnOnce() -> UserData,
        connector: Option<u64>,
    ) -> Result<usize> {
        let Socket {
            fd,
            unix,
            registered,
        } = socket;
        let handle = handles::new_transport(reactor.handle() as usize)?;
        let transport = Rc::new(Transport {
            handle,
            fd: Cell::new(None),
            token: Cell::new(None),
            protocol,
            data: Cell::new(UserData::none()),
            connector: connector.and_then(NonZeroU64::new),
            unix,
            state: RefCell::new(State {
                interest: Interest::READ,
                ..State::default()
            }),
        });
        let raw = sys::raw(&fd);
        let registration = match registered {
            Some(token) => reactor
                .hand_over_source(token, transport.clone(), Interest::READ)
                .map(|()| token),
            None => reactor.register_source(raw, Interest::READ, transport.clone()),
        };
        let token = match registration {
            Ok(token) => token,
            Err(e) => {
                handles::end_transport(handle);
                return Err(e);
            }
        };
        if let Err(code) = later::queue(reactor, Later::ConnectionMade(handle)) {
            let _ = reactor.deregister_source(token);
            handles::end_transport(handle);
            transport.state.borrow_mut().ended = true;
            return Err(if code == Error::Internal.code() {
                Error::Internal
            } else {
                Error::Closed
            });
        }
        transport.token.set(Some(token));
        transport.fd.set(Some(fd));
        transport.data.set(make_data());
        reactor.net.borrow_mut().add_transport(transport.clone());
        Ok(handle)
    }

    pub fn handle(&self) -> *mut reactor_transport_t {
        self.handle as *mut reactor_transport_t
    }

    pub fn handle_value(&self) -> usize {
        self.handle
    }

    fn raw_fd(&self) -> Option<RawFd> {
        sys::raw_in(&self.fd)
    }

    fn ud(&self) -> *mut c_void {
        UserData::ptr_in(&self.data)
    }

    pub fn fileno(&self) -> c_int {
        self.raw_fd().unwrap_or(-1)
    }

    /// Runs the releases of lent buffers (outside any borrow of the state).
    fn hand_back(reactor: &Reactor, lent: Vec<UserData>) {
        for data in lent {
            reactor.retire(data);
        }
    }

    /// Calls the registered producer (no borrow held).
    fn call_producer(&self, reactor: &Reactor, which: ProducerCall) {
        let call = {
            let st = self.state.borrow();
            st.producer().and_then(|p| {
                let cb = match which {
                    ProducerCall::Pause => p.callbacks.pause_producing,
                    ProducerCall::Resume => p.callbacks.resume_producing,
                    ProducerCall::Stop => p.callbacks.stop_producing,
                };
                cb.map(|cb| (cb, p.data.ptr()))
            })
        };
        if let Some((cb, ud)) = call {
            reactor.invoke(|| call_transport(cb, self.handle(), ud));
        }
    }

    /// After the buffer shrank: a paused push producer resumes at the low mark; a pull producer is
    /// asked for more.
    fn producer_after_send(self: &Rc<Self>, reactor: &Reactor) {
        let resume = {
            let mut st = self.state.borrow_mut();
            let Some(o) = st.outgoing.as_deref_mut() else {
                return;
            };
            let at_low = o.out.len() <= o.low;
            match &o.producer {
                Some(p) if p.streaming && o.producer_paused && at_low => {
                    o.producer_paused = false;
                    true
                }
                Some(p) if !p.streaming && at_low => true,
                _ => false,
            }
        };
        if resume {
            self.call_producer(reactor, ProducerCall::Resume);
        }
    }

    /// After bytes were buffered: a push producer pauses above the high mark (inside the write:
    /// API.md §6.7's one exception); a pull producer whose write went out at once is asked for more
    /// on the next pass.
    fn producer_after_write(self: &Rc<Self>, reactor: &Reactor) {
        enum Next {
            Nothing,
            Pause,
            QueueResume,
        }
        let next = {
            let mut st = self.state.borrow_mut();
            let Some(o) = st.outgoing.as_deref_mut() else {
                return;
            };
            let over = o.out.len() > o.high;
            let empty = o.out.is_empty();
            match &o.producer {
                Some(p) if p.streaming && !o.producer_paused && over => {
                    o.producer_paused = true;
                    Next::Pause
                }
                Some(p) if !p.streaming && empty && !o.resume_queued => {
                    o.resume_queued = true;
                    Next::QueueResume
                }
                _ => Next::Nothing,
            }
        };
        match next {
            Next::Pause => self.call_producer(reactor, ProducerCall::Pause),
            Next::QueueResume => {
                let _ = later::queue(reactor, Later::ResumeProducer(self.handle));
            }
            Next::Nothing => {}
        }
    }

    /// A queued pull-producer resume (`Later::ResumeProducer`).
    pub fn resume_pull_producer(self: &Rc<Self>, reactor: &Reactor) {
        let wanted = {
            let mut st = self.state.borrow_mut();
            let ended = st.ended;
            let o = st.outgoing();
            o.resume_queued = false;
            !ended && o.producer.as_ref().is_some_and(|p| !p.streaming)
        };
        if wanted {
            self.call_producer(reactor, ProducerCall::Resume);
        }
    }

    /// `register_producer`: push (`streaming`) or pull. `make_data` builds the producer's user data
    /// once it is accepted.
    pub fn register_producer(
        self: &Rc<Self>,
        reactor: &Reactor,
        callbacks: reactor_producer_t,
        streaming: bool,
        make_data: impl FnOnce() -> UserData,
    ) -> Result<()> {
        {
            let mut st = self.state.borrow_mut();
            if st.producer().is_some() {
                return Err(Error::Busy);
            }
            if st.ended || st.end_reason.is_some() || st.disconnecting || st.write_closed {
                return Err(Error::Closed);
            }
            let o = st.outgoing();
            o.producer = Some(Producer {
                callbacks,
                streaming,
                data: make_data(),
            });
            o.producer_paused = false;
            if !streaming {
                o.resume_queued = true;
            }
        }
        if !streaming {
            let _ = later::queue(reactor, Later::ResumeProducer(self.handle));
        }
        Ok(())
    }

    /// `unregister_producer`: its release runs; a pending `lose_connection` may now finish.
    pub fn unregister_producer(self: &Rc<Self>, reactor: &Reactor) -> Result<()> {
        let (producer, finish_close) = {
            let mut st = self.state.borrow_mut();
            let disconnecting = st.disconnecting;
            let o = st.outgoing.as_deref_mut().ok_or(Error::NotFound)?;
            let producer = o.producer.take().ok_or(Error::NotFound)?;
            o.producer_paused = false;
            (producer, disconnecting && o.out.is_empty())
        };
        reactor.retire(producer.data);
        if finish_close {
            self.end_later(reactor, reactor_status_t::REACTOR_OK as c_int);
        }
        Ok(())
    }

    // ----- delivering -------------------------------------------------------------------------

    pub fn deliver_connection_made(self: &Rc<Self>, reactor: &Reactor) {
        {
            let mut st = self.state.borrow_mut();
            if st.ended || st.made {
                return;
            }
            st.made = true;
        }
        if let Some(cb) = self.protocol.connection_made {
            let ud = self.ud();
            reactor.invoke(|| call_transport(cb, self.handle(), ud));
        }
    }

    /// Ends the connection now: closes the socket, calls `connection_lost` (if `connection_made`
    /// was delivered), then kills the handle and releases the protocol's user data. Callers are never
    /// inside the host call that caused the end (event dispatch, a later pass, shutdown).
    pub fn end_now(self: &Rc<Self>, reactor: &Reactor) {
        let (made, reason) = {
            let mut st = self.state.borrow_mut();
            if st.ended {
                return;
            }
            st.ended = true;
            (
                st.made,
                st.end_reason
                    .map_or(reactor_status_t::REACTOR_OK as c_int, Reason::status),
            )
        };
        if let Some(token) = self.token.take() {
            let _ = reactor.deregister_source(token);
        }
        drop(self.fd.take());
        let lent = self.state.borrow_mut().clear_buffer();
        Self::hand_back(reactor, lent);
        // The producer hears of the end first, then its release runs (Twisted stops the producer
        // before the protocol's connectionLost).
        if self.state.borrow().producer().is_some() {
            self.call_producer(reactor, ProducerCall::Stop);
            let producer = self
                .state
                .borrow_mut()
                .outgoing
                .as_deref_mut()
                .and_then(|o| o.producer.take());
            if let Some(producer) = producer {
                reactor.retire(producer.data);
            }
        }
        if made && let Some(cb) = self.protocol.connection_lost {
            let ud = self.ud();
            reactor.invoke(|| call_connection_lost(cb, self.handle(), reason, ud));
        }
        handles::end_transport(self.handle);
        let removed = reactor.net.borrow_mut().remove_transport(self.handle);
        drop(removed);
        reactor.retire(self.data.take());
        if let Some(connector) = self.connector {
            reactor.connector_transport_ended(connector.get());
        }
    }

    /// Ends the connection on a later pass with `reason` (a later request can only make it ABORTED).
    fn end_later(self: &Rc<Self>, reactor: &Reactor, reason: c_int) {
        let queued = {
            let mut st = self.state.borrow_mut();
            if st.ended {
                return;
            }
            let queued = st.end_reason.is_some();
            st.end_reason = Some(Reason::new(reason));
            queued
        };
        // No backend update: the end comes on the next pass, and until then `on_ready` reads and
        // writes nothing for an ending transport (one system call less per connection).
        if !queued && later::queue(reactor, Later::End(self.handle)).is_err() {
            self.end_now(reactor);
        }
    }

    fn end_with(self: &Rc<Self>, reactor: &Reactor, reason: c_int) {
        self.state
            .borrow_mut()
            .end_reason
            .get_or_insert(Reason::new(reason));
        self.end_now(reactor);
    }

    // ----- the backend ------------------------------------------------------------------------

    /// What the socket needs from the poller now.
    fn wanted(st: &State) -> Interest {
        let ending = st.ended || st.end_reason.is_some();
        Interest {
            read: !ending && !st.reading_paused && !st.read_closed && !st.disconnecting,
            write: !ending && st.buffered() > 0,
        }
    }

    fn update_interest(self: &Rc<Self>, reactor: &Reactor) {
        let (want, parked) = {
            let st = self.state.borrow();
            (Self::wanted(&st), st.parked)
        };
        if parked {
            if want.is_empty() {
                return;
            }
            // Wanted again: back on the poller (it reports the hang-up then, to a reader or writer).
            let Some(fd) = self.raw_fd() else { return };
            if let Ok(token) = reactor.register_source(fd, want, self.clone()) {
                self.token.set(Some(token));
                let mut st = self.state.borrow_mut();
                st.parked = false;
                st.interest = want;
            }
            return;
        }
        if self.state.borrow().interest == want {
            return;
        }
        if let Some(token) = self.token.get()
            && reactor.modify_source(token, want).is_ok()
        {
            self.state.borrow_mut().interest = want;
        }
    }

    fn park(&self, reactor: &Reactor) {
        if let Some(token) = self.token.take() {
            let _ = reactor.deregister_source(token);
        }
        let mut st = self.state.borrow_mut();
        st.parked = true;
        st.interest = Interest::default();
    }

    fn on_ready(self: &Rc<Self>, reactor: &Reactor, event: PollEvent) {
        let (interest, ending) = {
            let st = self.state.borrow();
            (st.interest, st.ended || st.end_reason.is_some())
        };
        if ending {
            return; // the queued end closes it on the next pass
        }
        if event.bits & REACTOR_WRITABLE != 0 && interest.write {
            self.flush(reactor);
        }
        let readable = event.bits & (REACTOR_READABLE | REACTOR_HANGUP | REACTOR_ERROR) != 0;
        if readable && !self.state.borrow().ended {
            let wanted = Self::wanted(&self.state.borrow());
            if wanted.read {
                self.read_available(reactor, event.reported_error());
            } else if event.bits & (REACTOR_HANGUP | REACTOR_ERROR) != 0
                && !self.state.borrow().interest.write
            {
                // Nothing wanted, yet the poller reports a hang-up: park until something is.
                self.park(reactor);
            }
        }
    }

    /// Reads again while each read fills the buffer (more is likely waiting), up to
    /// `READS_PER_EVENT`, and only while the connection still wants to read: a `data_received` that
    /// paused reading, lost the connection or crashed the reactor ends the run of reads at once.
    fn read_available(self: &Rc<Self>, reactor: &Reactor, reported: Option<i32>) {
        for _ in 0..READS_PER_EVENT {
            if !self.read_once(reactor, reported) || !self.still_reading(reactor) {
                return;
            }
        }
    }

    fn still_reading(&self, reactor: &Reactor) -> bool {
        if reactor.stops_dispatching() {
            return false;
        }
        let st = self.state.borrow();
        !st.ended && Self::wanted(&st).read
    }

    /// One read; true if it filled the buffer. `reported` is a socket error the backend delivered
    /// with the event (kqueue): an end of stream then ends the connection with that error (the
    /// socket may no longer hold it).
    fn read_once(self: &Rc<Self>, reactor: &Reactor, reported: Option<i32>) -> bool {
        let Some(fd) = self.raw_fd() else {
            return false;
        };
        let mut buffer = std::mem::take(&mut reactor.net.borrow_mut().read_buffer);
        buffer.resize(READ_SIZE, 0);
        // Passed fds need recvmsg; without a callback to take them a plain read is enough (the
        // kernel closes fds whose control message found no room).
        let result = if self.unix && self.protocol.file_descriptor_received.is_some() {
            sys::recv_with_fds(fd, &mut buffer)
        } else {
            sys::recv(fd, &mut buffer).map(|n| (n, Vec::new()))
        };
        let result = match result {
            Ok((n, fds)) => {
                self.deliver_fds(reactor, fds);
                Ok(n)
            }
            Err(e) => Err(e),
        };
        let mut filled = false;
        match result {
            Ok(0) => match reported {
                Some(e) => self.end_with(reactor, os_status(e)),
                None => self.on_fin(reactor),
            },
            Ok(n) => {
                filled = n == READ_SIZE;
                if let Some(cb) = self.protocol.data_received {
                    let ud = self.ud();
                    reactor.invoke(|| call_data_received(cb, self.handle(), &buffer[..n], ud));
                }
            }
            Err(e) if e == libc::EAGAIN || e == libc::EWOULDBLOCK || e == libc::EINTR => {}
            Err(e) => self.end_with(reactor, os_status(e)),
        }
        reactor.net.borrow_mut().read_buffer = buffer;
        filled
    }

    /// Passed fds, before the bytes they came with: the host's (`file_descriptor_received`), or closed
    /// when the protocol has no such callback.
    fn deliver_fds(self: &Rc<Self>, reactor: &Reactor, fds: Vec<OwnedFd>) {
        for fd in fds {
            match self.protocol.file_descriptor_received {
                Some(cb) if !self.state.borrow().ended => {
                    let raw = std::os::fd::IntoRawFd::into_raw_fd(fd);
                    let ud = self.ud();
                    reactor.invoke(|| call_fd_received(cb, self.handle(), raw, ud));
                }
                _ => drop(fd),
            }
        }
    }

    fn on_fin(self: &Rc<Self>, reactor: &Reactor) {
        let half_close = self.protocol.read_connection_lost;
        let write_closed = self.state.borrow().write_closed;
        match half_close {
            Some(cb) => {
                self.state.borrow_mut().read_closed = true;
                self.update_interest(reactor);
                let ud = self.ud();
                reactor.invoke(|| call_transport(cb, self.handle(), ud));
                // Both directions are closed now: the connection ends (API.md §6.7).
                if write_closed {
                    self.end_with(reactor, reactor_status_t::REACTOR_OK as c_int);
                }
            }
            None => self.end_with(reactor, reactor_status_t::REACTOR_OK as c_int),
        }
    }

    /// Sends what the socket takes; then finishes a requested close once the buffer is empty.
    fn flush(self: &Rc<Self>, reactor: &Reactor) {
        let Some(fd) = self.raw_fd() else { return };
        let (result, lent) = {
            let mut st = self.state.borrow_mut();
            let Some(o) = st.outgoing.as_deref_mut() else {
                return;
            };
            let sent = o.send_buffered(fd);
            let lent = match sent {
                Ok(n) => o.sent(n),
                Err(_) => Vec::new(),
            };
            (sent, lent)
        };
        Self::hand_back(reactor, lent);
        match result {
            Ok(_) => {}
            Err(e) if e == libc::EAGAIN || e == libc::EWOULDBLOCK || e == libc::EINTR => {}
            Err(e) => return self.end_with(reactor, os_status(e)),
        }
        self.producer_after_send(reactor);
        if self.state.borrow().buffered() == 0 {
            self.after_drain(reactor);
        }
        self.update_interest(reactor);
    }

    /// Bytes written straight to the socket (nothing was queued): counted only where fds to pass
    /// need the count (once there is an `Outgoing`).
    fn sent_directly(&self, n: usize) {
        if let Some(o) = self.state.borrow_mut().outgoing.as_deref_mut() {
            o.sent_directly(n);
        }
    }

    /// `send_file_descriptor` (UNIX): a duplicate of `fd` goes with the next byte written.
    pub fn send_file_descriptor(&self, fd: RawFd) -> Result<()> {
        if !self.unix {
            return Err(Error::Unsupported);
        }
        self.writable_or_closed()?;
        let copy = sys::duplicate(fd).map_err(|e| match e {
            libc::EBADF => Error::Invalid,
            e => Error::Os(e),
        })?;
        let mut st = self.state.borrow_mut();
        let o = st.outgoing();
        let at = o.sent + o.out.len() as u64;
        o.fds_out.push_back((at, copy));
        Ok(())
    }

    /// The buffer is empty: a pending `lose_connection` ends the connection, a pending
    /// `lose_write_connection` shuts the write side.
    fn after_drain(self: &Rc<Self>, reactor: &Reactor) {
        let (disconnecting, closing_write) = {
            let st = self.state.borrow();
            (
                st.disconnecting && st.producer().is_none(),
                st.closing_write && !st.write_closed,
            )
        };
        if disconnecting {
            self.end_with(reactor, reactor_status_t::REACTOR_OK as c_int);
        } else if closing_write {
            self.close_write_now(reactor);
        }
    }

    /// Shuts the write side down and tells the protocol; with the read side closed too, the
    /// connection ends.
    pub fn close_write_now(self: &Rc<Self>, reactor: &Reactor) {
        let read_closed = {
            let mut st = self.state.borrow_mut();
            if st.ended || st.write_closed || st.buffered() > 0 {
                return;
            }
            st.write_closed = true;
            st.read_closed
        };
        if let Some(fd) = self.raw_fd() {
            let _ = sys::shutdown_write(fd);
        }
        if let Some(cb) = self.protocol.write_connection_lost {
            let ud = self.ud();
            reactor.invoke(|| call_transport(cb, self.handle(), ud));
        }
        if read_closed {
            self.end_with(reactor, reactor_status_t::REACTOR_OK as c_int);
        }
    }

    // ----- the host's calls ---------------------------------------------------------------------

    fn writable_or_closed(&self) -> Result<()> {
        let st = self.state.borrow();
        if st.ended
            || st.end_reason.is_some()
            || st.disconnecting
            || st.closing_write
            || st.write_closed
        {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// `write` / `writev`: the bytes are copied; sent at once as far as the socket takes them, the
    /// rest when it is writable. A socket error ends the connection (on a later pass).
    pub fn write(self: &Rc<Self>, reactor: &Reactor, parts: &[&[u8]]) -> Result<()> {
        self.writable_or_closed()?;
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total == 0 {
            return Ok(());
        }
        let mut skip = 0;
        let direct = self.state.borrow().nothing_queued();
        if direct && let Some(fd) = self.raw_fd() {
            match sys::send_vectored(fd, parts) {
                Ok(n) => {
                    skip = n;
                    self.sent_directly(n);
                }
                Err(e) if e == libc::EAGAIN || e == libc::EWOULDBLOCK || e == libc::EINTR => {}
                Err(e) => {
                    self.end_later(reactor, os_status(e));
                    return Ok(());
                }
            }
        }
        if skip < total {
            let mut st = self.state.borrow_mut();
            let out = &mut st.outgoing().out;
            for part in parts {
                let taken = skip.min(part.len());
                skip -= taken;
                out.push(&part[taken..]);
            }
        } else if self.state.borrow().outgoing.is_none() {
            // All of it went out and there is no buffer or producer: nothing the interest or a
            // producer depends on changed (the common small write of a request/response host).
            return Ok(());
        }
        self.update_interest(reactor);
        self.producer_after_write(reactor);
        Ok(())
    }

    /// `write_zerocopy`: the host's buffer is sent in place and handed back (its release) once sent
    /// or once the connection ends, always on a later pass or event, never inside this call.
    ///
    /// # Safety
    /// `ptr` points to `len` readable bytes that stay valid and unchanged until the release runs.
    pub unsafe fn write_zerocopy(
        self: &Rc<Self>,
        reactor: &Reactor,
        ptr: *const u8,
        len: usize,
        make_release: impl FnOnce() -> UserData,
    ) -> Result<()> {
        self.writable_or_closed()?;
        let release = make_release();
        // SAFETY: the caller's contract.
        let bytes = unsafe { HostBytes::new(ptr, len, release) };
        let mut skip = 0;
        let direct = self.state.borrow().nothing_queued();
        if direct
            && len > 0
            && let Some(fd) = self.raw_fd()
        {
            match sys::send_vectored(fd, &[bytes.as_slice()]) {
                Ok(n) => {
                    skip = n;
                    self.sent_directly(n);
                }
                Err(e) if e == libc::EAGAIN || e == libc::EWOULDBLOCK || e == libc::EINTR => {}
                Err(e) => {
                    self.end_later(reactor, os_status(e));
                    let _ = later::queue(reactor, Later::Release(bytes.into_release()));
                    return Ok(());
                }
            }
        }
        if skip == len {
            // All sent (or nothing to send): handed back on the next pass.
            let _ = later::queue(reactor, Later::Release(bytes.into_release()));
        } else {
            self.state
                .borrow_mut()
                .outgoing()
                .out
                .push_lent(bytes, skip);
            self.update_interest(reactor);
        }
        self.producer_after_write(reactor);
        Ok(())
    }

    /// `lose_connection`: stop reading, flush, then close with `connection_lost(REACTOR_OK)`.
    pub fn lose_connection(self: &Rc<Self>, reactor: &Reactor) -> Result<()> {
        let (flushed, already) = {
            let mut st = self.state.borrow_mut();
            let already = st.disconnecting || st.end_reason.is_some();
            st.disconnecting = true;
            (
                (st.buffered() == 0 || st.write_closed) && st.producer().is_none(),
                already,
            )
        };
        if already {
            return Ok(());
        }
        if flushed {
            self.end_later(reactor, reactor_status_t::REACTOR_OK as c_int);
        } else {
            self.update_interest(reactor);
        }
        Ok(())
    }

    /// `abort_connection`: discard the buffer, reset the peer, `connection_lost(ABORTED)` later.
    pub fn abort_connection(self: &Rc<Self>, reactor: &Reactor) -> Result<()> {
        let lent = self.state.borrow_mut().clear_buffer();
        Self::hand_back(reactor, lent);
        if let Some(fd) = self.raw_fd() {
            let _ = sys::set_linger_zero(fd);
        }
        self.end_later(reactor, Error::ConnectionAborted.code());
        Ok(())
    }

    /// `lose_write_connection`: after the buffer drains, shut the write side down, then
    /// `write_connection_lost`; reading goes on.
    pub fn lose_write_connection(self: &Rc<Self>, reactor: &Reactor) -> Result<()> {
        self.writable_or_closed()?;
        let empty = {
            let mut st = self.state.borrow_mut();
            st.closing_write = true;
            st.buffered() == 0
        };
        if empty && later::queue(reactor, Later::CloseWrite(self.handle)).is_err() {
            self.close_write_now(reactor);
        }
        Ok(())
    }

    pub fn pause_reading(self: &Rc<Self>, reactor: &Reactor) -> Result<()> {
        self.state.borrow_mut().reading_paused = true;
        self.update_interest(reactor);
        Ok(())
    }

    pub fn resume_reading(self: &Rc<Self>, reactor: &Reactor) -> Result<()> {
        self.state.borrow_mut().reading_paused = false;
        self.update_interest(reactor);
        Ok(())
    }

    pub fn write_buffer_size(&self) -> usize {
        self.state.borrow().buffered()
    }

    pub fn set_write_buffer_limits(&self, high: usize, low: usize) -> Result<()> {
        if low > high {
            return Err(Error::Invalid);
        }
        let mut st = self.state.borrow_mut();
        let o = st.outgoing();
        o.high = high;
        o.low = low;
        Ok(())
    }

    fn address(&self, peer: bool) -> Result<reactor_address_t> {
        let fd = self.raw_fd().ok_or(Error::Closed)?;
        let addr = if peer {
            sys::peer_addr(fd)
        } else {
            sys::local_addr(fd)
        }
        .map_err(Error::Os)?;
        Ok(address::from_sock_addr(&addr))
    }

    pub fn host(&self) -> Result<reactor_address_t> {
        self.address(false)
    }

    pub fn peer(&self) -> Result<reactor_address_t> {
        self.address(true)
    }

    /// The fd of a TCP transport (TCP options on a UNIX transport: `Error::Unsupported`).
    fn tcp_fd(&self) -> Result<RawFd> {
        if self.unix {
            return Err(Error::Unsupported);
        }
        self.raw_fd().ok_or(Error::Closed)
    }

    /// Sets a TCP option (`TcpOption::NoDelay`: TCP_NODELAY, `KeepAlive`: SO_KEEPALIVE).
    pub fn set_tcp_option(&self, option: TcpOption, on: bool) -> Result<()> {
        let fd = self.tcp_fd()?;
        let (level, name) = option.sockopt();
        sys::set_int_option(fd, level, name, c_int::from(on)).map_err(Error::Os)
    }

    pub fn tcp_option(&self, option: TcpOption) -> Result<bool> {
        let fd = self.tcp_fd()?;
        let (level, name) = option.sockopt();
        sys::get_int_option(fd, level, name)
            .map(|v| v != 0)
            .map_err(Error::Os)
    }

    /// The end of a reactor's run: `connection_lost(REACTOR_E_CONNECTION_LOST)` now.
    fn shut_down(self: &Rc<Self>, reactor: &Reactor) {
        self.state.borrow_mut().end_reason = Some(Reason::new(Error::ConnectionLost.code()));
        self.end_now(reactor);
    }
}

impl Source for Transport {
    fn ready(self: Rc<Self>, reactor: &Reactor, event: PollEvent) {
        self.on_ready(reactor, event);
    }

    fn shutdown(self: Rc<Self>, reactor: &Reactor) {
        self.shut_down(reactor);
    }
}

impl Drop for Transport {
    /// `reactor_free` (or an object that never got going): close, kill the handle, release only.
    fn drop(&mut self) {
        drop(self.fd.get_mut().take());
        if !self.state.get_mut().ended {
            handles::end_transport(self.handle);
        }
        drop(self.data.take());
    }
}
