#!/usr/bin/env bash
# Model-checks the waker handshake (src/reactor/wake.rs) with loom: every interleaving of producers
# publishing work and the reactor deciding to block is explored, and a lost wake-up fails the run.
# Builds the crate with `--cfg loom` in a target directory of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg loom ${RUSTFLAGS:-}"
export CARGO_TARGET_DIR="${LOOM_TARGET_DIR:-target/loom}"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
exec cargo test --release --lib loom_model -- --nocapture --test-threads=1
