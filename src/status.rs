//! Status codes: the `int` every fallible C function returns, and the internal `Error` they map from.
//!
//! Values are part of the ABI: fixed once released, never reused.

use once_cell::sync::Lazy;
use std::ffi::{CStr, CString};
use std::os::raw::c_int;

/// Status codes returned by every fallible function (`REACTOR_OK` or negative). OS errors are outside
/// this enum: `REACTOR_E_OS(errno)`.
#[repr(C)]
#[allow(non_camel_case_types, clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum reactor_status_t {
    REACTOR_OK = 0,
    REACTOR_E_INVALID = -1,
    REACTOR_E_WRONG_THREAD = -2,
    REACTOR_E_ALREADY_RUNNING = -3,
    REACTOR_E_NOT_RUNNING = -4,
    REACTOR_E_NOT_RESTARTABLE = -5,
    REACTOR_E_ALREADY_CALLED = -6,
    REACTOR_E_ALREADY_CANCELLED = -7,
    REACTOR_E_NOT_FOUND = -8,
    REACTOR_E_BUSY = -9,
    REACTOR_E_CLOSED = -10,
    REACTOR_E_UNSUPPORTED = -11,
    REACTOR_E_TIMEOUT = -12,
    REACTOR_E_NOMEM = -13,
    REACTOR_E_CONNECTION_REFUSED = -14,
    REACTOR_E_DNS = -15,
    REACTOR_E_ADDRESS_IN_USE = -16,
    REACTOR_E_INVALID_ADDRESS = -17,
    REACTOR_E_MESSAGE_TOO_LONG = -18,
    REACTOR_E_PROCESS_EXITED = -19,
    /// An internal error (a caught Rust panic); the reactor is poisoned and refuses further calls.
    REACTOR_E_INTERNAL = -20,
}

pub(crate) const REACTOR_OK: c_int = reactor_status_t::REACTOR_OK as c_int;
pub(crate) const REACTOR_E_INVALID: c_int = reactor_status_t::REACTOR_E_INVALID as c_int;
pub(crate) const REACTOR_E_WRONG_THREAD: c_int = reactor_status_t::REACTOR_E_WRONG_THREAD as c_int;
pub(crate) const REACTOR_E_ALREADY_RUNNING: c_int =
    reactor_status_t::REACTOR_E_ALREADY_RUNNING as c_int;
pub(crate) const REACTOR_E_NOT_RUNNING: c_int = reactor_status_t::REACTOR_E_NOT_RUNNING as c_int;
pub(crate) const REACTOR_E_NOT_RESTARTABLE: c_int =
    reactor_status_t::REACTOR_E_NOT_RESTARTABLE as c_int;
pub(crate) const REACTOR_E_ALREADY_CALLED: c_int =
    reactor_status_t::REACTOR_E_ALREADY_CALLED as c_int;
pub(crate) const REACTOR_E_ALREADY_CANCELLED: c_int =
    reactor_status_t::REACTOR_E_ALREADY_CANCELLED as c_int;
pub(crate) const REACTOR_E_NOT_FOUND: c_int = reactor_status_t::REACTOR_E_NOT_FOUND as c_int;
pub(crate) const REACTOR_E_BUSY: c_int = reactor_status_t::REACTOR_E_BUSY as c_int;
pub(crate) const REACTOR_E_CLOSED: c_int = reactor_status_t::REACTOR_E_CLOSED as c_int;
pub(crate) const REACTOR_E_UNSUPPORTED: c_int = reactor_status_t::REACTOR_E_UNSUPPORTED as c_int;
pub(crate) const REACTOR_E_TIMEOUT: c_int = reactor_status_t::REACTOR_E_TIMEOUT as c_int;
pub(crate) const REACTOR_E_NOMEM: c_int = reactor_status_t::REACTOR_E_NOMEM as c_int;
pub(crate) const REACTOR_E_CONNECTION_REFUSED: c_int =
    reactor_status_t::REACTOR_E_CONNECTION_REFUSED as c_int;
pub(crate) const REACTOR_E_DNS: c_int = reactor_status_t::REACTOR_E_DNS as c_int;
pub(crate) const REACTOR_E_ADDRESS_IN_USE: c_int =
    reactor_status_t::REACTOR_E_ADDRESS_IN_USE as c_int;
pub(crate) const REACTOR_E_INVALID_ADDRESS: c_int =
    reactor_status_t::REACTOR_E_INVALID_ADDRESS as c_int;
pub(crate) const REACTOR_E_MESSAGE_TOO_LONG: c_int =
    reactor_status_t::REACTOR_E_MESSAGE_TOO_LONG as c_int;
pub(crate) const REACTOR_E_PROCESS_EXITED: c_int =
    reactor_status_t::REACTOR_E_PROCESS_EXITED as c_int;
pub(crate) const REACTOR_E_INTERNAL: c_int = reactor_status_t::REACTOR_E_INTERNAL as c_int;
/// OS errors are `-(REACTOR_E_OS_BASE + errno)`; see the `REACTOR_E_OS(e)` macro.
pub const REACTOR_E_OS_BASE: c_int = 10000;

/// Returned by a BEFORE trigger to hold its event until `reactor_trigger_complete`.
pub const REACTOR_PENDING: c_int = 1;

/// Everything that can go wrong inside the library, before it becomes a C status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    Invalid,
    WrongThread,
    AlreadyRunning,
    NotRunning,
    NotRestartable,
    AlreadyCalled,
    AlreadyCancelled,
    NotFound,
    Busy,
    Closed,
    Unsupported,
    NoMem,
    Internal,
    /// An errno from the operating system.
    Os(i32),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The C status code for this error.
    pub fn code(self) -> c_int {
        match self {
            Error::Invalid => REACTOR_E_INVALID,
            Error::WrongThread => REACTOR_E_WRONG_THREAD,
            Error::AlreadyRunning => REACTOR_E_ALREADY_RUNNING,
            Error::NotRunning => REACTOR_E_NOT_RUNNING,
            Error::NotRestartable => REACTOR_E_NOT_RESTARTABLE,
            Error::AlreadyCalled => REACTOR_E_ALREADY_CALLED,
            Error::AlreadyCancelled => REACTOR_E_ALREADY_CANCELLED,
            Error::NotFound => REACTOR_E_NOT_FOUND,
            Error::Busy => REACTOR_E_BUSY,
            Error::Closed => REACTOR_E_CLOSED,
            Error::Unsupported => REACTOR_E_UNSUPPORTED,
            Error::NoMem => REACTOR_E_NOMEM,
            Error::Internal => REACTOR_E_INTERNAL,
            Error::Os(errno) => os_status(errno),
        }
    }

    /// The error behind the last failed libc call on this thread.
    pub fn last_os() -> Error {
        Error::from(std::io::Error::last_os_error())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        match e.raw_os_error() {
            Some(libc::ENOMEM) => Error::NoMem,
            Some(errno) => Error::Os(errno),
            None => Error::Os(libc::EIO),
        }
    }
}

/// `REACTOR_E_OS(errno)`; errno values outside 1..=4095 become EIO so the encoding stays unambiguous.
pub fn os_status(errno: i32) -> c_int {
    let errno = if (1..=4095).contains(&errno) {
        errno
    } else {
        libc::EIO
    };
    -(REACTOR_E_OS_BASE + errno)
}

/// The errno inside an OS status, or 0 for any other status.
pub fn status_errno(status: c_int) -> c_int {
    if (-(REACTOR_E_OS_BASE + 4095)..=-(REACTOR_E_OS_BASE + 1)).contains(&status) {
        -status - REACTOR_E_OS_BASE
    } else {
        0
    }
}

/// Messages for OS statuses, built once (errno 1..=255) so `strerror` can hand out static pointers.
static OS_MESSAGES: Lazy<Vec<CString>> = Lazy::new(|| {
    (1..=255)
        .map(|errno| {
            let text = std::io::Error::from_raw_os_error(errno).to_string();
            CString::new(text.replace('\0', " ")).unwrap_or_default()
        })
        .collect()
});

/// A static, human-readable description of any status code (never NULL, also for unknown codes).
pub fn strerror(status: c_int) -> &'static CStr {
    match status {
        REACTOR_OK => c"success",
        REACTOR_E_INVALID => c"invalid argument",
        REACTOR_E_WRONG_THREAD => c"called from a thread that does not own the reactor",
        REACTOR_E_ALREADY_RUNNING => c"the reactor is already running",
        REACTOR_E_NOT_RUNNING => c"the reactor is not running",
        REACTOR_E_NOT_RESTARTABLE => c"the reactor was stopped and cannot run again",
        REACTOR_E_ALREADY_CALLED => c"the delayed call already ran",
        REACTOR_E_ALREADY_CANCELLED => c"the delayed call was already cancelled",
        REACTOR_E_NOT_FOUND => c"not found",
        REACTOR_E_BUSY => c"busy",
        REACTOR_E_CLOSED => c"closed",
        REACTOR_E_UNSUPPORTED => c"unsupported",
        REACTOR_E_TIMEOUT => c"timed out",
        REACTOR_E_NOMEM => c"out of memory",
        REACTOR_E_CONNECTION_REFUSED => c"connection refused",
        REACTOR_E_DNS => c"name resolution failed",
        REACTOR_E_ADDRESS_IN_USE => c"address in use",
        REACTOR_E_INVALID_ADDRESS => c"invalid address",
        REACTOR_E_MESSAGE_TOO_LONG => c"message too long",
        REACTOR_E_PROCESS_EXITED => c"process exited",
        REACTOR_E_INTERNAL => c"internal error (the reactor is poisoned)",
        REACTOR_PENDING => c"pending",
        _ => match status_errno(status) {
            0 => c"unknown status code",
            errno => OS_MESSAGES
                .get(errno as usize - 1)
                .map(|m| m.as_c_str())
                .unwrap_or(c"operating system error"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_status_round_trips() {
        for errno in [1, libc::EBADF, libc::EAGAIN, 4095] {
            assert_eq!(status_errno(os_status(errno)), errno);
        }
        assert_eq!(status_errno(REACTOR_E_INVALID), 0);
        assert_eq!(status_errno(REACTOR_OK), 0);
        assert_eq!(os_status(0), os_status(libc::EIO));
    }

    #[test]
    fn every_code_has_a_message() {
        for code in REACTOR_E_INTERNAL..=REACTOR_PENDING {
            assert_ne!(strerror(code), c"unknown status code", "code {code}");
        }
        assert_eq!(strerror(12345), c"unknown status code");
        assert!(strerror(os_status(libc::EBADF)).to_bytes().len() > 3);
    }
}
