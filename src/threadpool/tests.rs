//! Unit and stress tests of the pool internals.

use super::pool::IDLE_TIMEOUT;
use super::*;
use crate::status::Error;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

fn pool(min: usize, max: usize) -> ThreadPool {
    ThreadPool::new(min, max, true).expect("valid sizes")
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn sizes_are_checked() {
    assert_eq!(ThreadPool::new(0, 0, true).err(), Some(Error::Invalid));
    assert_eq!(ThreadPool::new(3, 2, true).err(), Some(Error::Invalid));
    assert_eq!(
        ThreadPool::new(0, MAX_THREADS + 1, true).err(),
        Some(Error::Invalid)
    );
    let p = pool(0, 1);
    assert_eq!(p.resize(2, 1), Err(Error::Invalid));
    assert_eq!(p.resize(0, 0), Err(Error::Invalid));
    assert_eq!(p.resize(0, 3), Ok(()));
    assert_eq!(p.limits(), (0, 3));
}

#[test]
fn many_submitters_every_job_runs_exactly_once() {
    const THREADS: usize = 8;
    const JOBS: usize = 20_000;
    let p = Arc::new(pool(0, 4));
    let ran: Arc<Vec<AtomicU8>> = Arc::new((0..THREADS * JOBS).map(|_| AtomicU8::new(0)).collect());
    let barrier = Arc::new(Barrier::new(THREADS));
    let submitters: Vec<_> = (0..THREADS)
        .map(|t| {
            let (p, ran, barrier) = (p.clone(), ran.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..JOBS {
                    let ran = ran.clone();
                    let index = t * JOBS + i;
                    assert!(
                        p.submit(Job::closure(move || {
                            ran[index].fetch_add(1, Ordering::Relaxed);
                        }))
                        .is_ok()
                    );
                }
            })
        })
        .collect();
    for s in submitters {
        s.join().unwrap();
    }
    p.stop().unwrap();
    assert!(ran.iter().all(|r| r.load(Ordering::Relaxed) == 1));
    let stats = p.stats();
    assert_eq!(stats.completed, (THREADS * JOBS) as u64);
    assert_eq!(stats.workers, 0);
    assert_eq!(stats.queued, 0);
}

fn spawn_tree(p: &Arc<ThreadPool>, depth: u32, count: &Arc<AtomicUsize>) {
    count.fetch_add(1, Ordering::Relaxed);
    if depth == 0 {
        return;
    }
    for _ in 0..2 {
        let (inner, count) = (p.clone(), count.clone());
        let submitted = p.submit(Job::closure(move || spawn_tree(&inner, depth - 1, &count)));
        assert!(submitted.is_ok());
    }
}

#[test]
fn jobs_submit_jobs_and_idle_workers_steal_them() {
    let p = Arc::new(pool(0, 4));
    let count = Arc::new(AtomicUsize::new(0));
    let (inner, c) = (p.clone(), count.clone());
    assert!(
        p.submit(Job::closure(move || spawn_tree(&inner, 14, &c)))
            .is_ok()
    );
    let total = (1 << 15) - 1;
    wait_until("the job tree", Duration::from_secs(30), || {
        count.load(Ordering::Relaxed) == total
    });
    p.stop().unwrap();
    assert_eq!(count.load(Ordering::Relaxed), total);
    assert_eq!(p.stats().completed, total as u64);
}

/// Jobs that finish only when the test hands out permits: how many run at once is then decided by
/// the pool alone, however slow or loaded the machine is.
#[derive(Default)]
struct Permits {
    running: AtomicUsize,
    peak: AtomicUsize,
    done: AtomicUsize,
    tickets: AtomicUsize,
    granted: AtomicUsize,
}

impl Permits {
    fn job(self: &Arc<Self>) -> Job {
        let this = self.clone();
        Job::closure(move || {
            let now = this.running.fetch_add(1, Ordering::SeqCst) + 1;
            this.peak.fetch_max(now, Ordering::SeqCst);
            // Job k (in start order) waits for permit k.
            let ticket = this.tickets.fetch_add(1, Ordering::SeqCst);
            while this.granted.load(Ordering::SeqCst) <= ticket {
                std::thread::sleep(Duration::from_millis(1));
            }
            this.running.fetch_sub(1, Ordering::SeqCst);
            this.done.fetch_add(1, Ordering::SeqCst);
        })
    }
}

/// Hands out every permit when dropped: a failed assertion must not leave the pool's drop (which
/// joins the workers) waiting for jobs that wait for permits.
struct OpenOnDrop(Arc<Permits>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.granted.store(usize::MAX, Ordering::SeqCst);
    }
}

#[test]
fn resize_while_busy_grows_and_shrinks() {
    const JOBS: usize = 400;
    // Generous: these waits only run out when the pool is broken.
    const WAIT: Duration = Duration::from_secs(30);
    let p = pool(1, 1);
    let jobs = Arc::new(Permits::default());
    let _open_on_failure = OpenOnDrop(jobs.clone()); // dropped before `p`
    for _ in 0..JOBS {
        assert!(p.submit(jobs.job()).is_ok());
    }
    // One job holds the only worker; a second worker would show in the peak.
    wait_until("1 job running", WAIT, || {
        jobs.running.load(Ordering::SeqCst) == 1
    });
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(p.stats().workers, 1);
    assert_eq!(jobs.peak.load(Ordering::SeqCst), 1);
    // Grown to 6: six jobs hold six workers.
    p.resize(0, 6).unwrap();
    wait_until("6 jobs at once", WAIT, || {
        jobs.running.load(Ordering::SeqCst) == 6
    });
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(jobs.peak.load(Ordering::SeqCst), 6);
    assert_eq!(p.stats().workers, 6);
    // Shrunk to 2: the six running jobs may finish; four workers leave instead of taking the next
    // job, the two that stay take one each and hold it.
    p.resize(0, 2).unwrap();
    jobs.granted.store(6, Ordering::SeqCst);
    wait_until("shrink to 2", WAIT, || p.stats().workers == 2);
    // A job stops counting as running before it counts as done.
    wait_until("6 jobs done and 2 running", WAIT, || {
        jobs.done.load(Ordering::SeqCst) == 6 && jobs.running.load(Ordering::SeqCst) == 2
    });
    assert_eq!(p.stats().workers, 2, "shrunk while jobs were queued");
    // From here to the last job, at most two at once.
    jobs.peak.store(2, Ordering::SeqCst);
    jobs.granted.store(usize::MAX, Ordering::SeqCst);
    p.stop().unwrap();
    assert_eq!(jobs.peak.load(Ordering::SeqCst), 2);
    assert_eq!(jobs.done.load(Ordering::SeqCst), JOBS);
}

#[test]
fn stop_runs_every_queued_job_of_a_pool_that_never_started() {
    let p = ThreadPool::new(0, 3, false).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    for _ in 0..10_000 {
        let count = count.clone();
        assert!(
            p.submit(Job::closure(move || {
                count.fetch_add(1, Ordering::Relaxed);
            }))
            .is_ok()
        );
    }
    std::thread::sleep(Duration::from_millis(10));
    let stats = p.stats();
    assert_eq!((stats.workers, stats.queued), (0, 10_000));
    assert_eq!(count.load(Ordering::Relaxed), 0);
    p.stop().unwrap();
    assert_eq!(count.load(Ordering::Relaxed), 10_000);
    assert_eq!(p.stats().workers, 0);
    assert_eq!(p.epoch(), 1);
}

#[test]
fn start_spawns_min_workers_and_more_for_queued_jobs() {
    let p = ThreadPool::new(2, 4, false).unwrap();
    assert_eq!(p.stats().workers, 0);
    let gate = Arc::new(Barrier::new(5));
    for _ in 0..4 {
        let gate = gate.clone();
        assert!(
            p.submit(Job::closure(move || {
                gate.wait();
            }))
            .is_ok()
        );
    }
    p.start().unwrap();
    gate.wait(); // all four jobs run at once
    p.stop().unwrap();
}

#[test]
fn submit_after_stop_gives_the_job_back() {
    let p = pool(0, 2);
    p.stop().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let refused = p.submit(Job::closure(move || {
        r.fetch_add(1, Ordering::SeqCst);
    }));
    assert!(refused.is_err());
    assert_eq!(p.resize(0, 3), Err(Error::Closed));
    assert_eq!(p.stop(), Ok(()), "stop twice is fine");
    drop(refused);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn drop_without_stop_runs_the_queue_and_joins() {
    let count = Arc::new(AtomicUsize::new(0));
    {
        let p = pool(0, 2);
        for _ in 0..5_000 {
            let count = count.clone();
            assert!(
                p.submit(Job::closure(move || {
                    count.fetch_add(1, Ordering::Relaxed);
                }))
                .is_ok()
            );
        }
    }
    assert_eq!(count.load(Ordering::Relaxed), 5_000);
}

#[test]
fn stop_from_a_job_is_refused() {
    let p = Arc::new(pool(0, 2));
    let outcome = Arc::new(Mutex::new(None));
    let (inner, o) = (p.clone(), outcome.clone());
    assert!(
        p.submit(Job::closure(move || {
            *o.lock().unwrap() = Some((inner.stop(), inner.is_own_worker()));
        }))
        .is_ok()
    );
    p.stop().unwrap();
    assert_eq!(*outcome.lock().unwrap(), Some((Err(Error::Busy), true)));
    assert!(!p.is_own_worker());
}

#[test]
fn idle_workers_above_min_retire() {
    let p = ThreadPool::build(1, 4, true, None, Duration::from_millis(50)).unwrap();
    assert!(IDLE_TIMEOUT >= Duration::from_secs(1));
    let gate = Arc::new(Barrier::new(5));
    for _ in 0..4 {
        let gate = gate.clone();
        assert!(
            p.submit(Job::closure(move || {
                gate.wait();
            }))
            .is_ok()
        );
    }
    gate.wait();
    assert_eq!(p.stats().workers, 4);
    wait_until("retirement to min", Duration::from_secs(10), || {
        p.stats().workers == 1
    });
    // The pool still works after its workers retired.
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..100 {
        let ran = ran.clone();
        assert!(
            p.submit(Job::closure(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            }))
            .is_ok()
        );
    }
    p.stop().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 100);
    assert_eq!(p.stats().completed, 104);
}

#[test]
fn parked_workers_are_idle_and_wake_for_new_jobs() {
    let p = pool(3, 3);
    wait_until("3 idle workers", Duration::from_secs(10), || {
        p.stats().idle == 3
    });
    for round in 0..50 {
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        assert!(
            p.submit(Job::closure(move || {
                r.fetch_add(1, Ordering::SeqCst);
            }))
            .is_ok()
        );
        wait_until("a woken worker", Duration::from_secs(10), || {
            ran.load(Ordering::SeqCst) == 1
        });
        if round % 10 == 0 {
            std::thread::sleep(Duration::from_millis(2)); // let the spinner park
        }
    }
    p.stop().unwrap();
}

#[test]
fn concurrent_submit_and_stop_loses_nothing() {
    for _ in 0..20 {
        let p = Arc::new(pool(0, 2));
        let accepted = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicUsize::new(0));
        let submitters: Vec<_> = (0..3)
            .map(|_| {
                let (p, accepted, ran) = (p.clone(), accepted.clone(), ran.clone());
                std::thread::spawn(move || {
                    for _ in 0..2_000 {
                        let ran = ran.clone();
                        match p.submit(Job::closure(move || {
                            ran.fetch_add(1, Ordering::SeqCst);
                        })) {
                            Ok(()) => accepted.fetch_add(1, Ordering::SeqCst),
                            Err(_) => break,
                        };
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_micros(300));
        p.stop().unwrap();
        for s in submitters {
            s.join().unwrap();
        }
        assert_eq!(ran.load(Ordering::SeqCst), accepted.load(Ordering::SeqCst));
    }
}

#[test]
fn shrinking_workers_hand_their_queued_jobs_back() {
    let p = Arc::new(pool(4, 4));
    let ran = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(Barrier::new(5));
    for _ in 0..4 {
        let (inner, ran, started) = (p.clone(), ran.clone(), started.clone());
        assert!(
            p.submit(Job::closure(move || {
                // Children land on this worker's own deque.
                for _ in 0..200 {
                    let ran = ran.clone();
                    let child = inner.submit(Job::closure(move || {
                        ran.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(50));
                    }));
                    assert!(child.is_ok());
                }
                started.wait();
            }))
            .is_ok()
        );
    }
    started.wait();
    p.resize(1, 1).unwrap();
    wait_until("every child", Duration::from_secs(30), || {
        ran.load(Ordering::SeqCst) == 800
    });
    wait_until("one worker", Duration::from_secs(10), || {
        p.stats().workers == 1
    });
    p.stop().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 800);
}

#[test]
fn blocking_jobs_never_wait_behind_each_other_while_workers_can_start() {
    let p = pool(0, 4);
    let failures = Arc::new(AtomicUsize::new(0));
    for round in 0..50u64 {
        let arrived = Arc::new(AtomicUsize::new(0));
        for _ in 0..4 {
            let (arrived, failures) = (arrived.clone(), failures.clone());
            assert!(
                p.submit(Job::closure(move || {
                    arrived.fetch_add(1, Ordering::SeqCst);
                    let started = Instant::now();
                    while arrived.load(Ordering::SeqCst) < 4 {
                        // Generous: only a pool that lets a job wait behind another runs out.
                        if started.elapsed() > Duration::from_secs(30) {
                            failures.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                        std::thread::sleep(Duration::from_micros(100));
                    }
                }))
                .is_ok()
            );
        }
        wait_until("a round", Duration::from_secs(60), || {
            p.stats().completed == 4 * (round + 1)
        });
        if round % 8 == 0 {
            std::thread::sleep(Duration::from_millis(1)); // let workers park between some rounds
        }
    }
    p.stop().unwrap();
    assert_eq!(failures.load(Ordering::SeqCst), 0);
    assert_eq!(p.stats().completed, 200);
}

/// No worker can start (the system is out of threads): `stop` runs the queue on the calling thread.
/// A job that then submits to the reactor's pool reopens it; that must not deadlock on the lock the
/// stop held while it ran jobs (it runs them after releasing it).
#[test]
fn stop_fallback_runs_jobs_outside_its_lock() {
    use crate::backend::WakeTarget;
    use crate::reactor::Shared;
    let shared = Arc::new(Shared::new(WakeTarget::from_bits(-1)));
    let reactor_pool = Arc::new(ReactorPool::new(shared, 2));
    reactor_pool.get_or_create().unwrap();
    let resubmitted = Arc::new(AtomicUsize::new(0));
    let (pool_in_job, count) = (reactor_pool.clone(), resubmitted.clone());
    let job = Job::closure(move || {
        let inner = Job::closure(move || {
            count.fetch_add(1, Ordering::SeqCst);
        });
        assert!(pool_in_job.submit(inner).is_ok(), "reopened by the submit");
    });
    assert!(reactor_pool.submit(job).is_ok());
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let stopper = reactor_pool.clone();
    std::thread::spawn(move || {
        pool::tests_support::SPAWNS_FAIL.with(|fail| fail.set(true));
        stopper.shutdown(false); // a "shutdown" fired by hand: the pool may reopen
        pool::tests_support::SPAWNS_FAIL.with(|fail| fail.set(false));
        done_tx.send(()).unwrap();
    });
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("stop deadlocked running its leftover jobs");
    reactor_pool.start();
    wait_until("the resubmitted job", Duration::from_secs(10), || {
        resubmitted.load(Ordering::SeqCst) == 1
    });
    reactor_pool.shutdown(true);
}
