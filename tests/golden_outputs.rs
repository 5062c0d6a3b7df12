//! Golden sha256 values of everything the fixture builds write: shards,
//! indexes, provenance, rejects, manifests, a mix (index, sidecar, Megatron
//! weights) and the stats report. Refactors must leave these bytes alone.
//!
//! The values in `tests/golden/sha256.json` were first taken from the build
//! before the step-chain refactor (issue 11) and checked file by file
//! against it; see `docs/architecture.md`. After a deliberate change of
//! output, regenerate them with
//!
//!     ALMR_UPDATE_GOLDEN=1 cargo test --test golden_outputs
//!
//! and say in the commit why the bytes changed. JSON files are compared
//! with `almr_version` (and a mix's `manifest_sha256`, which covers it)
//! blanked, and the output directory's path replaced by `OUT`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use almr::mix::{mix, MixOptions, Size};
use common::{build_to, root};

const GOLDEN: &str = "tests/golden/sha256.json";

/// sha256 of every file under `dir`, by path relative to `dir`, normalized.
fn digests(dir: &Path, out: &Path, prefix: &str, into: &mut BTreeMap<String, String>) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            // Hidden entries are the output directory's own bookkeeping
            // (generations, lock, marker); the build is reached by its links.
            if path.file_name().unwrap().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            let bytes = normalized(&path, out);
            into.insert(format!("{prefix}{rel}"), almr::fsutil::sha256_hex(&bytes));
        }
    }
}

/// The file's bytes, with the version fields blanked in JSON and the output
/// directory's path replaced in text.
fn normalized(path: &Path, out: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext, "json" | "txt" | "html") {
        return bytes;
    }
    let text = String::from_utf8(bytes).unwrap();
    let text = text.replace(&out.display().to_string(), "OUT");
    if ext != "json" {
        return text.into_bytes();
    }
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for key in ["almr_version", "manifest_sha256"] {
        if let Some(field) = v.get_mut(key) {
            *field = serde_json::Value::String(String::new());
        }
    }
    serde_json::to_vec_pretty(&v).unwrap()
}

fn mix_options() -> MixOptions {
    MixOptions {
        name: "m".into(),
        almr: 0.4,
        seq_len: 128,
        seed: 1234,
        size: Size::Tokens(200_000),
        weights: BTreeMap::new(),
        valid_share: 0.01,
        valid_shares: BTreeMap::new(),
        max_epochs: None,
        too_long: Default::default(),
        force: false,
    }
}

/// Builds the fixtures, mixes, reports; returns every output's digest.
fn outputs(dir: &Path) -> BTreeMap<String, String> {
    std::env::set_current_dir(root()).unwrap();
    let mut all = BTreeMap::new();
    for (name, pipeline) in [
        ("default", "pipelines/default.toml"),
        ("tokenize_only", "pipelines/tokenize_only.toml"),
        ("neardup", "tests/golden/neardup.toml"),
    ] {
        let out = dir.join(name);
        build_to(Path::new(pipeline), &out, 2);
        let report = mix(&out, &mix_options()).unwrap();
        almr::mix::export::write_megatron(&report, &out).unwrap();
        let stats = almr::stats::stats(&out).unwrap();
        let json = serde_json::to_string_pretty(&stats).unwrap();
        std::fs::write(dir.join(format!("{name}.stats.json")), json).unwrap();
        let html = almr::stats::html::render(&stats).unwrap();
        std::fs::write(dir.join(format!("{name}.stats.html")), html).unwrap();
        digests(&out, &out, &format!("{name}/"), &mut all);
        for report in ["stats.json", "stats.html"] {
            let path = dir.join(format!("{name}.{report}"));
            let bytes = normalized(&path, &out);
            all.insert(format!("{name}.{report}"), almr::fsutil::sha256_hex(&bytes));
        }
    }
    all
}

#[test]
fn fixture_outputs_keep_their_golden_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let got = outputs(dir.path());
    let path = root().join(GOLDEN);
    if std::env::var_os("ALMR_UPDATE_GOLDEN").is_some() {
        let mut text = serde_json::to_string_pretty(&got).unwrap();
        text.push('\n');
        std::fs::write(&path, text).unwrap();
    }
    let want: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let differ: Vec<&String> = want
        .keys()
        .chain(got.keys())
        .filter(|k| want.get(*k) != got.get(*k))
        .collect();
    assert!(
        differ.is_empty(),
        "{} outputs differ from {GOLDEN}: {differ:?}",
        differ.len()
    );
    assert!(got.len() > 60, "{}", got.len());
}
