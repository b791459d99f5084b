//! The epoll backend (Linux default). Level-triggered; the epoll fd itself is the pollable backend fd.
//! The waker's eventfd is registered under a token the registry never hands out and drained here.

use super::{Interest, ModifyError, PollEvent, Poller, Token, WakeTarget, Waker};
use crate::status::{Error, Result};
use crate::types::{REACTOR_ERROR, REACTOR_HANGUP, REACTOR_READABLE, REACTOR_WRITABLE};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::raw::c_int;

const MAX_EVENTS: usize = 1024;
/// The waker's epoll data: no registry token has all bits set (index u32::MAX is never allocated).
const WAKER_DATA: u64 = u64::MAX;

pub struct Epoll {
    epfd: OwnedFd,
    waker: Waker,
    buffer: Vec<libc::epoll_event>,
}

impl Epoll {
    pub fn new() -> Result<Epoll> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(Error::last_os());
        }
        let epoll = Epoll {
            // SAFETY: a fresh fd we own.
            epfd: unsafe { OwnedFd::from_raw_fd(fd) },
            waker: Waker::new()?,
            buffer: vec![libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS],
        };
        epoll
            .ctl(
                libc::EPOLL_CTL_ADD,
                epoll.waker.read_fd(),
                WAKER_DATA,
                Interest::READ,
            )
            .map_err(Error::Os)?;
        Ok(epoll)
    }

    fn ctl(
        &self,
        op: c_int,
        fd: c_int,
        data: u64,
        interest: Interest,
    ) -> std::result::Result<(), i32> {
        let mut flags = 0;
        if interest.read {
            flags |= libc::EPOLLIN as u32;
        }
        if interest.write {
            flags |= libc::EPOLLOUT as u32;
        }
        let mut event = libc::epoll_event {
            events: flags,
            u64: data,
        };
        // SAFETY: valid epoll fd and event pointer.
        if unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut event) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO))
        }
    }
}

fn bits_of(flags: u32) -> u32 {
    let mut bits = 0;
    if flags & (libc::EPOLLIN | libc::EPOLLPRI) as u32 != 0 {
        bits |= REACTOR_READABLE;
    }
    if flags & libc::EPOLLOUT as u32 != 0 {
        bits |= REACTOR_WRITABLE;
    }
    if flags & libc::EPOLLHUP as u32 != 0 {
        bits |= REACTOR_HANGUP;
    }
    if flags & libc::EPOLLERR as u32 != 0 {
        bits |= REACTOR_ERROR;
    }
    bits
}

impl Poller for Epoll {
    fn name(&self) -> &'static str {
        "epoll"
    }

    fn pollable_fd(&self) -> c_int {
        self.epfd.as_raw_fd()
    }

    fn wake_target(&self) -> WakeTarget {
        self.waker.target()
    }

    fn owns_fd(&self, fd: c_int) -> bool {
        fd == self.epfd.as_raw_fd() || self.waker.owns_fd(fd)
    }

    fn add(&mut self, fd: c_int, token: Token, interest: Interest) -> Result<()> {
        match self.ctl(libc::EPOLL_CTL_ADD, fd, token.raw(), interest) {
            Ok(()) => Ok(()),
            Err(libc::EEXIST) => self
                .ctl(libc::EPOLL_CTL_MOD, fd, token.raw(), interest)
                .map_err(Error::Os),
            Err(errno) => Err(Error::Os(errno)),
        }
    }

    fn modify(
        &mut self,
        fd: c_int,
        token: Token,
        interest: Interest,
    ) -> std::result::Result<(), ModifyError> {
        match self.ctl(libc::EPOLL_CTL_MOD, fd, token.raw(), interest) {
            Ok(()) => Ok(()),
            // The kernel dropped our registration: the file was closed behind our back.
            Err(libc::ENOENT) => Err(ModifyError::Stale),
            Err(errno) => Err(ModifyError::Other(Error::Os(errno))),
        }
    }

    fn remove(&mut self, fd: c_int) -> Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, Interest::default())
            .map_err(Error::Os)
    }

    fn poll(&mut self, out: &mut Vec<PollEvent>, timeout_ms: c_int) -> Result<bool> {
        // SAFETY: the buffer has MAX_EVENTS initialised entries.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.buffer.as_mut_ptr(),
                MAX_EVENTS as c_int,
                timeout_ms,
            )
        };
        let n = super::ready_count(n)?;
        let mut woken = false;
        for event in &self.buffer[..n] {
            let (flags, data) = (event.events, event.u64);
            if data == WAKER_DATA {
                self.waker.drain();
                woken = true;
                continue;
            }
            let Some(token) = Token::from_raw(data) else {
                continue;
            };
            let mut report = PollEvent::new(token, bits_of(flags));
            report.eof = flags & libc::EPOLLRDHUP as u32 != 0;
            out.push(report);
        }
        Ok(woken)
    }
}
