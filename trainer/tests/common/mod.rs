//! Shared by the trainer's tests: a fixture build and mixes over it, made the
//! way a user makes them, with the `almr` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use almr_trainer::config::LlamaConfig;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `almr` binary. The trainer builds against almr's formats only, so
/// the pipeline is not linked into these tests; the binary is the one
/// `cargo test --workspace` builds for almr's own tests. Asking cargo for
/// the same build (`--no-run`) finds it, fresh, in a second or two; run
/// alone (`cargo test -p almr-trainer`), it builds it once.
pub fn almr() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["test", "--workspace", "--no-run", "--locked"]);
        cargo.arg("--message-format=json-render-diagnostics");
        if !cfg!(debug_assertions) {
            cargo.arg("--release");
        }
        let out = cargo.current_dir(root()).output().expect("running cargo");
        assert!(
            out.status.success(),
            "cargo test --no-run failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "almr")
            .filter(|m| m["target"]["kind"][0] == "bin" && m["profile"]["test"] == false)
            .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
            .next_back()
            .expect("cargo names the almr executable")
    })
}

/// Runs `almr ARGS` from the repository root; panics with its stderr if it
/// fails.
pub fn run_almr(args: &[&str]) {
    let out = Command::new(almr())
        .args(args)
        .current_dir(root())
        .output()
        .expect("running almr");
    assert!(
        out.status.success(),
        "almr {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds `pipelines/tokenize_only.toml` into `dir/build` and makes the mix
/// `NAME` there (ALMR 0.5, 5 % validation, seed 7); returns `OUT/mix/NAME`.
pub fn fixture_mix(dir: &Path, name: &str, seq_len: u64, samples: u64) -> PathBuf {
    almr_trainer::keep_freed_memory();
    let out = dir.join("build");
    let out_s = out.display().to_string();
    if !out.join("manifest.json").exists() {
        run_almr(&[
            "build",
            "pipelines/tokenize_only.toml",
            "--out",
            &out_s,
            "--threads",
            "2",
            "--json",
        ]);
    }
    let (seq_len, samples) = (seq_len.to_string(), samples.to_string());
    run_almr(&[
        "mix",
        &out_s,
        "--name",
        name,
        "--almr",
        "0.5",
        "--seq-len",
        &seq_len,
        "--samples",
        &samples,
        "--valid-share",
        "0.05",
        "--seed",
        "7",
        "--json",
    ]);
    out.join("mix").join(name)
}

/// The tiny preset, shrunk to `layers` blocks.
pub fn tiny(layers: usize) -> LlamaConfig {
    let mut c = LlamaConfig::preset_or_file("tiny").unwrap();
    c.num_hidden_layers = layers;
    c
}
