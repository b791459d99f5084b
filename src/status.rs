//! Status codes: the `int` every fallible C function returns, and the internal `Error` they map from.
//!
//! The codes are listed once, in `status_table!` below (status, Rust error, message); the
//! `reactor_status_t` enum beside it is their ABI declaration for cbindgen, and the compiler checks
//! that the two agree (an exhaustive match in both directions). Values are part of the ABI: fixed once
//! released, never reused. OS errors are outside the enum: `REACTOR_E_OS(errno)` = -(10000 + errno).

use once_cell::sync::Lazy;
use std::ffi::{CStr, CString};
use std::os::raw::c_int;

/// Status codes returned by every fallible function (`REACTOR_OK` or negative). OS errors are outside
/// this enum: `REACTOR_E_OS(errno)` / `reactor_status_from_errno(errno)`.
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
    /// An internal error (a caught Rust panic); the reactor is poisoned and refuses further calls
    /// (`reactor_free` still works and runs the releases).
    REACTOR_E_INTERNAL = -20,
    /// A connection closed uncleanly with no OS error to report.
    REACTOR_E_CONNECTION_LOST = -21,
    /// A connection closed by `reactor_transport_abort_connection`.
    REACTOR_E_CONNECTION_ABORTED = -22,
    /// An attempt stopped before it finished (`reactor_connector_stop_connecting`, shutdown).
    REACTOR_E_CANCELLED = -23,
    /// A process ended (API.md §8).
    REACTOR_E_PROCESS_TERMINATED = -24,
}

/// OS errors are `-(REACTOR_E_OS_BASE + errno)`; see `REACTOR_E_OS(e)` and `reactor_status_from_errno`.
pub const REACTOR_E_OS_BASE: c_int = 10000;

/// Returned by a BEFORE trigger to hold its event until `reactor_trigger_complete`.
pub const REACTOR_PENDING: c_int = 1;

/// The one list: each status with the Rust error that maps to it and its message.
macro_rules! status_table {
    ($( $status:ident => $error:ident, $message:literal; )*) => {
        /// Everything that can go wrong inside the library, before it becomes a C status code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Error {
            $( $error, )*
            /// An errno from the operating system.
            Os(i32),
        }

        impl Error {
            /// The C status code for this error.
            pub fn code(self) -> c_int {
                match self {
                    $( Error::$error => reactor_status_t::$status as c_int, )*
                    Error::Os(errno) => os_status(errno),
                }
            }
        }

        impl reactor_status_t {
            /// Every status, in table order.
            pub const ALL: &'static [reactor_status_t] = &[
                reactor_status_t::REACTOR_OK, $( reactor_status_t::$status, )*
            ];

            /// The status's message (static, for `reactor_strerror`).
            pub fn message(self) -> &'static CStr {
                // Exhaustive: a variant without a table row does not compile.
                match self {
                    reactor_status_t::REACTOR_OK => c"success",
                    $( reactor_status_t::$status => $message, )*
                }
            }
        }
    };
}

status_table! {
    REACTOR_E_INVALID => Invalid, c"invalid argument";
    REACTOR_E_WRONG_THREAD => WrongThread, c"called from a thread that does not own the reactor";
    REACTOR_E_ALREADY_RUNNING => AlreadyRunning, c"the reactor is already running";
    REACTOR_E_NOT_RUNNING => NotRunning, c"the reactor is not running";
    REACTOR_E_NOT_RESTARTABLE => NotRestartable, c"the reactor was stopped and cannot run again";
    REACTOR_E_ALREADY_CALLED => AlreadyCalled, c"the delayed call already ran";
    REACTOR_E_ALREADY_CANCELLED => AlreadyCancelled, c"the delayed call was already cancelled";
    REACTOR_E_NOT_FOUND => NotFound, c"not found";
    REACTOR_E_BUSY => Busy, c"busy";
    REACTOR_E_CLOSED => Closed, c"closed";
    REACTOR_E_UNSUPPORTED => Unsupported, c"unsupported";
    REACTOR_E_TIMEOUT => Timeout, c"timed out";
    REACTOR_E_NOMEM => NoMem, c"out of memory";
    REACTOR_E_CONNECTION_REFUSED => ConnectionRefused, c"connection refused";
    REACTOR_E_DNS => Dns, c"name resolution failed";
    REACTOR_E_ADDRESS_IN_USE => AddressInUse, c"address in use";
    REACTOR_E_INVALID_ADDRESS => InvalidAddress, c"invalid address";
    REACTOR_E_MESSAGE_TOO_LONG => MessageTooLong, c"message too long";
    REACTOR_E_PROCESS_EXITED => ProcessExited, c"process exited";
    REACTOR_E_INTERNAL => Internal, c"internal error (the reactor is poisoned)";
    REACTOR_E_CONNECTION_LOST => ConnectionLost, c"connection lost";
    REACTOR_E_CONNECTION_ABORTED => ConnectionAborted, c"connection aborted";
    REACTOR_E_CANCELLED => Cancelled, c"cancelled";
    REACTOR_E_PROCESS_TERMINATED => ProcessTerminated, c"process terminated";
}

pub type Result<T> = std::result::Result<T, Error>;

/// `REACTOR_OK` or the error's code.
pub fn to_status(result: Result<()>) -> c_int {
    match result {
        Ok(()) => reactor_status_t::REACTOR_OK as c_int,
        Err(e) => e.code(),
    }
}

impl Error {
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
    if status == REACTOR_PENDING {
        return c"pending";
    }
    if let Some(known) = reactor_status_t::ALL
        .iter()
        .find(|known| **known as c_int == status)
    {
        return known.message();
    }
    match status_errno(status) {
        0 => c"unknown status code",
        errno => OS_MESSAGES
            .get(errno as usize - 1)
            .map(|m| m.as_c_str())
            .unwrap_or(c"operating system error"),
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
        assert_eq!(status_errno(Error::Invalid.code()), 0);
        assert_eq!(status_errno(0), 0);
        assert_eq!(os_status(0), os_status(libc::EIO));
    }

    #[test]
    fn every_code_has_a_distinct_message_and_error() {
        let codes: Vec<c_int> = reactor_status_t::ALL.iter().map(|s| *s as c_int).collect();
        let lowest = reactor_status_t::REACTOR_E_PROCESS_TERMINATED as c_int;
        assert_eq!(
            codes,
            (lowest..=0).rev().collect::<Vec<_>>(),
            "contiguous, no gaps"
        );
        for code in lowest..=REACTOR_PENDING {
            assert_ne!(strerror(code), c"unknown status code", "code {code}");
        }
        assert_eq!(strerror(12345), c"unknown status code");
        assert!(strerror(os_status(libc::EBADF)).to_bytes().len() > 3);
        assert_eq!(Error::Internal.code(), -20);
        assert_eq!(Error::ProcessTerminated.code(), lowest);
    }
}
