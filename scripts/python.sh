#!/usr/bin/env bash
# The Python binding (bindings/python), built against an installed libreactor:
#
#   scripts/python.sh test [PREFIX]    pytest (every backend), Twisted's reactor tests on our reactor and
#                                      on EPollReactor side by side (once per backend), and packaging:
#                                      `pip install` from pkg-config and a wheel from `python -m build`,
#                                      each in a fresh virtual environment
#   scripts/python.sh test-backend PREFIX BACKEND
#                                      pytest and Twisted's suite on that backend only (make test uses
#                                      it for kqueue, with a libkqueue build of the library)
#   scripts/python.sh bench [PREFIX]   bench/python/bench_twisted.py: our Twisted reactor vs EPollReactor
#   scripts/python.sh env              print the path of the virtual environment (created if needed)
#
# PREFIX is a libreactor install (default: build/prefix, filled by `make stage` when missing). The
# virtual environment with the pinned test requirements (bindings/python/requirements-test.txt) is
# cached outside the repo, in ${XDG_CACHE_HOME:-~/.cache}/libreactor/python-<hash of that file>.
# `test` ends with "python: N passed" (N: pytest tests, our reactor's passing Twisted tests per
# backend, and one per packaging check).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-test}
PREFIX=${2:-}
PYTHON=${PYTHON:-python3}
BACKENDS=(epoll poll)

if [ -z "$PREFIX" ]; then
    PREFIX="$ROOT/build/prefix"
    [ -f "$PREFIX/include/reactor.h" ] || make -C "$ROOT" stage >/dev/null
fi
if [ ! -f "$PREFIX/include/reactor.h" ]; then
    echo "python.sh: no libreactor install in $PREFIX" >&2
    exit 1
fi
PREFIX=$(cd "$PREFIX" && pwd)

requirements="$ROOT/bindings/python/requirements-test.txt"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/libreactor/python-$(sha256sum "$requirements" | cut -c1-12)"
if [ ! -f "$venv/.complete" ]; then
    echo "python.sh: creating $venv"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q -r "$requirements"
    touch "$venv/.complete"
fi
py="$venv/bin/python"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/libreactor-python.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Builds happen in a clean copy of the package: setuptools reuses an in-tree build/ directory, and
# with it an extension linked against whichever prefix an earlier build used.
SRC="$WORK/python-src"
(cd "$ROOT/bindings/python" && mkdir -p "$SRC" && cp -r pyproject.toml setup.py README.md src "$SRC/")
rm -rf "$SRC/build" "$SRC"/src/*.egg-info

install_binding() {
    # No build isolation: the venv already has the pinned setuptools and cffi.
    LIBREACTOR_PREFIX="$PREFIX" "$py" -m pip install -q --no-build-isolation --no-deps \
        --force-reinstall "$SRC"
}

case "$cmd" in
env)
    echo "$venv"
    ;;
test-backend)
    backend=${3:?usage: scripts/python.sh test-backend PREFIX BACKEND}
    install_binding
    echo "--- pytest (bindings/python/tests), backend $backend"
    (cd "$WORK" && LIBREACTOR_TEST_BACKENDS=$backend "$py" -m pytest -p no:cacheprovider -q \
        "$ROOT/bindings/python/tests") | tee "$WORK/pytest.log"
    n=$(grep -oE '^[0-9]+ passed' "$WORK/pytest.log" | tail -1 | cut -d' ' -f1)
    if [ -z "$n" ] || grep -qE '[0-9]+ (failed|error)' "$WORK/pytest.log"; then
        echo "python.sh: pytest failed" >&2
        exit 1
    fi
    echo "--- Twisted's reactor tests, libreactor ($backend) vs EPollReactor"
    (cd "$WORK" && "$py" "$ROOT/bindings/python/tests/run_twisted_suite.py" --backend "$backend") \
        | tee "$WORK/twisted-$backend.log"
    t=$(awk '/^libreactor \(/ { print $(NF-5) }' "$WORK/twisted-$backend.log")
    echo "python: $((n + t)) passed"
    ;;
bench)
    install_binding
    "$py" "$ROOT/bench/python/bench_twisted.py" "${@:3}"
    ;;
test)
    install_binding
    passed=0

    echo "--- pytest (bindings/python/tests)"
    # From a directory outside the source tree, so the installed package is the one imported.
    (cd "$WORK" && "$py" -m pytest -p no:cacheprovider -q "$ROOT/bindings/python/tests") \
        | tee "$WORK/pytest.log"
    n=$(grep -oE '^[0-9]+ passed' "$WORK/pytest.log" | tail -1 | cut -d' ' -f1)
    if [ -z "$n" ] || grep -qE '[0-9]+ (failed|error)' "$WORK/pytest.log"; then
        echo "python.sh: pytest failed" >&2
        exit 1
    fi
    passed=$((passed + n))

    for backend in "${BACKENDS[@]}"; do
        echo "--- Twisted's reactor tests, libreactor ($backend) vs EPollReactor"
        (cd "$WORK" && "$py" "$ROOT/bindings/python/tests/run_twisted_suite.py" --backend "$backend") \
            | tee "$WORK/twisted-$backend.log"
        n=$(awk '/^libreactor \(/ { print $(NF-5) }' "$WORK/twisted-$backend.log")
        passed=$((passed + n))
    done

    echo "--- packaging: pip install (library found through pkg-config) in a fresh venv"
    "$PYTHON" -m venv "$WORK/venv-pip"
    rm -rf "$SRC/build" "$SRC"/src/*.egg-info
    PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" "$WORK/venv-pip/bin/python" -m pip install -q "$SRC"
    smoke='import libreactor; r = libreactor.Reactor(); r.call_later(0, r.stop); r.run(); print("ok:", libreactor.version(), r.backend)'
    (cd "$WORK" && "$WORK/venv-pip/bin/python" -c "$smoke")
    passed=$((passed + 1))

    echo "--- packaging: a wheel from python -m build, installed in a fresh venv"
    rm -rf "$SRC/build" "$SRC"/src/*.egg-info
    LIBREACTOR_PREFIX="$PREFIX" "$py" -m build --wheel --outdir "$WORK/wheels" "$SRC" \
        >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
    "$PYTHON" -m venv "$WORK/venv-wheel"
    "$WORK/venv-wheel/bin/python" -m pip install -q "$WORK"/wheels/*.whl
    (cd "$WORK" && "$WORK/venv-wheel/bin/python" -c "$smoke")
    passed=$((passed + 1))

    echo "python: $passed passed"
    ;;
*)
    echo "usage: scripts/python.sh test|bench|env [PREFIX]" >&2
    exit 2
    ;;
esac
