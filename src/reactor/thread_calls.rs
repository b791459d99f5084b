//! IReactorThreads, reactor side: running what other threads queued.

use super::Reactor;
use super::shared::ThreadCall;
use super::stats::bump;

impl Reactor {
    /// Runs the calls queued when the pass began (a call queued by one of them waits for the next).
    /// A crash leaves the rest of the batch for a later pass (which runs only those).
    pub(super) fn run_thread_calls(&self) {
        // A quiet pass (the common case) looks at the ring's next slot and leaves: no batch buffer
        // moved in and out. A call published after this look is taken on the next pass, and the
        // reactor asks again after `prepare_to_block` before it sleeps (`super::wake`).
        if !self.has_leftover_calls() && !self.shared.has_calls() {
            return;
        }
        let mut batch = std::mem::take(&mut *self.call_batch.borrow_mut());
        if batch.is_empty() {
            self.call_taker.borrow_mut().take(&mut batch);
        }
        let mut calls = batch.drain(..);
        while let Some(call) = calls.next() {
            if self.state.get().is_crashing() {
                let rest: Vec<ThreadCall> = std::iter::once(call).chain(calls).collect();
                *self.call_batch.borrow_mut() = rest;
                return;
            }
            self.run_thread_call(call);
        }
        drop(calls);
        // Empty, with its capacity: the buffer the next take fills.
        *self.call_batch.borrow_mut() = batch;
    }

    /// After a run ended with stop, once no other thread can queue more: every call that was
    /// accepted runs before `run` returns (API.md §7).
    pub(super) fn drain_thread_calls(&self) {
        loop {
            let mut batch = std::mem::take(&mut *self.call_batch.borrow_mut());
            if batch.is_empty() {
                self.call_taker.borrow_mut().take(&mut batch);
            }
            if batch.is_empty() {
                return;
            }
            for call in batch.drain(..) {
                self.run_thread_call(call);
            }
            *self.call_batch.borrow_mut() = batch;
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
