//! IReactorFDSet: a host's reader and writer callbacks on an fd, one source in the registry per fd.
//!
//! Events for a removed or replaced registration are dropped by the registry's token generations;
//! a registration whose fd was closed and reused behind the reactor's back is detected when the host
//! adds to that fd number again (the backend reports it stale) and released first.

use super::Reactor;
use super::registry::Handler;
use crate::backend::{Interest, ModifyError, PollEvent, Token};
use crate::callback::{FdFn, UserData, call_fd};
use crate::status::{Error, Result};
use crate::types::{
    REACTOR_ERROR, REACTOR_HANGUP, REACTOR_READABLE, REACTOR_SHUTDOWN, REACTOR_WRITABLE,
};
use std::os::raw::c_int;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Read,
    Write,
}

impl Direction {
    fn interest(self) -> Interest {
        match self {
            Direction::Read => Interest::READ,
            Direction::Write => Interest::WRITE,
        }
    }

    fn event_mask(self) -> u32 {
        match self {
            Direction::Read => REACTOR_READABLE | REACTOR_HANGUP | REACTOR_ERROR,
            Direction::Write => REACTOR_WRITABLE | REACTOR_HANGUP | REACTOR_ERROR,
        }
    }
}

pub struct FdHandler {
    pub func: FdFn,
    pub data: UserData,
}

/// The host's callbacks on one fd.
#[derive(Default)]
pub struct HostFd {
    reader: Option<FdHandler>,
    writer: Option<FdHandler>,
}

impl HostFd {
    fn slot(&mut self, direction: Direction) -> &mut Option<FdHandler> {
        match direction {
            Direction::Read => &mut self.reader,
            Direction::Write => &mut self.writer,
        }
    }

    fn handler(&self, direction: Direction) -> Option<&FdHandler> {
        match direction {
            Direction::Read => self.reader.as_ref(),
            Direction::Write => self.writer.as_ref(),
        }
    }

    fn interest(&self) -> Interest {
        Interest {
            read: self.reader.is_some(),
            write: self.writer.is_some(),
        }
    }

    pub(super) fn into_handlers(self) -> impl Iterator<Item = FdHandler> {
        self.reader.into_iter().chain(self.writer)
    }

    /// Releases the host data (after the running callback, if any).
    pub(super) fn retire_into(self, reactor: &Reactor) {
        for handler in self.into_handlers() {
            reactor.retire(handler.data);
        }
    }
}

/// Hands a refused registration back to the host: its data is not ours to release.
fn refuse(handler: FdHandler, error: Error) -> Result<()> {
    handler.data.into_raw();
    Err(error)
}

impl Reactor {
    fn host_token(&self, fd: c_int) -> std::result::Result<Option<Token>, Error> {
        let sources = self.sources.borrow();
        match sources.token_for_fd(fd) {
            None => Ok(None),
            Some(token) => match sources.handler(token) {
                Some(Handler::Host(_)) => Ok(Some(token)),
                _ => Err(Error::Invalid), // an internal fd of the library
            },
        }
    }

    /// Registers `handler` (replacing, and releasing, a previous one for this fd and direction). On
    /// error the handler's user data is given back to the host, not released.
    pub fn add_fd_handler(
        &self,
        fd: c_int,
        direction: Direction,
        handler: FdHandler,
    ) -> Result<()> {
        if fd < 0 || self.backend.borrow().owns_fd(fd) {
            return refuse(handler, Error::Invalid);
        }
        // A closed fd is refused by the backend (epoll_ctl says EBADF; poll and kqueue check with
        // fcntl), so the check costs no extra system call on epoll, where Twisted-style hosts add
        // and remove a writer on every write burst.
        let handler = match self.host_token(fd) {
            Err(e) => return refuse(handler, e),
            Ok(None) => handler,
            Ok(Some(token)) => match self.add_to_host_fd(token, fd, direction, handler)? {
                None => return Ok(()),
                // The old registration belonged to a file that was closed: start afresh.
                Some(handler) => handler,
            },
        };
        self.new_host_fd(fd, direction, handler)
    }

    /// Adds `handler` to the host registration `token` of `fd`. Hands the handler back if that
    /// registration turns out to belong to a file that was closed behind the reactor's back (it is
    /// dropped then).
    fn add_to_host_fd(
        &self,
        token: Token,
        fd: c_int,
        direction: Direction,
        handler: FdHandler,
    ) -> Result<Option<FdHandler>> {
        let mut interest = self.sources.borrow().interest(token).unwrap_or_default();
        match direction {
            Direction::Read => interest.read = true,
            Direction::Write => interest.write = true,
        }
        super::stats::bump(&self.stats.backend_ctl_calls);
        let modified = self.backend.borrow_mut().modify(fd, token, interest);
        match modified {
            Ok(()) => {}
            Err(ModifyError::Stale) => {
                self.drop_source(token);
                return Ok(Some(handler));
            }
            Err(ModifyError::Other(e)) => return refuse(handler, e).map(|()| None),
        }
        let replaced = {
            let mut sources = self.sources.borrow_mut();
            sources.set_interest(token, interest);
            match sources.handler_mut(token) {
                Some(Handler::Host(host)) => host.slot(direction).replace(handler),
                _ => unreachable!("the caller checked that `token` is a host registration"),
            }
        };
        if let Some(old) = replaced {
            self.retire(old.data);
        }
        Ok(None)
    }

    /// A new host registration of `fd` with `handler`.
    fn new_host_fd(&self, fd: c_int, direction: Direction, handler: FdHandler) -> Result<()> {
        let mut host = Box::<HostFd>::default();
        *host.slot(direction) = Some(handler);
        let inserted =
            self.sources
                .borrow_mut()
                .insert(fd, direction.interest(), Handler::Host(host));
        let token = match inserted {
            Ok(token) => token,
            Err((e, refused)) => {
                refused.give_back();
                return Err(e);
            }
        };
        super::stats::bump(&self.stats.backend_ctl_calls);
        let added = self
            .backend
            .borrow_mut()
            .add(fd, token, direction.interest());
        if let Err(e) = added {
            if let Some((_, refused)) = self.sources.borrow_mut().remove(token) {
                refused.give_back();
            }
            return Err(e);
        }
        Ok(())
    }

    pub fn remove_fd_handler(&self, fd: c_int, direction: Direction) -> Result<()> {
        if fd < 0 {
            return Err(Error::Invalid);
        }
        let token = self.host_token(fd)?.ok_or(Error::NotFound)?;
        let (removed, interest) = {
            let mut sources = self.sources.borrow_mut();
            let Some(Handler::Host(host)) = sources.handler_mut(token) else {
                return Err(Error::NotFound);
            };
            let removed = host.slot(direction).take().ok_or(Error::NotFound)?;
            let interest = host.interest();
            sources.set_interest(token, interest);
            (removed, interest)
        };
        if interest.is_empty() {
            self.drop_source(token);
        } else {
            super::stats::bump(&self.stats.backend_ctl_calls);
            let _ = self.backend.borrow_mut().modify(fd, token, interest);
        }
        self.retire(removed.data);
        Ok(())
    }

    /// The fds with a host handler in `direction`, ascending.
    pub fn fds_with(&self, direction: Direction) -> Vec<c_int> {
        let sources = self.sources.borrow();
        sources
            .host_tokens()
            .into_iter()
            .filter(|t| {
                matches!(sources.handler(*t), Some(Handler::Host(h)) if h.handler(direction).is_some())
            })
            .filter_map(|t| sources.fd(t))
            .collect()
    }

    /// Removes every host registration and returns their fds (each once), ascending.
    pub fn remove_all_fds(&self) -> Vec<c_int> {
        let taken = self.take_host_fds();
        let fds = taken.iter().map(|(fd, _)| *fd).collect();
        for (_, host) in taken {
            host.retire_into(self);
        }
        fds
    }

    fn take_host_fds(&self) -> Vec<(c_int, HostFd)> {
        let tokens = self.sources.borrow().host_tokens();
        let mut taken = Vec::with_capacity(tokens.len());
        for token in tokens {
            let removed = self.sources.borrow_mut().remove(token);
            if let Some((fd, Handler::Host(host))) = removed {
                super::stats::bump(&self.stats.backend_ctl_calls);
                let _ = self.backend.borrow_mut().remove(fd);
                taken.push((fd, *host));
            }
        }
        taken
    }

    /// DURING-shutdown: every host registration gets one `REACTOR_SHUTDOWN` call and is removed.
    pub(super) fn shutdown_host_fds(&self) {
        for (fd, host) in self.take_host_fds() {
            for handler in host.into_handlers() {
                let ud = handler.data.ptr();
                self.invoke(|| call_fd(handler.func, self.handle(), fd, REACTOR_SHUTDOWN, ud));
                self.retire(handler.data);
            }
        }
    }

    /// An event for the host callbacks on `fd` (the registry just found them under `event.token`).
    pub(super) fn dispatch_host_event(&self, event: PollEvent, fd: c_int) {
        for direction in [Direction::Read, Direction::Write] {
            let mask = event.bits & direction.event_mask();
            if mask == 0 {
                continue;
            }
            // Copied out, so no borrow is held while the host runs (it may remove itself).
            let target = match self.sources.borrow().handler(event.token) {
                Some(Handler::Host(host)) => {
                    host.handler(direction).map(|h| (h.func, h.data.ptr()))
                }
                _ => None,
            };
            if let Some((func, ud)) = target {
                self.invoke(|| call_fd(func, self.handle(), fd, mask, ud));
            }
            if self.state.get().is_crashing() {
                return;
            }
        }
        if event.closed {
            // poll(2) said the fd is not open: its callbacks were told (REACTOR_ERROR); drop them.
            if self.sources.borrow().handler(event.token).is_some() {
                self.drop_source(event.token);
            }
        }
    }
}
