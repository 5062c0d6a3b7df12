//! `almr inspect`: what a shard holds, and any document decoded back to text
//! with its provenance.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Context, Error, Result};
use crate::manifest::{Manifest, FILE_NAME};
use crate::provenance::{self, DocRow};
use crate::shard::{with_suffix, DType, ShardReader};
use crate::tokenize;

/// Summary of one shard.
#[derive(Debug, Serialize)]
pub struct ShardInfo {
    /// The shard prefix.
    pub prefix: PathBuf,
    /// Token dtype.
    pub dtype: DType,
    /// Documents in the shard.
    pub documents: usize,
    /// Tokens in the shard.
    pub tokens: u64,
    /// Shortest document, in tokens.
    pub min_len: usize,
    /// Longest document, in tokens.
    pub max_len: usize,
}

/// One document, decoded.
#[derive(Debug, Serialize)]
pub struct DocInfo {
    /// Index in the shard.
    pub doc: usize,
    /// Where it came from, when the shard has a provenance table.
    pub provenance: Option<DocRow>,
    /// Its token ids.
    pub tokens: Vec<u32>,
    /// The tokens decoded to text, special tokens included.
    pub text: String,
}

/// What `almr inspect` reports.
#[derive(Debug, Serialize)]
pub struct Inspection {
    /// The shard.
    pub shard: ShardInfo,
    /// The requested document, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<DocInfo>,
}

/// Accepts `PREFIX`, `PREFIX.bin` or `PREFIX.idx`.
pub fn normalize_prefix(p: &Path) -> PathBuf {
    let s = p.to_string_lossy();
    for suffix in [".bin", ".idx", ".docs.parquet"] {
        if let Some(stripped) = s.strip_suffix(suffix) {
            return PathBuf::from(stripped);
        }
    }
    p.to_path_buf()
}

/// The build that holds `prefix`: its output directory and manifest,
/// found by walking up to a `manifest.json`.
fn build_of(prefix: &Path) -> Result<Option<(PathBuf, Manifest)>> {
    let start = std::path::absolute(prefix)?;
    for dir in start.ancestors().skip(1) {
        if dir.join(FILE_NAME).is_file() {
            return Ok(Some((dir.to_path_buf(), Manifest::load(dir)?)));
        }
    }
    Ok(None)
}

/// Inspects the shard at `prefix`, decoding document `doc` if given. Inside
/// a build, the shard is checked against its manifest (dtype, ids below the
/// vocabulary) and its provenance table against the shard.
pub fn inspect(prefix: &Path, doc: Option<usize>, tokenizer: Option<&Path>) -> Result<Inspection> {
    let prefix = normalize_prefix(prefix);
    let build = build_of(&prefix)?;
    let mut reader = ShardReader::open(&prefix)?;
    if let Some((_, m)) = &build {
        let (dtype, vocab) = m.tokenizer.shard_facts();
        reader = reader.expect(dtype, vocab)?;
    }
    let lens: Vec<usize> = (0..reader.len())
        .map(|i| reader.seq_len(i))
        .collect::<Result<_, _>>()?;
    let shard = ShardInfo {
        prefix: prefix.clone(),
        dtype: reader.dtype(),
        documents: reader.len(),
        tokens: reader.total_tokens(),
        min_len: lens.iter().copied().min().unwrap_or(0),
        max_len: lens.iter().copied().max().unwrap_or(0),
    };
    let document = match doc {
        None => None,
        Some(i) => Some(document(&reader, i, tokenizer, build.as_ref())?),
    };
    Ok(Inspection { shard, document })
}

/// Document `i` of the shard, decoded with `tokenizer` or the build's copy.
fn document(
    reader: &ShardReader,
    i: usize,
    tokenizer: Option<&Path>,
    build: Option<&(PathBuf, Manifest)>,
) -> Result<DocInfo> {
    let tokens = reader.get(i)?;
    let tok = match (tokenizer, build) {
        (Some(p), _) => tokenize::load(p)?,
        (None, Some((dir, m))) => tokenize::load(&dir.join(&m.tokenizer.copy))?,
        (None, None) => {
            return Err(Error::NoManifest {
                shard: reader.prefix().to_path_buf(),
            })
        }
    };
    let docs = with_suffix(reader.prefix(), ".docs.parquet");
    let provenance = match docs.is_file() {
        true => Some(provenance::read_row_of(&docs, reader, i)?),
        false => None,
    };
    let text = tokenize::decode(&tok, &tokens).with_context(|| format!("document {i}"))?;
    Ok(DocInfo {
        doc: i,
        provenance,
        tokens,
        text,
    })
}

impl std::fmt::Display for Inspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.shard;
        writeln!(f, "shard      {}", s.prefix.display())?;
        writeln!(f, "dtype      {}", s.dtype.numpy_name())?;
        writeln!(f, "documents  {}", s.documents)?;
        writeln!(f, "tokens     {}", s.tokens)?;
        let mean = if s.documents == 0 {
            0.0
        } else {
            s.tokens as f64 / s.documents as f64
        };
        writeln!(
            f,
            "doc length min {} / mean {mean:.1} / max {} tokens",
            s.min_len, s.max_len
        )?;
        if let Some(d) = &self.document {
            writeln!(f)?;
            writeln!(f, "document   {} ({} tokens)", d.doc, d.tokens.len())?;
            if let Some(p) = &d.provenance {
                writeln!(f, "source     {}", p.source)?;
                writeln!(f, "from       {}:{}", p.file, p.line)?;
                writeln!(f, "id         {}", p.id)?;
            }
            writeln!(f, "---")?;
            writeln!(f, "{}", d.text)?;
        }
        Ok(())
    }
}
