//! The part of a reactor other threads may touch: the call_from_thread queue, the waker handshake,
//! the async-pending flag, the gate of remote handles and the poisoned flag. Everything here is `Sync`.

use super::Reactor;
use super::call_queue::CallQueue;
use super::wake;
use crate::backend::WakeTarget;
use crate::callback::Callback;
use crate::status::Error;
use crate::sync::{Gate, Padded};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

/// Work the reactor runs on its own thread for the library (not a host callback): e.g. the `done`
/// half of `reactor_call_in_thread_with_callback`. Dropping one without running it must release
/// whatever host data it carries (that is what `reactor_free` does with leftovers).
pub trait ReactorTask: Send {
    fn run(self: Box<Self>, reactor: &Reactor);
}

/// One entry of the call_from_thread queue.
pub enum ThreadCall {
    Host(Callback),
    Task(Box<dyn ReactorTask>),
}

/// Laid out (in this order) by who writes what: the read-mostly fields every any-thread call reads
/// share the first line; the async flag (written by senders) and the call queue (written by producers
/// and the reactor) have lines of their own, so no side's writes take away a line another side only
/// reads. The waker handshake runs on the reactor handle's state word (`wake`), bound at creation.
#[repr(C)]
pub struct Shared {
    poisoned: AtomicBool,
    waker: WakeTarget,
    /// The reactor handle's state word (never unmapped), where AWAKE and WAKE_PENDING live.
    word: AtomicPtr<AtomicU64>,
    /// Passed by producers without a pin on the reactor (remote calls, pool completions; remote
    /// handles outlive the reactor); closed when a run ends with stop and when it is freed.
    remote_gate: Gate,
    async_pending: Padded<AtomicBool>,
    calls: Padded<CallQueue>,
}

/// Where the handshake runs before the reactor has a handle (nothing produces for it yet).
static UNBOUND: AtomicU64 = AtomicU64::new(0);

impl Shared {
    pub fn new(waker: WakeTarget) -> Shared {
        Shared {
            poisoned: AtomicBool::new(false),
            word: AtomicPtr::new(&UNBOUND as *const AtomicU64 as *mut AtomicU64),
            async_pending: Padded(AtomicBool::new(false)),
            calls: Padded(CallQueue::default()),
            remote_gate: Gate::new(),
            waker,
        }
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Relaxed)
    }

    pub fn poison(&self) {
        self.poisoned.store(true, Ordering::Relaxed);
    }

    /// Binds the waker handshake to the reactor handle's state word (at creation, before anyone else
    /// can reach the reactor).
    pub fn bind_word(&self, word: &'static AtomicU64) {
        self.word.store(
            word as *const AtomicU64 as *mut AtomicU64,
            Ordering::Release,
        );
    }

    /// The handshake word.
    #[inline]
    pub fn word(&self) -> &AtomicU64 {
        // SAFETY: points to `UNBOUND` or to a slot's state word; both live as long as the process.
        unsafe { &*self.word.load(Ordering::Acquire) }
    }

    /// After publishing work without holding a pin on the reactor: wakes the reactor thread unless it
    /// is awake or a wake-up is already on its way. Async-signal-safe.
    #[inline]
    pub fn wake(&self) {
        if wake::publish(self.word()) {
            self.waker.wake();
        }
    }

    /// Writes the waker unconditionally (`reactor_wake_up`, and producers that claimed the wake-up).
    #[inline]
    pub fn force_wake(&self) {
        self.waker.wake();
    }

    /// Reactor side of the handshake (see `wake`; the reactor tracks whether it is awake).
    pub fn wake_up(&self) {
        wake::wake_up(self.word());
    }

    pub fn prepare_to_block(&self) {
        wake::prepare_to_block(self.word());
    }

    /// Queues a call from a thread that holds a pin on the reactor; the caller then ends the pin
    /// with `end_pin_after_publish`.
    #[inline]
    pub fn push_call_pinned(&self, call: ThreadCall) -> WakeTarget {
        self.calls.push(call);
        self.waker
    }

    /// Queues work for the reactor thread from a thread that holds no pin on it (`reactor_remote_call`,
    /// a pool worker's completion), through the gate the reactor closes when a run ends with stop and
    /// when it is freed: refused then with `Error::Closed`, atomically with respect to both, and
    /// with `Error::Internal` on a poisoned reactor. A refused call is handed back.
    pub fn push_unpinned(&self, call: ThreadCall) -> std::result::Result<(), (Error, ThreadCall)> {
        if !self.remote_gate.enter() {
            return Err((Error::Closed, call));
        }
        let result = if self.is_poisoned() {
            Err((Error::Internal, call))
        } else {
            self.calls.push(call);
            self.wake();
            Ok(())
        };
        self.remote_gate.leave();
        result
    }

    /// Closes the remote gate: the run ended with stop, or the reactor is freed.
    pub fn close_remote_gate(&self) {
        self.remote_gate.close();
    }

    /// Makes the reactor thread look at its async handles on its next pass (no wake-up: it is awake).
    pub fn mark_async_pending(&self) {
        self.async_pending.store(true, Ordering::Release);
    }

    /// An async send: flag, then wake. Async-signal-safe.
    #[inline]
    pub fn signal_async(&self) {
        self.async_pending.store(true, Ordering::Release);
        self.wake();
    }

    pub fn take_async_pending(&self) -> bool {
        self.async_pending.load(Ordering::Relaxed)
            && self.async_pending.swap(false, Ordering::AcqRel)
    }

    pub fn has_work(&self) -> bool {
        !self.calls.is_empty() || self.async_pending.load(Ordering::Relaxed)
    }

    /// Exchanges every queued call (oldest first) with the reactor's empty `spare` buffer.
    pub fn take_calls(&self, spare: &mut Vec<ThreadCall>) {
        self.calls.take_all(spare);
    }
}

/// Ends a producer's pin on the reactor after it published work (`push_call_pinned`): when the
/// reactor is awake the unpin itself is the handshake's read-modify-write (no other atomic);
/// otherwise the producer that claims the wake-up writes the waker, while still pinned (the waker's fd
/// is valid only while the reactor is).
#[inline]
pub fn end_pin_after_publish<T>(pin: crate::handles::Pinned<'_, T>, waker: WakeTarget) {
    pin.release_with(|word| {
        if wake::unpin_if_awake(word, crate::handles::PIN) {
            return true;
        }
        if wake::claim_wake(word) {
            waker.wake();
        }
        false
    });
}
