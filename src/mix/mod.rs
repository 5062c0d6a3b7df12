//! `almr mix`: an ALMR-weighted training stream over a build's shards.
//!
//! A mix is an index, `OUT/mix/NAME.mix`, and its JSON sidecar,
//! `OUT/mix/NAME.json`. The data flow:
//!
//! [`stream::split`] holds out each source's validation documents →
//! [`blend::blend`] orders the training samples by source →
//! [`stream::train_stream`] cuts each source's shuffled epochs into windows →
//! [`index::write`] writes the index, [`report::MixReport`] the sidecar, and
//! [`export`] the equivalent Megatron-LM weights. [`MixIndex`] reads a mix
//! back.

pub mod blend;
pub mod export;
pub mod index;
pub mod report;
pub mod stream;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

pub use self::index::{MixIndex, Span, Split, DIR};
pub use self::report::MixReport;

use self::index::{Record, SourceLists};
use self::report::{IndexFile, MixShard, MixSource};
use crate::fsutil::{sha256_hex, write_atomic};
use crate::manifest::Manifest;
use crate::shard::ShardReader;

/// Samples per window for the reported `max_window_deviation`.
pub const WINDOW: usize = 1000;

/// How long the training stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// At least this many training tokens (rounded up to whole samples).
    Tokens(u64),
    /// Exactly this many samples.
    Samples(u64),
}

/// Everything `almr mix` takes.
#[derive(Debug, Clone)]
pub struct MixOptions {
    /// Name of the mix: its files are `OUT/mix/NAME.*`.
    pub name: String,
    /// Target share of training tokens from additional sources.
    pub almr: f64,
    /// Tokens a sample is trained on (each sample reads `seq_len + 1`).
    pub seq_len: u64,
    /// Seed of every shuffle and draw.
    pub seed: u64,
    /// Length of the training stream.
    pub size: Size,
    /// Relative weights of sources inside their group. Either every source of
    /// a group has one, or none does and each weighs its training tokens.
    pub weights: BTreeMap<String, f64>,
    /// Share of each source's documents held out for validation.
    pub valid_share: f64,
    /// Per-source overrides of `valid_share`.
    pub valid_shares: BTreeMap<String, f64>,
    /// Refuse to repeat any source's training tokens more than this many
    /// times.
    pub max_epochs: Option<f64>,
}

/// A source as the mixer sees it.
struct Catalog {
    name: String,
    language: String,
    additional: bool,
    shards: Vec<MixShard>,
    /// Token count of each document, numbered across shards.
    lengths: Vec<u32>,
}

fn catalog(out: &Path, manifest: &Manifest) -> Result<Vec<Catalog>> {
    let mut sources = Vec::new();
    for s in &manifest.sources {
        let mut shards = Vec::new();
        let mut lengths = Vec::new();
        for sh in manifest.shards.iter().filter(|sh| sh.source == s.name) {
            let r = ShardReader::open(&out.join(&sh.prefix))?;
            ensure!(
                r.len() == r.documents()
                    && (r.documents() as u64, r.total_tokens()) == (sh.documents, sh.tokens),
                "{}: holds {} documents in {} sequences and {} tokens; the manifest says {} documents and {} tokens",
                sh.prefix.display(),
                r.documents(),
                r.len(),
                r.total_tokens(),
                sh.documents,
                sh.tokens
            );
            for d in 0..r.len() {
                lengths.push(r.seq_len(d)? as u32);
            }
            shards.push(MixShard {
                prefix: sh.prefix.clone(),
                documents: sh.documents,
                tokens: sh.tokens,
            });
        }
        ensure!(
            lengths.len() < u32::MAX as usize,
            "source {}: {} documents; a mix numbers them in 32 bits",
            s.name,
            lengths.len()
        );
        sources.push(Catalog {
            name: s.name.clone(),
            language: s.language.clone(),
            additional: s.additional,
            shards,
            lengths,
        });
    }
    ensure!(
        sources.len() <= u16::MAX as usize,
        "more than 65535 sources"
    );
    Ok(sources)
}

fn check_options(opts: &MixOptions, sources: &[Catalog]) -> Result<()> {
    ensure!(
        !opts.name.is_empty()
            && opts
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            && !opts.name.starts_with('.'),
        "--name {:?}: use letters, digits, '.', '_' and '-'",
        opts.name
    );
    ensure!(
        (0.0..=1.0).contains(&opts.almr),
        "--almr {}: must lie in [0, 1]",
        opts.almr
    );
    ensure!(opts.seq_len > 0, "--seq-len must be positive");
    ensure!(
        (0.0..1.0).contains(&opts.valid_share),
        "--valid-share {}: must lie in [0, 1)",
        opts.valid_share
    );
    if let Some(e) = opts.max_epochs {
        ensure!(
            e > 0.0 && e.is_finite(),
            "--max-epochs {e}: must be positive"
        );
    }
    let known = |name: &str, flag: &str| -> Result<()> {
        ensure!(
            sources.iter().any(|s| s.name == name),
            "{flag} {name}: no such source; the build has {}",
            sources
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(())
    };
    for (name, &w) in &opts.weights {
        known(name, "--weight")?;
        ensure!(
            w >= 0.0 && w.is_finite(),
            "--weight {name}={w}: must be a finite number ≥ 0"
        );
    }
    for (name, &v) in &opts.valid_shares {
        known(name, "--valid-share")?;
        ensure!(
            (0.0..1.0).contains(&v),
            "--valid-share {name}={v}: must lie in [0, 1)"
        );
    }
    Ok(())
}

/// Weights inside each group, from `--weight` or the training tokens.
fn group_weights(
    opts: &MixOptions,
    sources: &[Catalog],
    train_tokens: &[u64],
    additional: bool,
) -> Result<Vec<(usize, f64)>> {
    let members: Vec<usize> = (0..sources.len())
        .filter(|&s| sources[s].additional == additional)
        .collect();
    let given = members
        .iter()
        .filter(|&&s| opts.weights.contains_key(&sources[s].name))
        .count();
    if given > 0 && given < members.len() {
        let missing: Vec<&str> = members
            .iter()
            .filter(|&&s| !opts.weights.contains_key(&sources[s].name))
            .map(|&s| sources[s].name.as_str())
            .collect();
        bail!(
            "--weight is given for some {} sources but not for {}; give every source of the group a weight (0 leaves one out) or none",
            if additional { "additional" } else { "non-additional" },
            missing.join(", ")
        );
    }
    Ok(members
        .into_iter()
        .map(|s| {
            let w = match opts.weights.get(&sources[s].name) {
                Some(&w) => w,
                None => train_tokens[s] as f64,
            };
            (s, w)
        })
        .collect())
}

/// Builds the mix `opts.name` over the build in `out` and writes
/// `OUT/mix/NAME.mix` and `OUT/mix/NAME.json`.
pub fn mix(out: &Path, opts: &MixOptions) -> Result<MixReport> {
    let manifest = Manifest::load(out)?;
    let manifest_bytes = std::fs::read(out.join(crate::manifest::FILE_NAME))?;
    let sources = catalog(out, &manifest)?;
    check_options(opts, &sources)?;
    let seq_len = opts.seq_len;

    // Validation split.
    let mut lists = Vec::new();
    let mut shares = Vec::new();
    for s in &sources {
        let share = *opts.valid_shares.get(&s.name).unwrap_or(&opts.valid_share);
        let (train, valid) = stream::split(&s.lengths, share, opts.seed, &s.name);
        lists.push(SourceLists { train, valid });
        shares.push(share);
    }
    let tokens_of = |s: usize, docs: &[u32]| -> u64 {
        docs.iter()
            .map(|&d| sources[s].lengths[d as usize] as u64)
            .sum()
    };
    let train_tokens: Vec<u64> = (0..sources.len())
        .map(|s| tokens_of(s, &lists[s].train))
        .collect();

    // Blend.
    let groups = [
        group_weights(opts, &sources, &train_tokens, true)?,
        group_weights(opts, &sources, &train_tokens, false)?,
    ];
    let group_share = [opts.almr, 1.0 - opts.almr];
    for (g, members) in groups.iter().enumerate() {
        let what = if g == 0 {
            "additional"
        } else {
            "non-additional"
        };
        ensure!(
            group_share[g] == 0.0 || members.iter().any(|&(_, w)| w > 0.0),
            "--almr {} asks for {:.1}% of tokens from {what} sources, but the build has none with tokens and weight > 0",
            opts.almr,
            100.0 * group_share[g]
        );
    }
    let samples = match opts.size {
        Size::Samples(n) => n,
        Size::Tokens(t) => t.div_ceil(seq_len),
    };
    ensure!(samples > 0, "the mix must have at least one sample");
    let order = blend::blend(&group_share, &groups, samples);
    let mut per_source = vec![0u64; sources.len()];
    for &s in &order {
        per_source[s as usize] += 1;
    }

    // Enough tokens for every share?
    let mut short = Vec::new();
    for (s, src) in sources.iter().enumerate() {
        let need = stream::tokens_needed(per_source[s], seq_len);
        let limit = match opts.max_epochs {
            Some(e) => (e * train_tokens[s] as f64).floor() as u64,
            None if train_tokens[s] > 0 => u64::MAX,
            None => 0,
        };
        if need > limit {
            short.push(format!(
                "source {}: its share needs {need} tokens ({} samples), {} epochs of its {} training tokens; {} tokens are missing",
                src.name,
                per_source[s],
                if train_tokens[s] == 0 {
                    "infinite".to_string()
                } else {
                    format!("{:.3}", need as f64 / train_tokens[s] as f64)
                },
                train_tokens[s],
                need - limit.min(need)
            ));
        }
    }
    if !short.is_empty() {
        bail!(
            "not enough data{}:\n  {}",
            match opts.max_epochs {
                Some(e) => format!(" within --max-epochs {e}"),
                None => String::new(),
            },
            short.join("\n  ")
        );
    }

    // Streams, then the records in blend order.
    let mut streams = Vec::new();
    for (s, src) in sources.iter().enumerate() {
        let st = stream::train_stream(
            &lists[s].train,
            &src.lengths,
            per_source[s],
            seq_len,
            opts.seed,
            &src.name,
        );
        streams.push(st);
    }
    let index_lists: Vec<SourceLists> = lists
        .iter()
        .zip(&mut streams)
        .map(|(l, st)| SourceLists {
            train: std::mem::take(&mut st.docs),
            valid: l.valid.clone(),
        })
        .collect();
    let mut next = vec![0usize; sources.len()];
    let train = order.iter().map(|&s| {
        let k = &mut next[s as usize];
        *k += 1;
        (s, streams[s as usize].samples[*k - 1])
    });
    let mut valid: Vec<Record> = Vec::new();
    let mut valid_samples = Vec::new();
    for (s, src) in sources.iter().enumerate() {
        let w = stream::windows(&lists[s].valid, &src.lengths, seq_len, u64::MAX);
        valid_samples.push(w.len() as u64);
        valid.extend(w.into_iter().map(|st| (s as u16, st)));
    }

    let dir = out.join(DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let index_rel = PathBuf::from(DIR).join(format!("{}.mix", opts.name));
    let digest = index::write(
        &out.join(&index_rel),
        seq_len,
        &index_lists,
        order.len(),
        train,
        &valid,
    )?;

    let is_additional: Vec<bool> = order
        .iter()
        .map(|&s| sources[s as usize].additional)
        .collect();
    let achieved = blend::achieved(&is_additional, opts.almr, WINDOW);
    let group_total = |g: usize| groups[g].iter().map(|&(_, w)| w).sum::<f64>();
    let mut mix_sources = Vec::new();
    for (s, src) in sources.iter().enumerate() {
        let g = if src.additional { 0 } else { 1 };
        let w = groups[g]
            .iter()
            .find(|&&(i, _)| i == s)
            .map(|&(_, w)| w)
            .unwrap_or(0.0);
        let target_share = if w > 0.0 {
            group_share[g] * w / group_total(g)
        } else {
            0.0
        };
        let used = stream::tokens_needed(per_source[s], seq_len);
        mix_sources.push(MixSource {
            name: src.name.clone(),
            language: src.language.clone(),
            additional: src.additional,
            shards: src.shards.clone(),
            documents: src.lengths.len() as u64,
            tokens: src.lengths.iter().map(|&l| l as u64).sum(),
            group_weight: w,
            target_share,
            achieved_share: per_source[s] as f64 / samples as f64,
            samples: per_source[s],
            tokens_used: used,
            epochs: if train_tokens[s] > 0 {
                used as f64 / train_tokens[s] as f64
            } else {
                0.0
            },
            epochs_started: streams[s].epochs_started,
            train_documents: lists[s].train.len() as u64,
            train_tokens: train_tokens[s],
            valid_share: shares[s],
            valid_documents: lists[s].valid.len() as u64,
            valid_tokens: tokens_of(s, &lists[s].valid),
            valid_samples: valid_samples[s],
        });
    }
    let report = MixReport {
        almr_version: env!("CARGO_PKG_VERSION").to_string(),
        name: opts.name.clone(),
        manifest_sha256: sha256_hex(&manifest_bytes),
        index: IndexFile {
            path: index_rel,
            digest,
        },
        seq_len,
        seed: opts.seed,
        samples,
        tokens: samples * seq_len,
        valid_samples: valid.len() as u64,
        target_almr: opts.almr,
        achieved_almr: achieved.share,
        max_window_deviation: achieved.max_window_deviation,
        window: achieved.window,
        max_epochs: opts.max_epochs,
        sources: mix_sources,
    };
    let sidecar = dir.join(format!("{}.json", opts.name));
    write_atomic(&sidecar, report.to_json().as_bytes())
        .with_context(|| format!("writing {}", sidecar.display()))?;
    Ok(report)
}
