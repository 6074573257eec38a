//! Replays every saved input of every fuzz target on stable: the corpus
//! (`fuzz/corpus/<name>/`) and the crashes found and fixed
//! (`fuzz/regressions/<name>/`). A panic fails the test and names the file.

use std::fs;
use std::path::{Path, PathBuf};

use lvs_fuzz_targets::{TARGETS, Target};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of one directory, sorted; none if it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `target` on each file of `dir`, naming the file that panics.
fn replay(name: &str, target: Target, dir: &Path) -> usize {
    let files = inputs(dir);
    for file in &files {
        let data = fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let result = std::panic::catch_unwind(|| target(&data));
        assert!(
            result.is_ok(),
            "fuzz target {name} panicked on {}",
            file.display()
        );
    }
    files.len()
}

#[test]
fn every_target_has_a_fuzz_target_file_and_a_corpus() {
    for (name, _) in TARGETS {
        let source = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(source.is_file(), "{} is missing", source.display());
        let corpus = fuzz_dir().join("corpus").join(name);
        assert!(
            !inputs(&corpus).is_empty(),
            "{} is empty: the replay would test nothing",
            corpus.display()
        );
    }
}

#[test]
fn corpora_replay_without_a_panic() {
    for (name, target) in TARGETS {
        let n = replay(name, *target, &fuzz_dir().join("corpus").join(name));
        assert!(n > 0, "no corpus for {name}");
    }
}

/// `LVS_FUZZ_REPLAY=DIR cargo test -p lvs-fuzz-targets` also replays
/// `DIR/<name>/` (a fresh fuzzing run's whole corpus, say) on stable, with
/// the overflow checks of a debug build.
#[test]
fn extra_inputs_from_the_environment() {
    let Some(root) = std::env::var_os("LVS_FUZZ_REPLAY") else {
        return;
    };
    for (name, target) in TARGETS {
        let n = replay(name, *target, &Path::new(&root).join(name));
        eprintln!("{name}: {n} inputs replayed");
    }
}

#[test]
fn fixed_crashes_stay_fixed() {
    for (name, target) in TARGETS {
        replay(name, *target, &fuzz_dir().join("regressions").join(name));
    }
}
