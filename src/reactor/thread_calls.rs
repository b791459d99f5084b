//! IReactorThreads, reactor side: running what other threads queued.

use super::Reactor;
use super::shared::ThreadCall;
use super::stats::bump;

impl Reactor {
    /// Runs the calls queued when the pass began (a call queued by one of them waits for the next).
    /// A crash leaves the rest of the batch for a later pass.
    pub(super) fn run_thread_calls(&self) {
        self.shared.take_calls(&mut self.call_batch.borrow_mut());
        while !self.state.get().is_crashing() {
            let next = self.call_batch.borrow_mut().pop_front();
            let Some(call) = next else { return };
            self.run_thread_call(call);
        }
    }

    /// After a run ended with stop, once no other thread can queue more: every call that was
    /// accepted runs before `run` returns (API.md §7).
    pub(super) fn drain_thread_calls(&self) {
        loop {
            self.shared.take_calls(&mut self.call_batch.borrow_mut());
            let next = self.call_batch.borrow_mut().pop_front();
            let Some(call) = next else { return };
            self.run_thread_call(call);
        }
    }

    /// Calls taken from the queue but not run yet (after a crash).
    pub(super) fn has_leftover_calls(&self) -> bool {
        !self.call_batch.borrow().is_empty()
    }

    fn run_thread_call(&self, call: ThreadCall) {
        bump(&self.stats.thread_calls);
        match call {
            ThreadCall::Host(callback) => {
                self.invoke(|| callback.call(self.handle()));
                self.retire(callback.data);
            }
            ThreadCall::Task(task) => task.run(self),
        }
    }
}
