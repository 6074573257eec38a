//! ARCHITECTURE.md stays true to the tree: every path it names in
//! backticks exists. A module moved or renamed without its map fails here.

use std::path::{Path, PathBuf};

/// Backticked words that name a file or directory of the repository.
fn named_paths(text: &str) -> Vec<&str> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| !word.contains(char::is_whitespace))
        .filter(|word| {
            word.contains('/')
                || [".rs", ".md", ".toml", ".sh"]
                    .iter()
                    .any(|ext| word.ends_with(ext))
        })
        .collect()
}

/// The paths a line names, a short one (`reload.rs` in a table row about
/// `director/src/cluster/`) taken relative to the directory of the line's
/// first full path.
fn resolve(root: &Path, line: &str) -> Vec<(String, PathBuf)> {
    let named = named_paths(line);
    let base = named.iter().find(|p| p.contains('/')).map(|first| {
        let first = root.join(first);
        match first.is_dir() {
            true => first,
            false => first.parent().map_or(first.clone(), Path::to_path_buf),
        }
    });
    named
        .into_iter()
        .map(|p| {
            let from_root = root.join(p);
            let path = match &base {
                Some(dir) if !from_root.exists() => dir.join(p),
                _ => from_root,
            };
            (p.to_string(), path)
        })
        .collect()
}

#[test]
fn architecture_names_only_paths_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let named: Vec<(String, PathBuf)> = text.lines().flat_map(|l| resolve(&root, l)).collect();
    assert!(named.len() > 40, "too few paths found: {named:?}");
    let missing: Vec<&str> = named
        .iter()
        .filter(|(_, path)| !path.exists())
        .map(|(p, _)| p.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names missing paths: {missing:?}"
    );
}

#[test]
fn backticked_paths_are_found() {
    let found = named_paths("a `src/x.rs` b `not a path` c `Cargo.toml` d `word`");
    assert_eq!(found, ["src/x.rs", "Cargo.toml"]);
}

#[test]
fn short_names_resolve_against_the_line_directory() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let line = "| `director/src/cluster/` | the cluster (`reload.rs`, `nowhere.rs`) |";
    let resolved = resolve(&root, line);
    assert!(resolved[1].1.exists(), "{resolved:?}");
    assert!(!resolved[2].1.exists(), "{resolved:?}");
}
