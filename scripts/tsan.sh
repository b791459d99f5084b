#!/usr/bin/env bash
# ThreadSanitizer run of libreactor:
#   1. the crate's Rust unit tests (`cargo test --lib`) built with -Zsanitizer=thread;
#   2. the multi-threaded C tests (tests/c/*.c that start threads or use the thread pool: the
#      test_race_* programs, test_call_from_thread, test_remote, test_async, test_threadpool*,
#      test_wrong_thread, ...) compiled with `cc -fsanitize=thread` against a TSan-instrumented
#      libreactor.so, run once per backend (epoll, poll).
# Any ThreadSanitizer report, failed test, crash or timeout fails the script (exit 1) after a summary.
#
#   scripts/tsan.sh [--rust-only | --c-only] [--all-c] [--all-reports] [--jobs N] [PROGRAM...]
#
#   --rust-only / --c-only  run only one of the two parts
#   --all-c                 every C test, not only the multi-threaded ones
#   --all-reports           keep running after the first report (halt_on_error=0), to list them all
#   --jobs N                C programs run in parallel (default 2)
#   PROGRAM...              C test names (e.g. test_race_adopt) instead of the automatic list
#
# Environment: REACTOR_TSAN_TOOLCHAIN (default nightly), REACTOR_TSAN_TARGET_DIR (default
# target/tsan), REACTOR_TSAN_OPTIONS (appended to TSAN_OPTIONS), REACTOR_REQUIRE_TSAN=1 (a missing
# nightly toolchain fails instead of skipping), CC (default cc).
#
# How it is built, and why (checked with rustc 1.97-nightly / LLVM 22 and Debian gcc 12):
#   - Rust's std must be instrumented too (-Zbuild-std, needs the nightly `rust-src` component,
#     added here if missing): an uninstrumented std synchronises through futexes and fences that
#     TSan cannot see, which gives false reports on every Mutex, Arc and channel.
#   - crossbeam-deque 0.8.8 / crossbeam-epoch 0.9.21 read CARGO_CFG_SANITIZE (set by cargo under
#     -Zsanitizer=thread) and replace their standalone fences, which TSan does not model, by
#     acquire/release accesses (cfg crossbeam_sanitize_thread). So they need no suppressions here;
#     scripts/tsan.supp holds the (justified) suppressions, currently none.
#   - A cdylib does not contain the TSan runtime; the executable must provide it. gcc's libtsan
#     (gcc 12: libtsan.so.2) is older than the nightly's LLVM and lacks __tsan_memcpy,
#     __tsan_memmove and __tsan_memset, which LLVM now emits: linking with `cc -fsanitize=thread`
#     fails with "undefined reference to `__tsan_memset'". So the C programs are compiled with
#     gcc's -fsanitize=thread (same __tsan_* ABI) but linked, like a Rust executable, with the
#     runtime that ships with the nightly toolchain (librustc-nightly_rt.tsan.a, whole archive,
#     symbols exported for libreactor.so), so both sides use one runtime of the same LLVM.
#   - Programs run with their normal (native) loop sizes; TSan makes them 5-15x slower, well within
#     the per-program timeout (REACTOR_TSAN_TIMEOUT, default 180 s).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

TOOLCHAIN=${REACTOR_TSAN_TOOLCHAIN:-nightly}
TARGET_DIR=${REACTOR_TSAN_TARGET_DIR:-$ROOT/target/tsan}
TIMEOUT=${REACTOR_TSAN_TIMEOUT:-180}
CC=${CC:-cc}
SUPP=$ROOT/scripts/tsan.supp

run_rust=1 run_c=1 all_c=0 halt=1 jobs=2
programs=()
while [ $# -gt 0 ]; do
    case $1 in
        --rust-only) run_c=0 ;;
        --c-only) run_rust=0 ;;
        --all-c) all_c=1 ;;
        --all-reports) halt=0 ;;
        --jobs) [ $# -ge 2 ] || { echo "tsan.sh: --jobs needs a number" >&2; exit 2; }; jobs=$2; shift ;;
        --jobs=*) jobs=${1#*=} ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//; $d'; exit 0 ;;
        -*) echo "tsan.sh: unknown option $1" >&2; exit 2 ;;
        *) programs+=("${1%.c}") ;;
    esac
    shift
done

step() { printf '\n==> %s\n' "$*"; }

# One line per TSan report in log $1: its kind and, for each access, the first frame in this
# repository's src/ (else in the repository, else the top frame), e.g.
#   data race: Write <reactor::reactor::Reactor>::enter_api src/reactor/mod.rs:205 | Previous write ...
digest() {
    awk -v root="$ROOT/" '
        function flush_access() {
            if (label != "") line = line " | " label " " (best != "" ? best : (any != "" ? any : top))
            label = ""; best = ""; any = ""; top = ""
        }
        function flush_report() {
            flush_access()
            if (kind != "") print kind ":" substr(line, 3)
            kind = ""; line = ""
        }
        /^WARNING: ThreadSanitizer: / {
            flush_report()
            kind = $0; sub(/^WARNING: ThreadSanitizer: /, "", kind); sub(/ \(pid=.*$/, "", kind)
            next
        }
        kind != "" && /^  (Location|Mutex|Thread) / { flush_access(); next }
        kind != "" && /^  [A-Z][a-z ]* of size [0-9]+ at / {
            flush_access()
            label = $0; sub(/^  /, "", label); sub(/ of size.*$/, "", label)
            next
        }
        kind != "" && label != "" && /^    #[0-9]+ / {
            if (!match($0, / \/[^ ]+:[0-9]+(:[0-9]+)? /)) next
            path = substr($0, RSTART + 1, RLENGTH - 2); sub(/:[0-9]+$/, "", path)
            func_ = substr($0, 1, RSTART - 1); sub(/^    #[0-9]+ /, "", func_); sub(/ \(\.llvm\.[0-9]+\)/, "", func_)
            rel = path; sub("^" root, "", rel)
            frame = func_ " " rel
            if (top == "") top = frame
            if (best == "" && index(path, root "src/") == 1) best = frame
            if (any == "" && index(path, root) == 1) any = frame
            next
        }
        /^SUMMARY: ThreadSanitizer/ { flush_report() }
        END { flush_report() }
    ' "$1"
}

skip() {
    echo
    echo "######################################################################"
    echo "# tsan.sh: SKIPPED: $*"
    echo "######################################################################"
    if [ -n "${REACTOR_REQUIRE_TSAN:-}" ]; then
        echo "tsan.sh: REACTOR_REQUIRE_TSAN is set: failing instead of skipping" >&2
        exit 1
    fi
    exit 0
}

# ---- toolchain --------------------------------------------------------------------------------
[ "$(uname -s)" = Linux ] || skip "the TSan C harness is Linux-only (uname: $(uname -s))"
command -v rustup >/dev/null 2>&1 || skip "rustup is not installed (a $TOOLCHAIN toolchain is needed)"
if ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
    skip "no $TOOLCHAIN Rust toolchain (rustup toolchain install $TOOLCHAIN --profile minimal --component rust-src)"
fi
SYSROOT=$(rustup run "$TOOLCHAIN" rustc --print sysroot)
HOST=$(rustup run "$TOOLCHAIN" rustc -vV | sed -n 's/^host: //p')
case $HOST in
    x86_64-unknown-linux-gnu|aarch64-unknown-linux-gnu) ;;
    *) skip "ThreadSanitizer is not supported on $HOST" ;;
esac
if [ ! -d "$SYSROOT/lib/rustlib/src/rust/library" ]; then
    step "rustup component add rust-src --toolchain $TOOLCHAIN (for -Zbuild-std)"
    rustup component add rust-src --toolchain "$TOOLCHAIN"
fi
echo "tsan.sh: $(rustup run "$TOOLCHAIN" rustc --version), target $HOST, $($CC --version | head -n 1)"

export RUSTFLAGS="-Zsanitizer=thread"
export RUSTDOCFLAGS="-Zsanitizer=thread"
export CARGO_TARGET_DIR=$TARGET_DIR
tsan_options="halt_on_error=$halt exitcode=66 second_deadlock_stack=1 history_size=4"
if [ -f "$SUPP" ]; then
    tsan_options="$tsan_options suppressions=$SUPP"
fi
tsan_options="$tsan_options ${REACTOR_TSAN_OPTIONS:-}"

LOGS=$TARGET_DIR/logs
rm -rf "$LOGS"
mkdir -p "$LOGS"
started=$(date +%s)
summary=()
failures=0

# ---- 1. Rust unit tests -----------------------------------------------------------------------
if [ "$run_rust" = 1 ]; then
    step "Rust unit tests under TSan (cargo +$TOOLCHAIN test -Zbuild-std --target $HOST --lib)"
    log=$LOGS/rust-unit-tests.log
    set +e
    TSAN_OPTIONS=$tsan_options cargo "+$TOOLCHAIN" test -Zbuild-std --target "$HOST" --lib 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    set -e
    reports=$(grep -c '^WARNING: ThreadSanitizer' "$log" || true)
    result=$(grep -E '^test result: ' "$log" | tail -n 1 || true)
    if [ "$status" -eq 0 ] && [ "$reports" -eq 0 ]; then
        summary+=("ok      rust unit tests: ${result#test result: }")
    else
        failures=$((failures + 1))
        summary+=("FAILED  rust unit tests: exit $status, $reports TSan report(s); ${result:-no test result} (log: $log)")
        while IFS= read -r line; do summary+=("          $line"); done \
            < <(digest "$log" | sort | uniq -c | sort -rn | head -n 20)
    fi
fi

# ---- 2. C tests against a TSan libreactor.so --------------------------------------------------
if [ "$run_c" = 1 ]; then
    step "TSan-instrumented libreactor (cargo +$TOOLCHAIN build -Zbuild-std --target $HOST --release --lib)"
    cargo "+$TOOLCHAIN" build -Zbuild-std --target "$HOST" --release --lib
    RT=$(ls "$SYSROOT/lib/rustlib/$HOST/lib/"librustc-*_rt.tsan.a 2>/dev/null | head -n 1 || true)
    [ -n "$RT" ] || { echo "tsan.sh: no librustc-*_rt.tsan.a in $SYSROOT/lib/rustlib/$HOST/lib" >&2; exit 1; }
    PREFIX=$TARGET_DIR/prefix
    BIN=$TARGET_DIR/c-bin
    rm -rf "$PREFIX" "$BIN"
    mkdir -p "$BIN"
    sh scripts/install.sh --artifacts "$TARGET_DIR/$HOST/release" --prefix "$PREFIX" >/dev/null
    export PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig
    read -r -a pc_cflags <<<"$(pkg-config --cflags reactor)"
    read -r -a pc_libs <<<"$(pkg-config --libs reactor)"

    if [ ${#programs[@]} -eq 0 ]; then
        if [ "$all_c" = 1 ]; then
            mapfile -t sources < <(ls tests/c/*.c)
        else
            # Multi-threaded tests: they start threads or use a thread pool.
            mapfile -t sources < <(grep -lE 'pthread_create|race_crew_init|reactor_threadpool_|reactor_call_in_thread' tests/c/*.c)
        fi
    else
        sources=()
        for p in "${programs[@]}"; do
            [ -f "tests/c/$p.c" ] || { echo "tsan.sh: no tests/c/$p.c" >&2; exit 2; }
            sources+=("tests/c/$p.c")
        done
    fi

    step "compiling ${#sources[@]} C tests with $CC -fsanitize=thread (runtime: $(basename "$RT"))"
    for src in "${sources[@]}"; do
        name=$(basename "$src" .c)
        "$CC" -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -pthread -fsanitize=thread \
            -fno-omit-frame-pointer -I tests/c "${pc_cflags[@]}" -c "$src" -o "$BIN/$name.o"
        "$CC" -pthread "$BIN/$name.o" -o "$BIN/$name" \
            -Wl,--whole-archive "$RT" -Wl,--no-whole-archive -Wl,--export-dynamic \
            "${pc_libs[@]}" -ldl -lm -lrt
    done

    backends=(epoll poll)
    step "running them under TSan (backends: ${backends[*]}; $jobs at a time; timeout ${TIMEOUT}s each)"
    # One job: run a program on a backend, write "<verdict>\t<name> [<backend>]\t<detail>" to a file.
    run_one() {
        local name=$1 backend=$2 log=$LOGS/$1.$2.log out=$LOGS/$1.$2.verdict
        local t0 status reports verdict detail
        t0=$(date +%s)
        set +e
        (cd "$BIN" && REACTOR_BACKEND=$backend TSAN_OPTIONS=$tsan_options \
            timeout --kill-after=10 "$TIMEOUT" "./$name") >"$log" 2>&1
        status=$?
        set -e
        reports=$(grep -c '^WARNING: ThreadSanitizer' "$log" || true)
        detail="$(($(date +%s) - t0))s"
        if [ "$reports" -gt 0 ]; then
            verdict=TSAN
            detail="$detail, $reports report(s), exit $status"
        elif [ "$status" -eq 0 ]; then
            verdict=ok
        elif [ "$status" -eq 77 ]; then
            verdict=skipped
        elif [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
            verdict=TIMEOUT
        else
            verdict=FAILED
            detail="$detail, exit $status"
        fi
        printf '%s\t%s [%s]\t%s\n' "$verdict" "$name" "$backend" "$detail" >"$out"
        printf '%-8s %s [%s] (%s)\n' "$verdict" "$name" "$backend" "$detail"
    }
    export -f run_one
    export BIN LOGS TIMEOUT tsan_options
    for src in "${sources[@]}"; do
        for backend in "${backends[@]}"; do
            printf '%s %s\n' "$(basename "$src" .c)" "$backend"
        done
    done | xargs -P "$jobs" -n 2 bash -c 'run_one "$0" "$1"'

    for src in "${sources[@]}"; do
        name=$(basename "$src" .c)
        for backend in "${backends[@]}"; do
            IFS=$'\t' read -r verdict label detail <"$LOGS/$name.$backend.verdict"
            line=$(printf '%-8s%s (%s)' "$verdict" "$label" "$detail")
            case $verdict in
                ok|skipped) summary+=("$line") ;;
                *)
                    failures=$((failures + 1))
                    summary+=("$line  log: $LOGS/$name.$backend.log")
                    while IFS= read -r s; do summary+=("          $s"); done \
                        < <(digest "$LOGS/$name.$backend.log" | sort | uniq -c | sort -rn | head -n 10)
                    ;;
            esac
        done
    done
fi

# ---- summary ----------------------------------------------------------------------------------
echo
echo "==================== ThreadSanitizer summary ===================="
printf '%s\n' "${summary[@]}"
echo "-----------------------------------------------------------------"
echo "took $(($(date +%s) - started)) s; logs in $LOGS"
if [ "$failures" -gt 0 ]; then
    echo "tsan.sh: FAILED: $failures run(s) with TSan reports, failures or timeouts"
    exit 1
fi
echo "tsan.sh: all clean"
