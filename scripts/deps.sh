#!/bin/sh
# Install what building, testing and benchmarking libreactor needs on Debian bookworm (golang-go only
# when no `go` is on PATH).
# Fast and silent when everything is present: apt-get runs only if a package is missing.
set -eu

# python3-venv and python3-dev: the Python binding (scripts/python.sh builds its cffi extension).
PACKAGES="pkg-config valgrind gcc make cmake libuv1-dev libevent-dev libev-dev abigail-tools python3 python3-venv python3-dev"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "deps.sh: need root to run: $*" >&2
        exit 1
    fi
}

missing=
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || missing="$missing $p"
done
# The Go binding (bindings/go) needs a Go toolchain >= 1.19; Debian bookworm's golang-go is 1.19.
command -v go >/dev/null 2>&1 || missing="$missing golang-go"
if [ -n "$missing" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "deps.sh: missing packages:$missing (no apt-get here; install them by hand)" >&2
        exit 1
    fi
    echo "deps.sh: installing$missing"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "deps.sh: cargo not found; install Rust with rustup (https://rustup.rs) and re-run" >&2
    exit 1
fi
# rustfmt and clippy: `cargo fmt/clippy --version` fail when the rustup component is absent.
for c in rustfmt clippy; do
    case $c in rustfmt) sub=fmt ;; clippy) sub=clippy ;; esac
    if ! cargo "$sub" --version >/dev/null 2>&1; then
        if command -v rustup >/dev/null 2>&1; then
            echo "deps.sh: adding rustup component $c"
            rustup component add "$c" >/dev/null
        else
            echo "deps.sh: cargo $sub is missing and rustup is not available" >&2
            exit 1
        fi
    fi
done

# ThreadSanitizer (scripts/tsan.sh) needs a nightly toolchain with rust-src (-Zbuild-std).
if command -v rustup >/dev/null 2>&1; then
    if ! rustup run nightly rustc --version >/dev/null 2>&1; then
        echo "deps.sh: installing the nightly Rust toolchain (for ThreadSanitizer)"
        rustup toolchain install nightly --profile minimal --component rust-src >/dev/null
    elif ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
        echo "deps.sh: adding rust-src to the nightly toolchain (for ThreadSanitizer)"
        rustup component add rust-src --toolchain nightly >/dev/null
    fi
fi
