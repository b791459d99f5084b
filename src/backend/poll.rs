//! The portable poll(2) backend. It has no kernel-side registration, so it remembers each fd's identity
//! (device, inode): an fd that reports readiness but is no longer the file that was registered (closed,
//! number reused) is reported as `closed` with no readiness bits, so the old registration never sees the
//! new file's events. POLLNVAL (closed, not reused) is reported as `closed` with `REACTOR_ERROR`.
//! The waker's read end is entry 0 of the pollfd array and is drained here.

use super::{Interest, ModifyError, PollEvent, Poller, Token, WakeTarget, Waker, check_fd_open};
use crate::status::{Error, Result};
use crate::types::{REACTOR_ERROR, REACTOR_HANGUP, REACTOR_READABLE, REACTOR_WRITABLE};
use std::os::raw::c_int;

#[derive(Clone, Copy)]
struct Slot {
    index: usize,
    token: Token,
    identity: (u64, u64),
}

pub struct Poll {
    /// Entry 0 is the waker; the others are registrations, in `slots` order of arrival.
    pollfds: Vec<libc::pollfd>,
    /// Indexed by fd number.
    slots: Vec<Option<Slot>>,
    waker: Waker,
}

use super::file_identity as identity;

fn poll_flags(interest: Interest) -> i16 {
    let mut flags = 0;
    if interest.read {
        flags |= libc::POLLIN;
    }
    if interest.write {
        flags |= libc::POLLOUT;
    }
    flags
}

fn bits_of(flags: i16) -> u32 {
    let mut bits = 0;
    if flags & (libc::POLLIN | libc::POLLPRI) != 0 {
        bits |= REACTOR_READABLE;
    }
    if flags & libc::POLLOUT != 0 {
        bits |= REACTOR_WRITABLE;
    }
    if flags & libc::POLLHUP != 0 {
        bits |= REACTOR_HANGUP;
    }
    if flags & (libc::POLLERR | libc::POLLNVAL) != 0 {
        bits |= REACTOR_ERROR;
    }
    bits
}

impl Poll {
    pub fn new() -> Result<Poll> {
        let waker = Waker::new()?;
        Ok(Poll {
            pollfds: vec![libc::pollfd {
                fd: waker.read_fd(),
                events: libc::POLLIN,
                revents: 0,
            }],
            slots: Vec::new(),
            waker,
        })
    }

    fn slot(&self, fd: c_int) -> Option<Slot> {
        self.slots.get(fd as usize).copied().flatten()
    }
}

impl Poller for Poll {
    fn name(&self) -> &'static str {
        "poll"
    }

    fn pollable_fd(&self) -> c_int {
        -1
    }

    fn wake_target(&self) -> WakeTarget {
        self.waker.target()
    }

    fn owns_fd(&self, fd: c_int) -> bool {
        self.waker.owns_fd(fd)
    }

    fn add(&mut self, fd: c_int, token: Token, interest: Interest) -> Result<()> {
        check_fd_open(fd)?;
        let identity = identity(fd)?;
        let events = poll_flags(interest);
        match self.slot(fd) {
            Some(slot) => {
                self.pollfds[slot.index].events = events;
                self.slots[fd as usize] = Some(Slot {
                    token,
                    identity,
                    ..slot
                });
            }
            None => {
                if self.slots.len() <= fd as usize {
                    self.slots.resize(fd as usize + 1, None);
                }
                self.slots[fd as usize] = Some(Slot {
                    index: self.pollfds.len(),
                    token,
                    identity,
                });
                self.pollfds.push(libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                });
            }
        }
        Ok(())
    }

    fn modify(
        &mut self,
        fd: c_int,
        token: Token,
        interest: Interest,
    ) -> std::result::Result<(), ModifyError> {
        let Some(slot) = self.slot(fd) else {
            return Err(ModifyError::Stale);
        };
        match identity(fd) {
            Ok(id) if id == slot.identity => {}
            Ok(_) => return Err(ModifyError::Stale),
            Err(Error::Os(libc::EBADF)) => return Err(ModifyError::Stale),
            Err(e) => return Err(ModifyError::Other(e)),
        }
        self.pollfds[slot.index].events = poll_flags(interest);
        self.slots[fd as usize] = Some(Slot { token, ..slot });
        Ok(())
    }

    fn remove(&mut self, fd: c_int) -> Result<()> {
        let Some(slot) = self.slot(fd) else {
            return Err(Error::NotFound);
        };
        self.slots[fd as usize] = None;
        self.pollfds.swap_remove(slot.index);
        if let Some(moved) = self.pollfds.get(slot.index) {
            if let Some(Some(moved_slot)) = self.slots.get_mut(moved.fd as usize) {
                moved_slot.index = slot.index;
            }
        }
        Ok(())
    }

    fn poll(&mut self, out: &mut Vec<PollEvent>, timeout_ms: c_int) -> Result<bool> {
        // SAFETY: pollfds is a valid array of its length.
        let n = unsafe {
            libc::poll(
                self.pollfds.as_mut_ptr(),
                self.pollfds.len() as libc::nfds_t,
                timeout_ms,
            )
        };
        let mut remaining = super::ready_count(n)?;
        let woken = self.pollfds[0].revents != 0;
        if woken {
            self.waker.drain();
            remaining -= 1;
        }
        for pfd in &self.pollfds[1..] {
            if remaining == 0 {
                break;
            }
            if pfd.revents == 0 {
                continue;
            }
            remaining -= 1;
            let Some(slot) = self.slot(pfd.fd) else {
                continue;
            };
            let mut event = PollEvent::new(slot.token, bits_of(pfd.revents));
            event.closed = pfd.revents & libc::POLLNVAL != 0;
            if !event.closed && identity(pfd.fd).is_ok_and(|id| id != slot.identity) {
                // Closed and the number reused for another file: the old registration must not see it.
                event.closed = true;
                event.bits = 0;
            }
            out.push(event);
        }
        Ok(woken)
    }
}
