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
use crate::mixfile::packed::{self, PackedIndex};
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
    /// The tokens decoded, special tokens included. In a packed (SFT) mix,
    /// the tokens the loss counts are between `⟪` and `⟫`, and each
    /// conversation starts on a new line.
    pub text: String,
    /// In a packed (SFT) mix: the loss mask, one bit per token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<Vec<u8>>,
    /// The documents it spans, in order.
    pub documents: Vec<SpanInfo>,
}

/// Decodes `n` distinct samples of `split`, drawn with `seed` (all of them,
/// in order, when the split has no more than `n`).
pub fn sample(mix_path: &Path, split: Split, n: usize, seed: u64) -> Result<Vec<DecodedSample>> {
    if packed::is_packed(mix_path) {
        return sample_packed(mix_path, split, n, seed);
    }
    let index = MixIndex::open(mix_path)?;
    let tokenizer = load_tokenizer(index.out_dir())?;
    let picks = picks(index.len(split), n, seed);
    let report = index.report();
    let mut out = Vec::new();
    let mut tokens = Vec::new();
    for i in picks {
        index.read(split, i, &mut tokens)?;
        let mut documents = Vec::new();
        for sp in index.spans(split, i)? {
            let shard = index.shard(&sp);
            documents.push(span_info(
                index.out_dir(),
                shard,
                sp.document,
                sp.start..sp.end,
            )?);
        }
        let s = &report.sources[index.source_of(split, i)?];
        out.push(DecodedSample {
            index: i,
            split: split_name(split),
            source: s.name.clone(),
            language: s.language.clone(),
            additional: s.additional,
            text: tokenize::decode(&tokenizer, &tokens)?,
            tokens: tokens.clone(),
            mask: None,
            documents,
        });
    }
    Ok(out)
}

/// `train` or `valid`.
fn split_name(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Valid => "valid",
    }
}

/// Where a sample's tokens `range` of `document` of `shard` come from.
fn span_info(
    out: &Path,
    shard: &crate::shard::ShardReader,
    document: usize,
    range: std::ops::Range<usize>,
) -> Result<SpanInfo> {
    let table = with_suffix(shard.prefix(), ".docs.parquet");
    Ok(SpanInfo {
        provenance: provenance::read_row_of(&table, shard, document)?,
        doc_tokens: shard.seq_len(document)?,
        shard: shard
            .prefix()
            .strip_prefix(out)
            .unwrap_or(shard.prefix())
            .to_path_buf(),
        document,
        start: range.start,
        end: range.end,
    })
}

fn load_tokenizer(out: &Path) -> Result<tokenizers::Tokenizer> {
    let path = out.join("tokenizer.json");
    tokenize::load(&path).with_context(|| format!("loading {}", path.display()))
}

/// `n` distinct sample numbers of `0..len` drawn with `seed`, or all of them.
fn picks(len: usize, n: usize, seed: u64) -> Vec<usize> {
    if n >= len {
        return (0..len).collect();
    }
    let mut all: Vec<usize> = (0..len).collect();
    let (chosen, _) = all.partial_shuffle(&mut ChaCha8Rng::seed_from_u64(seed), n);
    chosen.to_vec()
}

/// [`sample`] for a packed (SFT) mix: each sequence's conversations, with
/// the tokens the loss counts marked.
fn sample_packed(mix_path: &Path, split: Split, n: usize, seed: u64) -> Result<Vec<DecodedSample>> {
    let index = PackedIndex::open(mix_path)?;
    let tokenizer = load_tokenizer(index.out_dir())?;
    let mut out = Vec::new();
    for i in picks(index.len(split), n, seed) {
        let seq = index.read(split, i)?;
        let mut documents = Vec::new();
        let mut text = String::new();
        for (k, e) in index.conversations(split, i)?.iter().enumerate() {
            let (shard, document) = index.shard_of(e);
            documents.push(span_info(
                index.out_dir(),
                shard,
                document,
                0..e.len as usize,
            )?);
            let end = seq.starts.get(k + 1).copied().unwrap_or(seq.ids.len());
            let range = seq.starts[k]..end;
            text.push_str(&marked(
                &tokenizer,
                &seq.ids[range.clone()],
                &seq.mask[range],
            )?);
            text.push('\n');
        }
        let s = &index.report().sources[seq.source];
        out.push(DecodedSample {
            index: i,
            split: split_name(split),
            source: s.name.clone(),
            language: s.language.clone(),
            additional: s.additional,
            text,
            tokens: seq.ids,
            mask: Some(seq.mask),
            documents,
        });
    }
    Ok(out)
}

/// A conversation decoded, with the runs of mask-1 tokens between `⟪` and
/// `⟫`.
fn marked(tokenizer: &tokenizers::Tokenizer, ids: &[u32], mask: &[u8]) -> Result<String> {
    let mut text = String::new();
    let mut from = 0;
    while from < ids.len() {
        let bit = mask[from];
        let to = (from..ids.len())
            .find(|&j| mask[j] != bit)
            .unwrap_or(ids.len());
        let piece = tokenize::decode(tokenizer, &ids[from..to])?;
        match bit {
            1 => text.push_str(&format!("⟪{piece}⟫")),
            _ => text.push_str(&piece),
        }
        from = to;
    }
    Ok(text)
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
