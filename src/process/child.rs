//! A spawned child as the reactor sees it (Twisted's Process): its pipes, its exit, and the
//! protocol's callbacks in Twisted's order.
//!
//! Life: `connection_made` first (a later pass, or before anything else the child has to say);
//! `child_data_received` per READ pipe (the pty's output as fd 1); `child_connection_lost` once per
//! pipe, from either side; `process_exited` as soon as the child is reaped; `process_ended` once it
//! is reaped and every pipe has closed — then the handle dies and the release runs. Callbacks run
//! with no borrow held, so they may call back into the process.

use super::spawn::PipeKind;
use super::sys::{self, Exit};
use super::{ProcessWork, end_process};
use crate::backend::{Interest, PollEvent, Token};
use crate::callback::UserData;
use crate::net::later::{self, Later};
use crate::net::write_buffer::WriteBuffer;
use crate::reactor::{Reactor, Source};
use crate::status::reactor_status_t;
use crate::status::{Error, Result};
use crate::types::{
    REACTOR_ERROR, REACTOR_HANGUP, REACTOR_READABLE, REACTOR_WRITABLE, reactor_process_protocol_t,
    reactor_process_t,
};
use std::cell::{Cell, RefCell};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::raw::{c_int, c_void};
use std::rc::Rc;

/// Bytes read from one pipe per readiness event.
const READ_SIZE: usize = 64 * 1024;

/// How the reactor learns that the child exited.
pub enum ExitWatch {
    /// A pidfd (Linux), registered for reading.
    Pidfd(OwnedFd, Token),
    /// The backend's own process watch (kqueue's EVFILT_PROC).
    Backend(Token),
    /// The reactor's SIGCHLD watch, then `waitpid(pid, WNOHANG)`.
    Sigchld,
    /// Reaped.
    Done,
}

struct Pipe {
    child_fd: c_int,
    kind: PipeKind,
    /// Taken (closed) when the pipe closes.
    fd: Option<OwnedFd>,
    token: Option<Token>,
    interest: Interest,
    buffer: WriteBuffer,
    /// `close_child_fd` on a WRITE pipe with bytes buffered: closed once they are written.
    closing: bool,
    /// Closed, its `child_connection_lost` on its way (a later pass).
    lost_queued: bool,
    /// `child_connection_lost` was delivered.
    lost: bool,
}

impl Pipe {
    fn open(&self) -> bool {
        self.fd.is_some() && !self.closing
    }
}

/// What a readiness event asks of a pipe.
pub struct PipeSource {
    pub process: usize,
    pub child_fd: c_int,
}

impl Source for PipeSource {
    fn ready(self: Rc<Self>, reactor: &Reactor, event: PollEvent) {
        if let Some(process) = reactor.process(self.process) {
            process.pipe_ready(reactor, self.child_fd, event);
        }
    }
}

/// The pidfd became readable: the child exited.
pub struct ExitSource {
    pub process: usize,
}

impl Source for ExitSource {
    fn ready(self: Rc<Self>, reactor: &Reactor, _event: PollEvent) {
        if let Some(process) = reactor.process(self.process) {
            process.reap(reactor);
        }
    }
}

pub struct Process {
    handle: usize,
    pid: libc::pid_t,
    protocol: reactor_process_protocol_t,
    data: Cell<UserData>,
    pipes: RefCell<Vec<Pipe>>,
    exit_watch: RefCell<ExitWatch>,
    /// (reason, exit_code, term_signal) once reaped.
    exit: Cell<Option<(c_int, c_int, c_int)>>,
    made: Cell<bool>,
    /// Inside `process_ended` or after: `pid` answers 0.
    ending: Cell<bool>,
    ended: Cell<bool>,
}

/// The callback arguments of an exit.
fn exit_arguments(exit: Exit) -> (c_int, c_int, c_int) {
    let terminated = reactor_status_t::REACTOR_E_PROCESS_TERMINATED as c_int;
    match exit {
        Exit::Code(0) => (reactor_status_t::REACTOR_OK as c_int, 0, 0),
        Exit::Code(code) => (terminated, code, 0),
        Exit::Signal(signal) => (terminated, -1, signal),
        Exit::Unknown => (terminated, -1, 0),
    }
}

impl Process {
    pub fn new(
        handle: usize,
        pid: libc::pid_t,
        protocol: reactor_process_protocol_t,
        pipes: Vec<(c_int, PipeKind, OwnedFd)>,
    ) -> Process {
        let pipes = pipes
            .into_iter()
            .map(|(child_fd, kind, fd)| Pipe {
                child_fd,
                kind,
                fd: Some(fd),
                token: None,
                interest: Interest::READ,
                buffer: WriteBuffer::default(),
                closing: false,
                lost_queued: false,
                lost: false,
            })
            .collect();
        Process {
            handle,
            pid,
            protocol,
            data: Cell::new(UserData::none()),
            pipes: RefCell::new(pipes),
            exit_watch: RefCell::new(ExitWatch::Sigchld),
            exit: Cell::new(None),
            made: Cell::new(false),
            ending: Cell::new(false),
            ended: Cell::new(false),
        }
    }

    /// Registers every pipe with the reactor (each is watched for reading: READ pipes and the pty
    /// for data, WRITE pipes to hear the child close its end).
    pub fn register_pipes(&self, reactor: &Reactor) -> Result<()> {
        let mut pipes = self.pipes.borrow_mut();
        for pipe in pipes.iter_mut() {
            let Some(fd) = &pipe.fd else { continue };
            let source = Rc::new(PipeSource {
                process: self.handle,
                child_fd: pipe.child_fd,
            });
            pipe.token = Some(reactor.register_source(fd.as_raw_fd(), Interest::READ, source)?);
        }
        Ok(())
    }

    /// Takes every pipe and the exit watch out of the backend (a spawn that failed after the child
    /// started, or `reactor_free`: before the fds close).
    pub fn unregister_all(&self, reactor: &Reactor) {
        let tokens: Vec<Token> = self
            .pipes
            .borrow_mut()
            .iter_mut()
            .filter_map(|p| p.token.take())
            .collect();
        for token in tokens {
            let _ = reactor.deregister_source(token);
        }
        self.stop_exit_watch(reactor);
    }

    /// Ends the exit watch (reaped, or no longer watched).
    pub fn stop_exit_watch(&self, reactor: &Reactor) {
        match self.exit_watch.replace(ExitWatch::Done) {
            ExitWatch::Pidfd(_, token) | ExitWatch::Backend(token) => {
                let _ = reactor.deregister_source(token);
            }
            ExitWatch::Sigchld | ExitWatch::Done => {}
        }
    }

    pub fn set_exit_watch(&self, watch: ExitWatch) {
        *self.exit_watch.borrow_mut() = watch;
    }

    pub fn set_data(&self, data: UserData) {
        self.data.set(data);
    }

    pub fn handle_value(&self) -> usize {
        self.handle
    }

    fn handle(&self) -> *mut reactor_process_t {
        self.handle as *mut reactor_process_t
    }

    fn ud(&self) -> *mut c_void {
        UserData::ptr_in(&self.data)
    }

    pub fn raw_pid(&self) -> libc::pid_t {
        self.pid
    }

    /// `reactor_process_pid`: the pid until `process_ended` is called, then 0.
    pub fn pid(&self) -> c_int {
        if self.ending.get() { 0 } else { self.pid }
    }

    /// Watched through the reactor's SIGCHLD watch (no pidfd) and not reaped yet.
    pub fn waits_for_sigchld(&self) -> bool {
        matches!(*self.exit_watch.borrow(), ExitWatch::Sigchld)
    }

    pub fn is_reaped(&self) -> bool {
        self.exit.get().is_some()
    }

    // ----- callbacks --------------------------------------------------------------------------

    /// `connection_made`, once, before anything else is delivered.
    pub fn deliver_made(&self, reactor: &Reactor) {
        if self.made.replace(true) || self.ended.get() {
            return;
        }
        if let Some(cb) = self.protocol.connection_made {
            let (handle, ud) = (self.handle(), self.ud());
            // SAFETY: host-supplied function pointer from the host's protocol struct.
            reactor.invoke(|| unsafe { cb(handle, ud) });
        }
    }

    fn deliver_data(&self, reactor: &Reactor, child_fd: c_int, data: &[u8]) {
        if let Some(cb) = self.protocol.child_data_received {
            let (handle, ud) = (self.handle(), self.ud());
            // SAFETY: as above; `data` outlives the call.
            reactor.invoke(|| unsafe { cb(handle, child_fd, data.as_ptr(), data.len(), ud) });
        }
    }

    /// `child_connection_lost(child_fd)` for a pipe already closed, once; then maybe the end.
    pub fn deliver_lost(self: &Rc<Self>, reactor: &Reactor, child_fd: c_int) {
        let first = {
            let mut pipes = self.pipes.borrow_mut();
            match pipes.iter_mut().find(|p| p.child_fd == child_fd) {
                Some(pipe) if !pipe.lost => {
                    pipe.lost = true;
                    true
                }
                _ => false,
            }
        };
        if !first || self.ended.get() {
            return;
        }
        self.deliver_made(reactor);
        if let Some(cb) = self.protocol.child_connection_lost {
            let (handle, ud) = (self.handle(), self.ud());
            // SAFETY: as above.
            reactor.invoke(|| unsafe { cb(handle, child_fd, ud) });
        }
        self.maybe_end(reactor);
    }

    /// `process_ended` once the child is reaped and every pipe has closed; then the handle dies.
    fn maybe_end(self: &Rc<Self>, reactor: &Reactor) {
        if self.ending.get() || reactor.is_crashing() {
            return;
        }
        let Some((reason, code, signal)) = self.exit.get() else {
            return;
        };
        if self.pipes.borrow().iter().any(|p| !p.lost) {
            return;
        }
        self.deliver_made(reactor);
        self.ending.set(true);
        if let Some(cb) = self.protocol.process_ended {
            let (handle, ud) = (self.handle(), self.ud());
            // SAFETY: as above.
            reactor.invoke(|| unsafe { cb(handle, reason, code, signal, ud) });
        }
        self.finish(reactor);
    }

    /// The handle dies and the release runs.
    fn finish(self: &Rc<Self>, reactor: &Reactor) {
        if self.ended.replace(true) {
            return;
        }
        end_process(self.handle);
        let removed = reactor.processes.borrow_mut().remove(self.handle);
        drop(removed);
        reactor.retire(self.data.take());
    }

    // ----- the child's exit -------------------------------------------------------------------

    /// `waitpid(pid, WNOHANG)`; when the child is gone, `process_exited` (and maybe the end).
    pub fn reap(self: &Rc<Self>, reactor: &Reactor) {
        if self.exit.get().is_some() || self.ended.get() {
            return;
        }
        let Some(exit) = sys::try_reap(self.pid) else {
            return;
        };
        let arguments = exit_arguments(exit);
        self.exit.set(Some(arguments));
        self.stop_exit_watch(reactor);
        self.deliver_made(reactor);
        if let Some(cb) = self.protocol.process_exited {
            let (handle, ud) = (self.handle(), self.ud());
            let (reason, code, signal) = arguments;
            // SAFETY: as above.
            reactor.invoke(|| unsafe { cb(handle, reason, code, signal, ud) });
        }
        self.maybe_end(reactor);
    }

    // ----- pipes --------------------------------------------------------------------------------

    fn raw_fd_of(&self, child_fd: c_int) -> Option<(RawFd, PipeKind)> {
        let pipes = self.pipes.borrow();
        let pipe = pipes.iter().find(|p| p.child_fd == child_fd)?;
        Some((pipe.fd.as_ref()?.as_raw_fd(), pipe.kind))
    }

    pub fn pipe_ready(self: &Rc<Self>, reactor: &Reactor, child_fd: c_int, event: PollEvent) {
        if self.ended.get() {
            return;
        }
        self.deliver_made(reactor);
        if event.bits & REACTOR_WRITABLE != 0 {
            self.flush(reactor, child_fd);
        }
        if event.bits & (REACTOR_READABLE | REACTOR_HANGUP | REACTOR_ERROR) != 0 {
            self.read_once(reactor, child_fd);
        }
    }

    fn read_once(self: &Rc<Self>, reactor: &Reactor, child_fd: c_int) {
        let Some((fd, kind)) = self.raw_fd_of(child_fd) else {
            return;
        };
        let mut buffer = std::mem::take(&mut reactor.net.borrow_mut().read_buffer);
        buffer.resize(READ_SIZE, 0);
        match sys::read(fd, &mut buffer) {
            Ok(0) => self.close_now(reactor, child_fd),
            // A WRITE pipe's socket: the child wrote to its input; nobody reads that.
            Ok(_) if kind == PipeKind::Write => {}
            Ok(n) => self.deliver_data(reactor, child_fd, &buffer[..n]),
            Err(e) if sys::try_again(e) => {}
            // EIO: the pty's slave side is closed for good (the child and its children exited).
            Err(_) => self.close_now(reactor, child_fd),
        }
        reactor.net.borrow_mut().read_buffer = buffer;
    }

    /// Closes a pipe and delivers `child_connection_lost` now (readiness events, shutdown).
    fn close_now(self: &Rc<Self>, reactor: &Reactor, child_fd: c_int) {
        self.close_fd(reactor, child_fd);
        self.deliver_lost(reactor, child_fd);
    }

    /// Closes a pipe's fd (buffered bytes are dropped) and unregisters it.
    fn close_fd(&self, reactor: &Reactor, child_fd: c_int) {
        let (token, fd, dropped) = {
            let mut pipes = self.pipes.borrow_mut();
            let Some(pipe) = pipes.iter_mut().find(|p| p.child_fd == child_fd) else {
                return;
            };
            pipe.closing = false;
            (pipe.token.take(), pipe.fd.take(), pipe.buffer.clear())
        };
        if let Some(token) = token {
            let _ = reactor.deregister_source(token);
        }
        drop(fd);
        drop(dropped);
    }

    /// Closes a pipe now; its `child_connection_lost` comes on a later pass.
    fn close_later(&self, reactor: &Reactor, child_fd: c_int) {
        self.close_fd(reactor, child_fd);
        if let Some(pipe) = self
            .pipes
            .borrow_mut()
            .iter_mut()
            .find(|p| p.child_fd == child_fd)
        {
            pipe.lost_queued = true;
        }
        // Refused only once the reactor stopped for good; shutdown delivered everything by then.
        let _ = later::queue(
            reactor,
            Later::Process(self.handle, ProcessWork::ChildLost(child_fd)),
        );
    }

    fn set_write_interest(&self, reactor: &Reactor, child_fd: c_int, write: bool) {
        let change = {
            let mut pipes = self.pipes.borrow_mut();
            let Some(pipe) = pipes.iter_mut().find(|p| p.child_fd == child_fd) else {
                return;
            };
            if pipe.interest.write == write {
                return;
            }
            pipe.interest.write = write;
            pipe.token.map(|t| (t, pipe.interest))
        };
        if let Some((token, interest)) = change {
            let _ = reactor.modify_source(token, interest);
        }
    }

    /// Writes what the pipe takes; a drained pipe that was asked to close closes now.
    fn flush(self: &Rc<Self>, reactor: &Reactor, child_fd: c_int) {
        let outcome = {
            let mut pipes = self.pipes.borrow_mut();
            let Some(pipe) = pipes.iter_mut().find(|p| p.child_fd == child_fd) else {
                return;
            };
            let Some(fd) = pipe.fd.as_ref().map(|f| f.as_raw_fd()) else {
                return;
            };
            if pipe.buffer.is_empty() {
                Ok((true, pipe.closing, Vec::new()))
            } else {
                match sys::write_vectored(fd, pipe.kind, &pipe.buffer.slices()) {
                    Ok(n) => {
                        let lent = pipe.buffer.consume(n);
                        Ok((pipe.buffer.is_empty(), pipe.closing, lent))
                    }
                    Err(e) if sys::try_again(e) => Ok((false, false, Vec::new())),
                    Err(e) => Err(e),
                }
            }
        };
        match outcome {
            Ok((drained, closing, lent)) => {
                drop(lent);
                if drained && closing {
                    self.close_now(reactor, child_fd);
                } else {
                    self.set_write_interest(reactor, child_fd, !drained);
                }
            }
            // The child closed its end (EPIPE) or the pty is gone: the pipe is lost.
            Err(_) => self.close_now(reactor, child_fd),
        }
    }

    /// The pipe `write_to_child` writes to: a WRITE pipe, or the pty as fd 0.
    fn writable_pipe(&self, child_fd: c_int) -> Result<usize> {
        let pipes = self.pipes.borrow();
        let index = pipes
            .iter()
            .position(|p| match p.kind {
                PipeKind::Write => p.child_fd == child_fd,
                PipeKind::Pty => child_fd == 0,
                PipeKind::Read => false,
            })
            .ok_or(Error::Invalid)?;
        let pipe = &pipes[index];
        if !pipe.open() || pipe.lost_queued || pipe.lost || self.ending.get() {
            return Err(Error::Closed);
        }
        Ok(index)
    }

    /// `reactor_process_write_to_child`: written now as far as the pipe takes, the rest buffered.
    pub fn write(self: &Rc<Self>, reactor: &Reactor, child_fd: c_int, data: &[u8]) -> Result<()> {
        let index = self.writable_pipe(child_fd)?;
        if data.is_empty() {
            return Ok(());
        }
        let (pipe_fd, failed) = {
            let mut pipes = self.pipes.borrow_mut();
            let pipe = &mut pipes[index];
            let pipe_fd = pipe.child_fd;
            let fd = pipe.fd.as_ref().map_or(-1, |f| f.as_raw_fd());
            if !pipe.buffer.is_empty() {
                pipe.buffer.push(data);
                return Ok(());
            }
            match sys::write_vectored(fd, pipe.kind, &[data]) {
                Ok(n) if n == data.len() => return Ok(()),
                Ok(n) => {
                    pipe.buffer.push(&data[n..]);
                    (pipe_fd, false)
                }
                Err(e) if sys::try_again(e) => {
                    pipe.buffer.push(data);
                    (pipe_fd, false)
                }
                Err(_) => (pipe_fd, true),
            }
        };
        if failed {
            // The child closed its end: the pipe is lost (reported on a later pass, never inside
            // this call), and the bytes with it.
            self.close_later(reactor, pipe_fd);
        } else {
            self.set_write_interest(reactor, pipe_fd, true);
        }
        Ok(())
    }

    /// `reactor_process_close_child_fd`: a WRITE pipe closes once its buffer is written; others at
    /// once. The pty closes for any of 0, 1 and 2. `child_connection_lost` comes on a later pass.
    pub fn close_child_fd(self: &Rc<Self>, reactor: &Reactor, child_fd: c_int) -> Result<()> {
        let (pipe_fd, buffered) = {
            let mut pipes = self.pipes.borrow_mut();
            let pipe = pipes
                .iter_mut()
                .find(|p| match p.kind {
                    PipeKind::Pty => (0..=2).contains(&child_fd),
                    _ => p.child_fd == child_fd,
                })
                .ok_or(Error::Invalid)?;
            if !pipe.open() || pipe.lost || pipe.lost_queued {
                return Ok(());
            }
            if pipe.kind == PipeKind::Write && !pipe.buffer.is_empty() {
                pipe.closing = true;
                (pipe.child_fd, true)
            } else {
                (pipe.child_fd, false)
            }
        };
        if !buffered {
            self.close_later(reactor, pipe_fd);
        }
        Ok(())
    }

    /// `reactor_process_lose_connection`: closes 0, 2 and 1, in that order (Twisted's).
    pub fn lose_connection(self: &Rc<Self>, reactor: &Reactor) -> Result<()> {
        for child_fd in [0, 2, 1] {
            match self.close_child_fd(reactor, child_fd) {
                Ok(()) | Err(Error::Invalid) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `reactor_process_signal` (the signal number is checked by the caller).
    pub fn signal(&self, signal: c_int) -> Result<()> {
        if self.exit.get().is_some() {
            return Err(Error::ProcessExited);
        }
        sys::kill(self.pid, signal).map_err(|e| match e {
            libc::ESRCH => Error::ProcessExited,
            e => Error::Os(e),
        })
    }

    /// The reactor's DURING-shutdown step: every pipe closes now (unwritten bytes are dropped) with
    /// its `child_connection_lost`; a child already reaped then gets `process_ended`.
    pub fn shut_down(self: &Rc<Self>, reactor: &Reactor) {
        let open: Vec<c_int> = self
            .pipes
            .borrow()
            .iter()
            .filter(|p| !p.lost)
            .map(|p| p.child_fd)
            .collect();
        for child_fd in open {
            if self.ended.get() {
                return;
            }
            self.close_now(reactor, child_fd);
        }
        self.maybe_end(reactor);
    }
}

impl Drop for Process {
    /// `reactor_free` (the child is no longer watched; its pid is the host's to wait for): close,
    /// kill the handle, release only.
    fn drop(&mut self) {
        for pipe in self.pipes.get_mut().iter_mut() {
            drop(pipe.fd.take());
            drop(pipe.buffer.clear());
        }
        *self.exit_watch.get_mut() = ExitWatch::Done;
        if !*self.ended.get_mut() {
            end_process(self.handle);
        }
        drop(self.data.take());
    }
}
