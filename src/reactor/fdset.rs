//! IReactorFDSet: reader and writer registrations per fd, each with its own callback.
//!
//! Every fd entry carries a generation tag that the backend echoes in its events, so events collected for
//! a registration that was removed (and maybe re-added for a reused fd number) are dropped.

use super::{Reactor, WAKER_TAG};
use crate::backend::{Interest, ModifyError, PollEvent, check_fd_open};
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
        Interest {
            read: self == Direction::Read,
            write: self == Direction::Write,
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

struct FdEntry {
    tag: u32,
    reader: Option<FdHandler>,
    writer: Option<FdHandler>,
}

impl FdEntry {
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

    fn into_handlers(self) -> impl Iterator<Item = FdHandler> {
        self.reader.into_iter().chain(self.writer)
    }
}

#[derive(Default)]
pub struct FdSet {
    /// Indexed by fd number.
    entries: Vec<Option<FdEntry>>,
    count: usize,
    last_tag: u32,
}

impl FdSet {
    pub fn len(&self) -> usize {
        self.count
    }

    fn get(&self, fd: c_int) -> Option<&FdEntry> {
        self.entries.get(fd as usize)?.as_ref()
    }

    fn get_mut(&mut self, fd: c_int) -> Option<&mut FdEntry> {
        self.entries.get_mut(fd as usize)?.as_mut()
    }

    fn insert(&mut self, fd: c_int, entry: FdEntry) {
        let index = fd as usize;
        if self.entries.len() <= index {
            self.entries.resize_with(index + 1, || None);
        }
        if self.entries[index].replace(entry).is_none() {
            self.count += 1;
        }
    }

    fn remove(&mut self, fd: c_int) -> Option<FdEntry> {
        let entry = self.entries.get_mut(fd as usize)?.take();
        if entry.is_some() {
            self.count -= 1;
        }
        entry
    }

    fn new_tag(&mut self) -> u32 {
        self.last_tag = self.last_tag.wrapping_add(1);
        if self.last_tag == 0 || self.last_tag == WAKER_TAG {
            self.last_tag = 1;
        }
        self.last_tag
    }

    fn fds(&self, wanted: impl Fn(&FdEntry) -> bool) -> Vec<c_int> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.as_ref().is_some_and(&wanted))
            .map(|(fd, _)| fd as c_int)
            .collect()
    }

    pub fn take_all(&mut self) -> Vec<(c_int, FdHandler)> {
        let mut all = Vec::new();
        for (fd, entry) in self.entries.iter_mut().enumerate() {
            if let Some(entry) = entry.take() {
                all.extend(entry.into_handlers().map(|h| (fd as c_int, h)));
            }
        }
        self.count = 0;
        all
    }
}

impl Reactor {
    fn is_internal_fd(&self, fd: c_int) -> bool {
        fd == self.shared.waker.read_fd() || fd == self.backend_fd
    }

    /// Registers `handler` (replacing any previous one for this fd and direction). On error the handler's
    /// user data is given back to the host, not released.
    pub fn add_fd_handler(
        &self,
        fd: c_int,
        direction: Direction,
        handler: FdHandler,
    ) -> Result<()> {
        let checked = if fd < 0 || self.is_internal_fd(fd) {
            Err(Error::Invalid)
        } else {
            check_fd_open(fd)
        };
        if let Err(e) = checked {
            handler.data.into_raw();
            return Err(e);
        }
        let mut released: Vec<FdHandler> = Vec::new();
        let result = {
            let mut fds = self.fds.borrow_mut();
            let mut backend = self.backend.borrow_mut();
            super::stats::bump(&self.stats.backend_ctl_calls);
            let modified = match fds.get_mut(fd) {
                None => Err(ModifyError::Stale),
                Some(entry) => {
                    let mut interest = entry.interest();
                    match direction {
                        Direction::Read => interest.read = true,
                        Direction::Write => interest.write = true,
                    }
                    backend.modify(fd, entry.tag, interest)
                }
            };
            match modified {
                Ok(()) => {
                    let entry = fds.get_mut(fd).expect("entry checked above");
                    released.extend(entry.slot(direction).replace(handler));
                    Ok(())
                }
                Err(ModifyError::Stale) => {
                    // New fd, or the old registration belongs to a file that was closed: start afresh.
                    if let Some(stale) = fds.remove(fd) {
                        let _ = backend.remove(fd);
                        released.extend(stale.into_handlers());
                    }
                    let tag = fds.new_tag();
                    match backend.add(fd, tag, direction.interest()) {
                        Ok(()) => {
                            let mut entry = FdEntry {
                                tag,
                                reader: None,
                                writer: None,
                            };
                            *entry.slot(direction) = Some(handler);
                            fds.insert(fd, entry);
                            Ok(())
                        }
                        Err(e) => {
                            handler.data.into_raw();
                            Err(e)
                        }
                    }
                }
                Err(ModifyError::Other(e)) => {
                    handler.data.into_raw();
                    Err(e)
                }
            }
        };
        for old in released {
            self.retire(old.data);
        }
        result
    }

    pub fn remove_fd_handler(&self, fd: c_int, direction: Direction) -> Result<()> {
        if fd < 0 {
            return Err(Error::Invalid);
        }
        let removed = {
            let mut fds = self.fds.borrow_mut();
            let entry = fds.get_mut(fd).ok_or(Error::NotFound)?;
            let handler = entry.slot(direction).take().ok_or(Error::NotFound)?;
            let interest = entry.interest();
            let tag = entry.tag;
            let mut backend = self.backend.borrow_mut();
            super::stats::bump(&self.stats.backend_ctl_calls);
            if interest.is_empty() {
                fds.remove(fd);
                // The fd may already be closed; nothing to undo then.
                let _ = backend.remove(fd);
            } else {
                let _ = backend.modify(fd, tag, interest);
            }
            handler
        };
        self.retire(removed.data);
        Ok(())
    }

    pub fn fds_with(&self, direction: Direction) -> Vec<c_int> {
        self.fds.borrow().fds(|e| e.handler(direction).is_some())
    }

    /// Removes every user registration and returns the fds (each once), sorted.
    pub fn remove_all_fds(&self) -> Vec<c_int> {
        let taken = self.take_all_fds();
        let mut fds: Vec<c_int> = taken.iter().map(|(fd, _)| *fd).collect();
        fds.dedup();
        for (_, handler) in taken {
            self.retire(handler.data);
        }
        fds
    }

    fn take_all_fds(&self) -> Vec<(c_int, FdHandler)> {
        let taken = self.fds.borrow_mut().take_all();
        let mut backend = self.backend.borrow_mut();
        let mut last = -1;
        for (fd, _) in &taken {
            if *fd != last {
                super::stats::bump(&self.stats.backend_ctl_calls);
                let _ = backend.remove(*fd);
                last = *fd;
            }
        }
        taken
    }

    /// DURING-shutdown: every remaining registration gets one `REACTOR_SHUTDOWN` call and is removed.
    pub(super) fn shutdown_fds(&self) {
        for (fd, handler) in self.take_all_fds() {
            let ud = handler.data.ptr();
            self.invoke(|| call_fd(handler.func, self.handle(), fd, REACTOR_SHUTDOWN, ud));
            self.retire(handler.data);
        }
    }

    pub(super) fn dispatch_fd_event(&self, event: PollEvent) {
        for direction in [Direction::Read, Direction::Write] {
            let mask = event.bits & direction.event_mask();
            if mask == 0 {
                continue;
            }
            let target = self
                .fds
                .borrow()
                .get(event.fd)
                .filter(|entry| entry.tag == event.tag)
                .and_then(|entry| entry.handler(direction))
                .map(|h| (h.func, h.data.ptr()));
            if let Some((func, ud)) = target {
                self.invoke(|| call_fd(func, self.handle(), event.fd, mask, ud));
            }
            if self.crash_requested.get() {
                return;
            }
        }
        if event.closed {
            self.drop_closed_fd(event);
        }
    }

    /// poll(2) said the fd is not open: its registrations were told (REACTOR_ERROR); drop them.
    fn drop_closed_fd(&self, event: PollEvent) {
        let stale = {
            let mut fds = self.fds.borrow_mut();
            if fds.get(event.fd).is_none_or(|e| e.tag != event.tag) {
                return;
            }
            let entry = fds.remove(event.fd);
            let _ = self.backend.borrow_mut().remove(event.fd);
            entry
        };
        for handler in stale.into_iter().flat_map(FdEntry::into_handlers) {
            self.retire(handler.data);
        }
    }
}
