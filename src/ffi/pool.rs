//! Thread pools at the C boundary (IReactorThreads): standalone pools, the reactor's pool, and
//! `reactor_call_in_thread[_with_callback]`.

use super::{
    check_struct_size, guarded, on_any_thread, on_owner, read_owner, write_out, write_versioned,
};
use crate::callback::UserData;
use crate::handles::{HandleTable, ThreadPoolTable};
use crate::reactor::ReactorEntry;
use crate::status::{Error, Result};
use crate::threadpool::{DeferredCall, Job, ThreadPool};
use crate::types::*;
use std::os::raw::{c_int, c_void};
use std::sync::Arc;

/// Whose pool a handle designates.
enum Owner {
    /// `reactor_threadpool_new`: the host's.
    Host,
    /// `reactor_get_thread_pool`: the reactor's, borrowed (stop and free are refused). Submits go
    /// through the reactor, like `reactor_call_in_thread`. The reactor is an opaque token.
    Reactor(usize),
}

struct PoolHandle {
    pool: Arc<ThreadPool>,
    owner: Owner,
}

static POOLS: ThreadPoolTable<PoolHandle> = HandleTable::new();

/// The pool and owner behind a live handle, copied out so that long operations (stop) run unpinned.
fn pool_of(p: *const reactor_threadpool_t) -> Result<(Arc<ThreadPool>, Option<usize>)> {
    POOLS
        .with(p.cast(), |h| {
            let reactor = match h.owner {
                Owner::Host => None,
                Owner::Reactor(r) => Some(r),
            };
            (h.pool.clone(), reactor)
        })
        .ok_or(Error::Invalid)
}

fn refused(job: Job) -> Error {
    job.abandon();
    Error::Closed
}

/// Queues a job on a reactor's pool (created on first use); refused after a run that ended with stop.
fn submit_to_reactor(entry: &ReactorEntry, job: impl FnOnce() -> Job) -> Result<()> {
    entry.pool.get_or_create()?;
    entry.pool.submit(job()).map_err(refused)
}

/// Creates a pool of `min_threads..=max_threads` workers (1 <= max <= 1024, min <= max, else
/// `REACTOR_E_INVALID`). `min_threads` workers start now; more start as jobs arrive, up to the max;
/// workers above the min exit after 5 s without work.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_threadpool_new(
    min_threads: usize,
    max_threads: usize,
    out: *mut *mut reactor_threadpool_t,
) -> c_int {
    guarded(|| {
        if out.is_null() {
            return Err(Error::Invalid);
        }
        let pool = ThreadPool::new(min_threads, max_threads, true)?;
        let handle = POOLS.insert(Box::new(PoolHandle {
            pool: Arc::new(pool),
            owner: Owner::Host,
        }))?;
        // SAFETY: `out` is non-NULL and writable (the caller's contract).
        unsafe { write_out(out, handle.cast()) };
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
    let Some(func) = r#fn else {
        return Error::Invalid.code();
    };
    match pool_of(p) {
        Err(e) => e.code(),
        // The reactor's pool: same path as reactor_call_in_thread (reopens after a "shutdown" fired
        // by hand, refuses once the reactor's run ended with stop).
        Ok((_, Some(r))) => on_any_thread(r as *const reactor_t, true, |entry| {
            submit_to_reactor(entry, || Job::work(func, UserData::new(ud, release)))
        }),
        Ok((pool, None)) => guarded(|| {
            pool.submit(Job::work(func, UserData::new(ud, release)))
                .map_err(refused)
        }),
    }
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
    guarded(|| pool_of(p)?.0.resize(min_threads, max_threads))
}

/// Copies the pool's counters into `out`. Set `out->struct_size` first; a larger struct than this
/// library knows must have its unknown trailing bytes zero (else `REACTOR_E_UNSUPPORTED`, nothing
/// written).
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reactor_threadpool_stats(
    p: *const reactor_threadpool_t,
    out: *mut reactor_threadpool_stats_t,
) -> c_int {
    guarded(|| {
        let (pool, _) = pool_of(p)?;
        if out.is_null() {
            return Err(Error::Invalid);
        }
        // SAFETY: the caller's struct has `struct_size` bytes.
        let size = unsafe { check_struct_size(out)? };
        let stats = pool.stats();
        let value = reactor_threadpool_stats_t {
            struct_size: 0,
            workers: stats.workers,
            idle: stats.idle,
            queued: stats.queued,
            completed: stats.completed,
            stolen: stats.stolen,
        };
        // SAFETY: as above; checked size.
        unsafe { write_versioned(out, value, size) };
        Ok(())
    })
}

/// Stops the pool: new jobs are refused (`REACTOR_E_CLOSED`), every queued job runs, every worker is
/// joined before this returns. Stopping a stopped pool is `REACTOR_OK`. From one of the pool's own jobs:
/// `REACTOR_E_BUSY`; on the reactor's pool (which the reactor stops during shutdown): `REACTOR_E_BUSY`.
///
/// Thread-safety: any thread except the pool's own workers.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_threadpool_stop(p: *mut reactor_threadpool_t) -> c_int {
    guarded(|| match pool_of(p)? {
        (_, Some(_)) => Err(Error::Busy),
        (pool, None) => pool.stop(),
    })
}

/// Stops the pool if needed (queued jobs run, workers joined) and frees it. NULL, stale handles and the
/// reactor's borrowed pool are ignored. From one of the pool's own jobs the workers finish the queue and
/// exit on their own (they cannot be joined from among themselves).
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_threadpool_free(p: *mut reactor_threadpool_t) {
    if p.is_null() {
        return;
    }
    guarded(|| {
        if !matches!(pool_of(p), Ok((_, None))) {
            return Ok(());
        }
        if let Some(handle) = POOLS.remove(p.cast()) {
            handle.pool.stop_or_detach();
        }
        Ok(())
    });
}

// ----- the reactor's pool ------------------------------------------------------------------------

/// Runs `fn(ud)` once on the reactor's thread pool (Twisted's callInThread); `release(ud)` runs after it,
/// on the same pool thread. Jobs queued before the reactor runs wait for it. After a run that ended with
/// `reactor_stop`: `REACTOR_E_CLOSED`, and `ud` stays the caller's. Racing `reactor_free` is safe (the
/// job gets in first and runs while the pool is stopped, or the call gets `REACTOR_E_INVALID`).
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_call_in_thread(
    r: *mut reactor_t,
    r#fn: reactor_work_fn,
    ud: *mut c_void,
    release: reactor_release_fn,
) -> c_int {
    let Some(func) = r#fn else {
        return Error::Invalid.code();
    };
    on_any_thread(r, true, |entry| {
        submit_to_reactor(entry, || Job::work(func, UserData::new(ud, release)))
    })
}

/// Runs `result = work(ud)` on the reactor's thread pool, then `done(r, result, ud)` on the reactor
/// thread, exactly once (Twisted's deferToThread); `release(ud)` runs after `done`, on the reactor
/// thread. If the reactor shuts down (its pool stops) or is freed before `done` could run, `done` is not
/// called and `release` runs instead (at `reactor_free`: on the freeing thread). `work` or `done` NULL:
/// `REACTOR_E_INVALID` (use `reactor_call_in_thread` without a completion). After a run that ended with
/// `reactor_stop`: `REACTOR_E_CLOSED`, and `ud` stays the caller's.
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
    let (Some(work), Some(done)) = (work, done) else {
        return Error::Invalid.code();
    };
    on_any_thread(r, true, |entry| {
        submit_to_reactor(entry, || {
            Job::Task(DeferredCall::new(work, done, UserData::new(ud, release)))
        })
    })
}

/// Sets the maximum size of the reactor's pool (1..=1024, else `REACTOR_E_INVALID`); before the pool
/// starts, the size it will start with. The default is `reactor_options_t.thread_pool_max` (10).
///
/// Thread-safety: reactor thread only.
#[unsafe(no_mangle)]
pub extern "C" fn reactor_suggest_thread_pool_size(r: *mut reactor_t, max_threads: usize) -> c_int {
    on_owner(r, |reactor| reactor.pool.suggest_size(max_threads))
}

/// The reactor's thread pool (created on first use; its workers start when the reactor runs), for
/// `reactor_threadpool_submit`, `_resize` and `_stats`. Borrowed: valid until `reactor_free`;
/// `reactor_threadpool_stop` on it gives `REACTOR_E_BUSY` and `reactor_threadpool_free` ignores it.
/// NULL for a bad handle or another thread.
///
/// Thread-safety: reactor thread only (other threads get NULL).
#[unsafe(no_mangle)]
pub extern "C" fn reactor_get_thread_pool(r: *mut reactor_t) -> *mut reactor_threadpool_t {
    read_owner(r, std::ptr::null_mut(), |reactor| {
        let existing = reactor.pool.handle();
        if existing != 0 {
            return existing as *mut reactor_threadpool_t;
        }
        let Ok(pool) = reactor.pool.get_or_create().cloned() else {
            return std::ptr::null_mut();
        };
        let Ok(handle) = POOLS.insert(Box::new(PoolHandle {
            pool,
            owner: Owner::Reactor(reactor.handle() as usize),
        })) else {
            return std::ptr::null_mut();
        };
        reactor
            .pool
            .set_handle(handle as usize, forget_reactor_pool);
        handle.cast()
    })
}

/// The reactor is dropped (`reactor_free`): its borrowed pool handle becomes invalid.
fn forget_reactor_pool(handle: usize) {
    drop(POOLS.remove(handle as *const c_void));
}
