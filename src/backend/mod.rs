//! Pollers behind one small trait.
//!
//! The loop registers *event sources* by token (`Token`, an index and generation into the reactor's
//! source registry); a backend reports readiness as `PollEvent`s carrying that token, so an event
//! collected for a source that was removed (and maybe replaced on a reused fd number) is recognised as
//! stale by the registry. Each backend owns the reactor's waker in its native form (an eventfd on
//! Linux, a pipe elsewhere; kqueue's EVFILT_USER when that backend lands) and drains it itself, so the
//! loop never sees it as an event.

use crate::status::{Error, Result};
use std::os::raw::c_int;

#[cfg(target_os = "linux")]
mod epoll;
#[cfg(reactor_kqueue)]
mod kqueue;
mod poll;
mod waker;

#[cfg(target_os = "linux")]
pub use epoll::Epoll;
#[cfg(reactor_kqueue)]
pub use kqueue::Kqueue;
pub use poll::Poll;
use std::num::NonZeroU64;
pub use waker::{WakeTarget, Waker};

/// Identifies a registered source: its registry index and the generation of that slot. Generations
/// start at 1, so a token is never 0 and `Option<Token>` takes 8 bytes (a transport holds one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token(NonZeroU64);

impl Token {
    /// `generation` must not be 0 (the registry never hands out 0).
    pub fn new(index: u32, generation: u32) -> Token {
        debug_assert_ne!(generation, 0);
        let raw = (u64::from(generation.max(1)) << 32) | u64::from(index);
        Token(NonZeroU64::new(raw).unwrap_or(NonZeroU64::MIN))
    }

    /// The token a backend got back from the kernel (epoll data, kevent udata); `None` for 0,
    /// which no registration carries.
    pub fn from_raw(raw: u64) -> Option<Token> {
        NonZeroU64::new(raw).map(Token)
    }

    /// What a backend hands the kernel to get back with each event.
    pub fn raw(self) -> u64 {
        self.0.get()
    }

    pub fn index(self) -> u32 {
        self.0.get() as u32
    }

    pub fn generation(self) -> u32 {
        (self.0.get() >> 32) as u32
    }
}

/// What an fd registration wants to hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interest {
    pub read: bool,
    pub write: bool,
}

impl Interest {
    pub(crate) const READ: Interest = Interest {
        read: true,
        write: false,
    };
    pub(crate) const WRITE: Interest = Interest {
        read: false,
        write: true,
    };

    pub fn is_empty(self) -> bool {
        !self.read && !self.write
    }
}

/// Non-fd event filters some backends provide natively (kqueue: EVFILT_PROC, EVFILT_SIGNAL). Where a
/// backend lacks one, `add_watch` says `Error::Unsupported` and the caller uses its portable fallback
/// (pidfd, signal handler plus waker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// The process exited.
    Process(libc::pid_t),
    /// The signal was delivered.
    Signal(c_int),
}

/// One readiness report. `bits` uses the public `REACTOR_READABLE` ... `REACTOR_ERROR` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollEvent {
    pub token: Token,
    pub bits: u32,
    /// The fd is no longer the file that was registered (poll's POLLNVAL, or a reused number): the
    /// registration is stale and must be dropped after its callbacks heard about it.
    pub closed: bool,
    /// The peer closed its end (kqueue's EV_EOF, epoll's EPOLLRDHUP); reading may still drain data.
    pub eof: bool,
    /// Filter-specific data (kqueue: bytes readable/writable, or the errno with EV_EOF); 0 otherwise.
    pub data: i64,
}

impl PollEvent {
    pub fn new(token: Token, bits: u32) -> PollEvent {
        PollEvent {
            token,
            bits,
            closed: false,
            eof: false,
            data: 0,
        }
    }

    /// The socket error a backend reported with the event (kqueue: EV_EOF with an errno in fflags),
    /// which it may have taken from the socket (libkqueue reads SO_ERROR to fill it in).
    pub fn reported_error(&self) -> Option<i32> {
        (self.eof && self.bits & crate::types::REACTOR_ERROR != 0 && self.data > 0)
            .then(|| i32::try_from(self.data).unwrap_or(libc::EIO))
    }
}

/// Why a modification failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModifyError {
    /// The backend's registration belongs to a file that was closed (the fd number may be reused).
    Stale,
    Other(Error),
}

pub trait Poller: Send {
    fn name(&self) -> &'static str;
    /// A pollable fd that becomes readable when this poller has events (for host loops), or -1.
    fn pollable_fd(&self) -> c_int;
    /// Where other threads and signal handlers write to wake this poller (async-signal-safe).
    fn wake_target(&self) -> WakeTarget;
    /// True for fds the poller itself uses (its own fd, the waker): never registrable by hosts.
    fn owns_fd(&self, fd: c_int) -> bool;
    fn add(&mut self, fd: c_int, token: Token, interest: Interest) -> Result<()>;
    fn modify(
        &mut self,
        fd: c_int,
        token: Token,
        interest: Interest,
    ) -> std::result::Result<(), ModifyError>;
    /// `add` for an fd the library owns (a socket of its own, open, that nobody can close behind its
    /// back): a backend may skip its checks.
    fn add_owned(&mut self, fd: c_int, token: Token, interest: Interest) -> Result<()> {
        self.add(fd, token, interest)
    }
    /// `modify` for an fd the library owns (a socket of its own), which nobody can close behind its
    /// back: a backend may skip its staleness checks.
    fn modify_owned(
        &mut self,
        fd: c_int,
        token: Token,
        interest: Interest,
    ) -> std::result::Result<(), ModifyError> {
        self.modify(fd, token, interest)
    }
    /// Errors are ignored by callers (the fd may already be closed), but reported for tests.
    fn remove(&mut self, fd: c_int) -> Result<()>;
    /// Starts a non-fd watch (see `Watch`); `Error::Unsupported` where the backend has no native form.
    fn add_watch(&mut self, watch: Watch, token: Token) -> Result<()> {
        let _ = (watch, token);
        Err(Error::Unsupported)
    }
    fn remove_watch(&mut self, watch: Watch) -> Result<()> {
        let _ = watch;
        Err(Error::Unsupported)
    }
    /// Waits up to `timeout_ms` (-1 = forever) and appends source events to `out`. Returns whether
    /// the waker fired (drained here). EINTR is not an error.
    fn poll(&mut self, out: &mut Vec<PollEvent>, timeout_ms: c_int) -> Result<bool>;
}

/// Which backend to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Epoll,
    Poll,
    Kqueue,
}

impl BackendKind {
    pub fn from_name(name: &str) -> Option<BackendKind> {
        match name {
            "epoll" => Some(BackendKind::Epoll),
            "poll" => Some(BackendKind::Poll),
            "kqueue" => Some(BackendKind::Kqueue),
            _ => None,
        }
    }

    /// epoll on Linux, kqueue on macOS and the BSDs, poll elsewhere.
    pub fn platform_default() -> BackendKind {
        if cfg!(target_os = "linux") {
            BackendKind::Epoll
        } else if cfg!(all(reactor_kqueue, not(target_os = "linux"))) {
            BackendKind::Kqueue
        } else {
            BackendKind::Poll
        }
    }

    pub fn create(self) -> Result<Box<dyn Poller>> {
        match self {
            #[cfg(target_os = "linux")]
            BackendKind::Epoll => Ok(Box::new(Epoll::new()?)),
            #[cfg(reactor_kqueue)]
            BackendKind::Kqueue => Ok(Box::new(Kqueue::new()?)),
            BackendKind::Poll => Ok(Box::new(Poll::new()?)),
            #[allow(unreachable_patterns)]
            _ => Err(Error::Unsupported),
        }
    }
}

/// The number of ready entries from epoll_wait/poll's return value; an interrupted wait (EINTR) is an
/// empty one, not an error.
fn ready_count(n: c_int) -> Result<usize> {
    if n >= 0 {
        return Ok(n as usize);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EINTR) {
        Ok(0)
    } else {
        Err(err.into())
    }
}

/// The identity of the file behind `fd` (device, inode): a closed fd whose number was reused has
/// another one.
pub fn file_identity(fd: c_int) -> Result<(u64, u64)> {
    // SAFETY: zeroed stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer; fd validity is checked by the call.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(Error::last_os());
    }
    Ok((st.st_dev as u64, st.st_ino as u64))
}

/// Fails with EBADF (as an OS status) if `fd` is not open.
pub fn check_fd_open(fd: c_int) -> Result<()> {
    // SAFETY: F_GETFD only reads the descriptor flags.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        Err(Error::last_os())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Token;

    #[test]
    fn tokens_round_trip_through_the_kernel_and_are_never_zero() {
        let token = Token::new(7, 3);
        assert_eq!((token.index(), token.generation()), (7, 3));
        assert_eq!(Token::from_raw(token.raw()), Some(token));
        assert_eq!(Token::from_raw(0), None, "0 is no registration");
        let max = Token::new(u32::MAX - 1, u32::MAX);
        assert_eq!(Token::from_raw(max.raw()), Some(max));
        assert_eq!(std::mem::size_of::<Option<Token>>(), 8);
    }
}
