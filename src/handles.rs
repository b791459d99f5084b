//! Generation-checked handle tables.
//!
//! C hosts hold opaque pointers. Instead of handing out raw `Box` addresses (where a double free or a
//! stale handle is undefined behaviour), every handle is an address inside a reserved, never-accessible
//! (`PROT_NONE`) region of address space: `base + (generation << INDEX_BITS | index)`. Looking a handle
//! up checks the range, the slot and the generation, so freed, released or made-up handles are detected.
//! Because the addresses belong to a mapping of ours, they can never alias a garbage-collected heap
//! (Go's GC inspects pointer-typed words that point into its arenas).
//!
//! The slots are one flat array in a lazily committed mapping (pages materialise on first touch), so a
//! lookup is a single dependent load. Each slot also carries an `aux` word its owner may use for a hot
//! flag (async handles keep their pending flag there: one cache line per send).
//!
//! Lookups are lock-free (atomics only), hence usable from signal handlers (`reactor_async_send`).
//! Inserts and removals take a mutex.

use crate::status::{Error, Result};
use std::collections::VecDeque;
use std::os::raw::c_void;
use std::ptr::{self, NonNull};
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

const INDEX_BITS: u32 = 22;
const GENERATION_BITS: u32 = 10;
const REGION_BYTES: usize = 1 << (INDEX_BITS + GENERATION_BITS);
const SLOTS: usize = 1 << INDEX_BITS;
const INDEX_MASK: usize = SLOTS - 1;
const GENERATION_MASK: u32 = (1 << GENERATION_BITS) - 1;
/// A freed slot is reused only once this many others are free too, so one slot is recycled at most once
/// per RECYCLE_AFTER releases and a stale handle keeps failing the generation check for at least
/// RECYCLE_AFTER << GENERATION_BITS (~4M) further releases, even when a host churns a single handle.
const RECYCLE_AFTER: usize = 4096;

/// One handle slot (16 bytes). All-zero bytes are a valid empty slot, as a fresh mapping provides.
pub struct Slot<T> {
    generation: AtomicU32,
    /// Free for the table's owner (cleared when the slot is filled).
    pub aux: AtomicU32,
    object: AtomicPtr<T>,
}

#[derive(Default)]
struct FreeSlots {
    /// FIFO, so a freed slot is reused as late as possible (stale handles stay detectable longer).
    recycled: VecDeque<u32>,
    next_fresh: u32,
}

pub struct HandleTable<T> {
    /// Start of the reserved handle region; 0 until the first insert (under the `free` lock).
    base: AtomicUsize,
    /// The slot array (SLOTS entries), mapped with the region.
    slots: AtomicPtr<Slot<T>>,
    free: Mutex<FreeSlots>,
}

impl<T> HandleTable<T> {
    pub const fn new() -> Self {
        HandleTable {
            base: AtomicUsize::new(0),
            slots: AtomicPtr::new(ptr::null_mut()),
            free: Mutex::new(FreeSlots {
                recycled: VecDeque::new(),
                next_fresh: 0,
            }),
        }
    }

    /// Maps the handle region and the slot array on first use. Called with `free` locked.
    fn reserve(&self) -> Result<usize> {
        let base = self.base.load(Ordering::Acquire);
        if base != 0 {
            return Ok(base);
        }
        let slots = map(
            SLOTS * std::mem::size_of::<Slot<T>>(),
            libc::PROT_READ | libc::PROT_WRITE,
        )?;
        let base = map(REGION_BYTES, libc::PROT_NONE)?;
        self.slots.store(slots.cast(), Ordering::Release);
        self.base.store(base as usize, Ordering::Release);
        Ok(base as usize)
    }

    fn slot(&self, index: usize) -> &Slot<T> {
        // SAFETY: only called once `base` is set, which happens after `slots` is mapped with SLOTS
        // zero-initialised (valid, empty) entries; index <= INDEX_MASK; the mapping is never unmapped.
        unsafe { &*self.slots.load(Ordering::Acquire).add(index) }
    }

    /// Stores `object` and returns its handle.
    pub fn insert(&self, object: Box<T>) -> Result<*mut c_void> {
        let mut free = self.free.lock().map_err(|_| Error::Internal)?;
        let base = self.reserve()?;
        let fresh_left = (free.next_fresh as usize) < SLOTS;
        let index = if free.recycled.len() > RECYCLE_AFTER || !fresh_left {
            free.recycled.pop_front().ok_or(Error::NoMem)? as usize
        } else {
            free.next_fresh += 1;
            free.next_fresh as usize - 1
        };
        let slot = self.slot(index);
        let generation = slot.generation.load(Ordering::Relaxed);
        slot.aux.store(0, Ordering::Relaxed);
        slot.object.store(Box::into_raw(object), Ordering::Release);
        Ok((base + ((generation as usize) << INDEX_BITS | index)) as *mut c_void)
    }

    /// The live slot behind `handle`. Lock-free.
    #[inline]
    pub fn live_slot(&self, handle: *const c_void) -> Option<&Slot<T>> {
        let base = self.base.load(Ordering::Acquire);
        let offset = (handle as usize).wrapping_sub(base);
        if base == 0 || offset >= REGION_BYTES {
            return None;
        }
        let slot = self.slot(offset & INDEX_MASK);
        let generation = (offset >> INDEX_BITS) as u32;
        (slot.generation.load(Ordering::Acquire) == generation
            && !slot.object.load(Ordering::Acquire).is_null())
        .then_some(slot)
    }

    /// The object behind `handle`, if the handle is live. Lock-free.
    ///
    /// The pointer stays valid until the handle is removed; callers must not race a removal
    /// (API.md: a handle may not be used concurrently with its own free/release).
    #[inline]
    pub fn get(&self, handle: *const c_void) -> Option<NonNull<T>> {
        NonNull::new(self.live_slot(handle)?.object.load(Ordering::Acquire))
    }

    /// Takes the object out; the handle (and every copy of it) becomes invalid.
    pub fn remove(&self, handle: *const c_void) -> Option<Box<T>> {
        let mut free = self.free.lock().ok()?;
        let slot = self.live_slot(handle)?;
        let object = slot.object.swap(ptr::null_mut(), Ordering::AcqRel);
        if object.is_null() {
            return None;
        }
        let generation = slot.generation.load(Ordering::Relaxed);
        slot.generation
            .store((generation + 1) & GENERATION_MASK, Ordering::Release);
        let index = (handle as usize - self.base.load(Ordering::Relaxed)) & INDEX_MASK;
        free.recycled.push_back(index as u32);
        // SAFETY: the pointer came from Box::into_raw in `insert` and was just unlinked under the lock.
        Some(unsafe { Box::from_raw(object) })
    }
}

/// An anonymous private mapping whose pages are committed on first touch.
fn map(bytes: usize, protection: libc::c_int) -> Result<*mut c_void> {
    #[cfg(target_os = "linux")]
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    #[cfg(not(target_os = "linux"))]
    let flags = libc::MAP_PRIVATE | libc::MAP_ANON;
    // SAFETY: a fresh anonymous mapping; the result is checked.
    let address = unsafe { libc::mmap(ptr::null_mut(), bytes, protection, flags, -1, 0) };
    if address == libc::MAP_FAILED {
        Err(Error::NoMem)
    } else {
        Ok(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_and_foreign_handles_are_rejected() {
        static TABLE: HandleTable<u32> = HandleTable::new();
        let a = TABLE.insert(Box::new(7)).unwrap();
        assert_eq!(unsafe { *TABLE.get(a).unwrap().as_ref() }, 7);
        assert_eq!(*TABLE.remove(a).unwrap(), 7);
        assert!(TABLE.get(a).is_none());
        assert!(TABLE.remove(a).is_none(), "double removal is detected");
        let b = TABLE.insert(Box::new(8)).unwrap();
        assert_ne!(a, b);
        assert!(TABLE.get(ptr::null()).is_none());
        assert!(TABLE.get(8 as *const c_void).is_none());
        let local = 5u64;
        assert!(TABLE.get(&local as *const u64 as *const c_void).is_none());
        assert!(TABLE.remove(b).is_some());
    }

    #[test]
    fn churning_one_handle_never_revalidates_a_stale_one() {
        static TABLE: HandleTable<u32> = HandleTable::new();
        let first = TABLE.insert(Box::new(0)).unwrap();
        TABLE.remove(first);
        for i in 0..20_000 {
            let h = TABLE.insert(Box::new(i)).unwrap();
            assert_ne!(h, first);
            assert!(TABLE.get(first).is_none());
            TABLE.remove(h);
        }
    }

    #[test]
    fn reused_slot_gets_new_generation_and_clean_aux() {
        static TABLE: HandleTable<u32> = HandleTable::new();
        let first = TABLE.insert(Box::new(1)).unwrap();
        TABLE
            .live_slot(first)
            .unwrap()
            .aux
            .store(1, Ordering::Relaxed);
        TABLE.remove(first);
        let mut seen = Vec::new();
        for i in 0..3 {
            let h = TABLE.insert(Box::new(i)).unwrap();
            assert_ne!(h, first);
            assert_eq!(TABLE.live_slot(h).unwrap().aux.load(Ordering::Relaxed), 0);
            seen.push(h);
        }
        for h in seen {
            TABLE.remove(h);
        }
    }
}
