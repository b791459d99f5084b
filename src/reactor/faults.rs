//! Fault injection for tests of the poisoning path (`reactor_test_inject_panic`): a one-shot internal
//! panic at a chosen point, so a test can check that a poisoned reactor refuses calls with
//! `REACTOR_E_INTERNAL` and that `reactor_free` still works and runs every release.

use super::Reactor;

/// Where the armed panic fires (the values of `REACTOR_TEST_PANIC_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum FaultPoint {
    /// At the start of the next pass of `run` or `iterate`.
    NextPass = 1,
    /// Right after the next host callback returns (inside the dispatch).
    AfterCallback = 2,
    /// Inside the next reactor-thread API call, after its thread check.
    InCall = 3,
}

impl FaultPoint {
    pub fn from_raw(raw: u32) -> Option<FaultPoint> {
        match raw {
            1 => Some(FaultPoint::NextPass),
            2 => Some(FaultPoint::AfterCallback),
            3 => Some(FaultPoint::InCall),
            _ => None,
        }
    }
}

impl Reactor {
    pub fn arm_fault(&self, point: FaultPoint) {
        self.fault.set(point as u32);
    }

    /// Panics here if this point is armed (once). A single `Cell` load otherwise.
    #[inline]
    pub fn fault(&self, point: FaultPoint) {
        if self.fault.get() == point as u32 {
            self.fault.set(0);
            panic!("libreactor: injected fault at {point:?} (reactor_test_inject_panic)");
        }
    }
}
