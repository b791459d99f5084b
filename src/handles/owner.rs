//! Ownership claims for objects that belong to one thread at a time (reactors).
//!
//! The slot's state word carries the owner's thread id and an OWNER_IN bit next to the pin count:
//! - an owner-thread call *claims* the object: the outermost call on the owner's stack sets OWNER_IN
//!   and takes a pin (one compare-and-swap that also checks the generation and the owner); calls
//!   nested inside it (callbacks re-entering the API) see OWNER_IN with their own id and need no
//!   atomic write at all, because the outer frame cannot end before they do;
//! - adoption (`reactor_run` from another thread) is the same compare-and-swap, allowed only while
//!   no pin at all is held (nobody inside any call), and it writes the new owner;
//! - any-thread calls (`reactor_wake_up`, ...) take a plain pin; `reactor_call_from_thread` takes the
//!   call queue's lock bit instead (`HandleTable::lock_with`), which keeps the object alive as well;
//! - freeing succeeds only with no pin held (`HandleTable::remove_idle`), else `Error::Busy`, and waits
//!   for lock bits.
//!
//! So adoption, owner calls and freeing exclude each other, and the owner-only part of the object is
//! only ever reached by one thread at a time, with the claim's acquire/release ordering every hand-over.

use super::state::{self, FLAG, OWNER_IN, PIN};
use super::table::{HandleTable, Slot};
use crate::status::{Error, Result};
use crate::sync::backoff;
use std::ops::Deref;
use std::os::raw::c_void;
use std::sync::atomic::Ordering;

/// How a claim was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This call set OWNER_IN (and holds a pin) and clears it when it returns.
    Outer,
    /// An outer call on this thread holds the claim.
    Nested,
}

/// Proof that the calling thread owns the object for as long as the guard lives.
pub struct OwnerGuard<'a, T> {
    slot: &'a Slot<T>,
    claim: Claim,
}

impl<T> OwnerGuard<'_, T> {
    pub fn claim(&self) -> Claim {
        self.claim
    }
}

impl<T> Deref for OwnerGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the claim (ours or our thread's outer frame's) holds a pin on a live slot.
        unsafe { self.slot.object() }
    }
}

impl<T> Drop for OwnerGuard<'_, T> {
    fn drop(&mut self) {
        if self.claim == Claim::Outer {
            // OWNER_IN is set (we set it), so subtracting its value clears it without borrowing.
            self.slot.state.fetch_sub(OWNER_IN + PIN, Ordering::Release);
        }
    }
}

impl<T: Send + Sync, const I: u32, const G: u32> HandleTable<T, I, G> {
    /// Stores an object owned by thread `owner`.
    pub fn insert_owned(&self, object: Box<T>, owner: u32) -> Result<*mut c_void> {
        self.insert_with(object, u64::from(owner))
    }

    /// Claims the object for thread `me`. With `adopt`, a thread other than the owner takes
    /// ownership if nobody is inside any call on the object (else `Error::Busy`); without it, other
    /// threads get `Error::WrongThread`. Stale handles give `Error::Invalid`.
    pub fn claim(&self, handle: *const c_void, me: u32, adopt: bool) -> Result<OwnerGuard<'_, T>> {
        let (slot, generation) = self.locate(handle).ok_or(Error::Invalid)?;
        let mut current = slot.state.load(Ordering::Acquire);
        let mut round = 0;
        loop {
            if !self.is_open(current, generation) {
                return Err(Error::Invalid);
            }
            let claimed = if me != 0 && state::owner(current) == me {
                if current & OWNER_IN != 0 {
                    return Ok(OwnerGuard {
                        slot,
                        claim: Claim::Nested,
                    });
                }
                current | OWNER_IN
            } else if adopt && me != 0 {
                if state::pins(current) != 0 {
                    return Err(Error::Busy);
                }
                state::with_owner(current, me) | OWNER_IN
            } else {
                return Err(Error::WrongThread);
            };
            if state::pins_full(current) {
                backoff(&mut round);
                current = slot.state.load(Ordering::Acquire);
                continue;
            }
            match slot.state.compare_exchange_weak(
                current,
                claimed + PIN,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Ok(OwnerGuard {
                        slot,
                        claim: Claim::Outer,
                    });
                }
                Err(now) => current = now,
            }
        }
    }

    /// True if `me` owns the live object behind `handle` (a snapshot; no claim).
    pub fn is_owned_by(&self, handle: *const c_void, me: u32) -> bool {
        self.locate(handle).is_some_and(|(slot, generation)| {
            let current = slot.state.load(Ordering::Acquire);
            self.is_open(current, generation) && me != 0 && state::owner(current) == me
        })
    }

    /// Frees the object if nobody is inside any call on it: `Error::Busy` otherwise.
    #[cfg(test)]
    pub fn remove_unclaimed(&self, handle: *const c_void) -> Result<Box<T>> {
        self.remove_idle(handle, |_| Ok(()), 0, |_| {})
    }

    /// `remove_unclaimed`, waiting for the lock bits in `wait_for` once the slot is closing and
    /// running `before_vacate` while the slot is still the object's (see `HandleTable::remove_idle`).
    pub fn remove_unclaimed_with(
        &self,
        handle: *const c_void,
        wait_for: u64,
        before_vacate: impl FnOnce(&T),
    ) -> Result<Box<T>> {
        self.remove_idle(handle, |_| Ok(()), wait_for, before_vacate)
    }

    /// From inside the owner's claim: raises the kind's flag (for reactors: "closed to callers from
    /// other threads") and waits until every other pin has been dropped and the lock bits in
    /// `wait_for` are clear, so callers that passed the flag check before it was raised have finished.
    pub fn raise_flag_and_drain(&self, guard: &OwnerGuard<'_, T>, wait_for: u64) {
        let slot = guard.slot;
        slot.state.fetch_or(FLAG, Ordering::AcqRel);
        let mut round = 0;
        loop {
            let state = slot.state.load(Ordering::Acquire);
            if state::pins(state) <= 1 && state & wait_for == 0 {
                return;
            }
            backoff(&mut round);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handles::Kind;
    use crate::thread_id;
    use std::sync::Barrier;
    use std::sync::atomic::AtomicUsize;

    const OWNED: Kind = Kind {
        index_bits: 8,
        generation_bits: 12,
    };
    type Owned<T> = HandleTable<T, { OWNED.index_bits }, { OWNED.generation_bits }>;

    #[test]
    fn owner_claims_nest_and_others_are_refused() {
        static TABLE: Owned<u32> = HandleTable::new();
        let me = thread_id::current();
        let h = TABLE.insert_owned(Box::new(1), me).unwrap() as usize;
        let outer = TABLE.claim(h as *const c_void, me, false).unwrap();
        assert_eq!(outer.claim(), Claim::Outer);
        let nested = TABLE.claim(h as *const c_void, me, false).unwrap();
        assert_eq!(nested.claim(), Claim::Nested);
        std::thread::spawn(move || {
            let other = thread_id::current();
            let h = h as *const c_void;
            assert_eq!(TABLE.claim(h, other, false).err(), Some(Error::WrongThread));
            assert_eq!(TABLE.claim(h, other, true).err(), Some(Error::Busy));
            assert_eq!(TABLE.remove_unclaimed(h).err(), Some(Error::Busy));
        })
        .join()
        .unwrap();
        drop(nested);
        drop(outer);
        // Idle: another thread may adopt it, and then the old owner is refused.
        std::thread::spawn(move || {
            let other = thread_id::current();
            let guard = TABLE.claim(h as *const c_void, other, true).unwrap();
            assert_eq!(guard.claim(), Claim::Outer);
        })
        .join()
        .unwrap();
        assert_eq!(
            TABLE.claim(h as *const c_void, me, false).err(),
            Some(Error::WrongThread)
        );
        assert!(TABLE.remove_unclaimed(h as *const c_void).is_ok());
        assert_eq!(
            TABLE.claim(h as *const c_void, me, true).err(),
            Some(Error::Invalid)
        );
    }

    #[test]
    fn racing_adoptions_have_exactly_one_winner() {
        static TABLE: Owned<AtomicUsize> = HandleTable::new();
        const THREADS: usize = 4;
        for _ in 0..500 {
            let h = TABLE
                .insert_owned(Box::new(AtomicUsize::new(0)), 0)
                .unwrap() as usize;
            let barrier = Barrier::new(THREADS);
            let winners = AtomicUsize::new(0);
            std::thread::scope(|scope| {
                for _ in 0..THREADS {
                    scope.spawn(|| {
                        barrier.wait();
                        let me = thread_id::current();
                        if let Ok(guard) = TABLE.claim(h as *const c_void, me, true) {
                            // Non-atomic-looking read-modify-write: only the owner gets here at once.
                            let seen = guard.load(Ordering::Relaxed);
                            guard.store(seen + 1, Ordering::Relaxed);
                            winners.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
            });
            let object = TABLE.remove_unclaimed(h as *const c_void).unwrap();
            let wins = winners.load(Ordering::Relaxed);
            assert!(wins >= 1);
            assert_eq!(object.load(Ordering::Relaxed), wins);
        }
    }

    #[test]
    fn free_races_owner_calls_without_use_after_free() {
        static TABLE: Owned<Vec<u32>> = HandleTable::new();
        for _ in 0..300 {
            let me = thread_id::current();
            let h = TABLE.insert_owned(Box::new(vec![7; 8]), me).unwrap() as usize;
            let freer = std::thread::spawn(move || {
                loop {
                    match TABLE.remove_unclaimed(h as *const c_void) {
                        Ok(object) => return object.len(),
                        Err(Error::Busy) => std::thread::yield_now(),
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
            });
            loop {
                match TABLE.claim(h as *const c_void, me, false) {
                    Ok(guard) => assert!(guard.iter().all(|&x| x == 7)),
                    Err(Error::Invalid) => break,
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            assert_eq!(freer.join().unwrap(), 8);
        }
    }
}
