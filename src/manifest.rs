//! `OUT/manifest.json`: what a build read, what it did with every record, and
//! every file it wrote, with sizes and checksums.
//!
//! Its numbers add up: for every source and every input file,
//! `read = kept + rejected.total + malformed.total`, and the totals are the
//! sums over sources.
//! The spec is `schemas/manifest.schema.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{Pipeline, Source};
use crate::error::{Error, Result};
use crate::fsutil::FileDigest;
use crate::shard::DType;

/// The manifest's file name inside a build's output directory.
pub const FILE_NAME: &str = "manifest.json";

/// The whole manifest.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Manifest {
    /// Version of almr that wrote it.
    pub almr_version: String,
    /// Present only when the build read part of each source (`almr build
    /// --limit`): a trial, not the full corpus. A full build has no `limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    /// The pipeline file.
    pub pipeline: PipelineInfo,
    /// The tokenizer.
    pub tokenizer: TokenizerInfo,
    /// Every input file, in reading order.
    pub inputs: Vec<InputFile>,
    /// Counts per source, in pipeline order.
    pub sources: Vec<SourceCounts>,
    /// Sums over all sources.
    pub totals: Counts,
    /// Every shard, in writing order.
    pub shards: Vec<ShardEntry>,
    /// Every file written, relative to the output directory (this manifest
    /// excepted), sorted by path.
    pub outputs: Vec<OutputFile>,
}

/// How much of each source a limited build (`almr build --limit N`) read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Limit {
    /// Most records read from each source: items its reader yields,
    /// malformed ones included.
    pub records: u64,
    /// The seed of a sample of `records` records of each source
    /// (`--sample-seed`); absent when the build read each source's first
    /// `records`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_seed: Option<u64>,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.sample_seed {
            None => write!(f, "the first {} records of each source", self.records),
            Some(seed) => write!(
                f,
                "a sample of {} records of each source (seed {seed})",
                self.records
            ),
        }
    }
}

/// The pipeline that produced the build.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PipelineInfo {
    /// Path as given on the command line.
    pub path: PathBuf,
    /// SHA-256 of the pipeline file's bytes.
    pub sha256: String,
    /// The parsed pipeline, defaults filled in.
    #[schemars(with = "serde_json::Value")]
    pub config: Pipeline,
}

/// The tokenizer the shards were made with.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TokenizerInfo {
    /// Path as configured.
    pub path: PathBuf,
    /// Its copy inside the output directory.
    pub copy: PathBuf,
    /// SHA-256 of `tokenizer.json`.
    pub sha256: String,
    /// Largest id + 1.
    pub vocab_size: usize,
    /// EOS token appended to each document.
    pub eos: String,
    /// Its id.
    pub eos_id: u32,
    /// Token dtype of every shard.
    #[schemars(with = "String")]
    pub dtype: DType,
    /// Which encoder gave the ids: `"almr"`, almr's own byte-level BPE, or
    /// `"tokenizers"`, the Hugging Face crate. Both give the same ids.
    #[serde(default)]
    pub encoder: String,
    /// Why almr's encoder could not be used for this tokenizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder_note: Option<String>,
    /// Documents almr's encoder declined because their text holds an added
    /// token such as `<|end_of_text|>`; the `tokenizers` crate encoded them.
    #[serde(default)]
    pub declined_documents: u64,
    /// The chat template the conversations were rendered with, when the
    /// build has chat sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template: Option<ChatTemplateInfo>,
}

/// The chat template of a build with chat sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChatTemplateInfo {
    /// Where it came from: `llama3 (built in: …)`, or the file.
    pub origin: String,
    /// SHA-256 of the template text.
    pub sha256: String,
    /// The `tokenizer_config.json` in the output that holds it as
    /// `chat_template`, with the BOS and EOS tokens it renders.
    pub config: PathBuf,
}

/// Record counts. `read = kept + rejected.total + malformed.total`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Counts {
    /// Records read (documents plus malformed entries).
    pub read: u64,
    /// Records that became documents in a shard.
    pub kept: u64,
    /// Documents a step dropped, by `stage/reason` (e.g.
    /// `filter/gopher_quality.min_words`, `exact_dedup/duplicate`).
    pub rejected: ReasonCounts,
    /// Records that could not be read.
    pub malformed: ReasonCounts,
    /// Changes the steps made to kept and rejected documents, by kind
    /// (`mojibake_repaired`, `pii_email`, `t2s_converted`, …): documents for
    /// normalizations, occurrences for PII.
    pub changes: BTreeMap<String, u64>,
    /// Tokens written, EOS included.
    pub tokens: u64,
    /// UTF-8 bytes of the kept documents' text.
    pub text_bytes: u64,
}

/// A total and its split by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReasonCounts {
    /// Sum over reasons.
    pub total: u64,
    /// Count per reason name.
    pub by_reason: BTreeMap<String, u64>,
}

impl TokenizerInfo {
    /// What every shard of the build holds: its token dtype, and ids below
    /// this vocabulary size (for [`crate::shard::ShardReader::expect`]).
    pub fn shard_facts(&self) -> (DType, u32) {
        (
            self.dtype,
            u32::try_from(self.vocab_size).unwrap_or(u32::MAX),
        )
    }
}

impl ReasonCounts {
    /// Counts one more record for `reason`.
    pub fn add(&mut self, reason: &str) {
        self.total += 1;
        *self.by_reason.entry(reason.to_string()).or_default() += 1;
    }

    fn merge(&mut self, other: &ReasonCounts) {
        self.total += other.total;
        for (k, v) in &other.by_reason {
            *self.by_reason.entry(k.clone()).or_default() += v;
        }
    }
}

impl Counts {
    /// Adds another set of counts into this one.
    pub fn merge(&mut self, other: &Counts) {
        self.read += other.read;
        self.kept += other.kept;
        self.rejected.merge(&other.rejected);
        self.malformed.merge(&other.malformed);
        for (k, v) in &other.changes {
            *self.changes.entry(k.clone()).or_default() += v;
        }
        self.tokens += other.tokens;
        self.text_bytes += other.text_bytes;
    }

    /// The sum of `counts`.
    pub fn sum<'a>(counts: impl IntoIterator<Item = &'a Counts>) -> Counts {
        let mut total = Counts::default();
        for c in counts {
            total.merge(c);
        }
        total
    }

    /// Moves a kept document of `tokens` tokens and `text_bytes` bytes of
    /// text to the rejected, under `stage/reason`: the correction when a
    /// step drops a document after it was written to its shard.
    pub fn drop_kept(&mut self, stage: &str, reason: &str, tokens: u64, text_bytes: u64) {
        self.kept -= 1;
        self.tokens -= tokens;
        self.text_bytes -= text_bytes;
        self.rejected.add(&format!("{stage}/{reason}"));
    }

    /// Whether `read = kept + rejected + malformed` and the reasons sum to
    /// their totals.
    pub fn balanced(&self) -> bool {
        self.read == self.kept + self.rejected.total + self.malformed.total
            && self.rejected.by_reason.values().sum::<u64>() == self.rejected.total
            && self.malformed.by_reason.values().sum::<u64>() == self.malformed.total
    }
}

/// One input file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct InputFile {
    /// Source it belongs to.
    pub source: String,
    /// Path as matched by the source's glob.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file.
    pub sha256: String,
    /// What became of its records.
    pub counts: Counts,
}

/// One source's totals.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SourceCounts {
    /// Source name.
    pub name: String,
    /// Language code.
    pub language: String,
    /// Whether it counts toward the ALMR.
    pub additional: bool,
    /// Number of input files.
    pub files: usize,
    /// Number of shards written.
    pub shards: usize,
    /// What became of its records.
    pub counts: Counts,
}

impl SourceCounts {
    /// The totals of one source over its input files.
    pub fn tally(source: &Source, inputs: &[InputFile], shards: usize) -> SourceCounts {
        let files: Vec<&InputFile> = inputs.iter().filter(|f| f.source == source.name).collect();
        SourceCounts {
            name: source.name.clone(),
            language: source.language.clone(),
            additional: source.additional,
            files: files.len(),
            shards,
            counts: Counts::sum(files.iter().map(|f| &f.counts)),
        }
    }
}

/// One shard.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ShardEntry {
    /// Prefix relative to the output directory (add `.bin`, `.idx`,
    /// `.docs.parquet`).
    pub prefix: PathBuf,
    /// Source name.
    pub source: String,
    /// Documents in the shard.
    pub documents: u64,
    /// Tokens in the shard, EOS included.
    pub tokens: u64,
    /// For a chat shard (with its mask, `PREFIX.mask.{bin,idx}`): the tokens
    /// with mask 1, which the loss counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_tokens: Option<u64>,
}

/// One output file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct OutputFile {
    /// Path relative to the output directory.
    pub path: PathBuf,
    /// Size and checksum.
    #[serde(flatten)]
    pub digest: FileDigest,
}

impl Manifest {
    /// Reads `DIR/manifest.json`.
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join(FILE_NAME);
        let text = std::fs::read_to_string(&path).map_err(Error::file("reading", &path))?;
        serde_json::from_str(&text).map_err(|source| Error::JsonFile { path, source })
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("manifest serializes");
        s.push('\n');
        s
    }

    /// Checks every invariant the manifest promises; returns what fails.
    pub fn check(&self) -> Vec<String> {
        self.problems(true)
    }

    /// [`Manifest::check`] but for the shards: the counts of a dry run,
    /// which writes none.
    pub fn check_counts(&self) -> Vec<String> {
        self.problems(false)
    }

    /// What fails among the invariants, the shards' only with `shards`.
    fn problems(&self, shards: bool) -> Vec<String> {
        let mut problems = Vec::new();
        let mut total = Counts::default();
        for s in &self.sources {
            if !s.counts.balanced() {
                problems.push(format!("source {}: counts do not add up", s.name));
            }
            let mut from_files = Counts::default();
            for f in self.inputs.iter().filter(|f| f.source == s.name) {
                if !f.counts.balanced() {
                    problems.push(format!("input {}: counts do not add up", f.path.display()));
                }
                from_files.merge(&f.counts);
            }
            if from_files != s.counts {
                problems.push(format!(
                    "source {}: differs from the sum of its files",
                    s.name
                ));
            }
            let (docs, tokens) = self
                .shards
                .iter()
                .filter(|sh| sh.source == s.name)
                .fold((0, 0), |(d, t), sh| (d + sh.documents, t + sh.tokens));
            if shards && (docs, tokens) != (s.counts.kept, s.counts.tokens) {
                problems.push(format!(
                    "source {}: shards do not hold its kept documents",
                    s.name
                ));
            }
            total.merge(&s.counts);
        }
        if total != self.totals {
            problems.push("totals differ from the sum of the sources".into());
        }
        problems
    }
}

/// The manifest's JSON Schema, as committed in `schemas/manifest.schema.json`.
pub fn generated_schema() -> String {
    let mut s =
        serde_json::to_string_pretty(&schemars::schema_for!(Manifest)).expect("schema serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(read: u64, kept: u64, bad: &[(&str, u64)]) -> Counts {
        let mut c = Counts {
            read,
            kept,
            ..Counts::default()
        };
        for (reason, n) in bad {
            for _ in 0..*n {
                c.malformed.add(reason);
            }
        }
        c
    }

    #[test]
    fn balanced_means_read_is_kept_plus_rejected_plus_malformed() {
        assert!(counts(5, 3, &[("bad_json", 2)]).balanced());
        let mut c = counts(6, 3, &[("bad_json", 2)]);
        assert!(!c.balanced());
        c.rejected.add("filter/length.min_chars");
        assert!(c.balanced());
        assert!(!counts(5, 3, &[("bad_json", 1)]).balanced());
        let mut c = counts(5, 3, &[("bad_json", 2)]);
        c.malformed.total = 3;
        assert!(!c.balanced());
    }

    #[test]
    fn merge_adds_reasons() {
        let mut a = counts(2, 1, &[("bad_json", 1)]);
        a.merge(&counts(3, 1, &[("bad_json", 1), ("invalid_utf8", 1)]));
        assert_eq!((a.read, a.kept, a.malformed.total), (5, 2, 3));
        assert_eq!(a.malformed.by_reason["bad_json"], 2);
        assert!(a.balanced());
    }
}
