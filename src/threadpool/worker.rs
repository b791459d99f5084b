//! The worker thread: find work (own deque, then a batch from the injector, then steal from the other
//! workers), spin briefly, then park. Its deque lives in a thread-local so that jobs submitting jobs
//! push onto it without touching the shared injector.

use super::job::{Job, RunContext};
use super::pool::{Inner, Slot};
use super::sleep::Wake;
use crossbeam_deque::{Steal, Worker};
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a worker that ran out of work keeps looking before it parks (one worker at a time).
/// Saves the futex wake-up of a parked worker when jobs arrive one by one (round trips).
const SPIN: Duration = Duration::from_micros(50);

struct Local {
    pool: usize,
    deque: Worker<Job>,
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

/// True on a worker thread of pool `pool`.
pub(super) fn is_worker_of(pool: usize) -> bool {
    LOCAL
        .try_with(|local| {
            local
                .try_borrow()
                .is_ok_and(|l| l.as_ref().is_some_and(|l| l.pool == pool))
        })
        .unwrap_or(false)
}

/// Pushes onto the calling worker's own deque if it is a worker of `pool`; else gives the job back.
pub(super) fn push_local(pool: usize, job: Job) -> Result<(), Job> {
    let mut job = Some(job);
    let _ = LOCAL.try_with(|local| {
        let Ok(local) = local.try_borrow() else {
            return;
        };
        match (local.as_ref(), job.take()) {
            (Some(local), Some(pushed)) if local.pool == pool => local.deque.push(pushed),
            (_, taken) => job = taken,
        }
    });
    match job {
        None => Ok(()),
        Some(job) => Err(job),
    }
}

fn local_len() -> usize {
    LOCAL.with(|local| local.borrow().as_ref().map_or(0, |l| l.deque.len()))
}

/// Runs one job; a panic (only Rust tasks can panic) is reported and the worker goes on.
pub(super) fn execute(job: Job, cx: &RunContext<'_>) {
    if catch_unwind(AssertUnwindSafe(|| job.run(cx))).is_err() {
        eprintln!("libreactor: a thread-pool job panicked; the worker continues");
    }
}

fn run_job(inner: &Arc<Inner>, slot: &Slot, job: Job, cx: &RunContext<'_>) {
    // More work is queued and workers sleep: wake one before we get busy.
    if inner.sleep.idle() > 0 && (local_len() > 0 || !inner.injector.is_empty()) {
        inner.notify_work();
    }
    execute(job, cx);
    Slot::bump(&slot.completed);
}

fn find_work(inner: &Inner, slot: &Slot) -> Option<Job> {
    LOCAL.with(|local| {
        let local = local.borrow();
        let deque = &local.as_ref()?.deque;
        if let Some(job) = deque.pop() {
            return Some(job);
        }
        loop {
            match inner.injector.steal_batch_and_pop(deque) {
                Steal::Success(job) => return Some(job),
                Steal::Empty => break,
                Steal::Retry => {}
            }
        }
        let slots = inner.slots();
        let n = slots.len();
        loop {
            let mut retry = false;
            for k in 0..n {
                let other = &slots[(slot.index + k) % n];
                if other.index == slot.index {
                    continue;
                }
                match other.stealer.steal() {
                    Steal::Success(job) => {
                        Slot::bump(&slot.stolen);
                        return Some(job);
                    }
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                return None;
            }
        }
    })
}

/// Looks for work a little longer before parking; only one worker spins at a time.
fn spin(inner: &Arc<Inner>, slot: &Slot) -> Option<Job> {
    if inner
        .spinning
        .compare_exchange(0, 1, Ordering::SeqCst, Ordering::Relaxed)
        .is_err()
    {
        return None;
    }
    let started = Instant::now();
    let mut found = None;
    let mut round = 0u32;
    loop {
        if !inner.injector.is_empty() {
            found = find_work(inner, slot);
            if found.is_some() {
                break;
            }
        }
        if inner.draining.load(Ordering::Relaxed) || started.elapsed() >= SPIN {
            break;
        }
        round += 1;
        if round < 8 {
            for _ in 0..(1u32 << round) {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
    }
    inner.spinning.store(0, Ordering::SeqCst);
    found
}

pub(super) fn main(inner: Arc<Inner>, slot: Arc<Slot>, deque: Worker<Job>) {
    LOCAL.with(|local| {
        *local.borrow_mut() = Some(Local {
            pool: inner.id,
            deque,
        })
    });
    let cx = inner.run_context();
    loop {
        let max = inner.max.load(Ordering::Relaxed);
        if inner.workers.load(Ordering::Relaxed) > max && inner.try_retire(max) {
            break;
        }
        if let Some(job) = find_work(&inner, &slot) {
            run_job(&inner, &slot, job, &cx);
            continue;
        }
        if inner.draining.load(Ordering::SeqCst) {
            if inner.try_retire(0) {
                break;
            }
            continue;
        }
        if let Some(job) = spin(&inner, &slot) {
            run_job(&inner, &slot, job, &cx);
            continue;
        }
        let wake = inner.sleep.park(inner.idle_timeout, || {
            inner.draining.load(Ordering::SeqCst)
                || inner.workers.load(Ordering::Relaxed) > inner.max.load(Ordering::Relaxed)
                || inner.has_work()
        });
        if wake == Wake::TimedOut && inner.try_retire(inner.min.load(Ordering::Relaxed)) {
            break;
        }
    }
    // Only a shrinking pool leaves jobs behind: hand them to the others.
    let leftovers: Vec<Job> = LOCAL.with(|local| {
        local
            .borrow_mut()
            .take()
            .map(|l| std::iter::from_fn(|| l.deque.pop()).collect())
            .unwrap_or_default()
    });
    let handed_back = !leftovers.is_empty();
    for job in leftovers {
        inner.injector.push(job);
    }
    inner.worker_exited(&slot);
    if handed_back {
        inner.notify_work();
    }
}
