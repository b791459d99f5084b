//! The layout of a slot's atomic state word.
//!
//! ```text
//!  63        52 51   50      49      48   47    46         45    44     43    32 31              0
//! +------------+----+-------+--------+----+-----+-----------+-----+------+-------+----------------+
//! | generation |LIVE|CLOSING|OWNER_IN|FLAG|AWAKE|WAKE_PEND. |CALLS|(free)| pins  | owner / tag    |
//! |            |    |       |        |    |     |           |LOCK |      |       |                |
//! +------------+----+-------+--------+----+-----+-----------+-----+------+-------+----------------+
//! ```
//!
//! - generation: bumped each time the slot is emptied; handles carry its low bits.
//! - LIVE: the slot holds an object. CLOSING: removal in progress; no new pins.
//! - OWNER_IN: (reactors) an owner-thread call is in progress; it holds one pin.
//! - FLAG: one kind-specific bit (async handles: "send pending"; reactors: "stopped for good").
//! - AWAKE, WAKE_PENDING: (reactors) the waker handshake (`crate::reactor::wake`): the reactor thread
//!   is inside a pass and looks at its queues before it sleeps; a producer has claimed the wake-up
//!   since the reactor's last pass began. In this word so that the unpin a producer does anyway
//!   tells it whether to wake the reactor.
//! - CALLS_LOCK: (reactors) the producers' lock of the call_from_thread queue
//!   (`crate::reactor::call_queue`). In this word so that a producer's one compare-and-swap both
//!   keeps the reactor alive and locks its queue, and its unlock is the waker handshake.
//! - bit 44 is free.
//! - pins: accesses in progress; removal waits for (or, for reactors, refuses on) a non-zero count.
//! - owner: (reactors) the owning thread's id; other kinds may keep a tag there
//!   (`HandleTable::insert_tagged`), e.g. a transport's owning reactor.

pub(crate) const GENERATION_BITS: u32 = 12;
const GENERATION_SHIFT: u32 = 52;
pub(crate) const LIVE: u64 = 1 << 51;
pub(crate) const CLOSING: u64 = 1 << 50;
pub(crate) const OWNER_IN: u64 = 1 << 49;
pub(crate) const FLAG: u64 = 1 << 48;
pub(crate) const AWAKE: u64 = 1 << 47;
pub(crate) const WAKE_PENDING: u64 = 1 << 46;
pub(crate) const CALLS_LOCK: u64 = 1 << 45;
const PIN_SHIFT: u32 = 32;
pub(crate) const PIN: u64 = 1 << PIN_SHIFT;
const PIN_MASK: u64 = 0xfff << PIN_SHIFT;
const OWNER_MASK: u64 = 0xffff_ffff;

#[inline]
pub fn generation(state: u64) -> u32 {
    (state >> GENERATION_SHIFT) as u32
}

#[inline]
pub fn with_generation(generation: u32) -> u64 {
    u64::from(generation & ((1 << GENERATION_BITS) - 1)) << GENERATION_SHIFT
}

#[inline]
pub fn pins(state: u64) -> u64 {
    (state & PIN_MASK) >> PIN_SHIFT
}

/// True when one more pin would overflow the count (callers then wait for pins to drop).
#[inline]
pub fn pins_full(state: u64) -> bool {
    state & PIN_MASK == PIN_MASK
}

#[inline]
pub fn owner(state: u64) -> u32 {
    (state & OWNER_MASK) as u32
}

#[inline]
pub fn with_owner(state: u64, owner: u32) -> u64 {
    (state & !OWNER_MASK) | u64::from(owner)
}

/// The slot holds a live object that is not being removed, of handle generation `expected`
/// (compared on the handle's generation bits).
#[inline]
pub fn is_open(state: u64, expected: u32, generation_mask: u32) -> bool {
    state & (LIVE | CLOSING) == LIVE && generation(state) & generation_mask == expected
}

/// The slot holds an object (removal may be in progress) of handle generation `expected` (all
/// generation bits compared).
#[inline]
pub fn is_live_generation(state: u64, expected: u32) -> bool {
    state & LIVE != 0 && generation(state) == expected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_do_not_overlap() {
        let word = with_generation(0xfff)
            | LIVE
            | CLOSING
            | OWNER_IN
            | FLAG
            | AWAKE
            | WAKE_PENDING
            | CALLS_LOCK
            | (1 << 44)
            | (PIN * 0xfff);
        let word = with_owner(word, u32::MAX);
        assert_eq!(generation(word), 0xfff);
        assert_eq!(pins(word), 0xfff);
        assert!(pins_full(word));
        assert_eq!(owner(word), u32::MAX);
        assert_eq!(with_owner(word, 7) & !OWNER_MASK, word & !OWNER_MASK);
        assert_eq!(word.count_ones(), 64);
    }

    #[test]
    fn open_checks_generation_bits_and_flags() {
        let word = with_generation(0x1ab) | LIVE;
        assert!(is_open(word, 0xab, 0xff));
        assert!(!is_open(word, 0xac, 0xff));
        assert!(!is_open(word | CLOSING, 0xab, 0xff));
        assert!(!is_open(with_generation(0x1ab), 0xab, 0xff));
    }
}
