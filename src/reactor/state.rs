//! The loop's state machine. One value says what drives the reactor right now; `run` and `iterate`
//! set it through guards that restore it on every way out, a panic included.
//!
//! ```text
//!             run                        stop            shutdown fires      shutdown AFTER done
//!   Idle ──────────────▶ Running(Active) ─────▶ StopRequested ─────▶ ShuttingDown ─────▶ Done
//!    ▲  ▲                     │ crash (any stage): the loop ends ──▶ Idle                    │
//!    │  └── iterate ◀──▶ Iterating                                                 run returns
//!    │                                                                                      ▼
//!    └───────────────────────────────────────────────────────────────────────────── Finished
//! ```
//! (`Finished` is final: no run or iterate after a run that ended with stop.)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopState {
    /// Not driven: before the first run, between iterates, after a crash.
    Idle,
    /// Inside `reactor_iterate`.
    Iterating,
    /// Inside `reactor_run`.
    Running(Run),
    /// A run ended through `stop`: the reactor cannot run or iterate again.
    Finished,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub stage: Stage,
    /// Twisted's `running`: true from DURING-startup until DURING-shutdown.
    pub started: bool,
    /// `crash` was called: the loop ends once the callback in progress returns.
    pub crashing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Active,
    /// `stop` was called; "shutdown" fires on the next pass.
    StopRequested,
    /// "shutdown" is firing (its BEFORE phase may be held).
    ShuttingDown,
    /// "shutdown" finished: `run` returns (and the reactor is `Finished`).
    Done,
}

impl LoopState {
    pub const fn new_run() -> LoopState {
        LoopState::Running(Run {
            stage: Stage::Active,
            started: false,
            crashing: false,
        })
    }

    pub fn is_run(self) -> bool {
        matches!(self, LoopState::Running(_))
    }

    pub fn run(self) -> Option<Run> {
        match self {
            LoopState::Running(run) => Some(run),
            _ => None,
        }
    }

    /// Twisted's `running` flag (`reactor_is_running`).
    pub fn is_started(self) -> bool {
        self.run().is_some_and(|run| run.started)
    }

    pub fn is_crashing(self) -> bool {
        self.run().is_some_and(|run| run.crashing)
    }

    /// The state `run` leaves behind.
    pub fn after_run(self) -> LoopState {
        match self {
            LoopState::Running(Run {
                stage: Stage::Done, ..
            }) => LoopState::Finished,
            _ => LoopState::Idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_ends_finished_only_after_shutdown_completed() {
        let mut run = LoopState::new_run();
        assert!(!run.is_started());
        assert_eq!(
            run.after_run(),
            LoopState::Idle,
            "crash or panic: may run again"
        );
        if let LoopState::Running(r) = &mut run {
            r.started = true;
            r.stage = Stage::Done;
        }
        assert!(run.is_started());
        assert_eq!(run.after_run(), LoopState::Finished);
        assert_eq!(LoopState::Iterating.after_run(), LoopState::Idle);
    }
}
