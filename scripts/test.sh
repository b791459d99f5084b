#!/usr/bin/env bash
# The whole libreactor test suite (what `make test` and .ci/run execute):
#   1. scripts/deps.sh            system packages, rustfmt, clippy
#   2. cargo fmt --check
#   3. cargo clippy --all-targets -- -D warnings, natively and with --target for x86_64/aarch64 macOS
#      and x86_64 FreeBSD (type-checks their cfg code; a target rustup cannot install is a loud skip)
#   4. cargo test --release       Rust tests; tests/ also compiles and runs the C tests per backend
#                                 (natively, under valgrind, with ASan) and checks the C ABI against
#                                 the committed baseline abi/libreactor.so.0.abi (tests/abi.rs)
#   5. scripts/tsan.sh            ThreadSanitizer (nightly): the Rust tests and the threaded C tests
#      scripts/loom.sh            loom model of the waker handshake (every interleaving)
#   5b. the kqueue backend        on Linux over libkqueue (../shared/tools/libkqueue.sh builds it into a
#                                 cache outside the repo): the whole C suite again with
#                                 REACTOR_BACKEND=kqueue, natively, under valgrind and with ASan, and
#                                 the Python binding's pytest and Twisted suite on that build; a
#                                 loud skip when the tool is not there (e.g. a user's fresh clone)
#   6. c-examples/*.c             built with pkg-config against a temporary install, run per backend,
#                                 plain and under valgrind memcheck; each must exit 0
#   7. bindings/go                go vet and go test -race (cgo against the same temporary install, a
#                                 fresh GOCACHE) once per backend, then the example command
#   8. bindings/python            scripts/python.sh test against the same install: pytest on every
#                                 backend, Twisted's own reactor tests on our Twisted reactor next to
#                                 EPollReactor (per backend; any test passing there and not here fails
#                                 the run), and pip/wheel installs into fresh virtual environments
#   9. bindings/swift             scripts/swift.sh test against the same install: swift build (warnings
#                                 are errors), swift test per backend and the demo; without a swift on
#                                 PATH in a Debian trixie chroot with swiftlang that the script caches
#                                 in ~/.cache/libreactor/swift-trixie (~4 min and 2.7 GB the first time)
# Ends with "N passed, 0 failed" (Rust tests counted from cargo's "test result:" lines, plus one per
# example run, plus Go tests counted from `go test -v`'s "--- PASS" lines and one per Go example run,
# plus the Python count that scripts/python.sh prints, plus the Swift count that scripts/swift.sh prints).
# Any failure stops the script with a non-zero exit status before that line.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

step() { printf '\n==> %s\n' "$*"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/libreactor-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

step "deps"
scripts/deps.sh
# deps.sh installs valgrind and abigail-tools: here their absence is a failure, not a skip
# (tests/c_api.rs and tests/abi.rs only skip when these are unset).
export REACTOR_REQUIRE_VALGRIND=1 REACTOR_REQUIRE_ABIGAIL=1
for tool in valgrind abidw abidiff; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "test.sh: FAILED: $tool is required but not on PATH (scripts/deps.sh should have installed it)" >&2
        exit 1
    fi
done

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

# Cross-target clippy: only type-checks (no linker or SDK needed), but catches code that does not build
# elsewhere (e.g. pipe2 is missing on macOS). The rust-std of each target comes from rustup, which needs
# the network; when it cannot be installed the target is skipped loudly, here and again at the end.
cross_targets=(x86_64-apple-darwin aarch64-apple-darwin x86_64-unknown-freebsd)
cross_skipped=()
loud_skip() {
    printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
    printf '!!! SKIPPED (loud): %s\n' "$*" >&2
    printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' >&2
}
installed_targets=$(rustup target list --installed 2>/dev/null || true)
for target in "${cross_targets[@]}"; do
    step "cargo clippy --target $target --all-targets -- -D warnings"
    if ! grep -qx "$target" <<<"$installed_targets"; then
        echo "rustup target add $target"
        if ! command -v rustup >/dev/null 2>&1 ||
            ! timeout 300 rustup target add "$target" >"$WORK/rustup-$target.log" 2>&1; then
            cat "$WORK/rustup-$target.log" 2>/dev/null || echo "(rustup not found)"
            loud_skip "could not install target $target; cross-target clippy not run for it"
            cross_skipped+=("$target")
            continue
        fi
    fi
    cargo clippy --target "$target" --all-targets -- -D warnings
done

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

step "ThreadSanitizer: Rust tests and threaded C tests (scripts/tsan.sh)"
# A missing nightly toolchain is a failure here, not a skip.
REACTOR_REQUIRE_TSAN=1 scripts/tsan.sh 2>&1 | tee "$WORK/tsan.log"
# Counted: the Rust unit tests under TSan, plus one per C program and backend in its summary.
tsan_passed=$(awk '/^test result: /{ for (i = 1; i <= NF; i++) if ($(i+1) ~ /^passed;?$/) n += $i } END { print n + 0 }' \
    "$WORK/tsan.log")
tsan_c_passed=$(awk '/ThreadSanitizer summary/ { summary = 1 } summary && /^ok +test_/ { n++ } END { print n + 0 }' \
    "$WORK/tsan.log")
rust_passed=$((rust_passed + tsan_passed + tsan_c_passed))

step "loom model of the waker handshake (scripts/loom.sh)"
scripts/loom.sh 2>&1 | tee "$WORK/loom.log"
loom_passed=$(awk '/^test result: /{ for (i = 1; i <= NF; i++) if ($(i+1) ~ /^passed;?$/) n += $i } END { print n + 0 }' \
    "$WORK/loom.log")
if [ "$loom_passed" -eq 0 ] || grep -qE '^test result: FAILED' "$WORK/loom.log"; then
    echo "test.sh: the loom model failed" >&2
    exit 1
fi
rust_passed=$((rust_passed + loom_passed))

step "kqueue backend over libkqueue: the C suite with REACTOR_BACKEND=kqueue"
libkqueue_tool="$ROOT/../shared/tools/libkqueue.sh"
kqueue_skipped=""
if [ -f "$libkqueue_tool" ]; then
    kq_prefix="${XDG_CACHE_HOME:-$HOME/.cache}/libreactor/libkqueue-2.6.4"
    bash "$libkqueue_tool" "$kq_prefix"
    # A target dir of its own: the feature build must not replace target/release's library.
    LIBKQUEUE_PREFIX="$kq_prefix" REACTOR_TEST_BACKENDS=kqueue CARGO_TARGET_DIR="$ROOT/target/libkqueue" \
        cargo test --release --features libkqueue --test c_api 2>&1 | tee "$WORK/kqueue.log"
    kqueue_failed=$(awk '/^test result: /{ for (i = 1; i <= NF; i++) if ($(i+1) ~ /^failed;?$/) n += $i } END { print n + 0 }' \
        "$WORK/kqueue.log")
    kqueue_passed=$(awk '/^test result: /{ for (i = 1; i <= NF; i++) if ($(i+1) ~ /^passed;?$/) n += $i } END { print n + 0 }' \
        "$WORK/kqueue.log")
    if [ "$kqueue_failed" -ne 0 ] || [ "$kqueue_passed" -eq 0 ]; then
        echo "test.sh: the kqueue backend's C suite failed" >&2
        exit 1
    fi
    rust_passed=$((rust_passed + kqueue_passed))
    # The Python binding on the same build: pytest and Twisted's suite with REACTOR_BACKEND=kqueue.
    LIBKQUEUE_PREFIX="$kq_prefix" CARGO_TARGET_DIR="$ROOT/target/libkqueue" \
        cargo build --release --features libkqueue
    scripts/install.sh --artifacts "$ROOT/target/libkqueue/release" --prefix "$WORK/kqueue-prefix" >/dev/null
    scripts/python.sh test-backend "$WORK/kqueue-prefix" kqueue 2>&1 | tee "$WORK/python-kqueue.log"
    kqueue_python=$(awk '/^python: [0-9]+ passed$/ { print $2 }' "$WORK/python-kqueue.log")
    if [ -z "$kqueue_python" ]; then
        echo "test.sh: the Python binding failed on the kqueue backend" >&2
        exit 1
    fi
    rust_passed=$((rust_passed + kqueue_python))
else
    kqueue_skipped="$libkqueue_tool not found: the kqueue backend's C suite (over libkqueue) was not run"
    loud_skip "$kqueue_skipped"
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

step "Go binding (bindings/go) against the installed prefix"
# PKG_CONFIG_PATH still points at the temporary install above (cgo links through `pkg-config reactor`).
# A fresh build cache: Go's cache does not notice changes to reactor.h outside the package.
export GOCACHE="$WORK/gocache" GOFLAGS=-buildvcs=false CGO_ENABLED=1
go version
go_passed=0
(cd bindings/go && go vet ./...)
for backend in "${backends[@]}"; do
    log="$WORK/go-test.$backend.log"
    printf -- '--- go test -race (REACTOR_BACKEND=%s)\n' "$backend"
    if ! (cd bindings/go && REACTOR_BACKEND=$backend go test -race -count=1 -timeout 300s -v ./...) \
        >"$log" 2>&1; then
        grep -v '^=== ' "$log" | tail -n 100
        echo "test.sh: go test failed (backend $backend)" >&2
        exit 1
    fi
    grep -E '^(ok|PASS|FAIL)' "$log"
    n=$(grep -cE '^ *--- PASS: ' "$log" || true)
    if grep -qE '^ *--- FAIL: ' "$log" || [ "$n" -eq 0 ]; then
        cat "$log"
        echo "test.sh: go test reported failures (backend $backend)" >&2
        exit 1
    fi
    go_passed=$((go_passed + n))
done
(cd bindings/go && go build -o "$WORK/go-demo" ./examples/demo)
for backend in "${backends[@]}"; do
    printf -- '--- bindings/go/examples/demo (REACTOR_BACKEND=%s)\n' "$backend"
    if ! REACTOR_BACKEND=$backend timeout 60 "$WORK/go-demo" >"$WORK/go-demo.$backend.out" 2>&1; then
        cat "$WORK/go-demo.$backend.out"
        echo "test.sh: Go example failed (backend $backend)" >&2
        exit 1
    fi
    go_passed=$((go_passed + 1))
done

step "Python binding (bindings/python) against the installed prefix"
scripts/python.sh test "$WORK/prefix" 2>&1 | tee "$WORK/python.log"
python_passed=$(awk '/^python: [0-9]+ passed$/ { print $2 }' "$WORK/python.log")
if [ -z "$python_passed" ]; then
    echo "test.sh: the Python binding's tests failed" >&2
    exit 1
fi

step "Swift binding (bindings/swift) against the installed prefix"
scripts/swift.sh test "$WORK/prefix" 2>&1 | tee "$WORK/swift.log"
swift_passed=$(awk '/^swift: [0-9]+ passed$/ { print $2 }' "$WORK/swift.log")
if [ -z "$swift_passed" ]; then
    echo "test.sh: the Swift binding's tests failed" >&2
    exit 1
fi

echo
for target in ${cross_skipped[@]+"${cross_skipped[@]}"}; do
    loud_skip "could not install target $target; cross-target clippy not run for it"
done
if [ -n "$kqueue_skipped" ]; then loud_skip "$kqueue_skipped"; fi
echo "rust tests: $rust_passed passed; example runs: $examples_passed passed; go tests and example runs: $go_passed passed; python: $python_passed passed; swift: $swift_passed passed"
echo "$((rust_passed + examples_passed + go_passed + python_passed + swift_passed)) passed, 0 failed"
