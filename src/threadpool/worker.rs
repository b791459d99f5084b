//! The worker thread: find work (own deque, then a batch from the injector, then steal from the other
//! workers), spin briefly, then park. Its deque lives in a thread-local so that jobs submitting jobs
//! push onto it without touching the shared injector.

use super::job::{Job, RunContext};
use super::pool::{Inner, Slot};
use super::sleep::Wake;
use crossbeam_deque::{Steal, Worker};
use std::cell::RefCell;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a worker that ran out of work keeps looking before it parks (one worker at a time):
/// a few busy rounds, then `yield_now` so that on a small machine it gives the CPU to the threads
/// producing work. Saves the futex wake-up of a parked worker when jobs arrive one by one (round
/// trips: ~2x the serial rate on 2 cores); 5-50 us measured alike, 20 us chosen.
const SPIN: Duration = Duration::from_micros(20);

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
        // A closed stderr must not turn into a second panic: write and ignore the outcome.
        let _ = writeln!(
            std::io::stderr(),
            "libreactor: a thread-pool job panicked; the worker continues"
        );
    }
}

fn run_job(slot: &Slot, job: Job, cx: &RunContext<'_>) {
    execute(job, cx);
    Slot::bump(&slot.completed);
}

/// More work visible than the worker just took (its own deque or the injector).
fn more_work(inner: &Inner) -> bool {
    local_len() > 0 || !inner.injector.is_empty()
}

/// A worker found work. A searching worker stops searching, and the last searcher wakes the next
/// worker if more work is queued anywhere (so a burst spreads over the pool one wake-up at a time).
/// A busy worker that leaves more work behind in its deque (a batch from the injector, jobs its jobs
/// submitted) lets a parked worker come and steal it, unless someone is searching already: a
/// blocking job must not sit behind another one while workers sleep.
fn found_work(inner: &Arc<Inner>, searching: &mut bool) {
    if std::mem::take(searching) {
        if inner.searching.fetch_sub(1, Ordering::SeqCst) == 1 && inner.has_work() {
            inner.notify_work();
        }
    } else if more_work(inner) {
        inner.notify_work();
    }
}

fn stop_searching(inner: &Inner, searching: &mut bool) {
    if std::mem::take(searching) {
        inner.searching.fetch_sub(1, Ordering::SeqCst);
    }
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

/// Looks for work a little longer before parking. Only a searching worker spins, and a worker that
/// ran out of work becomes the searcher only if nobody else is searching.
fn spin(inner: &Inner, slot: &Slot, searching: &mut bool) -> Option<Job> {
    if !*searching {
        if inner
            .searching
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        *searching = true;
    }
    let started = Instant::now();
    let mut round = 0u32;
    loop {
        if !inner.injector.is_empty() {
            let found = find_work(inner, slot);
            if found.is_some() {
                return found;
            }
        }
        if inner.draining.load(Ordering::Relaxed) || started.elapsed() >= SPIN {
            return None;
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
}

pub(super) fn main(inner: Arc<Inner>, slot: Arc<Slot>, deque: Worker<Job>) {
    LOCAL.with(|local| {
        *local.borrow_mut() = Some(Local {
            pool: inner.id,
            deque,
        })
    });
    let cx = inner.run_context();
    // A new worker starts out searching (`spawn_worker` counted it).
    let mut searching = true;
    loop {
        let max = inner.max.load(Ordering::Relaxed);
        if inner.workers.load(Ordering::Relaxed) > max && inner.try_retire(max) {
            break;
        }
        if let Some(job) = find_work(&inner, &slot) {
            found_work(&inner, &mut searching);
            run_job(&slot, job, &cx);
            continue;
        }
        if inner.draining.load(Ordering::SeqCst) {
            if inner.try_retire(0) {
                break;
            }
            continue;
        }
        if let Some(job) = spin(&inner, &slot, &mut searching) {
            found_work(&inner, &mut searching);
            run_job(&slot, job, &cx);
            continue;
        }
        // Stop searching before the re-check in `park`, so a job queued meanwhile is seen either
        // by the re-check or by its submitter (which then wakes someone).
        stop_searching(&inner, &mut searching);
        let wake = inner.sleep.park(inner.idle_timeout, || {
            inner.draining.load(Ordering::SeqCst)
                || inner.workers.load(Ordering::Relaxed) > inner.max.load(Ordering::Relaxed)
                || inner.has_work()
        });
        match wake {
            Wake::Token => searching = true,
            Wake::TimedOut if inner.try_retire(inner.min.load(Ordering::Relaxed)) => break,
            _ => {}
        }
    }
    stop_searching(&inner, &mut searching);
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
    if handed_back {
        // Before `worker_exited`: a spawn joins the handles of exited workers, which would be ours.
        inner.notify_work();
    }
    inner.worker_exited(&slot);
}
