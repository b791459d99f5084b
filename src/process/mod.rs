//! Child processes (API.md §8.1, Twisted's IReactorProcess): spawning with a child-fd map or a pty,
//! the pipes, and reaping — only our own pids, never `waitpid(-1)`.
//!
//! One file per concern: `options` checks the arguments, `spawn` starts the child (fork+exec or
//! posix_spawn), `sys` holds the system calls, `child` is the process object and its callbacks.
//!
//! How an exit is seen: on the kqueue backend, EVFILT_PROC (NOTE_EXIT) per child; elsewhere a
//! pidfd per child (Linux), registered with the backend like any internal fd; where neither exists
//! (other kernels, valgrind), the reactor watches SIGCHLD (installed with SA_RESTART before its
//! first fork, kept until it is freed) and calls `waitpid(pid, WNOHANG)` for each of its children
//! when one arrives. Then `waitpid(pid, WNOHANG)` reaps: never `waitpid(-1)`.
//! `REACTOR_CHILD_WATCH=sigchld` picks the SIGCHLD way (tests run both).

pub mod child;
pub mod options;
pub mod spawn;
mod sys;

use crate::backend::Watch;
use crate::callback::UserData;
use crate::handles::{HandleTable, ProcessTable};
use crate::net::IdHash;
use crate::reactor::Reactor;
use crate::reactor::signals::{SignalWatch, delivered};
use crate::status::{Error, Result};
use crate::types::reactor_process_protocol_t;
use child::{ExitSource, ExitWatch, Process};
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::os::raw::{c_int, c_void};
use std::rc::Rc;
use std::sync::OnceLock;

/// What a process slot holds: nothing (the object lives on its reactor's thread).
pub struct Owned;

static PROCESSES: ProcessTable<Owned> = HandleTable::new();

/// The reactor a process handle belongs to (`None`: not a live process).
pub fn process_reactor(handle: *const c_void) -> Option<usize> {
    PROCESSES
        .tag(handle)
        .map(crate::net::handles::tagged_reactor)
}

fn new_process(reactor: usize) -> Result<usize> {
    PROCESSES
        .insert_tagged(Box::new(Owned), crate::net::handles::reactor_tag(reactor)?)
        .map(|h| h as usize)
}

pub(crate) fn end_process(handle: usize) {
    drop(PROCESSES.remove(handle as *const c_void));
}

/// Work on a process for the next pass.
pub(crate) enum ProcessWork {
    ConnectionMade,
    /// A pipe closed by the host: its `child_connection_lost`.
    ChildLost(c_int),
    /// A child whose exit the backend would not watch: reap it now.
    Reap,
}

impl ProcessWork {
    pub(crate) fn run(self, reactor: &Reactor, handle: usize) {
        let Some(process) = reactor.process(handle) else {
            return;
        };
        match self {
            ProcessWork::ConnectionMade => process.deliver_made(reactor),
            ProcessWork::ChildLost(child_fd) => process.deliver_lost(reactor, child_fd),
            ProcessWork::Reap => process.reap(reactor),
        }
    }
}

/// How this reactor's children's exits are seen.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ExitMode {
    /// The backend's own watch (kqueue's EVFILT_PROC).
    Backend,
    Pidfd,
    Sigchld,
}

/// The process-wide choice, before the backend's: SIGCHLD when asked for (`REACTOR_CHILD_WATCH`)
/// or under valgrind (it knows neither `pidfd_open` nor, through libkqueue, EVFILT_PROC); else
/// pidfd if the kernel has it.
fn process_exit_mode() -> ExitMode {
    static MODE: OnceLock<ExitMode> = OnceLock::new();
    *MODE.get_or_init(|| {
        let forced = std::env::var("REACTOR_CHILD_WATCH").is_ok_and(|v| v == "sigchld");
        if forced || sys::under_valgrind() {
            return ExitMode::Sigchld;
        }
        // SAFETY: plain system call.
        let pid = unsafe { libc::getpid() };
        if sys::pidfd_open(pid).is_ok() {
            ExitMode::Pidfd
        } else {
            ExitMode::Backend
        }
    })
}

/// The reactor's children (owner-only part of the reactor).
#[derive(Default)]
pub struct Processes {
    by_handle: HashMap<usize, Rc<Process>, IdHash>,
    /// The SIGCHLD watch, from the first spawn that needs it until the reactor is freed.
    sigchld: Option<SignalWatch>,
    /// SIGCHLD deliveries when this reactor last looked.
    sigchld_seen: u64,
}

impl Processes {
    fn get(&self, handle: usize) -> Option<Rc<Process>> {
        self.by_handle.get(&handle).cloned()
    }

    pub(crate) fn remove(&mut self, handle: usize) -> Option<Rc<Process>> {
        self.by_handle.remove(&handle)
    }

    /// Every process, for `reactor_free` (closed and released as they drop), and the SIGCHLD watch.
    pub fn take_all(&mut self) -> (Vec<Rc<Process>>, Option<SignalWatch>) {
        (
            self.by_handle.drain().map(|(_, p)| p).collect(),
            self.sigchld.take(),
        )
    }
}

impl Reactor {
    pub(crate) fn process(&self, handle: usize) -> Option<Rc<Process>> {
        self.processes.borrow().get(handle)
    }

    /// `reactor_spawn_process`. `make_data` builds the host's user data once nothing can fail
    /// (on error it is not called and nothing is released).
    pub fn spawn_process(
        &self,
        request: spawn::Request,
        protocol: reactor_process_protocol_t,
        make_data: impl FnOnce() -> UserData,
    ) -> Result<usize> {
        if self.is_finished() {
            return Err(Error::Closed);
        }
        let handle = new_process(self.handle() as usize)?;
        let mode = self.exit_mode();
        if mode == ExitMode::Sigchld {
            self.watch_sigchld();
        }
        let spawned = match spawn::spawn(&request) {
            Ok(spawned) => spawned,
            Err(errno) => {
                end_process(handle);
                return Err(Error::Os(errno));
            }
        };
        let pid = spawned.pid;
        let process = Rc::new(Process::new(handle, pid, protocol, spawned.pipes));
        if let Err(e) = self.watch_process(&process, mode) {
            // Nothing is reported of a child we cannot watch: it is stopped and reaped here.
            process.unregister_all(self);
            let _ = sys::kill(pid, libc::SIGKILL);
            sys::wait_blocking(pid);
            drop(process);
            return Err(e);
        }
        process.set_data(make_data());
        self.processes
            .borrow_mut()
            .by_handle
            .insert(handle, process);
        // Refused only after a run that ended with stop, which was checked above.
        let _ = crate::net::later::queue(
            self,
            crate::net::later::Later::Process(handle, ProcessWork::ConnectionMade),
        );
        Ok(handle)
    }

    /// This reactor's way: the backend's process watch where it has one (kqueue), else the
    /// process-wide choice (a kernel without pidfd and a backend without a watch: SIGCHLD).
    fn exit_mode(&self) -> ExitMode {
        match process_exit_mode() {
            ExitMode::Sigchld => ExitMode::Sigchld,
            _ if self.backend_name() == "kqueue" => ExitMode::Backend,
            ExitMode::Pidfd => ExitMode::Pidfd,
            _ => ExitMode::Sigchld,
        }
    }

    /// Registers the pipes and the exit watch.
    fn watch_process(&self, process: &Rc<Process>, mode: ExitMode) -> Result<()> {
        process.register_pipes(self)?;
        if mode == ExitMode::Backend {
            let source = Rc::new(ExitSource {
                process: process.handle_value(),
            });
            match self.register_watch(Watch::Process(process.raw_pid()), source) {
                Ok(token) => process.set_exit_watch(ExitWatch::Backend(token)),
                // Already a zombie (some kernels refuse the watch then): reaped on the next pass.
                Err(Error::Os(libc::ESRCH)) => {
                    process.set_exit_watch(ExitWatch::Done);
                    let _ = crate::net::later::queue(
                        self,
                        crate::net::later::Later::Process(
                            process.handle_value(),
                            ProcessWork::Reap,
                        ),
                    );
                }
                Err(e) => return Err(e),
            }
        } else if mode == ExitMode::Pidfd {
            let pidfd = sys::pidfd_open(process.raw_pid()).map_err(Error::Os)?;
            let source = Rc::new(ExitSource {
                process: process.handle_value(),
            });
            let token =
                self.register_source(pidfd.as_raw_fd(), crate::backend::Interest::READ, source)?;
            process.set_exit_watch(ExitWatch::Pidfd(pidfd, token));
        } else {
            process.set_exit_watch(ExitWatch::Sigchld);
        }
        Ok(())
    }

    /// Installs the SIGCHLD watch before the first fork that needs it (API.md §8.6).
    fn watch_sigchld(&self) {
        let mut processes = self.processes.borrow_mut();
        if processes.sigchld.is_none() {
            processes.sigchld_seen = delivered(libc::SIGCHLD);
            processes.sigchld = Some(SignalWatch::start(&[libc::SIGCHLD], self.waker()));
        }
    }

    /// Once per pass (one load unless a SIGCHLD arrived): reap the children that went.
    pub(crate) fn check_children(&self) {
        let waiting: Vec<Rc<Process>> = {
            let mut processes = self.processes.borrow_mut();
            if processes.sigchld.is_none() {
                return;
            }
            let now = delivered(libc::SIGCHLD);
            if now == processes.sigchld_seen {
                return;
            }
            processes.sigchld_seen = now;
            processes
                .by_handle
                .values()
                .filter(|p| p.waits_for_sigchld())
                .cloned()
                .collect()
        };
        for process in waiting {
            process.reap(self);
            if self.is_crashing() {
                return;
            }
        }
    }

    /// The DURING-shutdown step: every child's pipes close; children already reaped end.
    pub(crate) fn shutdown_processes(&self) {
        let all: Vec<Rc<Process>> = self
            .processes
            .borrow()
            .by_handle
            .values()
            .cloned()
            .collect();
        for process in all {
            process.shut_down(self);
        }
    }
}
