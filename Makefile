# libreactor — build, install, demo and test entry points.
#
#   make demo      build, install into build/prefix, compile c-examples/demo.c with pkg-config, run it
#   make test      the whole suite (scripts/test.sh)
#   make swift     the Swift binding's build and tests (scripts/swift.sh test); make swift-demo its demo
#   make install   PREFIX=/usr/local DESTDIR=
#   make abi-baseline  regenerate the committed ABI baseline abi/libreactor.so.0.abi (tests/abi.rs)
#
# Targets that need system packages depend on `deps` (scripts/deps.sh: a no-op when all is present).

PREFIX  ?= /usr/local
DESTDIR ?=
CARGO   ?= cargo
PYTHON  ?= python3
CC      ?= cc
EXAMPLE_CFLAGS ?= -std=c11 -O2 -g -Wall -Wextra -Werror

# Private install used by demo and examples.
STAGE    := $(CURDIR)/build/prefix
PKGCONF  := PKG_CONFIG_PATH=$(STAGE)/lib/pkgconfig pkg-config
EXAMPLES := $(wildcard c-examples/*.c)

.PHONY: all install stage demo examples test bench header abi-baseline deps clean loom tsan swift swift-demo

all:
	$(CARGO) build --release

install: all
	scripts/install.sh --artifacts target/release --prefix "$(PREFIX)" --destdir "$(DESTDIR)"

# Install into build/prefix (what demo and examples link against).
stage: deps all
	scripts/install.sh --artifacts target/release --prefix "$(STAGE)"

demo: stage
	@mkdir -p build/examples
	$(CC) $(EXAMPLE_CFLAGS) -o build/examples/demo c-examples/demo.c $$($(PKGCONF) --cflags --libs reactor) -pthread
	./build/examples/demo

examples: stage
	@mkdir -p build/examples
	@set -e; for src in $(EXAMPLES); do \
	  out=build/examples/$$(basename $$src .c); \
	  echo "$(CC) $(EXAMPLE_CFLAGS) -o $$out $$src \$$(pkg-config --cflags --libs reactor) -pthread"; \
	  $(CC) $(EXAMPLE_CFLAGS) -o $$out $$src $$($(PKGCONF) --cflags --libs reactor) -pthread; \
	done

test:
	scripts/test.sh

# The loom model of the waker handshake (also part of `make test`).
loom:
	scripts/loom.sh

# The Swift binding (bindings/swift): swift build + swift test per backend + the demo, against build/prefix
# (part of `make test`; without swift on PATH, in a Debian trixie chroot that scripts/swift.sh caches).
swift: stage
	scripts/swift.sh test "$(STAGE)"

# The Swift demo (timers, a worker thread, an echo server).
swift-demo: stage
	scripts/swift.sh demo "$(STAGE)"

# ThreadSanitizer: the Rust tests and the threaded C tests against a TSan build (nightly; part of `make test`).
tsan:
	scripts/tsan.sh

bench: deps
	$(PYTHON) bench/run.py

# Regenerate the committed include/reactor.h from the Rust sources (cbindgen, via build.rs).
header:
	REACTOR_UPDATE_HEADER=1 $(CARGO) build

# Regenerate the committed ABI baseline from a fresh release build (abidw, via tests/abi.rs, which then
# checks the library against it). It prints what changed from the old baseline: read it before committing.
abi-baseline: deps
	REACTOR_UPDATE_ABI=1 REACTOR_REQUIRE_ABIGAIL=1 $(CARGO) test --release --test abi -- --nocapture

deps:
	@scripts/deps.sh

clean:
	$(CARGO) clean
	rm -rf build
