//! The delayed-call queue: a 4-ary min-heap ordered by (deadline, sequence number).
//!
//! * FIFO for equal deadlines: every schedule or reschedule takes the next sequence number.
//! * O(log n) cancel and reschedule: a call that has a handle carries a shared `TimerRecord` whose
//!   `position` the heap keeps up to date as entries move.
//! * The heap holds 16-byte keys (a node's four children share a cache line); payloads and sequence
//!   numbers sit in a slab (40 bytes with a 24-byte payload), so a pending call costs ~56 bytes.
//! * "Due" means deadline <= now *and* scheduled before the current pass (sequence < cutoff), so a
//!   call scheduled with delay 0 from inside a callback waits for the next pass. This relies on the
//!   clock being monotonic: a call scheduled after the cutoff has a deadline >= the pass's `now`, so it
//!   sorts after every call that is due, and stopping at the first non-due entry misses nothing.

use crate::status::{Error, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

const ARITY: usize = 4;
const NOT_QUEUED: usize = usize::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerState {
    Pending,
    Called,
    Cancelled,
    /// Still pending when its reactor was freed.
    Closed,
}

/// State shared between a queued call and the host's handle to it. Atomics only because the host may
/// drop its handle from any thread; every other access happens on the reactor thread.
#[derive(Debug)]
pub struct TimerRecord {
    position: AtomicUsize,
    state: AtomicU8,
    time_bits: AtomicU64,
}

impl Default for TimerRecord {
    fn default() -> Self {
        TimerRecord::new()
    }
}

impl TimerRecord {
    /// A record for a call about to be scheduled (the handle is made first, so a failure to make it
    /// leaves nothing scheduled).
    pub fn new() -> TimerRecord {
        TimerRecord {
            position: AtomicUsize::new(NOT_QUEUED),
            state: AtomicU8::new(TimerState::Pending as u8),
            time_bits: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub fn state(&self) -> TimerState {
        match self.state.load(Ordering::Relaxed) {
            0 => TimerState::Pending,
            1 => TimerState::Called,
            2 => TimerState::Cancelled,
            _ => TimerState::Closed,
        }
    }

    /// The deadline it is (or was last) scheduled for.
    pub fn time(&self) -> f64 {
        f64::from_bits(self.time_bits.load(Ordering::Relaxed))
    }

    fn set_state(&self, state: TimerState) {
        self.state.store(state as u8, Ordering::Relaxed);
        self.position.store(NOT_QUEUED, Ordering::Relaxed);
    }

    fn check_pending(&self) -> Result<()> {
        match self.state() {
            TimerState::Pending => Ok(()),
            TimerState::Called => Err(Error::AlreadyCalled),
            TimerState::Cancelled => Err(Error::AlreadyCancelled),
            TimerState::Closed => Err(Error::Closed),
        }
    }
}

/// A heap node: 16 bytes, so the four children of a node share one cache line (libev's layout).
/// The payload and the FIFO sequence number live in the slab; the sequence is read only on a tie.
#[derive(Clone, Copy)]
struct HeapKey {
    deadline: f64,
    slot: u32,
    /// The slot has a `TimerRecord` whose position must follow this key around.
    tracked: bool,
}

struct SlabEntry<P> {
    seq: u64,
    record: Option<Arc<TimerRecord>>,
    payload: P,
}

pub struct TimerQueue<P> {
    heap: Vec<HeapKey>,
    slab: Vec<Option<SlabEntry<P>>>,
    free_slots: Vec<u32>,
    next_seq: u64,
}

impl<P> Default for TimerQueue<P> {
    fn default() -> Self {
        TimerQueue {
            heap: Vec::new(),
            slab: Vec::new(),
            free_slots: Vec::new(),
            next_seq: 0,
        }
    }
}

impl<P> TimerQueue<P> {
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The sequence number the next scheduled call will get: the cutoff for "scheduled before now".
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The earliest deadline, if any call is pending.
    pub fn earliest(&self) -> Option<f64> {
        self.heap.first().map(|k| k.deadline)
    }

    /// True if a call scheduled before `cutoff` is due at `now`.
    pub fn has_due(&self, now: f64, cutoff: u64) -> bool {
        self.heap
            .first()
            .is_some_and(|k| k.deadline <= now && self.entry(k.slot).seq < cutoff)
    }

    /// Schedules `payload` at `deadline`, tracked through `record` if given (a fresh, unscheduled one).
    pub fn schedule(&mut self, deadline: f64, payload: P, record: Option<Arc<TimerRecord>>) {
        if let Some(record) = &record {
            record
                .time_bits
                .store(deadline.to_bits(), Ordering::Relaxed);
        }
        let tracked = record.is_some();
        let seq = self.take_seq();
        let entry = Some(SlabEntry {
            seq,
            record,
            payload,
        });
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slab[slot as usize] = entry;
                slot
            }
            None => {
                self.slab.push(entry);
                (self.slab.len() - 1) as u32
            }
        };
        self.heap.push(HeapKey {
            deadline,
            slot,
            tracked,
        });
        let last = self.heap.len() - 1;
        self.sift_up(last);
    }

    /// Removes and returns the earliest call if it is due (see the module comment); marks it called.
    pub fn pop_due(&mut self, now: f64, cutoff: u64) -> Option<P> {
        if !self.has_due(now, cutoff) {
            return None;
        }
        let entry = self.remove_at(0);
        if let Some(record) = &entry.record {
            record.set_state(TimerState::Called);
        }
        Some(entry.payload)
    }

    /// Cancels a pending call and hands back its payload.
    pub fn cancel(&mut self, record: &Arc<TimerRecord>) -> Result<P> {
        let position = self.position_of(record)?;
        let entry = self.remove_at(position);
        record.set_state(TimerState::Cancelled);
        Ok(entry.payload)
    }

    /// Moves a pending call to `deadline` (it takes a fresh place in the FIFO order).
    pub fn reschedule(&mut self, record: &Arc<TimerRecord>, deadline: f64) -> Result<()> {
        let position = self.position_of(record)?;
        let seq = self.take_seq();
        let slot = self.heap[position].slot;
        self.entry_mut(slot).seq = seq;
        self.heap[position].deadline = deadline;
        record
            .time_bits
            .store(deadline.to_bits(), Ordering::Relaxed);
        let position = self.sift_up(position);
        self.sift_down(position);
        Ok(())
    }

    /// Empties the queue (reactor teardown); records of calls still pending become `Closed`.
    pub fn close_all(&mut self) -> Vec<P> {
        self.heap.clear();
        self.free_slots.clear();
        self.slab
            .drain(..)
            .flatten()
            .map(|entry| {
                if let Some(record) = &entry.record {
                    record.set_state(TimerState::Closed);
                }
                entry.payload
            })
            .collect()
    }

    fn take_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq - 1
    }

    fn entry(&self, slot: u32) -> &SlabEntry<P> {
        self.slab[slot as usize]
            .as_ref()
            .expect("heap keys point at live slab entries")
    }

    fn entry_mut(&mut self, slot: u32) -> &mut SlabEntry<P> {
        self.slab[slot as usize]
            .as_mut()
            .expect("heap keys point at live slab entries")
    }

    fn position_of(&self, record: &Arc<TimerRecord>) -> Result<usize> {
        record.check_pending()?;
        let position = record.position.load(Ordering::Relaxed);
        match self
            .heap
            .get(position)
            .filter(|k| k.tracked)
            .and_then(|k| self.entry(k.slot).record.as_ref())
        {
            Some(queued) if Arc::ptr_eq(queued, record) => Ok(position),
            _ => Err(Error::NotFound),
        }
    }

    fn remove_at(&mut self, position: usize) -> SlabEntry<P> {
        let key = if position == 0 {
            self.pop_root()
        } else {
            let key = self.heap.swap_remove(position);
            if position < self.heap.len() {
                let position = self.sift_up(position);
                self.sift_down(position);
            }
            key
        };
        self.free_slots.push(key.slot);
        self.slab[key.slot as usize]
            .take()
            .expect("heap keys point at live slab entries")
    }

    /// Removes the earliest key, bottom-up (Wegener's heapsort trick): the hole at the root follows
    /// the smallest children down to a leaf, then the last key fills it and sifts up. The last key
    /// usually belongs near the bottom, so this saves the comparison with it on every level.
    fn pop_root(&mut self) -> HeapKey {
        let root = self.heap[0];
        let last = self.heap.pop().expect("pop_root on a non-empty heap");
        let len = self.heap.len();
        if len == 0 {
            return root;
        }
        let mut hole = 0;
        loop {
            let first = hole * ARITY + 1;
            if first >= len {
                break;
            }
            let best = self.smallest_child(first, len);
            self.heap[hole] = self.heap[best];
            self.note_position(hole);
            hole = best;
        }
        self.heap[hole] = last;
        self.sift_up(hole);
        root
    }

    /// The position of the smallest of the (up to ARITY) children starting at `first` (< `len`).
    #[inline(always)]
    fn smallest_child(&self, first: usize, len: usize) -> usize {
        if let Some(c) = self.heap.get(first..first + ARITY) {
            // A full family: a small tournament (two independent comparisons, then the winners).
            let a = usize::from(self.before(c[1], c[0]));
            let b = 2 + usize::from(self.before(c[3], c[2]));
            return first + if self.before(c[b], c[a]) { b } else { a };
        }
        let children = &self.heap[first..len];
        let mut best = 0;
        for (i, &child) in children.iter().enumerate().skip(1) {
            if self.before(child, children[best]) {
                best = i;
            }
        }
        first + best
    }

    /// Strict (deadline, sequence) order; the slab is consulted only for equal deadlines.
    #[inline(always)]
    fn before(&self, a: HeapKey, b: HeapKey) -> bool {
        a.deadline < b.deadline
            || (a.deadline == b.deadline && self.entry(a.slot).seq < self.entry(b.slot).seq)
    }

    fn note_position(&self, position: usize) {
        let key = self.heap[position];
        if key.tracked {
            if let Some(record) = &self.entry(key.slot).record {
                record.position.store(position, Ordering::Relaxed);
            }
        }
    }

    fn sift_up(&mut self, mut position: usize) -> usize {
        let moving = self.heap[position];
        while position > 0 {
            let parent = (position - 1) / ARITY;
            if !self.before(moving, self.heap[parent]) {
                break;
            }
            self.heap[position] = self.heap[parent];
            self.note_position(position);
            position = parent;
        }
        self.heap[position] = moving;
        self.note_position(position);
        position
    }

    fn sift_down(&mut self, mut position: usize) -> usize {
        let len = self.heap.len();
        let moving = self.heap[position];
        loop {
            let first = position * ARITY + 1;
            if first >= len {
                break;
            }
            let best = self.smallest_child(first, len);
            if !self.before(self.heap[best], moving) {
                break;
            }
            self.heap[position] = self.heap[best];
            self.note_position(position);
            position = best;
        }
        self.heap[position] = moving;
        self.note_position(position);
        position
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain_due(q: &mut TimerQueue<u32>, now: f64) -> Vec<u32> {
        let cutoff = q.next_seq();
        std::iter::from_fn(|| q.pop_due(now, cutoff)).collect()
    }

    #[test]
    fn pops_in_deadline_order_fifo_on_ties() {
        let mut q = TimerQueue::default();
        for i in 0..10_000u32 {
            q.schedule(5.0, i, None);
        }
        q.schedule(1.0, 99_999, None);
        let fired = drain_due(&mut q, 10.0);
        assert_eq!(fired[0], 99_999);
        assert_eq!(&fired[1..], (0..10_000).collect::<Vec<_>>().as_slice());
        assert!(q.is_empty());
    }

    #[test]
    fn random_deadlines_come_out_sorted() {
        let mut q = TimerQueue::default();
        let mut x: u64 = 12345;
        let mut deadlines = Vec::new();
        for i in 0..5000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let d = (x >> 33) as f64 % 1000.0;
            deadlines.push((d, i));
            q.schedule(d, i, (i % 3 == 0).then(|| Arc::new(TimerRecord::new())));
        }
        deadlines.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let fired = drain_due(&mut q, 1e9);
        assert_eq!(fired, deadlines.iter().map(|d| d.1).collect::<Vec<_>>());
    }

    #[test]
    fn not_due_before_deadline_or_after_cutoff() {
        let mut q = TimerQueue::default();
        q.schedule(2.0, 1, None);
        assert!(drain_due(&mut q, 1.0).is_empty());
        let cutoff = q.next_seq();
        q.schedule(5.0, 2, None); // scheduled "now" (5.0) with delay 0, during the pass
        assert_eq!(
            q.pop_due(5.0, cutoff),
            Some(1),
            "call scheduled after the cutoff waits"
        );
        assert_eq!(q.pop_due(5.0, cutoff), None);
        assert_eq!(drain_due(&mut q, 5.0), vec![2]);
    }

    #[test]
    fn cancel_and_reschedule_track_positions() {
        let mut q = TimerQueue::default();
        let records: Vec<_> = (0..1000u32)
            .map(|i| {
                let record = Arc::new(TimerRecord::new());
                q.schedule(i as f64, i, Some(record.clone()));
                record
            })
            .collect();
        for (i, r) in records.iter().enumerate() {
            if i % 2 == 0 {
                assert_eq!(q.cancel(r).unwrap(), i as u32);
            }
        }
        assert_eq!(q.cancel(&records[0]).unwrap_err(), Error::AlreadyCancelled);
        assert_eq!(
            q.reschedule(&records[0], 1.0).unwrap_err(),
            Error::AlreadyCancelled
        );
        q.reschedule(&records[999], -1.0).unwrap();
        q.reschedule(&records[1], 5000.0).unwrap();
        assert_eq!(records[1].time(), 5000.0);
        let fired = drain_due(&mut q, 1e9);
        assert_eq!(fired.len(), 500);
        assert_eq!(fired[0], 999);
        assert_eq!(*fired.last().unwrap(), 1);
        assert_eq!(records[1].state(), TimerState::Called);
        assert_eq!(q.cancel(&records[1]).unwrap_err(), Error::AlreadyCalled);
    }

    #[test]
    fn distant_deadline_stays_pending() {
        let mut q = TimerQueue::default();
        q.schedule(1e30, 1, None);
        assert!(drain_due(&mut q, 1e20).is_empty());
        assert_eq!(q.earliest(), Some(1e30));
    }
}
