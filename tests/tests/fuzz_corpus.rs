//! Every fuzz target over its checked-in corpus (`fuzz/corpus/<target>/`) and its
//! hand-made seeds, on the stable toolchain: CI exercises the fuzzers' properties without
//! nightly or libFuzzer. A failing file names the input to reproduce with
//! `cargo fuzz run <target> fuzz/corpus/<target>/<file>`.
//!
//! `cargo run -p herald-tests --bin herald-fuzz-seeds` writes the hand-made seeds
//! to `fuzz/corpus/<target>/seed-<name>` (run it after changing an input format).

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::Instant;

use herald_tests::fuzzing::{TARGETS, Target};

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn target(name: &str) -> Target {
    *TARGETS
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no fuzz target {name}"))
}

/// Runs every corpus file and seed of `name`; reports every failing input, then fails.
fn replay(name: &str) {
    let t = target(name);
    let dir = corpus_dir(name);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {} is missing: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the corpus {} is empty", dir.display());
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut inputs: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|p| (p.display().to_string(), fs::read(p).expect("a readable corpus file")))
        .collect();
    inputs.extend((t.seeds)().into_iter().map(|(n, b)| (format!("seed {n}"), b)));
    for (what, data) in &inputs {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (t.run)(data))) {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            failures.push(format!("{what}: {msg}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} inputs of {name} failed:\n{}",
        failures.len(),
        inputs.len(),
        failures.join("\n")
    );
    eprintln!("{name}: {} inputs in {:?}", inputs.len(), started.elapsed());
}

#[test]
fn engine_sequence_corpus() {
    replay("engine_sequence");
}

#[test]
fn store_decode_corpus() {
    replay("store_decode");
}

#[test]
fn retry_after_corpus() {
    replay("retry_after");
}

#[test]
fn config_parse_corpus() {
    replay("config_parse");
}

#[test]
fn webhook_sign_corpus() {
    replay("webhook_sign");
}

#[test]
fn every_target_is_replayed_here_and_has_a_fuzz_target_file() {
    let this = include_str!("fuzz_corpus.rs");
    for t in TARGETS {
        assert!(
            this.contains(&format!("fn {}_corpus()", t.name)),
            "{} has no replay test",
            t.name
        );
        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/fuzz_targets")
            .join(format!("{}.rs", t.name));
        let src = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            src.contains(&format!("herald_tests::fuzzing::{}(", t.name)),
            "{} does not call its target",
            file.display()
        );
    }
}

/// The hand-made seeds in the corpus are the current ones (after changing an input
/// format, rewrite them with `cargo run -p herald-tests --bin herald-fuzz-seeds`).
#[test]
fn checked_in_seeds_match_the_hand_made_ones() {
    for t in TARGETS {
        for (name, data) in (t.seeds)() {
            let path = corpus_dir(t.name).join(format!("seed-{name}"));
            let on_disk = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(on_disk, data, "{} is stale: rerun herald-fuzz-seeds", path.display());
        }
    }
}
