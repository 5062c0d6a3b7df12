//! Planning a mix: everything `almr mix` decides before it writes a byte.
//!
//! [`MixPlan::new`] reads the build's manifest and each source's document
//! lengths, checks the options, holds out every source's validation
//! documents ([`stream::split`]), weighs the sources inside their group,
//! orders the training samples by source ([`blend::blend`]) and refuses when
//! a source lacks the tokens its share needs.

use std::collections::BTreeMap;
use std::path::Path;

use super::{blend, stream};
use crate::error::{Error, Result};
use crate::fsutil::{self, sha256_hex};
use crate::manifest::Manifest;
use crate::mixfile::index::{SourceLists, DIR, MAX_SEQ_LEN};
use crate::mixfile::report::MixShard;
use crate::shard::ShardReader;

/// `Err(Error::Invalid(message))` unless `ok`: a check of the options
/// against the build. The message is made only when the check fails.
fn require(ok: bool, message: impl FnOnce() -> String) -> Result<()> {
    match ok {
        true => Ok(()),
        false => Err(Error::Invalid(message())),
    }
}

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
    /// What a packed (SFT) mix does with a conversation longer than
    /// `seq_len`.
    pub too_long: TooLong,
    /// Overwrite a mix of the same name. Without it, an existing
    /// `OUT/mix/NAME.mix` or `NAME.json` is an error: a training run may be
    /// reading it.
    pub force: bool,
}

/// What a packed (SFT) mix does with a conversation longer than `seq_len`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TooLong {
    /// Leave it out (counted).
    #[default]
    Drop,
    /// Keep its first `seq_len` tokens, if they hold a trained token.
    Truncate,
}

/// A source as the mixer sees it.
pub(super) struct Catalog {
    /// Source name.
    pub name: String,
    /// Language code.
    pub language: String,
    /// Whether it counts toward the ALMR.
    pub additional: bool,
    /// Its shards, in order.
    pub shards: Vec<MixShard>,
    /// Token count of each document, numbered across shards.
    pub lengths: Vec<u32>,
}

impl Catalog {
    /// Tokens of documents `docs`.
    pub fn tokens_of(&self, docs: &[u32]) -> u64 {
        docs.iter().map(|&d| self.lengths[d as usize] as u64).sum()
    }
}

/// One source of a planned mix.
pub(super) struct SourcePlan {
    /// The source and its documents.
    pub catalog: Catalog,
    /// Share of its documents asked to be held out.
    pub valid_share: f64,
    /// Its training and validation documents, both ascending.
    pub lists: SourceLists,
    /// Tokens of its training documents.
    pub train_tokens: u64,
    /// Training samples the blend gives it.
    pub samples: u64,
}

/// A mix decided but not yet written.
pub(super) struct MixPlan<'a> {
    /// The options it was made from.
    pub opts: &'a MixOptions,
    /// SHA-256 of the build's `manifest.json`.
    pub manifest_sha256: String,
    /// Every source of the build, in pipeline order.
    pub sources: Vec<SourcePlan>,
    /// The additional group, then the rest: `(source, weight)` pairs.
    pub groups: [Vec<(usize, f64)>; 2],
    /// Each group's share of the stream: ALMR and 1 − ALMR.
    pub group_share: [f64; 2],
    /// Training samples in the stream.
    pub samples: u64,
    /// Source of each training sample, in stream order.
    pub order: Vec<u16>,
}

impl<'a> MixPlan<'a> {
    /// Plans the mix `opts` over the build in `out`.
    pub fn new(out: &Path, opts: &'a MixOptions) -> Result<MixPlan<'a>> {
        check_name(opts)?;
        check_overwrite(out, opts)?;
        let manifest = Manifest::load(out)?;
        let manifest_bytes = std::fs::read(out.join(crate::manifest::FILE_NAME))?;
        let catalog = catalog(out, &manifest)?;
        check_options(opts, &catalog)?;
        let mut sources: Vec<SourcePlan> = catalog.into_iter().map(|c| hold_out(c, opts)).collect();
        let groups = [
            group_weights(opts, &sources, true)?,
            group_weights(opts, &sources, false)?,
        ];
        let group_share = [opts.almr, 1.0 - opts.almr];
        check_groups(opts, &groups, &group_share)?;
        let samples = check_samples(opts)?;
        let order = blend::blend(&group_share, &groups, samples);
        for &s in &order {
            sources[s as usize].samples += 1;
        }
        check_enough_data(opts, &sources)?;
        Ok(MixPlan {
            opts,
            manifest_sha256: sha256_hex(&manifest_bytes),
            sources,
            groups,
            group_share,
            samples,
            order,
        })
    }

    /// Weight of source `s` inside its group as used, and its target share
    /// of the whole stream.
    pub fn weight_and_target(&self, s: usize) -> (f64, f64) {
        let g = if self.sources[s].catalog.additional {
            0
        } else {
            1
        };
        let w = self.groups[g]
            .iter()
            .find(|&&(i, _)| i == s)
            .map(|&(_, w)| w)
            .unwrap_or(0.0);
        let group_total = self.groups[g].iter().map(|&(_, w)| w).sum::<f64>();
        let target_share = if w > 0.0 {
            self.group_share[g] * w / group_total
        } else {
            0.0
        };
        (w, target_share)
    }
}

/// Every source of the build with its shards and document lengths, checked
/// against the manifest.
pub(super) fn catalog(out: &Path, manifest: &Manifest) -> Result<Vec<Catalog>> {
    let (dtype, vocab) = manifest.tokenizer.shard_facts();
    let mut sources = Vec::new();
    for s in &manifest.sources {
        let mut shards = Vec::new();
        let mut lengths = Vec::new();
        for sh in manifest.shards.iter().filter(|sh| sh.source == s.name) {
            let r = ShardReader::open(&out.join(&sh.prefix))?.expect(dtype, vocab)?;
            require(
                r.len() == r.documents()
                    && (r.documents() as u64, r.total_tokens()) == (sh.documents, sh.tokens),
                || {
                    format!(
                        "{}: holds {} documents in {} sequences and {} tokens; the manifest says {} documents and {} tokens",
                        sh.prefix.display(),
                        r.documents(),
                        r.len(),
                        r.total_tokens(),
                        sh.documents,
                        sh.tokens
                    )
                },
            )?;
            for d in 0..r.len() {
                lengths.push(r.seq_len(d)? as u32);
            }
            shards.push(MixShard {
                prefix: sh.prefix.clone(),
                documents: sh.documents,
                tokens: sh.tokens,
            });
        }
        require(lengths.len() < u32::MAX as usize, || {
            format!(
                "source {}: {} documents; a mix numbers them in 32 bits",
                s.name,
                lengths.len()
            )
        })?;
        sources.push(Catalog {
            name: s.name.clone(),
            language: s.language.clone(),
            additional: s.additional,
            shards,
            lengths,
        });
    }
    require(sources.len() <= u16::MAX as usize, || {
        "more than 65535 sources".into()
    })?;
    Ok(sources)
}

/// Checks that the mix's name makes file names under `OUT/mix`.
pub(super) fn check_name(opts: &MixOptions) -> Result<()> {
    require(
        !opts.name.is_empty()
            && opts
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            && !opts.name.starts_with('.'),
        || {
            format!(
                "--name {:?}: use letters, digits, '.', '_' and '-'",
                opts.name
            )
        },
    )
}

/// Refuses to overwrite an existing mix of the same name unless
/// `opts.force`: a training run may be reading it.
pub(super) fn check_overwrite(out: &Path, opts: &MixOptions) -> Result<()> {
    // The sidecar is the mix's commit record: an index without one is what
    // a killed `almr mix` left, and is overwritten.
    let existing: Vec<String> = ["json"]
        .iter()
        .map(|ext| out.join(DIR).join(format!("{}.{ext}", opts.name)))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    require(opts.force || existing.is_empty(), || {
        format!(
            "mix {:?} exists ({}), and a training run may be reading it: pass --force to overwrite it, or choose another --name",
            opts.name,
            existing.join(", ")
        )
    })
}

/// The most samples a mix holds: 2^32 (8 GiB of blend order while it is
/// made, a 64 GiB index).
pub const MAX_SAMPLES: u64 = 1 << 32;

/// The number of training samples `--samples` or `--tokens` asks for,
/// checked against [`MAX_SAMPLES`] before anything is allocated.
pub(super) fn check_samples(opts: &MixOptions) -> Result<u64> {
    let (samples, asked) = match opts.size {
        Size::Samples(n) => (n, String::from("--samples")),
        Size::Tokens(t) => (
            t.div_ceil(opts.seq_len),
            format!("--tokens {t} at --seq-len {}", opts.seq_len),
        ),
    };
    require(samples > 0, || {
        "the mix must have at least one sample".into()
    })?;
    require(samples <= MAX_SAMPLES, || {
        format!("{asked}: {samples} samples; a mix holds at most {MAX_SAMPLES}")
    })?;
    Ok(samples)
}

/// Checks the options that do not depend on the sources' sizes.
pub(super) fn check_options(opts: &MixOptions, sources: &[Catalog]) -> Result<()> {
    require((0.0..=1.0).contains(&opts.almr), || {
        format!("--almr {}: must lie in [0, 1]", opts.almr)
    })?;
    require((1..=MAX_SEQ_LEN).contains(&opts.seq_len), || {
        format!("--seq-len {}: must lie in 1..={MAX_SEQ_LEN}", opts.seq_len)
    })?;
    require((0.0..1.0).contains(&opts.valid_share), || {
        format!("--valid-share {}: must lie in [0, 1)", opts.valid_share)
    })?;
    if let Some(e) = opts.max_epochs {
        require(e > 0.0 && e.is_finite(), || {
            format!("--max-epochs {e}: must be positive")
        })?;
    }
    check_per_source_options(opts, sources)
}

/// Checks `--weight` and per-source `--valid-share`: known sources, values
/// in range.
fn check_per_source_options(opts: &MixOptions, sources: &[Catalog]) -> Result<()> {
    let known = |name: &str, flag: &str| -> Result<()> {
        require(sources.iter().any(|s| s.name == name), || {
            format!(
                "{flag} {name}: no such source; the build has {}",
                sources
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    };
    for (name, &w) in &opts.weights {
        known(name, "--weight")?;
        require(w >= 0.0 && w.is_finite(), || {
            format!("--weight {name}={w}: must be a finite number ≥ 0")
        })?;
    }
    for (name, &v) in &opts.valid_shares {
        known(name, "--valid-share")?;
        require((0.0..1.0).contains(&v), || {
            format!("--valid-share {name}={v}: must lie in [0, 1)")
        })?;
    }
    Ok(())
}

/// Holds out the validation documents of one source.
pub(super) fn hold_out(catalog: Catalog, opts: &MixOptions) -> SourcePlan {
    let share = *opts
        .valid_shares
        .get(&catalog.name)
        .unwrap_or(&opts.valid_share);
    let (train, valid) = stream::split(&catalog.lengths, share, opts.seed, &catalog.name);
    SourcePlan {
        train_tokens: catalog.tokens_of(&train),
        valid_share: share,
        lists: SourceLists { train, valid },
        samples: 0,
        catalog,
    }
}

/// Weights inside each group, from `--weight` or the training tokens.
pub(super) fn group_weights(
    opts: &MixOptions,
    sources: &[SourcePlan],
    additional: bool,
) -> Result<Vec<(usize, f64)>> {
    let name = |s: usize| sources[s].catalog.name.as_str();
    let members: Vec<usize> = (0..sources.len())
        .filter(|&s| sources[s].catalog.additional == additional)
        .collect();
    let given = members
        .iter()
        .filter(|&&s| opts.weights.contains_key(name(s)))
        .count();
    if given > 0 && given < members.len() {
        let missing: Vec<&str> = members
            .iter()
            .filter(|&&s| !opts.weights.contains_key(name(s)))
            .map(|&s| name(s))
            .collect();
        return Err(Error::Invalid(format!(
            "--weight is given for some {} sources but not for {}; give every source of the group a weight (0 leaves one out) or none",
            if additional { "additional" } else { "non-additional" },
            missing.join(", ")
        )));
    }
    Ok(members
        .into_iter()
        .map(|s| {
            let w = match opts.weights.get(name(s)) {
                Some(&w) => w,
                None => sources[s].train_tokens as f64,
            };
            (s, w)
        })
        .collect())
}

/// Refuses a group with a share of the stream but no source to fill it.
pub(super) fn check_groups(
    opts: &MixOptions,
    groups: &[Vec<(usize, f64)>; 2],
    group_share: &[f64; 2],
) -> Result<()> {
    for (g, members) in groups.iter().enumerate() {
        let what = if g == 0 {
            "additional"
        } else {
            "non-additional"
        };
        require(
            group_share[g] == 0.0 || members.iter().any(|&(_, w)| w > 0.0),
            || {
                format!(
                    "--almr {} asks for {:.1}% of tokens from {what} sources, but the build has none with tokens and weight > 0",
                    opts.almr,
                    100.0 * group_share[g]
                )
            },
        )?;
    }
    Ok(())
}

/// Refuses, naming every source that falls short, when a source has fewer
/// training tokens (times `--max-epochs`, when given) than its share needs.
fn check_enough_data(opts: &MixOptions, sources: &[SourcePlan]) -> Result<()> {
    let mut short = Vec::new();
    for s in sources {
        let need = stream::tokens_needed(s.samples, opts.seq_len);
        let limit = match opts.max_epochs {
            Some(e) => (e * s.train_tokens as f64).floor() as u64,
            None if s.train_tokens > 0 => u64::MAX,
            None => 0,
        };
        if need > limit {
            short.push(format!(
                "source {}: its share needs {need} tokens ({} samples), {} epochs of its {} training tokens; {} tokens are missing",
                s.catalog.name,
                s.samples,
                if s.train_tokens == 0 {
                    "infinite".to_string()
                } else {
                    format!("{:.3}", need as f64 / s.train_tokens as f64)
                },
                s.train_tokens,
                need - limit.min(need)
            ));
        }
    }
    if !short.is_empty() {
        return Err(Error::Invalid(format!(
            "not enough data{}:\n  {}",
            match opts.max_epochs {
                Some(e) => format!(" within --max-epochs {e}"),
                None => String::new(),
            },
            short.join("\n  ")
        )));
    }
    Ok(())
}

/// Takes the lock of mix `name`: `OUT/mix/.NAME.lock`.
pub(super) fn lock(out: &Path, name: &str) -> Result<std::fs::File> {
    let dir = out.join(DIR);
    std::fs::create_dir_all(&dir).map_err(Error::file("creating", &dir))?;
    let path = dir.join(format!(".{name}.lock"));
    match fsutil::lock_with_pid(&path).map_err(Error::file("locking", &path))? {
        Ok(file) => Ok(file),
        Err(holder) => Err(Error::Invalid(format!(
            "mix {name:?} is being written by {}, which holds {}; wait for it to finish",
            fsutil::holder_name(&holder),
            path.display()
        ))),
    }
}
