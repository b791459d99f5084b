//! Three-phase system events (Twisted's `_ThreePhaseEvent`): BEFORE triggers may hold the event by
//! returning `REACTOR_PENDING` until `reactor_trigger_complete`; then DURING and AFTER run. Triggers are
//! one-shot: each trigger's release runs right after its phase has run. "startup" and "shutdown" also
//! drive the reactor's own state (see `internal_during`).

use super::Reactor;
use super::state::{LoopState, Stage};
use crate::callback::{Callback, CbFn, TriggerFn, UserData, call_plain, call_trigger};
use crate::status::{Error, REACTOR_PENDING, Result};
use crate::types::{REACTOR_LOG_ERROR, REACTOR_LOG_WARN};
use std::collections::VecDeque;
use std::os::raw::c_int;

pub(crate) const BEFORE: usize = 0;
pub(crate) const DURING: usize = 1;
pub(crate) const AFTER: usize = 2;
const PHASE_NAMES: [&str; 3] = ["before", "during", "after"];

pub enum TriggerAction {
    Trigger(TriggerFn),
    /// `reactor_call_when_running` before the reactor runs: an AFTER-startup trigger.
    WhenRunning(CbFn),
}

pub struct Trigger {
    id: u64,
    action: TriggerAction,
    data: UserData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Firing {
    Idle,
    /// BEFORE triggers are running.
    Before,
    /// BEFORE finished, some triggers are still pending.
    Held,
    /// Every pending trigger completed; DURING/AFTER run on the next pass.
    Ready,
    /// DURING/AFTER are running.
    Rest,
}

struct EventState {
    name: Box<[u8]>,
    phases: [VecDeque<Trigger>; 3],
    firing: Firing,
    held: Vec<Trigger>,
}

#[derive(Default)]
pub struct SystemEvents {
    events: Vec<EventState>,
    next_id: u64,
    /// Triggers currently running (innermost last) and whether they completed themselves.
    running: Vec<(u64, bool)>,
    any_ready: bool,
}

impl SystemEvents {
    fn index_of(&mut self, name: &[u8]) -> usize {
        if let Some(index) = self.events.iter().position(|e| &*e.name == name) {
            return index;
        }
        self.events.push(EventState {
            name: name.into(),
            phases: Default::default(),
            firing: Firing::Idle,
            held: Vec::new(),
        });
        self.events.len() - 1
    }

    pub fn has_ready(&self) -> bool {
        self.any_ready
    }

    /// Every registration, for reactor teardown.
    pub fn take_all(&mut self) -> Vec<UserData> {
        let mut all = Vec::new();
        for event in &mut self.events {
            for phase in &mut event.phases {
                all.extend(phase.drain(..).map(|t| t.data));
            }
            all.extend(event.held.drain(..).map(|t| t.data));
        }
        all
    }
}

impl Reactor {
    fn add_trigger(&self, phase: usize, name: &[u8], action: TriggerAction, data: UserData) -> u64 {
        let mut events = self.events.borrow_mut();
        events.next_id += 1;
        let id = events.next_id;
        let index = events.index_of(name);
        events.events[index].phases[phase].push_back(Trigger { id, action, data });
        id
    }

    pub fn add_system_event_trigger(
        &self,
        phase: usize,
        name: &[u8],
        func: TriggerFn,
        data: UserData,
    ) -> u64 {
        self.add_trigger(phase, name, TriggerAction::Trigger(func), data)
    }

    pub(super) fn add_when_running_trigger(&self, callback: Callback) {
        self.add_trigger(
            AFTER,
            b"startup",
            TriggerAction::WhenRunning(callback.func),
            callback.data,
        );
    }

    pub fn remove_system_event_trigger(&self, id: u64) -> Result<()> {
        let removed = {
            let mut events = self.events.borrow_mut();
            events.events.iter_mut().find_map(|event| {
                event.phases.iter_mut().find_map(|phase| {
                    let position = phase.iter().position(|t| t.id == id)?;
                    phase.remove(position)
                })
            })
        };
        let trigger = removed.ok_or(Error::NotFound)?;
        self.retire(trigger.data);
        Ok(())
    }

    /// `reactor_fire_system_event`: runs the triggers before returning (unless a BEFORE trigger holds).
    pub fn fire_system_event(&self, name: &[u8]) -> Result<()> {
        if self.state.get().is_run() && (name == b"startup" || name == b"shutdown") {
            return Err(Error::Busy);
        }
        self.fire_event(name)
    }

    pub(super) fn fire_event(&self, name: &[u8]) -> Result<()> {
        let index = {
            let mut events = self.events.borrow_mut();
            let index = events.index_of(name);
            if events.events[index].firing != Firing::Idle {
                return Err(Error::Busy);
            }
            events.events[index].firing = Firing::Before;
            index
        };
        let mut ran = Vec::new();
        loop {
            let next = self.events.borrow_mut().events[index].phases[BEFORE].pop_front();
            let Some(trigger) = next else { break };
            self.events.borrow_mut().running.push((trigger.id, false));
            let status = self.run_trigger(&trigger);
            let completed_itself = self
                .events
                .borrow_mut()
                .running
                .pop()
                .is_some_and(|(_, done)| done);
            if status == REACTOR_PENDING && !completed_itself {
                self.events.borrow_mut().events[index].held.push(trigger);
            } else {
                self.report_trigger_status(name, BEFORE, trigger.id, status);
                ran.push(trigger);
            }
        }
        // One-shot: the phase has run, so its triggers are released now (held ones on completion).
        drop(ran);
        let held = {
            let mut events = self.events.borrow_mut();
            let event = &mut events.events[index];
            if event.held.is_empty() {
                false
            } else {
                event.firing = Firing::Held;
                true
            }
        };
        if !held {
            self.finish_event(index);
        }
        Ok(())
    }

    /// `reactor_trigger_complete`: DURING/AFTER run on the next pass once nothing is held.
    pub fn trigger_complete(&self, id: u64) -> Result<()> {
        self.complete_held(id).map(drop)
    }

    /// `reactor_trigger_complete_now`: as `trigger_complete`, but when this was the event's last
    /// held BEFORE trigger, its DURING and AFTER triggers run before this returns (Twisted continues
    /// the event inside the callback of the DeferredList that held it). "startup" and "shutdown"
    /// inside `run` keep the next-pass rule: the loop's own state moves with them.
    pub fn trigger_complete_now(&self, id: u64) -> Result<()> {
        let Some(index) = self.complete_held(id)? else {
            return Ok(());
        };
        let name = self.events.borrow().events[index].name.clone();
        if self.state.get().is_run() && (&*name == b"startup" || &*name == b"shutdown") {
            return Ok(());
        }
        self.finish_event(index);
        let mut events = self.events.borrow_mut();
        events.any_ready = events.events.iter().any(|e| e.firing == Firing::Ready);
        Ok(())
    }

    /// Completes a held (or running) BEFORE trigger; `Some(index)` when its event became ready.
    fn complete_held(&self, id: u64) -> Result<Option<usize>> {
        let (completed, ready) = {
            let mut guard = self.events.borrow_mut();
            let events = &mut *guard;
            if let Some(running) = events
                .running
                .iter_mut()
                .find(|(running, _)| *running == id)
            {
                running.1 = true;
                return Ok(None);
            }
            let mut found = None;
            let mut ready = None;
            for (index, event) in events.events.iter_mut().enumerate() {
                if let Some(position) = event.held.iter().position(|t| t.id == id) {
                    found = Some(event.held.remove(position));
                    if event.held.is_empty() && event.firing == Firing::Held {
                        event.firing = Firing::Ready;
                        events.any_ready = true;
                        ready = Some(index);
                    }
                    break;
                }
            }
            (found, ready)
        };
        // Its BEFORE phase is over for this trigger: released now (not inside its own callback: a
        // trigger completing itself while it runs is handled above).
        drop(completed.ok_or(Error::NotFound)?);
        Ok(ready)
    }

    /// Runs DURING/AFTER of events whose held BEFORE phase completed.
    pub(super) fn continue_ready_events(&self) {
        if !self.events.borrow().any_ready {
            return;
        }
        self.events.borrow_mut().any_ready = false;
        loop {
            let ready = self
                .events
                .borrow()
                .events
                .iter()
                .position(|e| e.firing == Firing::Ready);
            let Some(index) = ready else { return };
            self.finish_event(index);
        }
    }

    fn finish_event(&self, index: usize) {
        let name = {
            let mut events = self.events.borrow_mut();
            events.events[index].firing = Firing::Rest;
            events.events[index].name.clone()
        };
        self.internal_during(&name);
        for phase in [DURING, AFTER] {
            let mut ran = Vec::new();
            loop {
                let next = self.events.borrow_mut().events[index].phases[phase].pop_front();
                let Some(trigger) = next else { break };
                let status = self.run_trigger(&trigger);
                self.report_trigger_status(&name, phase, trigger.id, status);
                ran.push(trigger);
            }
            drop(ran);
        }
        self.events.borrow_mut().events[index].firing = Firing::Idle;
        if &*name == b"shutdown" {
            self.update_run(|run| {
                if run.stage == Stage::ShuttingDown {
                    run.stage = Stage::Done;
                }
            });
        }
    }

    /// The reactor's own DURING work, before user DURING triggers (as Twisted registers its own first).
    fn internal_during(&self, name: &[u8]) {
        match name {
            b"startup" => self.update_run(|run| run.started = true),
            b"shutdown" => {
                self.update_run(|run| run.started = false);
                self.shutdown_sources();
                self.shutdown_processes();
                self.shutdown_connectors();
                self.cancel_resolves();
                // Stop and join the thread pool, so every worker is gone before `run` returns. Fired
                // by hand outside `run`, the pool reopens on the next job.
                let in_run = matches!(self.state.get(), LoopState::Running(_));
                self.pool.shutdown(in_run);
            }
            _ => {}
        }
    }

    fn run_trigger(&self, trigger: &Trigger) -> c_int {
        let ud = trigger.data.ptr();
        match trigger.action {
            TriggerAction::Trigger(func) => {
                self.invoke(|| call_trigger(func, self.handle(), trigger.id, ud))
            }
            TriggerAction::WhenRunning(func) => {
                self.invoke(|| call_plain(func, self.handle(), ud));
                0
            }
        }
    }

    fn report_trigger_status(&self, name: &[u8], phase: usize, id: u64, status: c_int) {
        let event = String::from_utf8_lossy(name);
        if status < 0 {
            let reason = crate::status::strerror(status).to_string_lossy();
            self.log(
                REACTOR_LOG_ERROR,
                &format!(
                    "{} trigger {id} of event '{event}' failed: {status} ({reason})",
                    PHASE_NAMES[phase]
                ),
            );
        } else if status == REACTOR_PENDING {
            self.log(
                REACTOR_LOG_WARN,
                &format!(
                    "{} trigger {id} of event '{event}' returned REACTOR_PENDING; only BEFORE triggers can hold",
                    PHASE_NAMES[phase]
                ),
            );
        }
    }
}
