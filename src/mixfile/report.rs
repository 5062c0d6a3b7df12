//! The JSON sidecar `OUT/mix/NAME.json`: what a mix targets, what it
//! achieved, and how it uses each source. Its spec is
//! `schemas/mix.schema.json`.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fsutil::FileDigest;

/// The whole sidecar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MixReport {
    /// Version of almr that wrote it.
    pub almr_version: String,
    /// The mix name.
    pub name: String,
    /// SHA-256 of the build's `manifest.json` the mix was made from.
    pub manifest_sha256: String,
    /// The index file, relative to the build's output directory.
    pub index: IndexFile,
    /// Tokens a sample is trained on; each sample holds `seq_len + 1` tokens.
    pub seq_len: u64,
    /// The seed of every shuffle and draw.
    pub seed: u64,
    /// Training samples in the stream.
    pub samples: u64,
    /// Training tokens: `samples · seq_len`.
    pub tokens: u64,
    /// Validation samples, over all sources.
    pub valid_samples: u64,
    /// The ALMR asked for: the share of training tokens from additional
    /// sources.
    pub target_almr: f64,
    /// The additional share over the whole training stream.
    pub achieved_almr: f64,
    /// The largest `|ALMR − target|` over any `window` consecutive samples.
    pub max_window_deviation: f64,
    /// Samples per window for `max_window_deviation` (1000, or the whole
    /// stream when shorter).
    pub window: u64,
    /// The `--max-epochs` limit, if one was given.
    pub max_epochs: Option<f64>,
    /// Every source of the build, in pipeline order; a source's position is
    /// its number in the index.
    pub sources: Vec<MixSource>,
    /// For a packed (SFT) mix of a build with chat sources: how its
    /// conversations were packed. Its ALMR counts trained (mask 1) tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packing: Option<Packing>,
}

/// How a packed (SFT) mix packed its conversations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Packing {
    /// The packing rule: `best_fit_decreasing`, per block of
    /// `block` conversations in blend order.
    pub method: String,
    /// Conversations per packing block.
    pub block: u64,
    /// What was done with conversations longer than `seq_len`: `drop` or
    /// `truncate`.
    pub too_long: String,
    /// Conversations in the training sequences.
    pub conversations: u64,
    /// Tokens of those conversations (the rest of `samples · seq_len` is
    /// padding, with mask 0).
    pub tokens: u64,
    /// Tokens with mask 1 in the training sequences.
    pub trained_tokens: u64,
    /// `tokens / (samples · seq_len)`.
    pub efficiency: f64,
    /// The same for the validation sequences.
    pub valid_efficiency: f64,
    /// Per source, in index order.
    pub sources: Vec<PackedSource>,
}

/// How a packed mix uses one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PackedSource {
    /// Source name.
    pub name: String,
    /// Conversations taken into training sequences (with repeats).
    pub conversations: u64,
    /// Trained tokens they hold.
    pub trained_tokens: u64,
    /// Trained tokens of its training conversations, each once.
    pub train_trained_tokens: u64,
    /// Conversations left out for being longer than `seq_len`.
    pub dropped_too_long: u64,
    /// Conversations cut to `seq_len` tokens (`--too-long truncate`).
    pub truncated: u64,
}

/// The index file and its checksum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IndexFile {
    /// Path relative to the build's output directory.
    pub path: PathBuf,
    /// Size and SHA-256.
    #[serde(flatten)]
    pub digest: FileDigest,
}

/// How the mix uses one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MixSource {
    /// Source name.
    pub name: String,
    /// Language code.
    pub language: String,
    /// Whether it counts toward the ALMR.
    pub additional: bool,
    /// Its shards in order; document numbers in the index run across them.
    pub shards: Vec<MixShard>,
    /// Documents over all shards.
    pub documents: u64,
    /// Tokens over all shards.
    pub tokens: u64,
    /// Weight inside its group as used: the `--weight` given, or its training
    /// tokens.
    pub group_weight: f64,
    /// Target share of the whole training stream.
    pub target_share: f64,
    /// Achieved share of the training stream.
    pub achieved_share: f64,
    /// Training samples taken from it.
    pub samples: u64,
    /// Tokens of its training stream read: `samples · seq_len + 1` (0 when
    /// no samples).
    pub tokens_used: u64,
    /// `tokens_used / train_tokens`: how many times its training tokens are
    /// seen.
    pub epochs: f64,
    /// Epochs begun, each a new shuffle; the last may be partial.
    pub epochs_started: u64,
    /// Documents in its training split.
    pub train_documents: u64,
    /// Tokens in its training split.
    pub train_tokens: u64,
    /// Share of documents asked to be held out.
    pub valid_share: f64,
    /// Documents held out for validation.
    pub valid_documents: u64,
    /// Tokens of those documents.
    pub valid_tokens: u64,
    /// Validation samples cut from them.
    pub valid_samples: u64,
}

/// One shard of a source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MixShard {
    /// Prefix relative to the build's output directory.
    pub prefix: PathBuf,
    /// Documents in it.
    pub documents: u64,
    /// Tokens in it.
    pub tokens: u64,
}

/// Validation windows below which a loss is noise: `almr mix` warns about a
/// source or language whose split gives fewer, and so does the trainer.
pub const MIN_WINDOWS: usize = 8;

impl MixReport {
    /// A warning for each source, then each language, whose validation
    /// split gives fewer than [`MIN_WINDOWS`] windows, with the
    /// `--valid-share` that would give about that many.
    pub fn valid_warnings(&self) -> Vec<String> {
        let mut warnings: Vec<String> = (self.sources.iter())
            .filter(|s| (s.valid_samples as usize) < MIN_WINDOWS)
            .map(|s| {
                let advice = match s.valid_share >= 0.5 {
                    true => String::from("the source is too small for more at this --seq-len"),
                    false => format!(
                        "hold out more with --valid-share {}={}",
                        s.name,
                        self.share_for(s)
                    ),
                };
                format!(
                    "source {}: its validation split gives {} window{} of {} tokens (fewer than \
                     {MIN_WINDOWS}), so its validation loss is noise; {advice}",
                    s.name,
                    s.valid_samples,
                    if s.valid_samples == 1 { "" } else { "s" },
                    self.seq_len,
                )
            })
            .collect();
        let mut by_language: std::collections::BTreeMap<&str, u64> = Default::default();
        for s in &self.sources {
            *by_language.entry(&s.language).or_default() += s.valid_samples;
        }
        for (lang, n) in by_language {
            if (n as usize) < MIN_WINDOWS {
                warnings.push(format!(
                    "language {lang}: validation windows {n} (fewer than {MIN_WINDOWS}): its \
                     validation loss is noise; raise --valid-share of its sources"
                ));
            }
        }
        warnings
    }

    /// The share of `s`'s documents that would give about
    /// [`MIN_WINDOWS`] validation windows, rounded up to two digits and at
    /// most 0.5.
    fn share_for(&self, s: &MixSource) -> String {
        let total = (s.train_tokens + s.valid_tokens).max(1) as f64;
        // Two windows and a fifth to spare: documents are held out whole,
        // and a window must fit inside the split.
        let needed = 1.2 * (MIN_WINDOWS as f64 + 2.0) * (self.seq_len + 1) as f64;
        let share = (needed / total).max(s.valid_share * 1.5).min(0.5);
        let digits = 10f64.powi(1 - share.log10().floor() as i32);
        format!("{}", (share * digits).ceil() / digits)
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("report serializes");
        s.push('\n');
        s
    }
}

/// The sidecar's JSON Schema, as committed in `schemas/mix.schema.json`.
pub fn generated_schema() -> String {
    let mut s =
        serde_json::to_string_pretty(&schemars::schema_for!(MixReport)).expect("schema serializes");
    s.push('\n');
    s
}
