//! Replays the committed fuzz corpora (`fuzz/corpus/TARGET/`) and every
//! crash input found so far (`fuzz/regressions/TARGET/`) through the fuzz
//! targets' bodies, so `cargo test` keeps what fuzzing found fixed without
//! nightly or cargo-fuzz. Fuzzing itself: `docs/reliability.md`.

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::path::{Path, PathBuf};

/// Inputs that still fail, left out of the replay until their fix lands.
/// Each entry is `(target, file name)`, with the reason beside it.
const PENDING: &[(&str, &str)] = &[];

/// The files of `fuzz/DIR/TARGET/`, sorted; none when it is absent.
fn inputs(dir: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(dir)
        .join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .map(|e| e.expect("listing a corpus").path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Runs every corpus and regression input of `target` through `body`.
fn replay(target: &str, body: fn(&[u8])) {
    let corpus = inputs("corpus", target);
    assert!(!corpus.is_empty(), "fuzz/corpus/{target}/ is empty");
    for path in corpus.iter().chain(&inputs("regressions", target)) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if PENDING.contains(&(target, name)) {
            continue;
        }
        let data = std::fs::read(path).expect("reading a fuzz input");
        // Printed only when the test fails: the input that did it.
        println!("{}", path.display());
        body(&data);
    }
}

#[test]
fn jsonl() {
    replay("jsonl", targets::jsonl);
}

#[test]
fn text() {
    replay("text", targets::text);
}

#[test]
fn parquet() {
    replay("parquet", targets::parquet);
}

#[test]
fn idx() {
    replay("idx", targets::idx);
}

#[test]
fn mix_index() {
    replay("mix_index", targets::mix_index);
}

#[test]
fn config() {
    replay("config", targets::config);
}

#[test]
fn bpe_diff() {
    replay("bpe_diff", targets::bpe_diff);
}
