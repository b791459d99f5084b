//! Pollers behind one small trait. Each backend reports readiness as `PollEvent`s tagged with the
//! registration's generation, so an event collected for a closed-and-reused fd can be recognised as stale.

use crate::status::{Error, Result};
use std::os::raw::c_int;

#[cfg(target_os = "linux")]
mod epoll;
mod poll;

#[cfg(target_os = "linux")]
pub use epoll::Epoll;
pub use poll::Poll;

/// What a registration wants to hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interest {
    pub read: bool,
    pub write: bool,
}

impl Interest {
    pub fn is_empty(self) -> bool {
        !self.read && !self.write
    }
}

/// One readiness report: `bits` uses the public `REACTOR_READABLE` ... `REACTOR_ERROR` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollEvent {
    pub fd: c_int,
    pub tag: u32,
    pub bits: u32,
    /// The fd is no longer open (poll's POLLNVAL): the registration is stale.
    pub closed: bool,
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
    /// A pollable fd that becomes readable when this poller has events, or -1.
    fn pollable_fd(&self) -> c_int;
    fn add(&mut self, fd: c_int, tag: u32, interest: Interest) -> Result<()>;
    fn modify(
        &mut self,
        fd: c_int,
        tag: u32,
        interest: Interest,
    ) -> std::result::Result<(), ModifyError>;
    /// Errors are ignored by callers (the fd may already be closed), but reported for tests.
    fn remove(&mut self, fd: c_int) -> Result<()>;
    /// Waits up to `timeout_ms` (-1 = forever) and appends events to `out`. EINTR is not an error.
    fn poll(&mut self, out: &mut Vec<PollEvent>, timeout_ms: c_int) -> Result<()>;
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

    pub fn platform_default() -> BackendKind {
        if cfg!(target_os = "linux") {
            BackendKind::Epoll
        } else {
            BackendKind::Poll
        }
    }

    pub fn create(self) -> Result<Box<dyn Poller>> {
        match self {
            #[cfg(target_os = "linux")]
            BackendKind::Epoll => Ok(Box::new(Epoll::new()?)),
            BackendKind::Poll => Ok(Box::new(Poll::new())),
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

/// Fails with EBADF (as an OS status) if `fd` is not open.
pub fn check_fd_open(fd: c_int) -> Result<()> {
    // SAFETY: F_GETFD only reads the descriptor flags.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        Err(Error::last_os())
    } else {
        Ok(())
    }
}
