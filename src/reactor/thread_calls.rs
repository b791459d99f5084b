//! IReactorThreads, reactor side: running what other threads queued.

use super::Reactor;
use super::shared::ThreadCall;
use super::stats::bump;

impl Reactor {
    /// Runs the calls queued when the pass began (a call queued by one of them waits for the next).
    pub(super) fn run_thread_calls(&self) {
        let batch = self.shared.queued_calls();
        for _ in 0..batch {
            if self.state.get().is_crashing() {
                return;
            }
            let Some(call) = self.shared.steal_call() else {
                return;
            };
            self.run_thread_call(call);
        }
    }

    /// After a run ended with stop, once no other thread can queue more: every call that was
    /// accepted runs before `run` returns (API.md §7).
    pub(super) fn drain_thread_calls(&self) {
        while let Some(call) = self.shared.steal_call() {
            self.run_thread_call(call);
        }
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
