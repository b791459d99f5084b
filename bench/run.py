#!/usr/bin/env python3
"""Build and run the libreactor benchmark suite against libuv, libev, libevent and a raw-syscall
"floor", interleaved, and report medians and ratios.  Standard library only.

    python3 bench/run.py                  # 5 runs of every shape, writes BENCHMARKS.md
    python3 bench/run.py --quick          # smoke test: 1 run, small N, does not write BENCHMARKS.md
    python3 bench/run.py --only timers,async --runs 3
    python3 bench/run.py --only queuework --out /tmp/q.md   # thread pool vs libuv's uv_queue_work
    python3 bench/run.py --only closure --runs 3 --no-write  # call_from_thread with a malloc'd closure
    python3 bench/run.py --only net --out /tmp/n.md     # transports: pingpong, pump, churn, idle
    python3 bench/run.py --only udp --quick --no-write  # datagram ports: UDP echo, UDP receive flood
    python3 bench/run.py --only spawn --runs 5 --no-write  # child processes vs uv_spawn

libreactor is found, in this order:
  1. $REACTOR_PREFIX: an install prefix (PKG_CONFIG_PATH=$REACTOR_PREFIX/lib/pkgconfig, pkg-config
     name `reactor`, rpath to its libdir);
  2. `make -C <repo> install PREFIX=<repo>/build/prefix` if the Makefile has an install target
     (skipped with --no-make), then as 1;
  3. <repo>/include/reactor.h and <repo>/target/release/libreactor.so directly.
If none works, libreactor is skipped and the peers still run.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
BUILD = os.path.join(BENCH, "build")

LIBS = ["libreactor", "libuv", "libev", "libevent", "floor"]
PEERS = ["libuv", "libev", "libevent"]
SOURCES = {
    "libreactor": "bench_reactor.c",
    "libuv": "bench_libuv.c",
    "libev": "bench_libev.c",
    "libevent": "bench_libevent.c",
    "floor": "bench_floor.c",
}

# shapes with programs of their own (not in bench_<lib>.c): program -> {lib: source}; only the
# libraries listed run them
PROGRAMS = {
    "queuework": {"libreactor": "bench_queuework_reactor.c", "libuv": "bench_queuework_libuv.c"},
    # networking (API.md §6): both ends of every connection in one loop; shared code in net_common.h
    "net": {
        "libreactor": "bench_net_reactor.c",
        "libuv": "bench_net_libuv.c",
        "libev": "bench_net_libev.c",
        "libevent": "bench_net_libevent.c",
        "floor": "bench_net_floor.c",
    },
    # datagram ports (API.md §6.6) over 127.0.0.1; shared code in udp_common.h
    "udp": {
        "libreactor": "bench_udp_reactor.c",
        "libuv": "bench_udp_libuv.c",
        "libev": "bench_udp_libev.c",
        "libevent": "bench_udp_libevent.c",
        "floor": "bench_udp_floor.c",
    },
    # child processes (API.md §8.1) against uv_spawn; shared code in spawn_common.h
    "spawn": {"libreactor": "bench_spawn_reactor.c", "libuv": "bench_spawn_libuv.c"},
}
NET_SHAPES = ["pingpong_tcp", "pingpong_unix", "pump_tcp", "pump_unix", "churn_1", "churn_100", "idle"]
UDP_SHAPES = ["udp_echo_1", "udp_echo_32", "udp_flood"]
SPAWN_SHAPES = ["spawn_true", "spawn_capture"]
PROGRAM_OF_SHAPE = {
    "queuework": "queuework",
    "queuework_window": "queuework",
    "queuework_serial": "queuework",
    **{shape: "net" for shape in NET_SHAPES},
    **{shape: "udp" for shape in UDP_SHAPES},
    **{shape: "spawn" for shape in SPAWN_SHAPES},
}

# program shape -> (full params, quick params)
SHAPES = {
    "timers": (["n=1000000"], ["n=100000"]),
    "fanout": (["pipes=1000", "active=100", "writes=1000", "rounds=500"],
               ["pipes=1000", "active=100", "writes=1000", "rounds=50"]),
    "callthread": (["n=1000000"], ["n=100000"]),
    "callthread_paced": (["rate=100000", "secs=1.5"], ["rate=100000", "secs=0.3"]),
    "callthread_closure": (["n=1000000"], ["n=100000"]),
    "callthread_closure_paced": (["rate=100000", "secs=1.5"], ["rate=100000", "secs=0.3"]),
    "async": (["n=1000000"], ["n=100000"]),
    "queuework": (["n=1000000", "threads=4"], ["n=100000", "threads=4"]),
    "queuework_window": (["n=1000000", "window=64", "threads=4"], ["n=100000", "window=64", "threads=4"]),
    "queuework_serial": (["n=100000", "threads=4"], ["n=20000", "threads=4"]),
    "pingpong_tcp": (["n=100000"], ["n=10000"]),
    "pingpong_unix": (["n=100000"], ["n=10000"]),
    "pump_tcp": (["mb=2048"], ["mb=256"]),
    "pump_unix": (["mb=2048"], ["mb=256"]),
    "churn_1": (["n=20000"], ["n=2000"]),
    "churn_100": (["n=20000"], ["n=2000"]),
    "idle": (["n=10000"], ["n=2000"]),
    "udp_echo_1": (["n=100000"], ["n=10000"]),
    "udp_echo_32": (["n=100000"], ["n=10000"]),
    "udp_flood": (["n=1000000"], ["n=100000"]),
    "spawn_true": (["n=1000"], ["n=100"]),
    "spawn_capture": (["n=1000"], ["n=100"]),
}
# names accepted by --only -> program shapes
GROUPS = {
    "timers": ["timers"],
    "fanout": ["fanout"],
    "callthread": ["callthread", "callthread_paced"],
    "callthread_paced": ["callthread_paced"],
    "latency": ["callthread_paced"],
    # the same calls, each carrying a malloc'd 32-byte closure the callback frees
    "closure": ["callthread_closure", "callthread_closure_paced"],
    "callthread_closure": ["callthread_closure"],
    "callthread_closure_paced": ["callthread_closure_paced"],
    "async": ["async"],
    "queuework": ["queuework", "queuework_window", "queuework_serial"],
    "net": list(NET_SHAPES),
    "pingpong": ["pingpong_tcp", "pingpong_unix"],
    "pump": ["pump_tcp", "pump_unix"],
    "churn": ["churn_1", "churn_100"],
    "idle": ["idle"],
    "udp": list(UDP_SHAPES),
    "udp_echo": ["udp_echo_1", "udp_echo_32"],
    "udp_flood": ["udp_flood"],
    "spawn": list(SPAWN_SHAPES),
    "spawn_true": ["spawn_true"],
    "spawn_capture": ["spawn_capture"],
}

# rows of the report: (shape, metric, label, unit shown, direction) ; direction "up" = higher is
# better, "down" = lower is better, None = informational (no ratio)
ROWS = [
    ("timers", "rate", "timers: call_later 0-999 ms, fire all", "timers/CPU-s", "up"),
    ("timers", "rss_per_timer", "timers: peak RSS per timer", "B/timer", "down"),
    ("fanout", "cpu_per_event", "fanout: 1000 socketpairs, 100 active, 1000 writes", "CPU us/event", "down"),
    ("fanout", "round_median", "fanout: wall time per round (median)", "us/round", "down"),
    ("callthread", "rate", "callthread flood: calls from 1 thread", "calls/s", "up"),
    ("callthread_paced", "p50", "callthread paced 100k/s: one-way latency p50", "us", "down"),
    ("callthread_paced", "p99", "callthread paced 100k/s: one-way latency p99", "us", "down"),
    ("callthread_paced", "loop_cpu_per_call", "callthread paced 100k/s: loop-thread CPU per call", "us", "down"),
    ("callthread_closure", "rate", "callthread closure flood: malloc'd 32 B closure per call", "calls/s", "up"),
    ("callthread_closure_paced", "p50", "callthread closure paced 100k/s: one-way latency p50", "us", "down"),
    ("callthread_closure_paced", "p99", "callthread closure paced 100k/s: one-way latency p99", "us", "down"),
    ("callthread_closure_paced", "loop_cpu_per_call", "callthread closure paced 100k/s: loop-thread CPU per call",
     "us", "down"),
    ("async", "rate", "async: sends from 1 thread (coalescing)", "sends/s", "up"),
    ("async", "callbacks", "async: callbacks run for all sends", "count", None),
    ("queuework", "rate", "queuework: 1M pool jobs + done callback, all queued (4 threads)", "jobs/s", "up"),
    ("queuework_window", "rate", "queuework: 1M jobs, window of 64 in flight", "jobs/s", "up"),
    ("queuework_serial", "rate", "queuework: 100k serial round trips (window 1)", "jobs/s", "up"),
    ("queuework", "cpu_per_job", "queuework all queued: process CPU per job", "CPU us/job", "down"),
    ("queuework_window", "cpu_per_job", "queuework window 64: process CPU per job", "CPU us/job", "down"),
    ("queuework_serial", "cpu_per_job", "queuework serial: process CPU per job", "CPU us/job", "down"),
    ("pingpong_tcp", "cpu_per_rt", "pingpong TCP: 64 B, one in flight", "CPU ns/round trip", "down"),
    ("pingpong_unix", "cpu_per_rt", "pingpong UNIX: 64 B, one in flight", "CPU ns/round trip", "down"),
    ("pump_tcp", "mb_per_cpu_s", "pump TCP: 2 GiB in 64 KiB writes, <= 256 KiB queued", "MB/CPU-s", "up"),
    ("pump_unix", "mb_per_cpu_s", "pump UNIX: 2 GiB in 64 KiB writes, <= 256 KiB queued", "MB/CPU-s", "up"),
    ("churn_1", "rate", "connection churn: connect, 64 B exchange, close; 1 at a time", "conns/s", "up"),
    ("churn_100", "rate", "connection churn: 100 at a time", "conns/s", "up"),
    ("idle", "rss_per_conn", "idle: 10,000 open connections, loop process RSS", "B/conn", "down"),
    ("udp_echo_1", "cpu_per_rt", "UDP echo: 64 B datagrams, 1 in flight", "CPU ns/round trip", "down"),
    ("udp_echo_32", "cpu_per_rt", "UDP echo: 64 B datagrams, 32 in flight", "CPU ns/round trip", "down"),
    ("udp_flood", "rate", "UDP flood: 1M 64 B datagrams from a blocking sender thread, received",
     "datagrams/loop-CPU-s", "up"),
    ("udp_flood", "loss_pct", "UDP flood: datagrams dropped by the kernel (4 MiB SO_RCVBUF)", "% of sent", None),
    ("spawn_true", "rate", "spawn + reap /bin/true, 1000 in a row", "procs/s (wall)", "up"),
    ("spawn_capture", "rate", "spawn /bin/echo hi, stdout read through a pipe until EOF, reap; 1000 in a row",
     "procs/s (wall)", "up"),
    ("spawn_true", "cpu_per_proc", "spawn /bin/true: CPU of the spawning process per child", "CPU us/proc", None),
    ("spawn_capture", "cpu_per_proc", "spawn with stdout captured: CPU of the spawning process per child",
     "CPU us/proc", None),
]
# metrics that must be zero/absent; anything else is reported as a problem
SANITY = ["missing", "order_errors", "send_errors", "failures"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


# ------------------------------------------------------------------------------------------- build

def pkg_flags(pkgs, env=None):
    r = sh(["pkg-config", "--cflags", "--libs"] + pkgs, env=env)
    if r.returncode != 0:
        return None
    return shlex.split(r.stdout)


def reactor_flags_from_prefix(prefix):
    env = dict(os.environ)
    dirs = [os.path.join(prefix, d, "pkgconfig") for d in ("lib", "lib64", "share")]
    env["PKG_CONFIG_PATH"] = os.pathsep.join(dirs + [env.get("PKG_CONFIG_PATH", "")]).strip(os.pathsep)
    flags = pkg_flags(["reactor"], env)
    if flags is None:
        return None, "pkg-config cannot find `reactor` under %s" % prefix
    libdir = sh(["pkg-config", "--variable=libdir", "reactor"], env=env).stdout.strip()
    if libdir:
        flags.append("-Wl,-rpath," + libdir)
    return flags, "pkg-config reactor (prefix %s)" % prefix


def makefile_has_install():
    mk = os.path.join(ROOT, "Makefile")
    if not os.path.exists(mk):
        return False
    with open(mk) as f:
        return re.search(r"^install\s*:", f.read(), re.M) is not None


def reactor_flags(args):
    """-> (flags or None, description)"""
    prefix = os.environ.get("REACTOR_PREFIX")
    if prefix:
        return reactor_flags_from_prefix(os.path.abspath(prefix))
    notes = []
    if not args.no_make and makefile_has_install():
        prefix = os.path.join(ROOT, "build", "prefix")
        log("building libreactor: make -C %s install PREFIX=%s" % (ROOT, prefix))
        r = subprocess.run(["make", "-C", ROOT, "install", "PREFIX=" + prefix])
        if r.returncode == 0:
            flags, desc = reactor_flags_from_prefix(prefix)
            if flags:
                return flags, desc
            notes.append(desc)
        else:
            notes.append("make install failed (%d)" % r.returncode)
    # In-tree artifacts of an earlier `cargo build --release`, without building anything: install
    # them (a copy, so a rebuild during the run cannot change the library under us) into a private
    # prefix with the project's own scripts/install.sh, which also makes the SONAME symlinks.
    hdr = os.path.join(ROOT, "include", "reactor.h")
    libdir = os.path.join(ROOT, "target", "release")
    inst = os.path.join(ROOT, "scripts", "install.sh")
    if os.path.exists(hdr) and os.path.exists(os.path.join(libdir, "libreactor.so")):
        if os.path.exists(inst):
            prefix = os.path.join(BUILD, "reactor-prefix")
            r = sh(["sh", inst, "--artifacts", libdir, "--prefix", prefix])
            if r.returncode == 0:
                flags, desc = reactor_flags_from_prefix(prefix)
                if flags:
                    return flags, "target/release via scripts/install.sh into bench/build/reactor-prefix"
                notes.append(desc)
            else:
                notes.append("scripts/install.sh failed: " + r.stderr.strip()[-200:])
        notes.append("include/ + target/release exist but could not be installed")
    else:
        notes.append("no include/reactor.h + target/release/libreactor.so")
    return None, "; ".join(notes)


def build_program(exe, source, f):
    """-> error text or None"""
    cmd = [os.environ.get("CC", "cc"), "-O2", "-Wall", "-o", exe, os.path.join(BENCH, source)] + f + ["-lpthread"]
    r = sh(cmd)
    if r.returncode != 0:
        log("build of %s failed:\n  %s\n%s" % (source, " ".join(cmd), r.stderr))
        return "build failed: " + r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "build failed"
    if r.stderr.strip():
        log(r.stderr.strip())
    return None


def build_extra(shapes, built, lib_flags):
    """Builds the per-shape programs the selected shapes need -> {(program, lib): exe}"""
    extra = {}
    for prog in sorted({PROGRAM_OF_SHAPE[s] for s in shapes if s in PROGRAM_OF_SHAPE}):
        for lib, source in PROGRAMS[prog].items():
            if lib not in built:
                continue
            exe = os.path.join(BUILD, "bench_%s_%s" % (prog, lib))
            if build_program(exe, source, lib_flags[lib]) is None:
                extra[(prog, lib)] = exe
    return extra


def program_for(shape, lib, built, extra):
    """The executable that runs `shape` for `lib`, or None if that library has no such program."""
    if shape in PROGRAM_OF_SHAPE:
        return extra.get((PROGRAM_OF_SHAPE[shape], lib))
    return built.get(lib)


def build(args, libs):
    os.makedirs(BUILD, exist_ok=True)
    flags = {
        "libuv": pkg_flags(["libuv"]) or ["-luv"],
        "libev": ["-lev"],
        "libevent": pkg_flags(["libevent", "libevent_pthreads"]) or ["-levent", "-levent_pthreads"],
        "floor": [],
    }
    built, notes, lib_flags = {}, {}, {}
    for lib in libs:
        if lib == "libreactor":
            f, desc = reactor_flags(args)
            notes[lib] = desc
            if f is None:
                log("libreactor: skipped (%s)" % desc)
                continue
        else:
            f = flags[lib]
        exe = os.path.join(BUILD, "bench_" + lib)
        err = build_program(exe, SOURCES[lib], f)
        if err:
            notes[lib] = err
            continue
        built[lib] = exe
        lib_flags[lib] = f
    return built, notes, lib_flags


# --------------------------------------------------------------------------------------------- run

RESULT_RE = re.compile(r"^RESULT shape=(\S+) lib=(\S+) metric=(\S+) value=(\S+) unit=(\S+)")


def run_one(exe, shape, params, timeout):
    try:
        r = subprocess.run([exe, shape] + params, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timeout after %ds" % timeout, ""
    out = {}
    info = []
    for line in r.stdout.splitlines():
        m = RESULT_RE.match(line)
        if m:
            out[m.group(3)] = float(m.group(4))
        elif line.startswith("INFO"):
            info.append(line)
    if r.returncode != 0:
        err = (r.stdout.strip().splitlines() or [""])[-1] + " " + r.stderr.strip()[-300:]
        return None, "exit %d: %s" % (r.returncode, err.strip()), "\n".join(info)
    return out, None, "\n".join(info)


def fmt(v, unit=""):
    if v is None:
        return "—"
    a = abs(v)
    if a >= 1e9:
        return "%.2f G" % (v / 1e9)
    if a >= 1e6:
        return "%.2f M" % (v / 1e6)
    if a >= 1e4:
        return "%.0f k" % (v / 1e3)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    return "%.2f" % v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 run, smaller N; does not write BENCHMARKS.md")
    ap.add_argument("--only", default="", help="comma list: " + ",".join(GROUPS))
    ap.add_argument("--libs", default=",".join(LIBS), help="comma list of: " + ",".join(LIBS))
    ap.add_argument("--runs", type=int, default=None, help="runs per shape and library (default 5, quick 1)")
    ap.add_argument("--no-make", action="store_true", help="do not run `make install` for libreactor")
    ap.add_argument("--write", action="store_true", help="write BENCHMARKS.md even with --quick")
    ap.add_argument("--no-write", action="store_true", help="never write BENCHMARKS.md")
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    ap.add_argument("--timeout", type=int, default=60, help="per-process timeout, seconds")
    args = ap.parse_args()

    runs = args.runs if args.runs is not None else (1 if args.quick else 5)
    shapes = []
    for name in (args.only.split(",") if args.only else list(GROUPS)):
        name = name.strip()
        if not name:
            continue
        if name not in GROUPS:
            ap.error("unknown shape %r (choose from %s)" % (name, ", ".join(GROUPS)))
        for s in GROUPS[name]:
            if s not in shapes:
                shapes.append(s)
    shapes.sort(key=list(SHAPES).index)
    libs = [l.strip() for l in args.libs.split(",") if l.strip()]
    for l in libs:
        if l not in LIBS:
            ap.error("unknown library %r" % l)

    built, notes, lib_flags = build(args, libs)
    extra = build_extra(shapes, built, lib_flags)
    libs = [l for l in libs if l in built]
    if not libs:
        log("nothing built")
        return 1
    log("libraries: %s; shapes: %s; runs: %d%s" % (", ".join(libs), ", ".join(shapes), runs,
                                                    " (quick)" if args.quick else ""))

    load0 = cpu_snapshot()
    samples = {}   # (shape, lib, metric) -> [values]
    errors = []    # (shape, lib, run, message)
    infos = {}
    for run in range(runs):
        for shape in shapes:
            params = SHAPES[shape][1 if args.quick else 0]
            order = libs[run % len(libs):] + libs[:run % len(libs)]   # round-robin, rotated per run
            for lib in order:
                exe = program_for(shape, lib, built, extra)
                if exe is None:
                    continue
                res, err, info = run_one(exe, shape, params, args.timeout)
                if info:
                    infos[(shape, lib)] = info
                if err:
                    errors.append((shape, lib, run, err))
                    log("  run %d %-16s %-10s ERROR %s" % (run + 1, shape, lib, err))
                    continue
                for k, v in res.items():
                    samples.setdefault((shape, lib, k), []).append(v)
                main_metric = {"timers": "rate", "fanout": "cpu_per_event", "callthread": "rate",
                               "callthread_paced": "p50", "callthread_closure_paced": "p50",
                               "async": "rate", "udp_echo_1": "cpu_per_rt",
                               "udp_echo_32": "cpu_per_rt"}.get(shape, "rate")
                log("  run %d %-24s %-10s %s=%s" % (run + 1, shape, lib, main_metric,
                                                     fmt(res.get(main_metric))))

    other_load = other_cpu_load(load0, cpu_snapshot())
    if other_load is not None and other_load > 0.10:
        log("warning: other processes used %.0f%% of the machine's CPU during the runs; "
            "numbers are noisy" % (other_load * 100))
    med = {k: statistics.median(v) for k, v in samples.items()}
    problems = []
    for (shape, lib, metric), v in sorted(samples.items()):
        if metric in SANITY and any(x != 0 for x in v):
            problems.append("%s/%s: %s = %s" % (shape, lib, metric, v))
    for shape, lib, run, err in errors:
        problems.append("%s/%s run %d: %s" % (shape, lib, run + 1, err))

    report = render(args, runs, shapes, libs, med, samples, problems, notes, infos, other_load)
    report += go_binding_section()
    report += python_binding_section()
    report += swift_binding_section()
    report += kqueue_section()
    print(report)
    raw = {"%s|%s|%s" % k: v for k, v in samples.items()}
    with open(os.path.join(BUILD, "last_results.json"), "w") as f:
        json.dump({"runs": runs, "quick": args.quick, "samples": raw, "errors": errors}, f, indent=1)
    if (not args.quick or args.write) and not args.no_write:
        with open(args.out, "w") as f:
            f.write(report)
        log("wrote %s" % args.out)
    return 0 if not errors else 2


# ------------------------------------------------------------------------------------------ report

GO_NOTES = os.path.join(ROOT, "bindings", "go", "BENCHMARKS.md")


def go_binding_section():
    """The Go binding's `testing.B` results (measured with `go test -bench`, kept in bindings/go),
    included so BENCHMARKS.md stays the one place for numbers."""
    if not os.path.exists(GO_NOTES):
        return ""
    with open(GO_NOTES) as f:
        lines = f.read().splitlines()
    out = ["", "## Go binding (bindings/go): cost per crossing", "",
           "Included from `bindings/go/BENCHMARKS.md` (measured with `go test -bench`, not by run.py).", ""]
    for line in lines[1:]:  # its own title is replaced by the heading above
        out.append("#" + line if line.startswith("#") else line)
    return "\n".join(out) + "\n"

PYTHON_NOTES = os.path.join(ROOT, "bindings", "python", "BENCHMARKS.md")


def python_binding_section():
    """Twisted on libreactor against Twisted's EPollReactor (measured by bench/python/bench_twisted.py
    through `scripts/python.sh bench`, kept in bindings/python), included like the Go section."""
    if not os.path.exists(PYTHON_NOTES):
        return ""
    with open(PYTHON_NOTES) as f:
        lines = f.read().splitlines()
    out = ["", "## Python binding (bindings/python): Twisted on libreactor vs EPollReactor", "",
           "Included from `bindings/python/BENCHMARKS.md` (measured with `scripts/python.sh bench`, "
           "not by run.py).", ""]
    for line in lines[1:]:
        out.append("#" + line if line.startswith("#") else line)
    return "\n".join(out) + "\n"

SWIFT_NOTES = os.path.join(ROOT, "bindings", "swift", "BENCHMARKS.md")


def swift_binding_section():
    """The Swift binding's per-call costs (measured by bindings/swift/Examples/bench through
    `scripts/swift.sh bench`, kept in bindings/swift), included like the Go section."""
    if not os.path.exists(SWIFT_NOTES):
        return ""
    with open(SWIFT_NOTES) as f:
        lines = f.read().splitlines()
    out = ["", "## Swift binding (bindings/swift): cost per crossing", "",
           "Included from `bindings/swift/BENCHMARKS.md` (measured with `scripts/swift.sh bench`, "
           "not by run.py).", ""]
    for line in lines[1:]:
        out.append("#" + line if line.startswith("#") else line)
    return "\n".join(out) + "\n"

KQUEUE_NOTES = os.path.join(ROOT, "bench", "kqueue-libkqueue.md")


def kqueue_section():
    """The core shapes on the kqueue backend over libkqueue (Linux: kqueue emulated on epoll), kept in
    bench/kqueue-libkqueue.md (made with REACTOR_PREFIX=<a libkqueue build> REACTOR_BACKEND=kqueue
    run.py --only timers,fanout,callthread --out ...), for information: an emulation has no target."""
    if not os.path.exists(KQUEUE_NOTES):
        return ""
    with open(KQUEUE_NOTES) as f:
        return "\n" + f.read()


def cpu_snapshot():
    """(busy CPU seconds of the whole machine, CPU seconds of our finished children, wall time)"""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
        vals = [int(x) for x in fields]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)   # idle + iowait
        guest = sum(vals[8:10]) if len(vals) > 9 else 0      # already counted in user/nice
        busy = sum(vals[:8]) - idle - guest
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    me = resource.getrusage(resource.RUSAGE_SELF)
    return (busy / hz, ru.ru_utime + ru.ru_stime + me.ru_utime + me.ru_stime,
            __import__("time").monotonic())


def other_cpu_load(a, b):
    """fraction of all CPUs used by processes other than this script and its benchmarks"""
    if not a or not b or b[2] <= a[2]:
        return None
    other = (b[0] - a[0]) - (b[1] - a[1])
    return max(0.0, other / ((b[2] - a[2]) * (os.cpu_count() or 1)))


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    vers = {}
    for pkg in ("libuv1-dev", "libev-dev", "libevent-dev"):
        r = sh(["dpkg-query", "-W", "-f=${Version}", pkg])
        vers[pkg] = r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else "not installed"
    cc = sh([os.environ.get("CC", "cc"), "--version"]).stdout.splitlines()
    return {"nproc": os.cpu_count(), "model": model, "kernel": platform.release(),
            "versions": vers, "cc": cc[0] if cc else "?"}


def runs_better(mine, theirs, direction):
    """In how many paired runs libreactor beat the other library ("—" when a run is missing, so the
    pairs would not line up)."""
    if not mine or not theirs or len(mine) != len(theirs):
        return "—"
    won = sum(1 for a, b in zip(mine, theirs) if (a > b if direction == "up" else a < b))
    return "%d/%d" % (won, len(mine))


def render(args, runs, shapes, libs, med, samples, problems, notes, infos, other_load):
    m = machine()
    peers = [l for l in libs if l in PEERS]
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    L = []
    L.append("# libreactor benchmarks\n")
    L.append("Generated by `python3 bench/run.py%s` on %s.\n" % (
        " " + " ".join(sys.argv[1:]) if sys.argv[1:] else "", date))
    L.append("## Machine\n")
    L.append("- CPU: %s, nproc %s" % (m["model"], m["nproc"]))
    L.append("- kernel: %s; compiler: %s (`-O2`)" % (m["kernel"], m["cc"]))
    L.append("- peers (Debian packages): " + ", ".join("%s %s" % kv for kv in m["versions"].items()))
    ver = None
    for (shape, lib), info in infos.items():
        mm = re.search(r"version=(\S+) backend=(\S+)", info) if lib == "libreactor" else None
        if mm:
            ver = "%s (backend %s)" % (mm.group(1), mm.group(2))
    if "libreactor" in notes or ver:
        L.append("- libreactor: %s; built from %s" % (ver or "?", notes.get("libreactor", "?")))
    if other_load is not None:
        L.append("- other load: processes other than the benchmarks kept %.0f%% of the machine's CPU "
                 "busy during the runs%s" % (other_load * 100,
                                            " — **noisy, treat the numbers with care**" if other_load > 0.10 else ""))
    L.append("- runs: %d per shape and library, interleaved round-robin; values are medians%s\n" % (
        runs, "; **quick mode (small N), not representative**" if args.quick else ""))

    L.append("## Results (medians)\n")
    hdr = ["benchmark", "unit", "better"] + libs
    L.append("| " + " | ".join(hdr) + " |")
    L.append("|" + "---|" * len(hdr))
    for shape, metric, label, unit, direction in ROWS:
        if shape not in shapes:
            continue
        cells = [label, unit, {"up": "higher", "down": "lower", None: "—"}[direction]]
        for lib in libs:
            v = med.get((shape, lib, metric))
            cells.append(fmt(v))
        L.append("| " + " | ".join(cells) + " |")
    L.append("")

    if "libreactor" in libs:
        L.append("## Ratios: libreactor / other\n")
        L.append("For throughput rows (`higher`) a ratio > 1 means libreactor is better; for latency, "
                 "memory and CPU-per-event rows (`lower`) a ratio < 1 means libreactor is better. "
                 "\"best peer\" is the best of libuv, libev and libevent in this run; ✓ marks rows where "
                 "libreactor is at least as good as the best peer. \"runs better\" pairs the runs (the same "
                 "round of the interleaved order) and counts those in which libreactor beat that peer "
                 "(libuv: the peer several issues name): all or none of them is a clear result; anything "
                 "in between means the spread decides the row.\n")
        others = [l for l in libs if l != "libreactor"]
        hdr = ["benchmark", "better"] + ["vs " + l for l in others] + (
            ["vs best peer", "", "runs better than best peer", "runs better than libuv"] if peers else [])
        L.append("| " + " | ".join(hdr) + " |")
        L.append("|" + "---|" * len(hdr))
        for shape, metric, label, unit, direction in ROWS:
            if shape not in shapes or direction is None:
                continue
            mine = med.get((shape, "libreactor", metric))
            cells = [label, "ratio > 1" if direction == "up" else "ratio < 1"]
            for o in others:
                v = med.get((shape, o, metric))
                cells.append("%.2f" % (mine / v) if mine is not None and v else "—")
            if peers:
                pv = [med.get((shape, p, metric)) for p in peers]
                pv = [(v, p) for v, p in zip(pv, peers) if v]
                if pv and mine is not None:
                    best, bp = (max if direction == "up" else min)(pv)
                    ratio = mine / best
                    ok = ratio >= 1 if direction == "up" else ratio <= 1
                    mine_runs = samples.get((shape, "libreactor", metric))
                    cells += ["%.2f (%s)" % (ratio, bp), "✓" if ok else "✗",
                              runs_better(mine_runs, samples.get((shape, bp, metric)), direction),
                              runs_better(mine_runs, samples.get((shape, "libuv", metric)), direction)]
                else:
                    cells += ["—", "", "—", "—"]
            L.append("| " + " | ".join(cells) + " |")
        L.append("")

    L.append("## Spread (min – max over runs)\n")
    hdr = ["benchmark"] + libs
    L.append("| " + " | ".join(hdr) + " |")
    L.append("|" + "---|" * len(hdr))
    for shape, metric, label, unit, direction in ROWS:
        if shape not in shapes or direction is None:
            continue
        cells = [label + " (" + unit + ")"]
        for lib in libs:
            v = samples.get((shape, lib, metric))
            cells.append("%s – %s" % (fmt(min(v)), fmt(max(v))) if v else "—")
        L.append("| " + " | ".join(cells) + " |")
    L.append("")

    if problems:
        L.append("## Problems seen\n")
        for p in problems:
            L.append("- " + p)
        L.append("")
    skipped = [l for l in notes if l not in libs]
    for l in skipped:
        L.append("- %s not measured: %s" % (l, notes[l]))
    if skipped:
        L.append("")

    L.append("## Method\n")
    L.append("""\
Each shape is a small C program per library (`bench/bench_<lib>.c`, shared code in `bench/common.h`),
compiled with `cc -O2`, run as a fresh process per measurement. For every run, each shape is run once
per library in round-robin order (rotated each run), so slow drifts of the machine hit all libraries
alike; the table shows the median of the runs. Only local sockets (socketpairs, 127.0.0.1, UNIX
sockets), pipes and eventfds are used; every program has a watchdog.

- **timers**: N = 1M one-shot timers with delays 0–999 ms from a fixed-seed splitmix64 sequence
  (identical for every library), scheduled back to back, then the loop runs until all have fired.
  Rate = N / (user+sys CPU time from `getrusage`, over scheduling + firing). Memory = (peak RSS after
  − peak RSS before scheduling) / N, so it counts what the caller must allocate too (a `uv_timer_t` or
  `ev_timer` per timer; `event_new` per timer for libevent, freed when it fires; libreactor's
  `reactor_call_later(..., out=NULL)` owns everything). libreactor stops with `reactor_stop` from the
  last callback; the peers return when no timer is left.
- **fanout**: libevent's `test/bench.c`: 1000 AF_UNIX socketpairs each with a persistent read watcher,
  100 active: a round writes one byte into 100 evenly spaced pairs; each read callback reads 1 byte and
  writes one to the next pair until 1000 writes happened (1100 reads per round). The loop is driven by
  non-blocking passes (`EVLOOP_ONCE|EVLOOP_NONBLOCK`, `UV_RUN_NOWAIT`, `EVRUN_NOWAIT`,
  `reactor_iterate(r, 0)`, `epoll_wait(.., 0)`). One untimed warm-up round, then 500 rounds; CPU
  µs/event = process CPU time / reads. Watchers are registered once (bench.c re-registers them
  outside the timed part).
- **callthread** (flood): one producer thread makes 1M calls, each carrying its index as payload; the
  loop thread counts them and checks order. libreactor: `reactor_call_from_thread(r, cb, payload,
  NULL)`. Peers use the standard pattern: a malloc'd node per call pushed on a mutex-protected queue,
  with a wake-up (`uv_async_send`, `ev_async_send`, `event_active` on a user event with
  `evthread_use_pthreads`, eventfd for the floor) when the push found the queue empty; the loop thread
  takes the whole queue under the lock and runs it. Rate = N / wall time from the first send to the
  last callback.
- **callthread paced**: the same, but the producer spins to send at 100 k calls/s for 1.5 s with the
  CLOCK_MONOTONIC send time as payload; the callback records now − send time (one-way latency, the
  loop usually sleeping in between). The first 1000 samples are dropped as warm-up; p50/p99 reported.
- **callthread closure** (flood and paced 100 k/s): the same two shapes, but each call is what an
  application usually hands over: the producer mallocs a 32-byte closure (function, payload, state)
  per call and the loop-side callback frees it. libreactor: `reactor_call_from_thread(r, cb, closure,
  NULL)` per call. Peers: the closure itself is the node of the mutex-protected list, and the producer
  calls `uv_async_send` / `ev_async_send` / `event_active` once per call (not only when the list was
  empty); the wake-up callback takes the whole list under the lock and runs it in one batch. Floor: the
  same list with its coalescing send (atomic flag + eventfd write when no wake-up is pending) per call.
- **async**: one thread calls the coalescing send 1M times (`reactor_async_send`, `uv_async_send`,
  `ev_async_send`, `event_active` from a thread, atomic flag + eventfd for the floor); rate = sends /
  producer wall time; "callbacks" is how many times the loop-side callback ran (fewer = more
  coalescing; informational).
- **queuework** (thread pool, libreactor and libuv only; programs `bench_queuework_<lib>.c`, shared code
  in `queuework_common.h`): trivial jobs (return the argument + 1) with a completion on the loop thread
  that checks the result — `reactor_call_in_thread_with_callback` on the reactor's pool sized with
  `reactor_suggest_thread_pool_size(r, 4)`, and `uv_queue_work` with `UV_THREADPOOL_SIZE=4` (libuv's
  default). *all queued*: 1M jobs queued from the loop thread in one go; *window 64*: 64 in flight, each
  completion queues the next, 1M jobs; *serial*: one in flight, 100k round trips. Rate = jobs / wall time
  from the first submit to the last completion; CPU per job = process user+sys time / jobs (includes
  the workers' spinning and sleeping overhead). libuv's requests are caller-allocated `uv_work_t`s;
  libreactor allocates one record per call.
- **networking** (programs `bench_net_<lib>.c`, shared code in `net_common.h`; both ends of every
  connection in the one loop of one process, over 127.0.0.1 TCP or a UNIX socket): *pingpong*: 64-byte
  messages, one in flight (the client sends, the server echoes, the client sends the next once all 64
  bytes are back), 100k round trips, process CPU ns per round trip. *pump*: 2 GiB one way in 64 KiB
  writes with at most 256 KiB queued in the library (libreactor: a push producer with the high mark
  at 192 KiB; libuv: `uv_write` while `uv_stream_get_write_queue_size` < 256 KiB; libevent: a
  bufferevent refilled from its write low-watermark callback; libev and the floor: their own bounded
  buffer), MB per process CPU second. *churn*: 20k connections, each connect, one 64-byte exchange,
  close, with 1 or 100 in flight; connections per wall second. *idle*: 10,000 connections accepted
  and held by the loop (the client ends in a child process of plain sockets), growth of the loop
  process's resident memory per connection. libreactor uses its transports, ports, connectors and
  producer; libuv its streams; libevent bufferevents and evconnlistener; libev and the floor raw
  non-blocking sockets with their own small output buffers (a libev user's code).
- **UDP** (programs `bench_udp_<lib>.c`, shared code in `udp_common.h`; sockets bound to 127.0.0.1):
  *echo*: a client port and a server port in the one loop; the client keeps 1 or 32 64-byte
  datagrams in flight (one new datagram per echo until 100k were sent), the server sends each
  datagram back to its sender; process CPU ns per round trip. Nothing re-sends a lost datagram: a
  thread watching the echo count ends the run with an error ("echo_stalled_datagram_lost") if no echo
  arrives for 2 s (never seen on loopback), and a failed send is an error too. *flood*: a second
  thread sends 1M 64-byte datagrams as fast as it can from a plain blocking socket to the loop's
  port, then an end marker every millisecond until the loop has read one (the queue is FIFO, so by
  then every datagram was read or dropped); the receiving socket gets `SO_RCVBUF` = 4 MiB in every
  program. Rate = datagrams received / CPU time of the loop thread (`RUSAGE_THREAD`, from just before
  the sender starts to the first marker); loss = datagrams the kernel dropped because the loop fell
  behind (informational: it depends on how fast the sender is, which no library controls).
  libreactor: `reactor_listen_udp` ports with default options and `reactor_udp_write` (the echo
  server replies to `from->host`/`from->port`). libuv: `uv_udp_init_ex(.., AF_INET | UV_UDP_RECVMMSG)`
  with a 20 × 64 KiB buffer from `alloc_cb` (libuv reads one datagram per 64 KiB of buffer, at most
  20 per `recvmmsg`) and `uv_udp_try_send`. libev, libevent: an `ev_io` / persistent `EV_READ` event
  and a `recvfrom` loop of at most 32 datagrams per readiness event (libuv's own bound), `sendto`.
  Floor: `recvmmsg` batches of 64 (again while a batch comes back full), echoes and client sends
  batched with `sendmmsg`.
- **processes** (libreactor and libuv only; programs `bench_spawn_<lib>.c`, shared code in
  `spawn_common.h`): 1000 children in a row, each spawned from the callback that says the previous one
  has ended; the same argv, an empty environment and the parent's directory for both libraries.
  *spawn + reap*: `/bin/true` with fds 0, 1 and 2 all the program's one `/dev/null` (libreactor: a
  child-fd map of three `REACTOR_CHILD_FD_INHERIT` entries; libuv: three `UV_INHERIT_FD`); ended =
  `process_ended` / `exit_cb` and `uv_close` of the process handle. *stdout captured*: `/bin/echo hi`
  with `/dev/null` as 0 and 2 and a pipe as 1 (libreactor: `REACTOR_CHILD_FD_READ`; libuv:
  `UV_CREATE_PIPE | UV_WRITABLE_PIPE` into a `uv_pipe_t` read until `UV_EOF`, then closed), the 3 bytes
  checked; ended = reaped and the pipe closed (`process_ended`; libuv: both close callbacks). Rate =
  children / wall time from the first spawn to the last end — wall clock, not CPU, because most of
  the cost is in the kernel (fork or vfork, exec, exit, wait) and in the child, not in the spawning
  process; the spawning process's own CPU per child is shown for information. libreactor spawns
  with `posix_spawn` (glibc: `clone(CLONE_VFORK)`) when the request allows it, else fork + exec
  (`REACTOR_SPAWN_FORK=1` forces fork), and reaps through a pidfd; libuv 1.44 forks + execs and reaps
  on SIGCHLD. The benchmark process is small, so fork's page-table copy is cheap here; a host with a
  large heap pays more for it.
- **floor**: the same shapes on raw syscalls (binary heap + `epoll_wait` timeout; plain epoll;
  eventfd + mutex queue; atomic flag + eventfd; `recvmmsg`/`sendmmsg`), a lower bound for an event
  loop on this machine.

Caveats: small, noisy machines (2 vCPUs here) move the threaded shapes by ±20 % between runs and the
syscall-bound fanout by more; compare the ratios within one report rather than absolute numbers
across reports, and look at the spread table. The paced p99 is sensitive to any hiccup of the
machine. The threaded shapes need two idle CPUs (producer and loop thread each keep one busy): when
other processes load the machine (see "other load" above) they change character — the loop thread
then shares a core with the spinning producer, which batches calls (flood rates go up) and delays
wake-ups by a scheduler slice (paced latency goes to milliseconds; libuv 1.44 showed a ~2 ms p50 in
every such run while the others stayed near 3–9 µs). Reports with other load above ~10 % are not
representative for those rows. The UDP flood also needs two CPUs (sender and loop): a loop that
keeps up with the sender sleeps in the poller between datagrams and pays a wake-up for a few of
them, while one that falls behind reads full batches at a lower cost per datagram and loses some, so
compare its rate together with the loss row.
""")
    if infos:
        L.append("## libreactor loop statistics (last run of each shape)\n")
        L.append("```")
        for (shape, lib), info in sorted(infos.items()):
            for line in info.splitlines():
                if "iterations=" in line:
                    L.append(line)
        L.append("```\n")
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
