//! Generation-checked handle tables: what every opaque C handle really is.
//!
//! C hosts hold opaque pointers. Instead of raw `Box` addresses (where a double free or a stale handle
//! is undefined behaviour), a handle is an address inside a reserved, never-accessible (`PROT_NONE`)
//! range of ours: `base + (generation << index_bits | index)`. A lookup checks the range, the slot and
//! the generation, so freed, released and made-up handles are detected. Because the addresses belong to
//! a mapping of ours they can never alias a garbage-collected heap (Go's GC inspects pointer-typed
//! words that point into its arenas).
//!
//! Lifetime: each slot has one atomic *state word* (generation, live/closing bits, a pin count, a
//! kind-specific flag and, for reactors, the owner thread and an "owner inside" bit). Every access to
//! an object goes through a *pin* taken with one compare-and-swap that also checks the generation, so
//! "is this handle live?" and "keep it alive while I use it" are one atomic step (or through a lock
//! bit of the kind's, `HandleTable::lock_with`, which removal waits for). Removal marks the slot
//! closing (no new pins or locks) and takes the object only once none is left; slot memory itself is
//! never unmapped, so a stale handle can always be checked safely. Reactors add ownership on the same
//! word (`owner.rs`): adoption, owner-thread calls and `reactor_free` exclude each other for real.
//!
//! Address space: each kind maps its slots and its handle range on first use, sized by its layout
//! below; all kinds together stay under 1 GiB of reserved (and lazily committed) address space.

mod owner;
mod state;
mod table;

pub use owner::OwnerGuard;
pub(crate) use state::FLAG as FLAG_BIT;
pub(crate) use state::{AWAKE, CALLS_LOCK, WAKE_PENDING};
pub(crate) use state::{generation as generation_of, is_live_generation};

/// The state word of a live slot of `generation` (for tests of code that runs on a state word).
#[cfg(test)]
pub(crate) fn live_state_for_tests(generation: u32) -> u64 {
    state::LIVE | state::with_generation(generation)
}
pub use table::{HandleTable, Pinned};

/// The table type of each kind.
pub type ReactorTable<T> = HandleTable<T, { REACTOR.index_bits }, { REACTOR.generation_bits }>;
pub type DelayedCallTable<T> =
    HandleTable<T, { DELAYED_CALL.index_bits }, { DELAYED_CALL.generation_bits }>;
pub type AsyncTable<T> = HandleTable<T, { ASYNC.index_bits }, { ASYNC.generation_bits }>;
pub type RemoteTable<T> = HandleTable<T, { REMOTE.index_bits }, { REMOTE.generation_bits }>;
pub type ThreadPoolTable<T> =
    HandleTable<T, { THREADPOOL.index_bits }, { THREADPOOL.generation_bits }>;
pub type PortTable<T> = HandleTable<T, { PORT.index_bits }, { PORT.generation_bits }>;
pub type TransportTable<T> =
    HandleTable<T, { TRANSPORT.index_bits }, { TRANSPORT.generation_bits }>;
pub type ConnectorTable<T> =
    HandleTable<T, { CONNECTOR.index_bits }, { CONNECTOR.generation_bits }>;
pub type DatagramTable<T> = HandleTable<T, { DATAGRAM.index_bits }, { DATAGRAM.generation_bits }>;
pub type ResolutionTable<T> =
    HandleTable<T, { RESOLUTION.index_bits }, { RESOLUTION.generation_bits }>;
pub type ProcessTable<T> = HandleTable<T, { PROCESS.index_bits }, { PROCESS.generation_bits }>;

/// The address-space layout of one handle kind.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// log2 of the number of live handles the kind supports.
    pub index_bits: u32,
    /// Generation bits carried in the handle (at most `state::GENERATION_BITS`).
    pub generation_bits: u32,
}

impl Kind {
    pub const fn slots(self) -> usize {
        1 << self.index_bits
    }

    /// Bytes of handle range (never accessible).
    pub const fn handle_bytes(self) -> usize {
        1 << (self.index_bits + self.generation_bits)
    }

    /// Bytes of the slot array.
    pub const fn slot_bytes(self) -> usize {
        self.slots() * table::SLOT_SIZE
    }

    /// A freed slot is reused only after this many other slots were freed, so one slot is recycled
    /// at most once per `quarantine` releases and a stale handle keeps failing the generation check
    /// for at least `quarantine << generation_bits` further releases of its kind.
    pub const fn quarantine(self) -> usize {
        let sixteenth = self.slots() / 16;
        if sixteenth < 4096 { sixteenth } else { 4096 }
    }
}

pub(crate) const REACTOR: Kind = Kind {
    index_bits: 12,
    generation_bits: 12,
};
pub(crate) const DELAYED_CALL: Kind = Kind {
    index_bits: 20,
    generation_bits: 8,
};
pub(crate) const ASYNC: Kind = Kind {
    index_bits: 16,
    generation_bits: 8,
};
pub(crate) const REMOTE: Kind = Kind {
    index_bits: 16,
    generation_bits: 8,
};
pub(crate) const THREADPOOL: Kind = Kind {
    index_bits: 12,
    generation_bits: 12,
};

/// Listening ports: 65 536 at once.
pub(crate) const PORT: Kind = Kind {
    index_bits: 16,
    generation_bits: 8,
};
/// Stream transports: a million connections at once.
pub(crate) const TRANSPORT: Kind = Kind {
    index_bits: 20,
    generation_bits: 8,
};

/// Client connectors (held by the host until released): 262 144 at once.
pub(crate) const CONNECTOR: Kind = Kind {
    index_bits: 18,
    generation_bits: 8,
};

/// Datagram ports: 65 536 at once.
pub(crate) const DATAGRAM: Kind = Kind {
    index_bits: 16,
    generation_bits: 8,
};

/// Requests of installed resolvers waiting for `reactor_resolution_complete`: 65 536 at once.
pub(crate) const RESOLUTION: Kind = Kind {
    index_bits: 16,
    generation_bits: 8,
};

/// Spawned child processes (until `process_ended`): 65 536 at once.
pub(crate) const PROCESS: Kind = Kind {
    index_bits: 16,
    generation_bits: 8,
};

/// Every kind the library has; their address space must fit the budget.
pub(crate) const ALL_KINDS: [Kind; 11] = [
    REACTOR,
    DELAYED_CALL,
    ASYNC,
    REMOTE,
    THREADPOOL,
    PORT,
    TRANSPORT,
    CONNECTOR,
    DATAGRAM,
    RESOLUTION,
    PROCESS,
];

/// All handle kinds together reserve at most this much address space.
pub(crate) const ADDRESS_SPACE_BUDGET: usize = 1 << 30;

pub(crate) const fn reserved_bytes(kinds: &[Kind]) -> usize {
    let mut total = 0;
    let mut i = 0;
    while i < kinds.len() {
        total += kinds[i].handle_bytes() + kinds[i].slot_bytes();
        i += 1;
    }
    total
}

const _: () = assert!(reserved_bytes(&ALL_KINDS) <= ADDRESS_SPACE_BUDGET);
const _: () = {
    let mut i = 0;
    while i < ALL_KINDS.len() {
        assert!(ALL_KINDS[i].generation_bits <= state::GENERATION_BITS);
        i += 1;
    }
};
