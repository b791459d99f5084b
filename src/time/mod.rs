//! Time: the reactor's clock (monotonic or manual) and the delayed-call queue.

mod clock;
mod queue;

pub use clock::{Clock, monotonic_seconds};
pub use queue::{TimerQueue, TimerRecord, TimerState};
