#!/usr/bin/env python3
"""Runs Twisted's own reactor tests on libreactor's Twisted reactor and on Twisted's EPollReactor,
side by side, and fails if a test that passes on EPollReactor does not pass on ours (unless it is a
known difference below, each with its cause; README.md lists them too).

    python run_twisted_suite.py                 # both reactors, compare, print the table
    python run_twisted_suite.py --only libreactor --backend poll
    python run_twisted_suite.py --modules twisted.internet.test.test_core

Each reactor runs in a child process of its own (``--child``): it installs that reactor as the
global reactor (``twisted.test.test_internet`` uses the global one), puts it alone in
``ReactorBuilder._reactors`` (the reactor-parametrized test classes are built at import), and runs
the modules with trial's runner, recording each test's outcome.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

MODULES = [
    "twisted.internet.test.test_core",
    "twisted.internet.test.test_time",
    "twisted.internet.test.test_threads",
    "twisted.internet.test.test_fdset",
    "twisted.internet.test.test_tcp",
    "twisted.internet.test.test_unix",
    "twisted.internet.test.test_udp",
    "twisted.internet.test.test_socket",
    "twisted.internet.test.test_process",
    "twisted.internet.test.test_posixbase",
    "twisted.internet.test.test_base",
    "twisted.test.test_internet",
]

REACTORS = {
    "libreactor": "libreactor.twisted.LibreactorReactor",
    "epoll": "twisted.internet.epollreactor.EPollReactor",
}

# Tests that pass on EPollReactor and not on ours, by design, each with its cause. The key is the
# normalized test id (reactor class names replaced by "<R>").
KNOWN_DIFFERENCES = {}

# Tests skipped on our reactor for the reason Twisted itself skips them on EPollReactor and
# KQueueReactor (Twisted's skip checks the reactor's class name, so it does not see ours).
SKIPS = {
    "twisted.internet.test.test_fdset.ReactorFDSetTestsBuilder_<R>Tests.test_lostFileDescriptor": (
        "libreactor cannot detect lost file descriptors either: a registration whose fd was closed "
        "and reused is dropped without an event (API.md section 5: a reused fd number never "
        "delivers events to the old registration), as epoll and kqueue drop it in the kernel"
    ),
}

_REACTOR_NAME = re.compile(r"_(?:EPollReactor|LibreactorReactor)Tests\b")


def normalize(test_id):
    return _REACTOR_NAME.sub("_<R>Tests", test_id)


def child(args):
    if args.reactor == "libreactor":
        from libreactor.twisted import install

        install(args.backend)
    else:
        from twisted.internet import epollreactor

        epollreactor.install()

    from twisted.internet.test import reactormixins

    reactormixins.ReactorBuilder._reactors = [REACTORS[args.reactor]]

    from twisted.trial import reporter, runner

    outcomes = {}

    class Recording(reporter.Reporter):
        def _record(self, test, outcome, detail=None):
            outcomes[normalize(test.id())] = {"outcome": outcome, "detail": detail}

        def addSuccess(self, test):
            super().addSuccess(test)
            self._record(test, "pass")

        def addFailure(self, test, fail):
            super().addFailure(test, fail)
            self._record(test, "fail", _text(fail))

        def addError(self, test, error):
            super().addError(test, error)
            # Errors outside a test (e.g. a module that fails to import) have no id of their own.
            self._record(test, "error", _text(error))

        def addSkip(self, test, reason):
            super().addSkip(test, reason)
            self._record(test, "skip", str(reason))

        def addExpectedFailure(self, test, error, todo=None):
            super().addExpectedFailure(test, error, todo)
            self._record(test, "xfail")

        def addUnexpectedSuccess(self, test, todo=None):
            super().addUnexpectedSuccess(test, todo)
            self._record(test, "uxsuccess")

    workdir = tempfile.mkdtemp(prefix=f"trial-{args.reactor}-")
    with open(os.path.join(workdir, "trial.out"), "w") as stream:
        trial = runner.TrialRunner(
            Recording, stream=stream, workingDirectory=os.path.join(workdir, "_trial_temp")
        )
        suite = runner.TestLoader().loadByNames(args.modules, recurse=True)
        if args.reactor == "libreactor":
            from twisted.trial._asyncrunner import _iterateTests

            for test in _iterateTests(suite):
                reason = SKIPS.get(normalize(test.id()))
                if reason:
                    test.skip = reason
        trial.run(suite)
    with open(args.json, "w") as out:
        json.dump(outcomes, out, indent=1, sort_keys=True)
    return 0


def _text(fail):
    try:
        return fail.getTraceback()[-3000:]
    except Exception:  # noqa: BLE001 - a plain exception tuple
        return str(fail)[-3000:]


def run_child(name, args, json_path):
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        "--reactor",
        name,
        "--json",
        json_path,
        "--modules",
        *args.modules,
    ]
    if args.backend:
        cmd += ["--backend", args.backend]
    started = time.monotonic()
    proc = subprocess.run(cmd, timeout=args.timeout)
    elapsed = time.monotonic() - started
    if proc.returncode != 0 or not os.path.exists(json_path):
        raise SystemExit(f"run_twisted_suite: the {name} run failed (exit {proc.returncode})")
    with open(json_path) as f:
        return json.load(f), elapsed


def counts(outcomes):
    kinds = ["pass", "fail", "error", "skip", "xfail", "uxsuccess"]
    c = {k: 0 for k in kinds}
    for entry in outcomes.values():
        c[entry["outcome"]] += 1
    return c


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reactor", choices=sorted(REACTORS), help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=sorted(REACTORS), help="run one reactor, no comparison")
    parser.add_argument("--backend", help="libreactor backend (epoll, poll, kqueue)")
    parser.add_argument("--modules", nargs="+", default=MODULES)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per reactor run")
    parser.add_argument("--verbose", action="store_true", help="print each difference's traceback")
    args = parser.parse_args()
    if args.child:
        return child(args)

    names = [args.only] if args.only else ["libreactor", "epoll"]
    results = {}
    with tempfile.TemporaryDirectory(prefix="twisted-suite-") as tmp:
        for name in names:
            results[name] = run_child(name, args, os.path.join(tmp, f"{name}.json"))

    label = f"libreactor ({args.backend or 'default backend'})"
    print(f"\nTwisted's reactor tests ({len(args.modules)} modules):")
    print(f"{'reactor':<32} {'tests':>6} {'pass':>6} {'fail':>5} {'error':>6} {'skip':>5} "
          f"{'xfail':>6} {'seconds':>8}")
    for name in names:
        outcomes, elapsed = results[name]
        c = counts(outcomes)
        shown = label if name == "libreactor" else "EPollReactor"
        print(f"{shown:<32} {len(outcomes):>6} {c['pass']:>6} {c['fail']:>5} {c['error']:>6} "
              f"{c['skip']:>5} {c['xfail']:>6} {elapsed:>8.1f}")

    if args.only:
        only = results[args.only][0]
        bad = {t: e for t, e in only.items() if e["outcome"] in ("fail", "error")}
        for test, entry in sorted(bad.items()):
            print(f"  {entry['outcome']}: {test}")
            if args.verbose:
                print(entry["detail"])
        return 0

    ours, theirs = results["libreactor"][0], results["epoll"][0]
    regressions, known, better = [], [], []
    for test, entry in sorted(theirs.items()):
        if entry["outcome"] != "pass":
            continue
        mine = ours.get(test, {"outcome": "missing", "detail": None})
        if mine["outcome"] == "pass":
            continue
        (known if test in KNOWN_DIFFERENCES else regressions).append((test, mine))
    for test, entry in sorted(ours.items()):
        if entry["outcome"] == "pass" and theirs.get(test, {}).get("outcome") != "pass":
            better.append(test)

    print(f"\npass on EPollReactor, not on libreactor: {len(regressions)} "
          f"(+ {len(known)} known differences)")
    for test, mine in regressions:
        print(f"  {mine['outcome']}: {test}")
        if args.verbose and mine["detail"]:
            print("    " + mine["detail"].replace("\n", "\n    "))
    for test, mine in known:
        print(f"  known ({mine['outcome']}): {test}: {KNOWN_DIFFERENCES[test]}")
    if better:
        print(f"pass on libreactor, not on EPollReactor: {len(better)}")
        for test in better:
            print(f"  {test} ({theirs.get(test, {}).get('outcome', 'missing')} on EPollReactor)")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
