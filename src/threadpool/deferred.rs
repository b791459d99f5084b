//! Twisted's deferToThread (`reactor_call_in_thread_with_callback`): `work` runs on a pool thread, then
//! the same record travels through the reactor's call_from_thread queue to run `done` on the reactor
//! thread (one allocation per call). A completion from before the pool was last stopped (shutdown,
//! `reactor_free`) is not delivered: only its release runs.

use super::job::{RunContext, Task};
use crate::callback::{DoneFn, UserData, WorkResultFn, call_done, call_work_result};
use crate::reactor::{Reactor, ReactorTask, ThreadCall};
use std::os::raw::c_void;

pub struct DeferredCall {
    work: WorkResultFn,
    done: DoneFn,
    data: UserData,
    result: usize,
    /// The pool epoch the work ran in.
    epoch: u64,
}

impl DeferredCall {
    pub fn new(work: WorkResultFn, done: DoneFn, data: UserData) -> Box<DeferredCall> {
        Box::new(DeferredCall {
            work,
            done,
            data,
            result: 0,
            epoch: 0,
        })
    }
}

impl Task for DeferredCall {
    fn run(mut self: Box<Self>, cx: &RunContext<'_>) {
        self.result = call_work_result(self.work, self.data.ptr()) as usize;
        self.epoch = cx.epoch;
        if let Some(shared) = cx.reactor {
            // Refused only if the reactor is gone (freed from inside one of its own pool jobs, so the
            // pool could not be joined) or poisoned: then the release runs here, on the worker.
            let _ = shared.push_unpinned(|| ThreadCall::Task(self));
        }
    }

    fn abandon(self: Box<Self>) {
        self.data.into_raw();
    }
}

impl ReactorTask for DeferredCall {
    /// On the reactor thread: `done`, unless the pool was stopped since the work ran; then the release
    /// (when `self` drops), right after.
    fn run(self: Box<Self>, reactor: &Reactor) {
        if reactor.pool.epoch() == self.epoch {
            let (done, result, ud) = (self.done, self.result as *mut c_void, self.data.ptr());
            reactor.invoke(|| call_done(done, reactor.handle(), result, ud));
        }
    }
}
