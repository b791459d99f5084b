//! libreactor: Twisted's reactor rebuilt in Rust, shipped as a C-ABI shared library.
//!
//! The crate has a safe core (`reactor`, `time`, `backend`, `threadpool`, `handles`) and a thin
//! `unsafe` boundary in `ffi`, which holds every `extern "C"` function of `include/reactor.h`.
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(not(target_pointer_width = "64"))]
compile_error!("libreactor supports 64-bit targets only (handle encoding, struct layouts)");

pub mod backend;
mod callback;
pub mod ffi;
mod handles;
pub mod net;
pub mod process;
pub mod reactor;
pub mod status;
mod sync;
mod thread_id;
pub mod threadpool;
pub mod time;
pub mod types;
