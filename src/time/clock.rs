//! The clock delayed calls use: CLOCK_MONOTONIC, or a manual clock that moves only when told
//! (Twisted's `task.Clock`, so hosts can test time-based code deterministically).

use std::cell::Cell;

/// Seconds on CLOCK_MONOTONIC.
pub fn monotonic_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer; CLOCK_MONOTONIC always exists on supported platforms.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

pub enum Clock {
    Monotonic,
    Manual(Cell<f64>),
}

impl Clock {
    pub fn new(manual: bool) -> Clock {
        if manual {
            Clock::Manual(Cell::new(0.0))
        } else {
            Clock::Monotonic
        }
    }

    pub fn now(&self) -> f64 {
        match self {
            Clock::Monotonic => monotonic_seconds(),
            Clock::Manual(now) => now.get(),
        }
    }

    pub fn is_manual(&self) -> bool {
        matches!(self, Clock::Manual(_))
    }

    /// Moves a manual clock forward; returns false for the monotonic clock.
    pub fn advance(&self, seconds: f64) -> bool {
        match self {
            Clock::Monotonic => false,
            Clock::Manual(now) => {
                now.set(now.get() + seconds);
                true
            }
        }
    }
}
