//! Shared by the trainer's tests: a fixture build and mixes over it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use almr::build::{build, BuildOptions};
use almr::mix::{mix, MixOptions, Size};
use almr_trainer::config::LlamaConfig;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds `pipelines/tokenize_only.toml` into `dir/build` and makes the mix
/// `NAME` there; returns `OUT/mix/NAME`.
pub fn fixture_mix(dir: &Path, name: &str, seq_len: u64, samples: u64) -> PathBuf {
    almr_trainer::keep_freed_memory();
    let out = dir.join("build");
    if !out.join("manifest.json").exists() {
        std::env::set_current_dir(root()).unwrap();
        build(
            &root().join("pipelines/tokenize_only.toml"),
            &BuildOptions {
                out: Some(out.clone()),
                threads: Some(2),
                strict: false,
                verbose: false,
                mem_budget: almr::build::DEFAULT_MEM_BUDGET,
            },
        )
        .unwrap();
    }
    mix(
        &out,
        &MixOptions {
            name: name.into(),
            almr: 0.5,
            seq_len,
            seed: 7,
            size: Size::Samples(samples),
            weights: Default::default(),
            valid_share: 0.05,
            valid_shares: Default::default(),
            max_epochs: None,
        },
    )
    .unwrap();
    out.join("mix").join(name)
}

/// The tiny preset, shrunk to `layers` blocks.
pub fn tiny(layers: usize) -> LlamaConfig {
    let mut c = LlamaConfig::preset_or_file("tiny").unwrap();
    c.num_hidden_layers = layers;
    c
}
