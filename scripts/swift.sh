#!/usr/bin/env bash
# The Swift binding (bindings/swift), built and tested against an installed libreactor:
#
#   scripts/swift.sh test [PREFIX]     swift build (all targets, warnings are errors), swift test once per
#                                      backend (epoll, poll), then the demo (bindings/swift/Examples/demo)
#   scripts/swift.sh demo [PREFIX]     build and run the demo only
#   scripts/swift.sh bench [PREFIX]    release build of bindings/swift/Examples/bench; prints a table of
#                                      ns per crossing (callFromThread, callLater, Swift→C, C→Swift...)
#   scripts/swift.sh env               prepare the toolchain (if needed) and print how swift is run
#
# PREFIX is a libreactor install (scripts/install.sh layout). Without one, the library is built with
# `cargo build --release` (honouring CARGO_TARGET_DIR, default target/) and installed into a temporary
# prefix, so the tests always run against a freshly built library.
#
# Toolchain: `swift` from PATH when there is one. Otherwise (Debian bookworm has no Swift package) a
# minimal Debian trixie chroot with trixie's swiftlang (Swift 6.0.x) is created once with debootstrap
# and cached outside the repo in ${XDG_CACHE_HOME:-~/.cache}/libreactor/swift-trixie (about 2.7 GB,
# ~4 minutes the first time; needs root; the mirror is the Debian archive named in apt's sources, or
# DEBIAN_MIRROR). Each run, in a mount namespace of its own, bind-mounts /proc, /dev and the prefix
# into it (unmounted again on exit) and builds a copy of the package there; SwiftPM's build directory
# is kept in the cache so that a repeated run only recompiles what changed (~10 s for a cached
# `test`).
#
# `test` ends with "swift: N passed" (N: XCTest tests executed over all backends, plus one for the demo).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-test}
PREFIX=${2:-}
PKG="$ROOT/bindings/swift"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/libreactor"
CHROOT="$CACHE/swift-trixie"
# The Debian archive that this machine's apt uses for its main suite (not security, not a snapshot).
DEBIAN_MIRROR=${DEBIAN_MIRROR:-}
SWIFT_JOBS=${SWIFT_JOBS:-2}
# `test` runs the XCTest suite once per backend (REACTOR_BACKEND); SWIFT_BACKENDS="epoll" narrows it.
read -r -a BACKENDS <<<"${SWIFT_BACKENDS:-epoll poll}"

say() { printf 'swift.sh: %s\n' "$*" >&2; }

# In the chroot case the script runs in a mount namespace of its own (when unshare can make one): the
# bind mounts into the chroot then vanish with the process, even if it is killed before its trap runs.
if ! command -v swift >/dev/null 2>&1 && [ -z "${SWIFT_SH_UNSHARED:-}" ] && [ "$(id -u)" -eq 0 ] &&
    command -v unshare >/dev/null 2>&1 && unshare -m --propagation private true 2>/dev/null; then
    SWIFT_SH_UNSHARED=1 exec unshare -m --propagation private "$0" "$@"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/libreactor-swift.XXXXXX")
MOUNTS=()
cleanup() {
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount -l "${MOUNTS[$i]}" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

find_mirror() {
    if [ -n "$DEBIAN_MIRROR" ]; then echo "$DEBIAN_MIRROR"; return; fi
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # deb822 "URIs:" lines and one-line "deb URI suite ..." entries; skip security and snapshots.
        awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }
             /^deb / { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$f"
    done | grep -E '/debian/?$' | grep -v -e security -e snapshot | head -1
}

# Prepare the trixie chroot (once; a marker file says it is complete).
prepare_chroot() {
    mkdir -p "$CACHE"
    exec 9>"$CACHE/swift-trixie.lock"
    flock 9
    # Mounts left under the chroot by a run that was killed (without a namespace of its own): with the
    # lock held nobody uses them.
    local m
    while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
        awk -v root="$CHROOT/" 'index($2, root) == 1 { print $2 }' /proc/self/mounts | sort -r)
    if [ -f "$CHROOT/.complete" ]; then return; fi
    if awk -v root="$CHROOT/" 'index($2, root) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
        say "$CHROOT still has mounts; not removing it"
        exit 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        say "no swift on PATH, and creating the trixie chroot needs root"
        exit 1
    fi
    local mirror
    mirror=$(find_mirror)
    mirror=${mirror%/}
    if [ -z "$mirror" ]; then
        say "cannot find the Debian mirror in /etc/apt/sources.list*; set DEBIAN_MIRROR"
        exit 1
    fi
    if command -v curl >/dev/null 2>&1 && ! curl -fsS -o /dev/null "$mirror/dists/trixie/Release"; then
        say "$mirror/dists/trixie/Release cannot be downloaded"
        exit 1
    fi
    command -v debootstrap >/dev/null 2>&1 || {
        apt-get update -qq || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    }
    say "creating the Swift toolchain chroot in $CHROOT (Debian trixie from $mirror; once, several minutes)"
    rm -rf --one-file-system "$CHROOT"
    debootstrap --variant=minbase trixie "$CHROOT" "$mirror" >"$WORK/debootstrap.log" 2>&1 || {
        tail -n 30 "$WORK/debootstrap.log"; say "debootstrap failed"; exit 1; }
    mount_chroot_base
    chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends swiftlang libc6-dev pkgconf' \
        >"$WORK/apt.log" 2>&1 || { tail -n 30 "$WORK/apt.log"; say "apt-get install swiftlang failed"; exit 1; }
    chroot "$CHROOT" /usr/bin/apt-get clean
    touch "$CHROOT/.complete"
}

mounted_base=""
mount_chroot_base() {
    [ -z "$mounted_base" ] || return 0
    mount -t proc proc "$CHROOT/proc"; MOUNTS+=("$CHROOT/proc")
    mount --bind /dev "$CHROOT/dev"; MOUNTS+=("$CHROOT/dev")
    mounted_base=1
}

# run_swift ARGS... (defined below) runs `swift ARGS` in a copy of the package, with the library found
# through pkg-config; inside the chroot when there is no swift on PATH.
USE_CHROOT=""
if ! command -v swift >/dev/null 2>&1; then USE_CHROOT=1; fi

case "$cmd" in
env)
    if [ -n "$USE_CHROOT" ]; then
        prepare_chroot
        mount_chroot_base
        echo "chroot $CHROOT ($(chroot "$CHROOT" /usr/bin/swift --version 2>/dev/null | head -1))"
    else
        echo "$(command -v swift) ($(swift --version 2>&1 | head -1))"
    fi
    exit 0
    ;;
test|demo|bench) ;;
*)
    echo "usage: scripts/swift.sh test|demo|bench|env [PREFIX]" >&2
    exit 2
    ;;
esac

# The library: a given prefix, or a fresh build installed into a temporary one.
if [ -z "$PREFIX" ]; then
    target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
    say "cargo build --release (CARGO_TARGET_DIR=$target_dir)"
    (cd "$ROOT" && CARGO_TARGET_DIR=$target_dir cargo build --release)
    PREFIX="$WORK/prefix"
    "$ROOT/scripts/install.sh" --artifacts "$target_dir/release" --prefix "$PREFIX" >/dev/null
fi
if [ ! -f "$PREFIX/include/reactor.h" ]; then
    say "no libreactor install in $PREFIX"
    exit 1
fi
PREFIX=$(cd "$PREFIX" && pwd)

if [ -n "$USE_CHROOT" ]; then
    prepare_chroot
    mount_chroot_base
    # The prefix at a fixed path inside the chroot (so SwiftPM's build cache is not invalidated by a new
    # temporary prefix each run), with a reactor.pc rewritten for that path.
    IN_PREFIX=/opt/libreactor
    mkdir -p "$CHROOT$IN_PREFIX"
    mount --bind "$PREFIX" "$CHROOT$IN_PREFIX"; MOUNTS+=("$CHROOT$IN_PREFIX")
    mkdir -p "$CHROOT/work/pkgconfig"
    # (SwiftPM would drop the -Wl,-rpath of Libs: with a warning; the rpath is passed explicitly below.)
    sed -e "s|^prefix=.*|prefix=$IN_PREFIX|" -e 's/ *-Wl,-rpath,[^ ]*//g' \
        "$PREFIX/lib/pkgconfig/reactor.pc" >"$CHROOT/work/pkgconfig/reactor.pc"
    # A copy of the package (mtimes kept, so unchanged sources are not recompiled); build dir cached.
    rm -rf "$CHROOT/work/swift"
    mkdir -p "$CHROOT/work/swift"
    (cd "$PKG" && tar --exclude=.build --exclude=.swiftpm -cf - .) | (cd "$CHROOT/work/swift" && tar -xf -)
    IN_SRC=/work/swift
    IN_BUILD=/work/build
    run_swift() {
        chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp \
            LANG=C.UTF-8 PKG_CONFIG_PATH=/work/pkgconfig \
            ${REACTOR_BACKEND:+REACTOR_BACKEND=$REACTOR_BACKEND} \
            sh -c 'cd "$0" && exec "$@"' "$IN_SRC" swift "$@"
    }
else
    IN_PREFIX=$PREFIX
    IN_SRC="$WORK/swift"
    IN_BUILD="$CACHE/swift-build"
    # One run at a time per build directory (the chroot's lock, taken in prepare_chroot, does the same).
    mkdir -p "$CACHE"
    exec 9>"$CACHE/swift-build.lock"
    flock 9
    mkdir -p "$IN_SRC"
    (cd "$PKG" && tar --exclude=.build --exclude=.swiftpm -cf - .) | (cd "$IN_SRC" && tar -xf -)
    run_swift() {
        (cd "$IN_SRC" && PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" swift "$@")
    }
fi

# A changed reactor.h starts the cached build over (SwiftPM does not always notice a system header change).
header_sum=$(sha256sum "$PREFIX/include/reactor.h" | cut -c1-16)
build_dir_host=$IN_BUILD
if [ -n "$USE_CHROOT" ]; then build_dir_host=$CHROOT$IN_BUILD; fi
if [ "$(cat "$build_dir_host.header" 2>/dev/null)" != "$header_sum" ]; then
    rm -rf "$build_dir_host"
    mkdir -p "$(dirname "$build_dir_host")"
    echo "$header_sum" >"$build_dir_host.header"
fi

# SwiftPM drops the .pc file's rpath: the library directory is passed to the linker explicitly.
SWIFT_FLAGS=(--scratch-path "$IN_BUILD" -j "$SWIFT_JOBS"
    -Xlinker -rpath -Xlinker "$IN_PREFIX/lib" -Xswiftc -warnings-as-errors)

run_swift --version 2>&1 | head -1

demo() {
    echo "--- swift build --product demo && run it"
    run_swift build "${SWIFT_FLAGS[@]}" --product demo 2>&1 | tee "$WORK/demo-build.log"
    run_swift run "${SWIFT_FLAGS[@]}" --skip-build demo 2>&1 | tee "$WORK/demo.log"
}

case "$cmd" in
demo)
    demo
    ;;
bench)
    echo "--- swift build -c release --product bench && run it"
    run_swift build "${SWIFT_FLAGS[@]}" -c release --product bench 2>&1 | grep -v '^\[' || true
    run_swift run "${SWIFT_FLAGS[@]}" -c release --skip-build bench
    ;;
test)
    echo "--- swift build --build-tests"
    run_swift build "${SWIFT_FLAGS[@]}" --build-tests 2>&1 | tee "$WORK/build.log"
    # (SwiftPM's note that it drops the .pc file's -Wl,-rpath is expected: the rpath is passed above.)
    if grep 'warning:' "$WORK/build.log" | grep -qv 'prohibited flag(s): -Wl,-rpath'; then
        say "the build printed warnings"
        exit 1
    fi
    n=0
    for backend in "${BACKENDS[@]}"; do
        echo "--- swift test (REACTOR_BACKEND=$backend)"
        set +e
        REACTOR_BACKEND=$backend run_swift test "${SWIFT_FLAGS[@]}" --skip-build 2>&1 | tee "$WORK/test.$backend.log"
        rc=${PIPESTATUS[0]}
        set -e
        # XCTest's summary: "Executed N tests, with F failures (U unexpected) in ..." (the last is the total).
        # (With skips: "Executed N tests, with S tests skipped and F failures ...".)
        summary=$(grep -E 'Executed [0-9]+ tests?, with .*[0-9]+ failures?' "$WORK/test.$backend.log" | tail -1 || true)
        count=$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<<"$summary")
        failures=$(sed -E 's/.* ([0-9]+) failures?.*/\1/' <<<"$summary")
        if [ "$rc" -ne 0 ] || [ -z "$summary" ] || [ "$failures" != 0 ] || [ "$count" -eq 0 ]; then
            say "swift test failed (REACTOR_BACKEND=$backend, exit $rc)"
            exit 1
        fi
        n=$((n + count))
    done
    demo
    if ! grep -q '^demo: ok$' "$WORK/demo.log"; then
        say "the demo did not finish with 'demo: ok'"
        exit 1
    fi
    echo "swift: $((n + 1)) passed"
    ;;
esac
