#!/usr/bin/env bash
# The whole libreactor test suite (what `make test` and .ci/run execute):
#   1. scripts/deps.sh            system packages, rustfmt, clippy
#   2. cargo fmt --check
#   3. cargo clippy --all-targets -- -D warnings
#   4. cargo test --release       Rust tests; tests/ also compiles and runs the C tests per backend
#                                 and under valgrind
#   5. c-examples/*.c             built with pkg-config against a temporary install, run per backend,
#                                 plain and under valgrind memcheck; each must exit 0
# Ends with "N passed, 0 failed" (Rust tests counted from cargo's "test result:" lines, plus one per
# example run). Any failure stops the script with a non-zero exit status before that line.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

step() { printf '\n==> %s\n' "$*"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/libreactor-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

step "deps"
scripts/deps.sh

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test --release"
cargo test --release 2>&1 | tee "$WORK/cargo-test.log"
# libtest prints one "test result: ok. P passed; F failed; ..." per test binary (doc tests included).
rust_passed=$(awk '/^test result: /{ for (i = 1; i <= NF; i++) if ($(i+1) ~ /^passed;?$/) n += $i } END { print n + 0 }' \
    "$WORK/cargo-test.log")
rust_failed=$(awk '/^test result: /{ for (i = 1; i <= NF; i++) if ($(i+1) ~ /^failed;?$/) n += $i } END { print n + 0 }' \
    "$WORK/cargo-test.log")
if [ "$rust_failed" -ne 0 ]; then
    echo "test.sh: cargo reported $rust_failed failed tests" >&2
    exit 1
fi

step "c-examples against an installed prefix"
cargo build --release   # no-op after cargo test --release; makes sure the cdylib/staticlib exist
scripts/install.sh --artifacts target/release --prefix "$WORK/prefix"
export PKG_CONFIG_PATH="$WORK/prefix/lib/pkgconfig"
pc_flags=$(pkg-config --cflags --libs reactor)

backends=(epoll poll)

examples_passed=0
for src in c-examples/*.c; do
    name=$(basename "$src" .c)
    # shellcheck disable=SC2086  # pc_flags is a list of flags
    cc -std=c11 -O2 -g -Wall -Wextra -Werror -o "$WORK/$name" "$src" $pc_flags -pthread
    for backend in "${backends[@]}"; do
        for mode in plain valgrind; do
            run=(timeout 60 "$WORK/$name")
            if [ "$mode" = valgrind ]; then
                run=(timeout 120 valgrind -q --error-exitcode=1 --leak-check=full
                     --errors-for-leak-kinds=definite,indirect "$WORK/$name")
            fi
            log="$WORK/$name.$backend.$mode.out"
            printf -- '--- %s (REACTOR_BACKEND=%s, %s)\n' "$name" "$backend" "$mode"
            if ! REACTOR_BACKEND=$backend "${run[@]}" >"$log" 2>&1; then
                cat "$log"
                echo "test.sh: example $name failed (backend $backend, $mode)" >&2
                exit 1
            fi
            examples_passed=$((examples_passed + 1))
        done
    done
done

echo
echo "rust tests: $rust_passed passed; example runs: $examples_passed passed"
echo "$((rust_passed + examples_passed)) passed, 0 failed"
