//! A work-stealing thread pool (Twisted's `ThreadPool`, libuv's work queue) on crossbeam-deque.
//!
//! - Jobs from outside go to a global `Injector`; each worker has its own FIFO deque, fed with batches
//!   from the injector and with jobs that its own jobs submit; idle workers steal from the others.
//! - Workers start lazily, one per job that finds no parked or searching worker, up to `max`; the
//!   first `min` start with the pool. Workers above `min` exit after `IDLE_TIMEOUT` (5 s) without work.
//! - Wake-ups follow tokio's "searching" scheme: a woken or new worker searches until it finds work,
//!   and while anyone searches new jobs wake nobody; the last searcher to find work wakes the next
//!   worker if more is queued. The one worker that runs out of work while nobody searches spins 20 us,
//!   then parks on a Condvar; submitting costs one fence and two atomic loads when nobody needs waking.
//! - `stop` refuses new jobs, runs every queued job and joins every worker.
//!
//! `ReactorPool` is a reactor's own pool: created on first use, started when the reactor first runs,
//! stopped during its shutdown.

mod deferred;
mod job;
mod pool;
mod reactor_pool;
mod sleep;
mod worker;

#[cfg(test)]
mod tests;

pub use deferred::DeferredCall;
pub use job::{Job, RunContext, Task};
pub use pool::{MAX_THREADS, PoolStats, ThreadPool, check_sizes};
pub use reactor_pool::ReactorPool;
