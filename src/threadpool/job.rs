//! What a pool runs: a C work function with its user data, or a Rust task.

use crate::callback::{UserData, WorkFn, call_work};
use crate::reactor::Shared;

/// What a worker hands to a running task: the pool's epoch (how many times it was stopped before this
/// job ran) and, for a reactor's pool, the reactor's shared half (to queue a completion on its thread).
pub struct RunContext<'a> {
    pub epoch: u64,
    pub reactor: Option<&'a Shared>,
}

/// A job implemented in Rust. `run` consumes it on a worker; `abandon` hands it back to its submitter
/// when the pool refused it (no user data may be released then: API.md §1).
pub trait Task: Send {
    fn run(self: Box<Self>, cx: &RunContext<'_>);

    fn abandon(self: Box<Self>) {}
}

/// One unit of work. A C job is stored inline in the deques: submitting it allocates nothing.
pub enum Job {
    /// `func(ud)` on a worker, then the user data's release, on the same worker.
    Work {
        func: WorkFn,
        data: UserData,
    },
    Task(Box<dyn Task>),
}

struct Closure<F>(F);

impl<F: FnOnce() + Send> Task for Closure<F> {
    fn run(self: Box<Self>, _cx: &RunContext<'_>) {
        (self.0)()
    }
}

impl Job {
    pub fn work(func: WorkFn, data: UserData) -> Job {
        Job::Work { func, data }
    }

    /// A Rust closure as a job (tests and internal use).
    pub fn closure(f: impl FnOnce() + Send + 'static) -> Job {
        Job::Task(Box::new(Closure(f)))
    }

    pub(super) fn run(self, cx: &RunContext<'_>) {
        match self {
            Job::Work { func, data } => {
                call_work(func, data.ptr());
                drop(data);
            }
            Job::Task(task) => task.run(cx),
        }
    }

    /// Gives a refused job back to its submitter: the host keeps its user data, nothing is released.
    pub fn abandon(self) {
        match self {
            Job::Work { data, .. } => {
                data.into_raw();
            }
            Job::Task(task) => task.abandon(),
        }
    }
}
