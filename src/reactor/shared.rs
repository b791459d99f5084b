//! The part of a reactor other threads may touch: owner thread, the call_from_thread queue, the
//! coalescing waker and the flags that tell the reactor thread what woke it.

use crate::callback::Callback;
use crate::status::{Error, Result};
use crate::thread_id;
use crossbeam_deque::{Injector, Steal};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::raw::c_int;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering, fence};

/// Wakes a sleeping poll: an eventfd on Linux, a non-blocking pipe elsewhere.
pub struct Waker {
    read: OwnedFd,
    write: Option<OwnedFd>,
}

impl Waker {
    pub fn new() -> Result<Waker> {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: plain syscall; the result is checked.
            let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
            if fd < 0 {
                return Err(Error::last_os());
            }
            // SAFETY: a fresh fd we own.
            Ok(Waker {
                read: unsafe { OwnedFd::from_raw_fd(fd) },
                write: None,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let mut fds = [0 as c_int; 2];
            // SAFETY: valid out-array.
            if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                return Err(Error::last_os());
            }
            for fd in fds {
                // SAFETY: fds we just created.
                unsafe {
                    libc::fcntl(
                        fd,
                        libc::F_SETFL,
                        libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
                    );
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            // SAFETY: fresh fds we own.
            Ok(Waker {
                read: unsafe { OwnedFd::from_raw_fd(fds[0]) },
                write: Some(unsafe { OwnedFd::from_raw_fd(fds[1]) }),
            })
        }
    }

    pub fn read_fd(&self) -> c_int {
        self.read.as_raw_fd()
    }

    /// The fd a wake-up writes to (also used by the signal handler).
    pub fn write_fd(&self) -> c_int {
        self.write.as_ref().unwrap_or(&self.read).as_raw_fd()
    }

    /// Async-signal-safe.
    pub fn wake(&self) {
        write_wakeup(self.write_fd());
    }

    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: valid buffer; non-blocking fd.
            let n = unsafe { libc::read(self.read_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            // One read resets an eventfd; a pipe is read until empty.
            if n <= 0 || cfg!(target_os = "linux") {
                break;
            }
        }
    }
}

/// Writes one wake-up token to an eventfd or pipe. Async-signal-safe; a full pipe is already awake.
pub fn write_wakeup(fd: c_int) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a local; EAGAIN means a wake-up is already pending.
    unsafe { libc::write(fd, (&one as *const u64).cast(), std::mem::size_of::<u64>()) };
}

/// Whether the reactor still accepts calls from other threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Gate {
    Open = 0,
    /// `run` ended through `stop`: no further passes will run.
    Stopped = 1,
    /// `reactor_free` ran.
    Freed = 2,
}

pub struct Shared {
    owner: AtomicU64,
    /// Inside `run`, `iterate` or another call that dispatches callbacks (blocks `reactor_free`).
    active: AtomicBool,
    poisoned: AtomicBool,
    /// Set by a producer that will write (or wrote) the waker; cleared by the reactor at each pass.
    wake_pending: AtomicBool,
    /// The reactor thread is inside a pass and will look at its queues before it blocks, so producers
    /// need not write the waker (saves a syscall per wake-up while the loop is busy).
    awake: AtomicBool,
    async_pending: AtomicBool,
    calls: Injector<Callback>,
    /// Held for writing while the gate closes, for reading by `push_call_if_open`.
    gate_lock: RwLock<()>,
    /// A mirror of the gate that the plain `call_from_thread` path reads without locking.
    gate: AtomicU8,
    pub waker: Waker,
}

impl Shared {
    pub fn new() -> Result<Shared> {
        Ok(Shared {
            owner: AtomicU64::new(thread_id::current()),
            active: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
            wake_pending: AtomicBool::new(false),
            awake: AtomicBool::new(false),
            async_pending: AtomicBool::new(false),
            calls: Injector::new(),
            gate_lock: RwLock::new(()),
            gate: AtomicU8::new(Gate::Open as u8),
            waker: Waker::new()?,
        })
    }

    pub fn is_owner(&self) -> bool {
        self.owner.load(Ordering::Acquire) == thread_id::current()
    }

    pub fn adopt_current_thread(&self) {
        self.owner.store(thread_id::current(), Ordering::Release);
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Marks the reactor active; returns the previous value so nested entries restore it.
    pub fn set_active(&self, active: bool) -> bool {
        self.active.swap(active, Ordering::AcqRel)
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Relaxed)
    }

    pub fn poison(&self) {
        self.poisoned.store(true, Ordering::Relaxed);
    }

    pub fn gate(&self) -> Gate {
        match self.gate.load(Ordering::Acquire) {
            0 => Gate::Open,
            1 => Gate::Stopped,
            _ => Gate::Freed,
        }
    }

    pub fn close_gate(&self, gate: Gate) {
        let _writer = self.gate_lock.write();
        if self.gate() != Gate::Freed {
            self.gate.store(gate as u8, Ordering::Release);
        }
    }

    /// Wakes the reactor thread unless a wake-up is already on its way. Async-signal-safe.
    pub fn wake(&self) {
        // Dekker-style pairing with `prepare_to_block`: the producer's enqueue is ordered before its
        // look at `awake`, and the reactor's clearing of `awake` before its look at the queues, so either
        // the producer sees a reactor about to block (and writes the waker) or the reactor sees the work.
        fence(Ordering::SeqCst);
        if self.awake.load(Ordering::Relaxed) {
            return; // inside a pass: the reactor looks at its queues before it blocks
        }
        if !self.wake_pending.load(Ordering::Relaxed)
            && !self.wake_pending.swap(true, Ordering::AcqRel)
        {
            self.waker.wake();
        }
    }

    /// The reactor thread entered (true) or left (false) a pass.
    pub fn set_awake(&self, awake: bool) {
        self.awake.store(awake, Ordering::SeqCst);
    }

    /// Called by the reactor thread right before a blocking poll. Returns true if work arrived meanwhile
    /// (then it must not block). From here on producers write the waker.
    pub fn prepare_to_block(&self) -> bool {
        self.awake.store(false, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.has_work()
    }

    /// Queues a call for the reactor thread (the caller checked the gate if it had to).
    pub fn push_call(&self, call: Callback) {
        self.calls.push(call);
        if !self.is_owner() {
            self.wake();
        }
    }

    /// `reactor_remote_call`: refuses atomically with respect to `reactor_free` and the end of `run`.
    pub fn push_call_if_open(&self, call: Callback) -> std::result::Result<(), Callback> {
        let Ok(_reader) = self.gate_lock.read() else {
            return Err(call);
        };
        if self.gate() != Gate::Open {
            return Err(call);
        }
        self.push_call(call);
        Ok(())
    }

    /// Makes the reactor thread look at its async handles on its next pass (no wake-up: it is awake).
    pub fn mark_async_pending(&self) {
        self.async_pending.store(true, Ordering::Release);
    }

    pub fn signal_async(&self) {
        self.async_pending.store(true, Ordering::Release);
        self.wake();
    }

    /// Called by the reactor thread before it looks at the queues.
    pub fn begin_pass(&self) {
        self.wake_pending.store(false, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    pub fn take_async_pending(&self) -> bool {
        self.async_pending.load(Ordering::Relaxed)
            && self.async_pending.swap(false, Ordering::AcqRel)
    }

    pub fn has_work(&self) -> bool {
        !self.calls.is_empty() || self.async_pending.load(Ordering::Relaxed)
    }

    pub fn queued_calls(&self) -> usize {
        self.calls.len()
    }

    pub fn steal_call(&self) -> Option<Callback> {
        loop {
            match self.calls.steal() {
                Steal::Success(call) => return Some(call),
                Steal::Empty => return None,
                Steal::Retry => continue,
            }
        }
    }
}
