//! `almr sample`: random samples of a mix decoded to text, with the
//! provenance of every document they span. It shows what a model is really
//! trained on.

use std::fmt;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::error::{Context, Result};
use crate::mix::{MixIndex, Split};
use crate::provenance::{self, DocRow};
use crate::shard::with_suffix;
use crate::tokenize;

/// One document range inside a sample.
#[derive(Debug, Serialize)]
pub struct SpanInfo {
    /// Shard prefix, relative to the build's output directory.
    pub shard: PathBuf,
    /// Document number in the shard.
    pub document: usize,
    /// First token of the document in the sample.
    pub start: usize,
    /// One past the last.
    pub end: usize,
    /// Tokens in the whole document.
    pub doc_tokens: usize,
    /// Where the document came from.
    pub provenance: DocRow,
}

/// One decoded sample.
#[derive(Debug, Serialize)]
pub struct DecodedSample {
    /// Sample number in its split.
    pub index: usize,
    /// `train` or `valid`.
    pub split: &'static str,
    /// Source name.
    pub source: String,
    /// Source language.
    pub language: String,
    /// Whether the source counts toward the ALMR.
    pub additional: bool,
    /// Its `seq_len + 1` token ids.
    pub tokens: Vec<u32>,
    /// The tokens decoded, special tokens included.
    pub text: String,
    /// The documents it spans, in order.
    pub documents: Vec<SpanInfo>,
}

/// Decodes `n` distinct samples of `split`, drawn with `seed` (all of them,
/// in order, when the split has no more than `n`).
pub fn sample(mix_path: &Path, split: Split, n: usize, seed: u64) -> Result<Vec<DecodedSample>> {
    let index = MixIndex::open(mix_path)?;
    let tokenizer_path = index.out_dir().join("tokenizer.json");
    let tokenizer = tokenize::load(&tokenizer_path)
        .with_context(|| format!("loading {}", tokenizer_path.display()))?;
    let len = index.len(split);
    let picks: Vec<usize> = if n >= len {
        (0..len).collect()
    } else {
        let mut all: Vec<usize> = (0..len).collect();
        let (chosen, _) = all.partial_shuffle(&mut ChaCha8Rng::seed_from_u64(seed), n);
        chosen.to_vec()
    };
    let report = index.report();
    let mut out = Vec::new();
    let mut tokens = Vec::new();
    for i in picks {
        index.read(split, i, &mut tokens)?;
        let mut documents = Vec::new();
        for sp in index.spans(split, i)? {
            let shard = index.shard(&sp);
            let rel = shard
                .prefix()
                .strip_prefix(index.out_dir())
                .unwrap_or(shard.prefix())
                .to_path_buf();
            let table = with_suffix(shard.prefix(), ".docs.parquet");
            documents.push(SpanInfo {
                provenance: provenance::read_row_of(&table, shard, sp.document)?,
                doc_tokens: shard.seq_len(sp.document)?,
                shard: rel,
                document: sp.document,
                start: sp.start,
                end: sp.end,
            });
        }
        let s = &report.sources[index.source_of(split, i)?];
        out.push(DecodedSample {
            index: i,
            split: match split {
                Split::Train => "train",
                Split::Valid => "valid",
            },
            source: s.name.clone(),
            language: s.language.clone(),
            additional: s.additional,
            text: tokenize::decode(&tokenizer, &tokens)?,
            tokens: tokens.clone(),
            documents,
        });
    }
    Ok(out)
}

impl fmt::Display for DecodedSample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "── {} sample {} · {} ({}{}) · {} tokens",
            self.split,
            self.index,
            self.source,
            self.language,
            if self.additional { ", additional" } else { "" },
            self.tokens.len()
        )?;
        for d in &self.documents {
            let p = &d.provenance;
            writeln!(
                f,
                "   {} doc {} tokens {}..{} of {} ← {}:{} id {}",
                d.shard.display(),
                d.document,
                d.start,
                d.end,
                d.doc_tokens,
                p.file,
                p.line,
                p.id
            )?;
        }
        writeln!(f, "{}", self.text)
    }
}
