//! Generation-checked handle tables.
//!
//! C hosts hold opaque pointers. Instead of handing out raw `Box` addresses (where a double free or a
//! stale handle is undefined behaviour), every handle is an address inside a reserved, never-accessible
//! (`PROT_NONE`) region of address space: `base + (generation << INDEX_BITS | index)`. Looking a handle
//! up checks the range, the slot and the generation, so freed, released or made-up handles are detected.
//! Because the addresses belong to a mapping of ours, they can never alias a garbage-collected heap
//! (Go's GC inspects pointer-typed words that point into its arenas).
//!
//! Lookups are lock-free (atomics only), hence usable from signal handlers (`reactor_async_send`).
//! Inserts and removals take a mutex.

use crate::status::{Error, Result};
use once_cell::sync::OnceCell;
use std::collections::VecDeque;
use std::os::raw::c_void;
use std::ptr::{self, NonNull};
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

const INDEX_BITS: u32 = 22;
const GENERATION_BITS: u32 = 10;
const REGION_BYTES: usize = 1 << (INDEX_BITS + GENERATION_BITS);
const CHUNK_LEN: usize = 1024;
const CHUNKS: usize = (1 << INDEX_BITS) / CHUNK_LEN;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
const GENERATION_MASK: u32 = (1 << GENERATION_BITS) - 1;

struct Slot<T> {
    generation: AtomicU32,
    object: AtomicPtr<T>,
}

#[derive(Default)]
struct FreeSlots {
    /// FIFO, so a freed slot is reused as late as possible (stale handles stay detectable longer).
    recycled: VecDeque<u32>,
    next_fresh: u32,
}

pub struct HandleTable<T> {
    base: OnceCell<usize>,
    chunks: [AtomicPtr<Slot<T>>; CHUNKS],
    free: Mutex<FreeSlots>,
}

impl<T> HandleTable<T> {
    pub const fn new() -> Self {
        HandleTable {
            base: OnceCell::new(),
            chunks: [const { AtomicPtr::new(ptr::null_mut()) }; CHUNKS],
            free: Mutex::new(FreeSlots {
                recycled: VecDeque::new(),
                next_fresh: 0,
            }),
        }
    }

    fn base(&self) -> Result<usize> {
        self.base.get_or_try_init(reserve_region).copied()
    }

    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        let chunk = self.chunks.get(index / CHUNK_LEN)?.load(Ordering::Acquire);
        if chunk.is_null() {
            return None;
        }
        // SAFETY: chunks are allocated once with CHUNK_LEN slots and never freed.
        Some(unsafe { &*chunk.add(index % CHUNK_LEN) })
    }

    fn ensure_chunk(&self, index: usize) -> Result<&Slot<T>> {
        let cell = &self.chunks[index / CHUNK_LEN];
        if cell.load(Ordering::Acquire).is_null() {
            let chunk: Box<[Slot<T>]> = (0..CHUNK_LEN)
                .map(|_| Slot {
                    generation: AtomicU32::new(0),
                    object: AtomicPtr::new(ptr::null_mut()),
                })
                .collect();
            // Only called with `free` locked, so no other thread races to install this chunk.
            cell.store(Box::into_raw(chunk) as *mut Slot<T>, Ordering::Release);
        }
        self.slot(index).ok_or(Error::Internal)
    }

    /// Stores `object` and returns its handle.
    pub fn insert(&self, object: Box<T>) -> Result<*mut c_void> {
        let base = self.base()?;
        let mut free = self.free.lock().map_err(|_| Error::Internal)?;
        let index = match free.recycled.pop_front() {
            Some(index) => index as usize,
            None if (free.next_fresh as usize) < CHUNKS * CHUNK_LEN => {
                free.next_fresh += 1;
                free.next_fresh as usize - 1
            }
            None => return Err(Error::NoMem),
        };
        let slot = match self.ensure_chunk(index) {
            Ok(slot) => slot,
            Err(e) => {
                free.recycled.push_front(index as u32);
                return Err(e);
            }
        };
        let generation = slot.generation.load(Ordering::Relaxed);
        slot.object.store(Box::into_raw(object), Ordering::Release);
        Ok((base + ((generation as usize) << INDEX_BITS | index)) as *mut c_void)
    }

    fn decode(&self, handle: *const c_void) -> Option<(usize, u32)> {
        let base = *self.base.get()?;
        let offset = (handle as usize).checked_sub(base)?;
        if offset >= REGION_BYTES {
            return None;
        }
        Some((offset & INDEX_MASK, (offset >> INDEX_BITS) as u32))
    }

    /// The object behind `handle`, if the handle is live. Lock-free.
    ///
    /// The pointer stays valid until the handle is removed; callers must not race a removal
    /// (API.md: a handle may not be used concurrently with its own free/release).
    pub fn get(&self, handle: *const c_void) -> Option<NonNull<T>> {
        let (index, generation) = self.decode(handle)?;
        let slot = self.slot(index)?;
        if slot.generation.load(Ordering::Acquire) != generation {
            return None;
        }
        NonNull::new(slot.object.load(Ordering::Acquire))
    }

    /// Takes the object out; the handle (and every copy of it) becomes invalid.
    pub fn remove(&self, handle: *const c_void) -> Option<Box<T>> {
        let (index, generation) = self.decode(handle)?;
        let mut free = self.free.lock().ok()?;
        let slot = self.slot(index)?;
        if slot.generation.load(Ordering::Acquire) != generation {
            return None;
        }
        let object = slot.object.swap(ptr::null_mut(), Ordering::AcqRel);
        if object.is_null() {
            return None;
        }
        slot.generation
            .store((generation + 1) & GENERATION_MASK, Ordering::Release);
        free.recycled.push_back(index as u32);
        // SAFETY: the pointer came from Box::into_raw in `insert` and was just unlinked under the lock.
        Some(unsafe { Box::from_raw(object) })
    }
}

fn reserve_region() -> Result<usize> {
    #[cfg(target_os = "linux")]
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    #[cfg(not(target_os = "linux"))]
    let flags = libc::MAP_PRIVATE | libc::MAP_ANON;
    // SAFETY: an anonymous PROT_NONE reservation; nothing ever reads or writes it.
    let base = unsafe { libc::mmap(ptr::null_mut(), REGION_BYTES, libc::PROT_NONE, flags, -1, 0) };
    if base == libc::MAP_FAILED {
        return Err(Error::NoMem);
    }
    Ok(base as usize)
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
    fn reused_slot_gets_new_generation() {
        static TABLE: HandleTable<u32> = HandleTable::new();
        let first = TABLE.insert(Box::new(1)).unwrap();
        TABLE.remove(first);
        let mut seen = Vec::new();
        for i in 0..3 {
            let h = TABLE.insert(Box::new(i)).unwrap();
            assert_ne!(h, first);
            seen.push(h);
        }
        for h in seen {
            TABLE.remove(h);
        }
    }
}
