//! IReactorTime on the reactor: delayed calls and the clock.

use super::Reactor;
use super::stats::bump;
use crate::callback::Callback;
use crate::status::{Error, Result};
use crate::time::TimerRecord;
use std::sync::Arc;

impl Reactor {
    pub fn seconds(&self) -> f64 {
        self.clock.now()
    }

    /// Schedules `callback` after `delay` seconds (validated by the caller: finite, >= 0).
    pub fn call_later(&self, delay: f64, callback: Callback, record: Option<Arc<TimerRecord>>) {
        let deadline = self.clock.now() + delay;
        self.timers
            .borrow_mut()
            .schedule(deadline, callback, record);
    }

    pub fn cancel_call(&self, record: &Arc<TimerRecord>) -> Result<()> {
        let callback = self.timers.borrow_mut().cancel(record)?;
        self.retire(callback.data);
        Ok(())
    }

    pub fn reset_call(&self, record: &Arc<TimerRecord>, seconds_from_now: f64) -> Result<()> {
        if !seconds_from_now.is_finite() || seconds_from_now < 0.0 {
            return Err(Error::Invalid);
        }
        let deadline = self.clock.now() + seconds_from_now;
        self.timers.borrow_mut().reschedule(record, deadline)
    }

    pub fn delay_call(&self, record: &Arc<TimerRecord>, seconds_later: f64) -> Result<()> {
        if !seconds_later.is_finite() {
            return Err(Error::Invalid);
        }
        let deadline = (record.time() + seconds_later).max(self.clock.now());
        self.timers.borrow_mut().reschedule(record, deadline)
    }

    pub fn delayed_call_count(&self) -> usize {
        self.timers.borrow().len()
    }

    pub fn clock_advance(&self, seconds: f64) -> Result<()> {
        if !self.clock.is_manual() {
            return Err(Error::Unsupported);
        }
        if !seconds.is_finite() || seconds < 0.0 {
            return Err(Error::Invalid);
        }
        self.clock.advance(seconds);
        let cutoff = self.timers.borrow().next_seq();
        self.run_due_timers(cutoff);
        Ok(())
    }

    /// Runs the calls due now that were scheduled before `cutoff` (see `TimerQueue`).
    #[inline]
    pub(super) fn run_due_timers(&self, cutoff: u64) {
        // No delayed call, no clock read (a pass may come here twice; reading the clock is a
        // measurable part of a busy pass on some virtual machines). The check is inlined, the
        // work is not.
        if self.timers.borrow().earliest().is_some() {
            self.run_timers_due_now(cutoff);
        }
    }

    #[inline(never)]
    fn run_timers_due_now(&self, cutoff: u64) {
        let now = self.clock.now();
        loop {
            if self.state.get().is_crashing() {
                return;
            }
            let due = self.timers.borrow_mut().pop_due(now, cutoff);
            let Some(callback) = due else { return };
            bump(&self.stats.timers_fired);
            self.invoke(|| callback.call(self.handle()));
            self.retire(callback.data);
        }
    }
}
