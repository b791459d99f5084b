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

/// Where a wake-up is written: an fd (eventfd or pipe), or a kqueue whose EVFILT_USER event is
/// triggered. Copy, async-signal-safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakeTarget {
    fd: c_int,
    /// `fd` is a kqueue: trigger its user event instead of writing.
    kqueue_user: bool,
}

/// `to_bits`' marker of a kqueue user-event target (fd numbers fit in the low 32 bits).
const KQUEUE_USER_BIT: i64 = 1 << 32;

impl WakeTarget {
    /// The EVFILT_USER event (ident 0) of the kqueue `kq`.
    pub fn kqueue_user(kq: c_int) -> WakeTarget {
        WakeTarget {
            fd: kq,
            kqueue_user: true,
        }
    }

    /// A plain number for lock-free tables (the signal handler's list of reactors to wake).
    pub fn to_bits(self) -> i64 {
        if self.fd < 0 {
            return -1;
        }
        i64::from(self.fd) | if self.kqueue_user { KQUEUE_USER_BIT } else { 0 }
    }

    /// A negative number is no target.
    pub fn from_bits(bits: i64) -> WakeTarget {
        if bits < 0 {
            return WakeTarget {
                fd: -1,
                kqueue_user: false,
            };
        }
        WakeTarget {
            fd: (bits & 0xffff_ffff) as c_int,
            kqueue_user: bits & KQUEUE_USER_BIT != 0,
        }
    }

    /// Writes one wake-up token. Async-signal-safe; a full pipe or a saturated eventfd means a
    /// wake-up is already pending, which is all a wake-up needs.
    pub fn wake(self) {
        if self.fd < 0 {
            return;
        }
        if self.kqueue_user {
            trigger_kqueue_user(self.fd);
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

/// Triggers the EVFILT_USER event of kqueue `kq` (a system call: async-signal-safe).
#[cfg(reactor_kqueue_user)]
fn trigger_kqueue_user(kq: c_int) {
    // SAFETY: all-zero is a valid kevent.
    let mut k: libc::kevent = unsafe { std::mem::zeroed() };
    k.filter = libc::EVFILT_USER as _;
    k.fflags = libc::NOTE_TRIGGER as _;
    // SAFETY: one valid change, no events; the kqueue is kept open by its owner (module comment).
    unsafe { libc::kevent(kq, &k, 1, std::ptr::null_mut(), 0, std::ptr::null()) };
}

/// Platforms without a kernel EVFILT_USER never make a kqueue-user target.
#[cfg(not(reactor_kqueue_user))]
fn trigger_kqueue_user(_kq: c_int) {}

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
            kqueue_user: false,
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
        let target = waker.target();
        assert_eq!(WakeTarget::from_bits(target.to_bits()), target);
        let user = WakeTarget::kqueue_user(7);
        assert_eq!(WakeTarget::from_bits(user.to_bits()), user);
    }
}
