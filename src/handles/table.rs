//! One table per handle kind: a lazily mapped slot array followed by the kind's handle range.

use super::Kind;
use super::state::{self, CLOSING, FLAG, LIVE, PIN};
use crate::status::{Error, Result};
use crate::sync::backoff;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::ops::Deref;
use std::os::raw::c_void;
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

pub const SLOT_SIZE: usize = std::mem::size_of::<Slot<()>>();

/// One slot (16 bytes). All-zero bytes are a valid empty slot, as a fresh mapping provides.
pub(super) struct Slot<T> {
    pub state: AtomicU64,
    object: AtomicPtr<T>,
}

impl<T> Slot<T> {
    /// The object of a slot the caller has pinned (or otherwise keeps from being removed).
    ///
    /// # Safety
    /// The slot must be live and the caller must hold a pin or an ownership claim on it.
    pub unsafe fn object(&self) -> &T {
        // SAFETY: live slots hold a pointer from Box::into_raw that stays valid until removal, which
        // waits for (or refuses on) the caller's pin; the caller vouches for that pin.
        unsafe { &*self.object.load(Ordering::Relaxed) }
    }
}

#[derive(Default)]
struct FreeSlots {
    /// FIFO quarantine of freed slots, so a slot is reused as late as possible.
    recycled: VecDeque<u32>,
    next_fresh: usize,
}

/// `INDEX_BITS` and `GENERATION_BITS` are the kind's layout (see `Kind`), as constants so that a
/// lookup's arithmetic folds (an async send is a handful of instructions).
pub struct HandleTable<T, const INDEX_BITS: u32, const GENERATION_BITS: u32> {
    /// Start of the mapping (slot array, then handle range); 0 until the first insert.
    base: AtomicUsize,
    free: Mutex<FreeSlots>,
    /// The table owns boxed `T`s, which it may drop on any thread and share between threads.
    _owns: PhantomData<Box<T>>,
}

// SAFETY: objects are shared between threads (`&T` through pins) and dropped on whichever thread
// removes them, which `T: Send + Sync` permits; slots are atomics.
unsafe impl<T: Send + Sync, const I: u32, const G: u32> Sync for HandleTable<T, I, G> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync, const I: u32, const G: u32> Send for HandleTable<T, I, G> {}

/// A pinned object: it stays in its table (and alive) until the pin is dropped.
pub struct Pinned<'a, T> {
    slot: &'a Slot<T>,
}

impl<T> Deref for Pinned<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we hold a pin on a slot that was live when pinned; removal waits for pins.
        unsafe { self.slot.object() }
    }
}

impl<T> Pinned<'_, T> {
    /// The slot's state word, which stays valid for the life of the process (slots are never
    /// unmapped); for a reactor, the word its waker handshake runs on.
    pub fn state_word(&self) -> &'static AtomicU64 {
        // SAFETY: slot memory is mapped once and never unmapped (see `HandleTable::map`).
        unsafe { &*(&self.slot.state as *const AtomicU64) }
    }
}

impl<T> Drop for Pinned<'_, T> {
    fn drop(&mut self) {
        self.slot.state.fetch_sub(PIN, Ordering::Release);
    }
}

/// An object kept alive by a lock bit of its state word (a kind whose removal waits for that bit,
/// see `remove_idle`) instead of a pin. Dropping it does not unlock: the holder clears the bit in
/// whatever read-modify-write also does its other business with the word (for reactors,
/// `call_queue::unlock_published`).
pub struct LockedBy<'a, T> {
    slot: &'a Slot<T>,
}

impl<T> Deref for LockedBy<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the slot was live when the bit was set, and removal waits for the bit to clear.
        unsafe { self.slot.object() }
    }
}

impl<T: Send + Sync, const INDEX_BITS: u32, const GENERATION_BITS: u32>
    HandleTable<T, INDEX_BITS, GENERATION_BITS>
{
    const GENERATION_MASK: u32 = (1 << GENERATION_BITS) - 1;
    const KIND: Kind = Kind {
        index_bits: INDEX_BITS,
        generation_bits: GENERATION_BITS,
    };

    pub const fn new() -> Self {
        HandleTable {
            base: AtomicUsize::new(0),
            free: Mutex::new(FreeSlots {
                recycled: VecDeque::new(),
                next_fresh: 0,
            }),
            _owns: PhantomData,
        }
    }

    /// Maps the slot array and the handle range on first use. Called with `free` locked.
    fn map(&self) -> Result<usize> {
        let base = self.base.load(Ordering::Acquire);
        if base != 0 {
            return Ok(base);
        }
        let base = reserve(Self::KIND.slot_bytes() + Self::KIND.handle_bytes())?;
        // SAFETY: making the start of our own fresh mapping accessible.
        let rc = unsafe {
            libc::mprotect(
                base.cast(),
                Self::KIND.slot_bytes(),
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        if rc != 0 {
            return Err(Error::NoMem);
        }
        self.base.store(base as usize, Ordering::Release);
        Ok(base as usize)
    }

    fn slot_at(&self, base: usize, index: usize) -> &Slot<T> {
        // SAFETY: `base` is the mapped, readable slot array of `slots()` zero-initialised (valid,
        // empty) entries, never unmapped; callers pass index < slots().
        unsafe { &*(base as *const Slot<T>).add(index) }
    }

    /// The slot a handle designates and the generation bits it carries, if it is in our range.
    #[inline(always)]
    pub(super) fn locate(&self, handle: *const c_void) -> Option<(&Slot<T>, u32)> {
        let base = self.base.load(Ordering::Acquire);
        if base == 0 {
            return None;
        }
        let offset = (handle as usize).wrapping_sub(base + Self::KIND.slot_bytes());
        if offset >= Self::KIND.handle_bytes() {
            return None;
        }
        let index = offset & (Self::KIND.slots() - 1);
        let generation = (offset >> INDEX_BITS) as u32;
        Some((self.slot_at(base, index), generation))
    }

    pub(super) fn is_open(&self, state: u64, generation: u32) -> bool {
        state::is_open(state, generation, Self::GENERATION_MASK)
    }

    /// Stores `object` (with `initial` in the state word's low bits, e.g. an owner) and returns its
    /// handle. A full table gives `REACTOR_E_NOMEM`.
    pub fn insert_with(&self, object: Box<T>, initial: u64) -> Result<*mut c_void> {
        let mut free = self.free.lock().map_err(|_| Error::Internal)?;
        let base = self.map()?;
        let index = if free.recycled.len() > Self::KIND.quarantine()
            || free.next_fresh >= Self::KIND.slots()
        {
            free.recycled.pop_front().ok_or(Error::NoMem)? as usize
        } else {
            free.next_fresh += 1;
            free.next_fresh - 1
        };
        let slot = self.slot_at(base, index);
        let generation = state::generation(slot.state.load(Ordering::Relaxed));
        slot.object.store(Box::into_raw(object), Ordering::Relaxed);
        // Release: a pin that sees LIVE also sees the object pointer.
        slot.state.store(
            state::with_generation(generation) | LIVE | initial,
            Ordering::Release,
        );
        let handle_generation = (generation & Self::GENERATION_MASK) as usize;
        let offset = handle_generation << INDEX_BITS | index;
        Ok((base + Self::KIND.slot_bytes() + offset) as *mut c_void)
    }

    pub fn insert(&self, object: Box<T>) -> Result<*mut c_void> {
        self.insert_with(object, 0)
    }

    /// Stores `object` with a 32-bit `tag` in the state word's owner bits (for kinds without an
    /// owner thread): one small fact per handle, such as its owning reactor, with no allocation.
    pub fn insert_tagged(&self, object: Box<T>, tag: u32) -> Result<*mut c_void> {
        self.insert_with(object, u64::from(tag))
    }

    /// The tag of a live handle (`None`: stale, removed, foreign). One load, no pin: the handle may
    /// die right after, which the caller's own lookup of the object then finds.
    #[inline]
    pub fn tag(&self, handle: *const c_void) -> Option<u32> {
        let (slot, generation) = self.locate(handle)?;
        let state = slot.state.load(Ordering::Acquire);
        self.is_open(state, generation).then(|| state::owner(state))
    }

    /// A handle's place in the kind's handle range (generation and index), or `None` for a handle
    /// outside it; `handle_at` turns it back. Lets a handle be kept in `INDEX_BITS +
    /// GENERATION_BITS` bits (a tag).
    pub fn offset_of(&self, handle: *const c_void) -> Option<u32> {
        let base = self.base.load(Ordering::Acquire);
        if base == 0 {
            return None;
        }
        let offset = (handle as usize).wrapping_sub(base + Self::KIND.slot_bytes());
        (offset < Self::KIND.handle_bytes())
            .then(|| u32::try_from(offset).ok())
            .flatten()
    }

    /// The handle at `offset` of the kind's handle range (see `offset_of`); null before the table
    /// has its mapping.
    pub fn handle_at(&self, offset: u32) -> *mut c_void {
        let base = self.base.load(Ordering::Acquire);
        if base == 0 {
            return ptr::null_mut();
        }
        (base + Self::KIND.slot_bytes() + offset as usize) as *mut c_void
    }

    /// The slot index of a handle in the kind's range (the same for every generation of a slot):
    /// dense, so per-owner tables can be arrays indexed by it.
    pub fn index_of(&self, handle: *const c_void) -> Option<usize> {
        self.offset_of(handle)
            .map(|offset| offset as usize & (Self::KIND.slots() - 1))
    }

    /// Pins the object behind `handle` if the handle is live and `check` accepts the state word.
    /// A stale, removed or foreign handle gives `Error::Invalid`.
    #[inline]
    pub fn pin_with(
        &self,
        handle: *const c_void,
        check: impl Fn(u64) -> Result<()>,
    ) -> Result<Pinned<'_, T>> {
        let slot = self.acquire(handle, check, state::pins_full, |state| state + PIN)?;
        Ok(Pinned { slot })
    }

    /// Sets `bit`, a kind-specific lock bit, on a live handle whose state word `check` accepts,
    /// waiting while another thread holds it. The object then stays alive until the holder clears
    /// the bit: removal of the kind waits for it (`remove_idle`'s `wait_for`).
    /// A stale, removed or foreign handle gives `Error::Invalid`.
    #[inline]
    pub fn lock_with(
        &self,
        handle: *const c_void,
        bit: u64,
        check: impl Fn(u64) -> Result<()>,
    ) -> Result<LockedBy<'_, T>> {
        let slot = self.acquire(handle, check, |state| state & bit != 0, |state| state | bit)?;
        Ok(LockedBy { slot })
    }

    /// The compare-and-swap loop of `pin_with` and `lock_with`: while the handle is open and `check`
    /// accepts the word, waits out `busy` states and then installs `take(state)`.
    #[inline(always)]
    fn acquire(
        &self,
        handle: *const c_void,
        check: impl Fn(u64) -> Result<()>,
        busy: impl Fn(u64) -> bool,
        take: impl Fn(u64) -> u64,
    ) -> Result<&Slot<T>> {
        let (slot, generation) = self.locate(handle).ok_or(Error::Invalid)?;
        let mut state = slot.state.load(Ordering::Relaxed);
        let mut round = 0;
        loop {
            if !self.is_open(state, generation) {
                return Err(Error::Invalid);
            }
            check(state)?;
            if busy(state) {
                backoff(&mut round);
                state = slot.state.load(Ordering::Relaxed);
                continue;
            }
            match slot.state.compare_exchange_weak(
                state,
                take(state),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(slot),
                Err(current) => state = current,
            }
        }
    }

    /// Pins the object behind `handle` if the handle is live.
    #[inline]
    pub fn pin(&self, handle: *const c_void) -> Option<Pinned<'_, T>> {
        self.pin_with(handle, |_| Ok(())).ok()
    }

    /// Runs `body` on the object behind a live handle (pinned meanwhile).
    pub fn with<R>(&self, handle: *const c_void, body: impl FnOnce(&T) -> R) -> Option<R> {
        self.pin(handle).map(|object| body(&object))
    }

    /// Sets the kind's flag on a live handle. `Ok(None)` if it was already set (nothing else done);
    /// `Ok(Some(pin))` if this call set it, with the object pinned so the caller can act on it.
    /// Lock-free and async-signal-safe.
    #[inline]
    pub fn raise_flag(&self, handle: *const c_void) -> Result<Option<Pinned<'_, T>>> {
        let (slot, generation) = self.locate(handle).ok_or(Error::Invalid)?;
        let mut state = slot.state.load(Ordering::Acquire);
        let mut round = 0;
        loop {
            if !self.is_open(state, generation) {
                return Err(Error::Invalid);
            }
            if state & FLAG != 0 {
                return Ok(None);
            }
            if state::pins_full(state) {
                backoff(&mut round);
                state = slot.state.load(Ordering::Acquire);
                continue;
            }
            match slot.state.compare_exchange_weak(
                state,
                (state | FLAG) + PIN,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(Some(Pinned { slot })),
                Err(current) => state = current,
            }
        }
    }

    /// Clears the flag of a handle the caller keeps live; true if it was set.
    pub fn take_flag(&self, handle: *const c_void) -> bool {
        match self.locate(handle) {
            Some((slot, generation)) => {
                let previous = slot.state.fetch_and(!FLAG, Ordering::AcqRel);
                debug_assert!(self.is_open(previous, generation));
                previous & FLAG != 0
            }
            None => false,
        }
    }

    /// True if the flag of a live handle is set.
    #[inline(always)]
    pub fn flag_is_set(&self, handle: *const c_void) -> bool {
        self.locate(handle).is_some_and(|(slot, generation)| {
            let state = slot.state.load(Ordering::Acquire);
            self.is_open(state, generation) && state & FLAG != 0
        })
    }

    /// Takes the object out, waiting for pins in progress (they are short). Every copy of the
    /// handle becomes invalid. `None` for a stale, foreign or already-removed handle.
    pub fn remove(&self, handle: *const c_void) -> Option<Box<T>> {
        let (slot, generation) = self.locate(handle)?;
        let mut state = slot.state.load(Ordering::Relaxed);
        loop {
            if !self.is_open(state, generation) {
                return None;
            }
            match slot.state.compare_exchange_weak(
                state,
                state | CLOSING,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(current) => state = current,
            }
        }
        let mut round = 0;
        while state::pins(slot.state.load(Ordering::Acquire)) != 0 {
            backoff(&mut round);
        }
        Some(self.vacate(slot, handle))
    }

    /// Takes the object out only if nobody holds a pin and `check` accepts the state word; else the
    /// error from `check`, or `Error::Busy` while pins are held. Once the slot is closing (no new pins
    /// or lock bits), waits until the lock bits in `wait_for` are clear (their holders are short) and
    /// runs `before_vacate` on the object while the slot is still its own (its state word not yet
    /// reused).
    pub(super) fn remove_idle(
        &self,
        handle: *const c_void,
        check: impl Fn(u64) -> Result<()>,
        wait_for: u64,
        before_vacate: impl FnOnce(&T),
    ) -> Result<Box<T>> {
        let (slot, generation) = self.locate(handle).ok_or(Error::Invalid)?;
        let mut state = slot.state.load(Ordering::Relaxed);
        loop {
            if !self.is_open(state, generation) {
                return Err(Error::Invalid);
            }
            check(state)?;
            if state::pins(state) != 0 {
                return Err(Error::Busy);
            }
            match slot.state.compare_exchange_weak(
                state,
                state | CLOSING,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(current) => state = current,
            }
        }
        let mut round = 0;
        while slot.state.load(Ordering::Acquire) & wait_for != 0 {
            backoff(&mut round);
        }
        // SAFETY: CLOSING with no pin and no lock bit held: only this thread reaches the object.
        before_vacate(unsafe { slot.object() });
        Ok(self.vacate(slot, handle))
    }

    /// Empties a slot the caller marked CLOSING with no pin left; the slot goes to the quarantine.
    fn vacate(&self, slot: &Slot<T>, handle: *const c_void) -> Box<T> {
        let object = slot.object.swap(ptr::null_mut(), Ordering::Relaxed);
        let generation = state::generation(slot.state.load(Ordering::Relaxed));
        slot.state
            .store(state::with_generation(generation + 1), Ordering::Release);
        let base = self.base.load(Ordering::Relaxed);
        let offset = handle as usize - base - Self::KIND.slot_bytes();
        let index = offset & (Self::KIND.slots() - 1);
        if let Ok(mut free) = self.free.lock() {
            free.recycled.push_back(index as u32);
        }
        // SAFETY: the pointer came from Box::into_raw in `insert_with`; CLOSING with no pins means
        // nobody else can reach it any more.
        unsafe { Box::from_raw(object) }
    }
}

/// Reserves `bytes` of address space (no access, no commitment).
fn reserve(bytes: usize) -> Result<*mut c_void> {
    #[cfg(target_os = "linux")]
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    #[cfg(not(target_os = "linux"))]
    let flags = libc::MAP_PRIVATE | libc::MAP_ANON;
    // SAFETY: a fresh anonymous mapping; the result is checked.
    let address = unsafe { libc::mmap(ptr::null_mut(), bytes, libc::PROT_NONE, flags, -1, 0) };
    if address == libc::MAP_FAILED {
        Err(Error::NoMem)
    } else {
        Ok(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    const SMALL: Kind = Kind {
        index_bits: 10,
        generation_bits: 8,
    };
    type Small<T> = HandleTable<T, { SMALL.index_bits }, { SMALL.generation_bits }>;

    #[test]
    fn stale_and_foreign_handles_are_rejected() {
        static TABLE: Small<u32> = HandleTable::new();
        let a = TABLE.insert(Box::new(7)).unwrap();
        assert_eq!(*TABLE.pin(a).unwrap(), 7);
        assert_eq!(*TABLE.remove(a).unwrap(), 7);
        assert!(TABLE.pin(a).is_none());
        assert!(TABLE.remove(a).is_none(), "double removal is detected");
        let b = TABLE.insert(Box::new(8)).unwrap();
        assert_ne!(a, b);
        assert!(TABLE.pin(ptr::null()).is_none());
        assert!(TABLE.pin(8 as *const c_void).is_none());
        let local = 5u64;
        assert!(TABLE.pin(&local as *const u64 as *const c_void).is_none());
        // Addresses inside the (readable) slot array are not handles either.
        let slots = TABLE.base.load(Ordering::Relaxed) as *const c_void;
        assert!(TABLE.pin(slots).is_none());
        assert!(TABLE.remove(b).is_some());
    }

    #[test]
    fn tags_are_read_without_a_pin_and_die_with_the_handle() {
        static TABLE: Small<()> = HandleTable::new();
        static OTHER: Small<()> = HandleTable::new();
        let a = TABLE.insert_tagged(Box::new(()), 0xdead_beef).unwrap();
        let b = TABLE.insert_tagged(Box::new(()), 7).unwrap();
        assert_eq!(TABLE.tag(a), Some(0xdead_beef));
        assert_eq!(TABLE.tag(b), Some(7));
        assert!(
            TABLE.pin(a).is_some(),
            "a tagged handle is an ordinary live handle"
        );
        assert_eq!(TABLE.tag(ptr::null()), None);
        let offset = TABLE.offset_of(b).unwrap();
        assert_eq!(TABLE.handle_at(offset), b);
        assert_eq!(
            TABLE.index_of(b),
            Some(offset as usize & (SMALL.slots() - 1))
        );
        assert_ne!(TABLE.index_of(a), TABLE.index_of(b));
        assert_eq!(
            OTHER.offset_of(b),
            None,
            "another kind's handle is not in range"
        );
        assert!(OTHER.handle_at(0).is_null(), "no mapping yet");
        TABLE.remove(a);
        assert_eq!(TABLE.tag(a), None, "a removed handle has no tag");
        let c = TABLE.insert(Box::new(())).unwrap();
        assert_eq!(TABLE.tag(c), Some(0), "an untagged handle");
        assert_eq!(TABLE.tag(a), None);
        TABLE.remove(b);
        TABLE.remove(c);
    }

    #[test]
    fn churning_one_handle_never_revalidates_a_stale_one() {
        static TABLE: Small<u32> = HandleTable::new();
        let first = TABLE.insert(Box::new(0)).unwrap();
        TABLE.remove(first);
        let detected_for = SMALL.quarantine() << SMALL.generation_bits;
        for i in 0..detected_for as u32 {
            let h = TABLE.insert(Box::new(i)).unwrap();
            assert_ne!(h, first);
            assert!(TABLE.pin(first).is_none());
            TABLE.remove(h);
        }
    }

    #[test]
    fn flag_is_raised_once_and_cleared_on_reuse() {
        static TABLE: Small<u32> = HandleTable::new();
        let h = TABLE.insert(Box::new(1)).unwrap();
        assert!(TABLE.raise_flag(h).unwrap().is_some(), "first raise pins");
        assert!(
            TABLE.raise_flag(h).unwrap().is_none(),
            "second raise coalesces"
        );
        assert!(TABLE.flag_is_set(h));
        assert!(TABLE.take_flag(h));
        assert!(!TABLE.take_flag(h));
        TABLE.raise_flag(h).unwrap();
        TABLE.remove(h);
        assert!(TABLE.raise_flag(h).is_err());
        let again = TABLE.insert(Box::new(2)).unwrap();
        assert!(!TABLE.flag_is_set(again));
        TABLE.remove(again);
    }

    #[test]
    fn removal_waits_for_pins_and_refuses_new_ones() {
        static TABLE: Small<Arc<AtomicBool>> = HandleTable::new();
        let dropped = Arc::new(AtomicBool::new(false));
        let h = TABLE.insert(Box::new(dropped.clone())).unwrap() as usize;
        let pin = TABLE.pin(h as *const c_void).unwrap();
        let remover = std::thread::spawn(move || TABLE.remove(h as *const c_void).is_some());
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!remover.is_finished(), "removal waits for the pin");
        assert!(
            TABLE.pin(h as *const c_void).is_none(),
            "closing: no new pins"
        );
        assert!(!pin.load(Ordering::Relaxed));
        drop(pin);
        assert!(remover.join().unwrap());
        assert!(
            TABLE
                .remove_idle(h as *const c_void, |_| Ok(()), 0, |_| {})
                .is_err()
        );
    }

    #[test]
    fn remove_idle_refuses_while_pinned() {
        static TABLE: Small<u32> = HandleTable::new();
        let h = TABLE.insert(Box::new(3)).unwrap();
        let pin = TABLE.pin(h).unwrap();
        assert_eq!(
            TABLE.remove_idle(h, |_| Ok(()), 0, |_| {}).err(),
            Some(Error::Busy)
        );
        drop(pin);
        assert_eq!(*TABLE.remove_idle(h, |_| Ok(()), 0, |_| {}).unwrap(), 3);
    }

    #[test]
    fn concurrent_pins_and_removals_never_see_freed_objects() {
        static TABLE: Small<Vec<u64>> = HandleTable::new();
        let rounds = if cfg!(miri) { 10 } else { 2000 };
        for round in 0..rounds {
            let h = TABLE.insert(Box::new(vec![round; 4])).unwrap() as usize;
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    std::thread::spawn(move || {
                        for _ in 0..50 {
                            if let Some(v) = TABLE.pin(h as *const c_void) {
                                assert!(v.iter().all(|&x| x == round));
                            }
                        }
                    })
                })
                .collect();
            assert_eq!(TABLE.remove(h as *const c_void).unwrap()[0], round);
            for r in readers {
                r.join().unwrap();
            }
        }
    }
}
