//! The fd-based waker: an eventfd on Linux, a non-blocking pipe elsewhere. The backend that owns it
//! registers the read side and drains it; other threads and signal handlers write through a
//! `WakeTarget`, a plain copy of the fd number.
//!
//! Lifetime: a `WakeTarget` is only used while the reactor that owns the waker is alive — callers reach
//! it through a pin on the reactor, a gate the reactor closes before it is freed, or the signal table
//! the reactor leaves before `run` returns.

use crate::status::{Error, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::raw::c_int;

pub struct Waker {
    read: OwnedFd,
    /// The pipe's write end; the eventfd is both ends.
    write: Option<OwnedFd>,
}

/// Where a wake-up is written. Copy, async-signal-safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakeTarget {
    fd: c_int,
}

impl WakeTarget {
    /// A plain number for lock-free tables (the signal handler's list of reactors to wake).
    pub fn to_bits(self) -> i64 {
        i64::from(self.fd)
    }

    pub fn from_bits(bits: i64) -> WakeTarget {
        WakeTarget { fd: bits as c_int }
    }

    /// Writes one wake-up token. Async-signal-safe; a full pipe or a saturated eventfd means a
    /// wake-up is already pending, which is all a wake-up needs.
    pub fn wake(self) {
        if self.fd < 0 {
            return;
        }
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a local to an fd the owner keeps open (see the module comment).
        unsafe {
            libc::write(
                self.fd,
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }
}

#[cfg(not(target_os = "linux"))]
fn set_nonblocking_cloexec(fd: c_int) {
    // SAFETY: plain fcntl calls on an fd we just created.
    unsafe {
        libc::fcntl(
            fd,
            libc::F_SETFL,
            libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
        );
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
}

impl Waker {
    pub fn new() -> Result<Waker> {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: plain syscall; the result is checked.
            let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
            if fd < 0 {
                return Err(Error::last_os());
            }
            Ok(Waker {
                // SAFETY: a fresh fd we own.
                read: unsafe { OwnedFd::from_raw_fd(fd) },
                write: None,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let mut fds = [0 as c_int; 2];
            // SAFETY: valid out-array. (pipe2 is missing on macOS: set the flags afterwards.)
            if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                return Err(Error::last_os());
            }
            fds.iter().for_each(|&fd| set_nonblocking_cloexec(fd));
            Ok(Waker {
                // SAFETY: fresh fds we own.
                read: unsafe { OwnedFd::from_raw_fd(fds[0]) },
                // SAFETY: as above.
                write: Some(unsafe { OwnedFd::from_raw_fd(fds[1]) }),
            })
        }
    }

    pub fn read_fd(&self) -> c_int {
        self.read.as_raw_fd()
    }

    pub fn target(&self) -> WakeTarget {
        WakeTarget {
            fd: self.write.as_ref().unwrap_or(&self.read).as_raw_fd(),
        }
    }

    pub fn owns_fd(&self, fd: c_int) -> bool {
        fd == self.read.as_raw_fd() || self.write.as_ref().is_some_and(|w| w.as_raw_fd() == fd)
    }

    /// Consumes pending wake-ups (one read resets an eventfd; a pipe is read until empty).
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: valid buffer; non-blocking fd.
            let n = unsafe { libc::read(self.read_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 || self.write.is_none() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_makes_the_read_side_readable_until_drained() {
        let waker = Waker::new().unwrap();
        let mut pfd = libc::pollfd {
            fd: waker.read_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let mut ready = || unsafe { libc::poll(&mut pfd, 1, 0) };
        assert_eq!(ready(), 0);
        waker.target().wake();
        waker.target().wake();
        assert_eq!(ready(), 1);
        waker.drain();
        assert_eq!(ready(), 0);
        assert!(waker.owns_fd(waker.read_fd()));
        WakeTarget::from_bits(-1).wake(); // no fd: nothing to write
    }
}
