//! Thread pools at the C boundary (IReactorThreads): standalone pools, the reactor's pool, and
//! `reactor_call_in_thread[_with_callback]`.

use super::{guard, on_reactor, reactor_ref, read_reactor, write_out};
use crate::callback::{Callback, DoneFn, UserData, WorkResultFn, call_done, call_work_result};
use crate::handles::HandleTable;
use crate::reactor::{Gate, Reactor};
use crate::status::{Error, Result};
use crate::threadpool::{Job, PoolStats, RunContext, Task, ThreadPool};
use crate::types::*;
use std::os::raw::{c_int, c_void};
use std::sync::Arc;

struct PoolHandle {
    pool: Arc<ThreadPool>,
    /// The reactor's own pool: borrowed, so stop and free are refused.
    reactor_owned: bool,
    /// Its reactor's handle (table-checked), so submits reopen the pool like `reactor_call_in_thread`.
    reactor: *mut reactor_t,
}

// SAFETY: `reactor` is an opaque token, only ever resolved through the reactor table.
unsafe impl Send for PoolHandle {}

static POOLS: HandleTable<PoolHandle> = HandleTable::new();

/// The pool behind a handle, if the handle is live.
///
/// The entry lives until `reactor_threadpool_free` (or, for the reactor's pool, `reactor_free`) removes
/// it; API.md forbids racing those with other calls on the handle.
fn pool_ref<'a>(p: *const reactor_threadpool_t) -> Option<&'a PoolHandle> {
    // SAFETY: see above; the table only returns pointers of live, boxed entries.
    POOLS.get(p.cast()).map(|h| unsafe { &*h.as_ptr() })
}

fn refused(job: Job) -> Error {
    job.abandon();
    Error::Closed
}

/// Creates a pool of `min_threads..=max_threads` workers (1 <= max <= 1024, min <= max, else
/// `REACTOR_E_INVALID`). `min_threads` workers start now; more start as jobs arrive, up to the max;
/// workers above the min exit after 5 s without work.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_threadpool_new(
    min_threads: usize,
    max_threads: usize,
    out: *mut *mut reactor_threadpool_t,
) -> c_int {
    guard(|| {
        if out.is_null() {
            return Err(Error::Invalid);
        }
        let pool = ThreadPool::new(min_threads, max_threads, true)?;
        let handle = POOLS.insert(Box::new(PoolHandle {
            pool: Arc::new(pool),
            reactor_owned: false,
            reactor: std::ptr::null_mut(),
        }))?;
        write_out(out, handle.cast());
        Ok(())
    })
}

/// Queues `fn(ud)` to run once on a pool thread; `release(ud)` runs after it, on the same thread. A job
/// may submit more jobs. After `reactor_threadpool_stop`: `REACTOR_E_CLOSED`, and `ud` stays the
/// caller's (release is not called).
///
/// Thread-safety: any thread, including the pool's own jobs.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_threadpool_submit(
    p: *mut reactor_threadpool_t,
    r#fn: reactor_work_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
) -> c_int {
    guard(|| {
        let handle = pool_ref(p).ok_or(Error::Invalid)?;
        let func = r#fn.ok_or(Error::Invalid)?;
        if handle.reactor_owned {
            // The reactor's pool: same path as reactor_call_in_thread (reopens after a "shutdown"
            // fired by hand, refuses once the reactor's run ended with stop).
            let reactor = reactor_ref(handle.reactor).ok_or(Error::Invalid)?;
            check_open(reactor)?;
            let job = Job::work(func, UserData::new(ud, release));
            return reactor.pool.submit(job).map_err(refused);
        }
        let job = Job::work(func, UserData::new(ud, release));
        handle.pool.submit(job).map_err(refused)
    })
}

/// Changes the pool's sizes while it runs (same rules as `reactor_threadpool_new`): growing starts
/// workers for queued jobs, shrinking lets surplus workers exit after their current job. A stopped pool:
/// `REACTOR_E_CLOSED`.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_threadpool_resize(
    p: *mut reactor_threadpool_t,
    min_threads: usize,
    max_threads: usize,
) -> c_int {
    guard(|| {
        let handle = pool_ref(p).ok_or(Error::Invalid)?;
        handle.pool.resize(min_threads, max_threads)
    })
}

fn write_pool_stats(out: *mut reactor_threadpool_stats_t, stats: PoolStats) -> Result<()> {
    if out.is_null() {
        return Err(Error::Invalid);
    }
    let known = std::mem::size_of::<reactor_threadpool_stats_t>();
    // SAFETY: struct_size is the first field of the caller's struct.
    let size = unsafe { (*out).struct_size } as usize;
    if size < known || size > 4096 {
        return Err(Error::Invalid);
    }
    let value = reactor_threadpool_stats_t {
        struct_size: size as u32,
        workers: stats.workers,
        idle: stats.idle,
        queued: stats.queued,
        completed: stats.completed,
        stolen: stats.stolen,
    };
    // SAFETY: the caller's struct has `size` >= `known` writable bytes.
    unsafe {
        out.write(value);
        std::ptr::write_bytes(out.cast::<u8>().add(known), 0, size - known);
    }
    Ok(())
}

/// Copies the pool's counters into `out` (set `out->struct_size` first; bytes past what this library
/// knows are zeroed).
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_threadpool_stats(
    p: *const reactor_threadpool_t,
    out: *mut reactor_threadpool_stats_t,
) -> c_int {
    guard(|| {
        let handle = pool_ref(p).ok_or(Error::Invalid)?;
        write_pool_stats(out, handle.pool.stats())
    })
}

/// Stops the pool: new jobs are refused (`REACTOR_E_CLOSED`), every queued job runs, every worker is
/// joined before this returns. Stopping a stopped pool is `REACTOR_OK`. From one of the pool's own jobs:
/// `REACTOR_E_BUSY`; on the reactor's pool (which the reactor stops during shutdown): `REACTOR_E_BUSY`.
///
/// Thread-safety: any thread except the pool's own workers.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_threadpool_stop(p: *mut reactor_threadpool_t) -> c_int {
    guard(|| {
        let handle = pool_ref(p).ok_or(Error::Invalid)?;
        if handle.reactor_owned {
            return Err(Error::Busy);
        }
        handle.pool.stop()
    })
}

/// Stops the pool if needed (queued jobs run, workers joined) and frees it. NULL, stale handles and the
/// reactor's borrowed pool are ignored. From one of the pool's own jobs the workers finish the queue and
/// exit on their own (they cannot be joined from among themselves).
///
/// Thread-safety: any thread (must not race other calls on the same pool).
#[unsafe(no_mangle)]
pub extern "C" fn reactor_threadpool_free(p: *mut reactor_threadpool_t) {
    if p.is_null() {
        return;
    }
    guard(|| {
        if pool_ref(p).is_none_or(|h| h.reactor_owned) {
            return Ok(());
        }
        if let Some(handle) = POOLS.remove(p.cast()) {
            handle.pool.stop_or_detach();
        }
        Ok(())
    });
}

// ----- the reactor's pool ------------------------------------------------------------------------

/// `reactor_call_in_thread_with_callback` in flight: `work` runs on a pool thread, then the same box
/// travels through the reactor's call_from_thread queue to run `done` (one allocation per call).
struct DeferredCall {
    work: WorkResultFn,
    done: DoneFn,
    data: UserData,
    result: *mut c_void,
    /// The pool epoch the work ran in: a completion from before a pool stop is not delivered.
    epoch: u64,
}

// SAFETY: `result` and the user data are opaque host pointers we never dereference; API.md lets work run
// on a pool thread and done/release on the reactor thread.
unsafe impl Send for DeferredCall {}

impl Task for DeferredCall {
    fn run(mut self: Box<Self>, cx: &RunContext<'_>) {
        self.result = call_work_result(self.work, self.data.ptr());
        self.epoch = cx.epoch;
        if let Some(shared) = cx.reactor {
            let record = Box::into_raw(self).cast::<c_void>();
            shared.push_call(Callback {
                func: deferred_done,
                data: UserData::new(record, Some(deferred_release)),
            });
        }
    }

    fn abandon(self: Box<Self>) {
        self.data.into_raw();
    }
}

/// Runs `done` on the reactor thread, unless the pool was stopped since the work ran (the reactor shut
/// down or is being freed): then only the release runs.
unsafe extern "C" fn deferred_done(r: *mut reactor_t, record: *mut c_void) {
    // SAFETY: `record` is the box leaked by `DeferredCall::run`; only `deferred_release` frees it, after
    // this call returns.
    let call = unsafe { &*record.cast::<DeferredCall>() };
    if reactor_ref(r).is_some_and(|reactor| reactor.pool.epoch() == call.epoch) {
        call_done(call.done, r, call.result, call.data.ptr());
    }
}

/// Frees the record; its user data's release runs (on the reactor thread, or the freeing thread).
unsafe extern "C" fn deferred_release(record: *mut c_void) {
    // SAFETY: from Box::into_raw in `DeferredCall::run`; UserData calls this exactly once.
    drop(unsafe { Box::from_raw(record.cast::<DeferredCall>()) });
}

/// Like `reactor_call_from_thread`: refused once a run ended with stop (or the reactor is being freed).
fn check_open(reactor: &Reactor) -> Result<()> {
    if reactor.shared.gate() == Gate::Open {
        Ok(())
    } else {
        Err(Error::Closed)
    }
}

/// Runs `fn(ud)` once on the reactor's thread pool (Twisted's callInThread); `release(ud)` runs after it,
/// on the same pool thread. Jobs queued before the reactor runs wait for it. After a run that ended with
/// `reactor_stop`: `REACTOR_E_CLOSED`, and `ud` stays the caller's. Must not race `reactor_free`.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_call_in_thread(
    r: *mut reactor_t,
    r#fn: reactor_work_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
) -> c_int {
    guard(|| {
        let reactor = reactor_ref(r).ok_or(Error::Invalid)?;
        let func = r#fn.ok_or(Error::Invalid)?;
        check_open(reactor)?;
        reactor.pool.get_or_create()?;
        reactor
            .pool
            .submit(Job::work(func, UserData::new(ud, release)))
            .map_err(refused)
    })
}

/// Runs `result = work(ud)` on the reactor's thread pool, then `done(r, result, ud)` on the reactor
/// thread, exactly once (Twisted's deferToThread); `release(ud)` runs after `done`, on the reactor
/// thread. If the reactor shuts down (its pool stops) or is freed before `done` could run, `done` is not
/// called and `release` runs instead (at `reactor_free`: on the freeing thread). `work` or `done` NULL:
/// `REACTOR_E_INVALID` (use `reactor_call_in_thread` without a completion). After a run that ended with
/// `reactor_stop`: `REACTOR_E_CLOSED`, and `ud` stays the caller's. Must not race `reactor_free`.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_call_in_thread_with_callback(
    r: *mut reactor_t,
    work: reactor_work_result_fn,
    done: reactor_done_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
) -> c_int {
    guard(|| {
        let reactor = reactor_ref(r).ok_or(Error::Invalid)?;
        let (Some(work), Some(done)) = (work, done) else {
            return Err(Error::Invalid);
        };
        check_open(reactor)?;
        reactor.pool.get_or_create()?;
        let call = Box::new(DeferredCall {
            work,
            done,
            data: UserData::new(ud, release),
            result: std::ptr::null_mut(),
            epoch: 0,
        });
        reactor.pool.submit(Job::Task(call)).map_err(refused)
    })
}

/// Sets the maximum size of the reactor's pool (1..=1024, else `REACTOR_E_INVALID`); before the pool
/// starts, the size it will start with. The default is `reactor_options_t.thread_pool_max` (10).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_suggest_thread_pool_size(r: *mut reactor_t, max_threads: usize) -> c_int {
    on_reactor(r, |reactor| reactor.pool.suggest_size(max_threads))
}

fn reactor_pool_handle(reactor: &Reactor) -> Result<*mut reactor_threadpool_t> {
    let existing = reactor.pool.handle();
    if existing != 0 {
        return Ok(existing as *mut reactor_threadpool_t);
    }
    let pool = reactor.pool.get_or_create()?.clone();
    let handle = POOLS.insert(Box::new(PoolHandle {
        pool,
        reactor_owned: true,
        reactor: reactor.handle(),
    }))?;
    reactor
        .pool
        .set_handle(handle as usize, forget_reactor_pool);
    Ok(handle.cast())
}

/// The reactor's thread pool (created on first use; its workers start when the reactor runs), for
/// `reactor_threadpool_submit`, `_resize` and `_stats`. Borrowed: valid until `reactor_free`;
/// `reactor_threadpool_stop` on it gives `REACTOR_E_BUSY` and `reactor_threadpool_free` ignores it.
/// NULL for a bad handle or another thread.
///
/// Thread-safety: reactor thread only (other threads get NULL).
#[unsafe(no_mangle)]
pub extern "C" fn reactor_get_thread_pool(r: *mut reactor_t) -> *mut reactor_threadpool_t {
    read_reactor(r, std::ptr::null_mut(), |reactor| {
        reactor_pool_handle(reactor).unwrap_or(std::ptr::null_mut())
    })
}

/// The reactor is dropped (`reactor_free`): its borrowed pool handle becomes invalid.
fn forget_reactor_pool(handle: usize) {
    drop(POOLS.remove(handle as *const c_void));
}
