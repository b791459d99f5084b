//! ABI guard (ENGINEERING.md §2): the C ABI of the libreactor.so built by this very `cargo test`,
//! compared with the committed baseline `abi/libreactor.so.0.abi` by libabigail (Debian
//! `abigail-tools`).
//!
//! `abidw` turns the library's DWARF into an ABI corpus (it needs full debug info: `[profile.release]
//! debug = 2` in Cargo.toml; `debug = 1` has no parameters or struct layouts). `abidiff` compares the
//! baseline with it and sets bits in its exit status: 1 error, 2 usage error, 4 ABI change, 8
//! incompatible ABI change. The test prints abidiff's report and fails when
//!   - abidiff itself fails (bit 1 or 2, or killed), or the corpus has no type information;
//!   - bit 8 is set: an incompatible change (an exported function removed, ...);
//!   - bit 4 is still set once added functions and variables are left out (`--no-added-syms`): a change
//!     to an existing interface, e.g. a member inserted into the middle of `reactor_stats_t`, a field or
//!     parameter changing type. abidiff 2.2 reports struct layout changes with bit 4 only, never 8, so
//!     checking bit 8 alone would let them through.
//!
//! It passes, still printing the report, when the only changes are additions (new functions).
//!
//! `make abi-baseline` (REACTOR_UPDATE_ABI=1) rewrites the baseline from the current library: do it
//! for a deliberate change, after reading the report. A report that only shows Rust module paths in
//! type names changing (say `reactor::types::reactor_t` becoming `reactor::api::reactor_t`, "type size
//! hasn't changed") is harmless for C, which does not see Rust modules: regenerate after such a move.
//! `abi/suppressions.abignore` leaves out the insides of the opaque handles.
//!
//! Without abidw/abidiff the test is skipped loudly, unless REACTOR_REQUIRE_ABIGAIL is set
//! (scripts/test.sh sets it; scripts/deps.sh installs abigail-tools).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Flags that keep the corpus independent of where and when it was built: no checkout paths, no
/// source locations (line numbers would churn the baseline on every edit), type ids by hash.
const ABIDW_FLAGS: &[&str] = &[
    "--no-corpus-path",
    "--no-comp-dir-path",
    "--no-show-locs",
    "--type-id-style",
    "hash",
];

// libabigail's exit status bits (abidiff --help, "abidiff return values").
const ABIDIFF_ERROR: i32 = 1;
const ABIDIFF_USAGE_ERROR: i32 = 2;
const ABIDIFF_ABI_CHANGE: i32 = 4;
const ABIDIFF_ABI_INCOMPATIBLE_CHANGE: i32 = 8;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// target/<profile>/deps: where `cargo test` builds the cdylib of this very build.
fn artifacts_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent().expect("target/<profile>/deps").to_path_buf()
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command, what: &str) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// abidiff BASELINE CURRENT with the suppressions and `extra` flags; (exit status, report).
fn abidiff(baseline: &Path, current: &Path, extra: &[&str]) -> (i32, String) {
    let out = run(
        Command::new("abidiff")
            .arg("--suppressions")
            .arg(repo().join("abi/suppressions.abignore"))
            .args(extra)
            .arg(baseline)
            .arg(current),
        "abidiff",
    );
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    // None: killed by a signal; report it as an error.
    (out.status.code().unwrap_or(ABIDIFF_ERROR), report)
}

#[test]
fn c_abi_matches_the_committed_baseline() {
    if !(cfg!(target_os = "linux") && cfg!(target_arch = "x86_64")) {
        println!("SKIPPED: the ABI baseline describes x86_64 Linux (ELF + DWARF)");
        return;
    }
    if !have("abidw") || !have("abidiff") {
        assert!(
            std::env::var_os("REACTOR_REQUIRE_ABIGAIL").is_none(),
            "abidw/abidiff are required (REACTOR_REQUIRE_ABIGAIL is set) but not installed \
             (Debian package abigail-tools; scripts/deps.sh installs it)"
        );
        println!(
            "SKIPPED (loud): abidw/abidiff not installed (Debian abigail-tools; scripts/deps.sh \
             installs it); the ABI check did not run"
        );
        return;
    }
    let library = artifacts_dir().join("libreactor.so");
    assert!(library.exists(), "no {}", library.display());
    let baseline = repo().join("abi/libreactor.so.0.abi");
    // Next to the build's other outputs (target/<profile>/), for a look after a failure.
    let current = artifacts_dir()
        .parent()
        .expect("target/<profile>")
        .join("libreactor.so.0.current.abi");

    let out = run(
        Command::new("abidw")
            .args(ABIDW_FLAGS)
            .arg("--out-file")
            .arg(&current)
            .arg(&library),
        "abidw",
    );
    assert!(
        out.status.success(),
        "abidw {} failed ({}):\n{}{}",
        library.display(),
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    let corpus = std::fs::read_to_string(&current).expect("abidw output");
    // A library without full DWARF gives a corpus of parameterless functions that hides every change.
    assert!(
        corpus.contains("<parameter ") && corpus.contains("name='reactor_stats_t' size-in-bits="),
        "{} has no type information in its debug info: the ABI check needs full DWARF \
         ([profile.release] debug = 2 in Cargo.toml)",
        library.display()
    );

    if std::env::var("REACTOR_UPDATE_ABI").as_deref() == Ok("1") {
        if baseline.exists() {
            let (status, report) = abidiff(&baseline, &current, &[]);
            println!("changes from the old baseline (abidiff exit status {status}):\n{report}");
        }
        std::fs::copy(&current, &baseline).expect("could not write the baseline");
        println!("ABI baseline written: {}", baseline.display());
    }
    assert!(
        baseline.exists(),
        "no ABI baseline {}: create it with `make abi-baseline` and commit it",
        baseline.display()
    );

    let (status, report) = abidiff(&baseline, &current, &[]);
    // Straight to stderr, past libtest's capture: the report shows in every run (make test too).
    let _ = writeln!(
        std::io::stderr(),
        "ABI check: abidiff abi/libreactor.so.0.abi {} -> exit status {status}\n{}",
        current.display(),
        if report.trim().is_empty() {
            "(no ABI change)\n"
        } else {
            &report
        }
    );
    let regenerate = "if the change is deliberate (and bumps the SONAME when it is incompatible), \
                      regenerate the baseline with `make abi-baseline` and commit it";
    assert!(
        status & (ABIDIFF_ERROR | ABIDIFF_USAGE_ERROR) == 0,
        "abidiff failed (exit status {status}):\n{report}"
    );
    assert!(
        status & ABIDIFF_ABI_INCOMPATIBLE_CHANGE == 0,
        "incompatible ABI change (abidiff exit status {status}, bit 8); {regenerate}:\n{report}"
    );
    if status & ABIDIFF_ABI_CHANGE != 0 {
        let (without_additions, changes) = abidiff(&baseline, &current, &["--no-added-syms"]);
        assert!(
            without_additions & (ABIDIFF_ERROR | ABIDIFF_USAGE_ERROR) == 0,
            "abidiff --no-added-syms failed (exit status {without_additions}):\n{changes}"
        );
        assert!(
            without_additions & ABIDIFF_ABI_CHANGE == 0,
            "existing interfaces changed (abidiff exit status {without_additions} without added \
             symbols; struct layout changes set bit 4 only); {regenerate}:\n{changes}"
        );
        let _ = writeln!(
            std::io::stderr(),
            "ABI check: additions only (compatible); record them with `make abi-baseline` when convenient"
        );
    }
}
