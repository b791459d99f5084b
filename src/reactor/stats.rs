//! Loop counters: plain cells bumped on the reactor thread, cheap enough to stay on in production.

use crate::types::reactor_stats_t;
use std::cell::Cell;

#[derive(Default)]
pub struct Stats {
    pub iterations: Cell<u64>,
    pub polls: Cell<u64>,
    pub wakeups: Cell<u64>,
    pub callbacks: Cell<u64>,
    pub timers_fired: Cell<u64>,
    pub thread_calls: Cell<u64>,
    pub backend_ctl_calls: Cell<u64>,
    pub idle_seconds: Cell<f64>,
}

pub fn bump(counter: &Cell<u64>) {
    counter.set(counter.get() + 1);
}

impl Stats {
    pub fn snapshot(&self, fds_registered: usize, timers_pending: usize) -> reactor_stats_t {
        reactor_stats_t {
            struct_size: std::mem::size_of::<reactor_stats_t>() as u32,
            iterations: self.iterations.get(),
            polls: self.polls.get(),
            wakeups: self.wakeups.get(),
            callbacks: self.callbacks.get(),
            timers_fired: self.timers_fired.get(),
            thread_calls: self.thread_calls.get(),
            fds_registered: fds_registered as u64,
            timers_pending: timers_pending as u64,
            backend_ctl_calls: self.backend_ctl_calls.get(),
            idle_seconds: self.idle_seconds.get(),
        }
    }
}
