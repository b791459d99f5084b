#!/bin/sh
# Install libreactor's build artifacts under a prefix.
#
#   scripts/install.sh --artifacts DIR --prefix PREFIX [--destdir DESTDIR]
#
# DIR holds libreactor.so and libreactor.a (e.g. target/release). Installs:
#   $DESTDIR$PREFIX/lib/libreactor.so.X.Y.Z  (+ symlinks libreactor.so.X -> it, libreactor.so -> .so.X)
#   $DESTDIR$PREFIX/lib/libreactor.a
#   $DESTDIR$PREFIX/include/reactor.h
#   $DESTDIR$PREFIX/lib/pkgconfig/reactor.pc (prefix=PREFIX, without DESTDIR)
# Re-running it replaces everything atomically (files are written next to their target, then renamed).
set -eu

usage() {
    echo "usage: $0 --artifacts DIR --prefix PREFIX [--destdir DESTDIR]" >&2
    exit 2
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARTIFACTS=
PREFIX=
DESTDIR=
while [ $# -gt 0 ]; do
    case $1 in
        --artifacts) [ $# -ge 2 ] || usage; ARTIFACTS=$2; shift 2 ;;
        --prefix)    [ $# -ge 2 ] || usage; PREFIX=$2; shift 2 ;;
        --destdir)   [ $# -ge 2 ] || usage; DESTDIR=$2; shift 2 ;;
        --artifacts=*) ARTIFACTS=${1#*=}; shift ;;
        --prefix=*)    PREFIX=${1#*=}; shift ;;
        --destdir=*)   DESTDIR=${1#*=}; shift ;;
        -h|--help) usage ;;
        *) echo "install.sh: unknown argument: $1" >&2; usage ;;
    esac
done
[ -n "$ARTIFACTS" ] && [ -n "$PREFIX" ] || usage
case $PREFIX in
    /*) ;;
    *) echo "install.sh: --prefix must be an absolute path (got '$PREFIX')" >&2; exit 2 ;;
esac
# Drop trailing slashes ("/" becomes "", so paths below never start with "//").
while [ "${PREFIX%/}" != "$PREFIX" ]; do PREFIX=${PREFIX%/}; done

# Relative artifact paths are taken from the repository root, like every other path here.
case $ARTIFACTS in
    /*) ;;
    *) ARTIFACTS=$ROOT/$ARTIFACTS ;;
esac

# Version: the first `version = "..."` line of Cargo.toml's [package] section.
VERSION=$(awk '
    /^\[/ { in_pkg = ($0 ~ /^\[package\][[:space:]]*$/) ; next }
    in_pkg && /^[[:space:]]*version[[:space:]]*=/ {
        sub(/^[^"]*"/, ""); sub(/".*$/, ""); print; exit
    }' "$ROOT/Cargo.toml")
case $VERSION in
    [0-9]*.[0-9]*.[0-9]*) ;;
    *) echo "install.sh: cannot read [package] version from $ROOT/Cargo.toml (got '$VERSION')" >&2; exit 1 ;;
esac
MAJOR=${VERSION%%.*}

SO=$ARTIFACTS/libreactor.so
A=$ARTIFACTS/libreactor.a
H=$ROOT/include/reactor.h
PC_IN=$ROOT/reactor.pc.in
for f in "$SO" "$A" "$H" "$PC_IN"; do
    [ -f "$f" ] || { echo "install.sh: missing $f (build first: make all)" >&2; exit 1; }
done

LIBDIR=$DESTDIR$PREFIX/lib
INCDIR=$DESTDIR$PREFIX/include
PCDIR=$LIBDIR/pkgconfig
mkdir -p "$LIBDIR" "$INCDIR" "$PCDIR"

# put SRC DEST MODE: copy next to DEST, then rename over it. A running process that has the old
# libreactor.so mapped keeps its (now unlinked) copy instead of seeing the file change under it.
put() {
    tmp="$2.tmp.$$"
    rm -f "$tmp"
    cp "$1" "$tmp"
    chmod "$3" "$tmp"
    mv -f "$tmp" "$2"
}
# link TARGET NAME: NAME -> TARGET (relative), replacing whatever NAME was.
link() {
    tmp="$2.tmp.$$"
    rm -f "$tmp"
    ln -s "$1" "$tmp"
    mv -f "$tmp" "$2"
}

REAL=libreactor.so.$VERSION
put "$SO" "$LIBDIR/$REAL" 755
link "$REAL" "$LIBDIR/libreactor.so.$MAJOR"
link "libreactor.so.$MAJOR" "$LIBDIR/libreactor.so"
put "$A" "$LIBDIR/libreactor.a" 644
put "$H" "$INCDIR/reactor.h" 644

# reactor.pc: substitute @PREFIX@ and @VERSION@ (escaping sed's special characters in the prefix).
esc_prefix=$(printf '%s\n' "$PREFIX" | sed 's/[\\|&]/\\&/g')
tmp="$PCDIR/reactor.pc.tmp.$$"
sed -e "s|@PREFIX@|$esc_prefix|g" -e "s|@VERSION@|$VERSION|g" "$PC_IN" > "$tmp"
chmod 644 "$tmp"
mv -f "$tmp" "$PCDIR/reactor.pc"

echo "installed libreactor $VERSION into ${DESTDIR}${PREFIX:-/}"
