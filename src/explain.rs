//! `almr explain OUT ID`: what became of one input record. It looks the id up
//! in every shard's provenance table and every rejects table of a build.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::shard::with_suffix;
use crate::{provenance, rejects};

/// One place a record was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "fate", rename_all = "snake_case")]
pub enum Fate {
    /// It is document `doc_index` of shard `prefix`.
    Kept {
        /// Source name.
        source: String,
        /// Input file and line.
        file: String,
        /// 1-based line or row.
        line: i64,
        /// Shard prefix, relative to the build directory.
        prefix: PathBuf,
        /// Position in the shard.
        doc_index: i64,
        /// Its tokens, EOS included.
        n_tokens: i64,
    },
    /// A stage dropped it, or it could not be read.
    Dropped {
        /// Source name.
        source: String,
        /// Input file.
        file: String,
        /// 1-based line or row.
        line: i64,
        /// The stage (`read` for malformed input).
        stage: String,
        /// Why.
        reason: String,
        /// Measured value, kept duplicate, snippet.
        detail: String,
    },
}

/// Every place record `id` appears in the build at `out`.
pub fn explain(out: &Path, id: &str) -> Result<Vec<Fate>> {
    let manifest = Manifest::load(out)?;
    let mut fates = Vec::new();
    for shard in &manifest.shards {
        let docs = with_suffix(&out.join(&shard.prefix), ".docs.parquet");
        for row in provenance::read_all(&docs)?
            .into_iter()
            .filter(|r| r.id == id)
        {
            fates.push(Fate::Kept {
                source: row.source,
                file: row.file,
                line: row.line as i64,
                prefix: shard.prefix.clone(),
                doc_index: row.doc_index as i64,
                n_tokens: row.n_tokens as i64,
            });
        }
    }
    for output in manifest
        .outputs
        .iter()
        .filter(|o| o.path.starts_with("rejects"))
    {
        for row in rejects::read_all(&out.join(&output.path))?
            .into_iter()
            .filter(|r| r.id == id)
        {
            fates.push(Fate::Dropped {
                source: row.source,
                file: row.file,
                line: row.line as i64,
                stage: row.stage,
                reason: row.reason,
                detail: row.detail,
            });
        }
    }
    if fates.is_empty() {
        return Err(Error::NoRecord {
            id: id.to_string(),
            out: out.to_path_buf(),
        });
    }
    Ok(fates)
}

impl std::fmt::Display for Fate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fate::Kept {
                source,
                file,
                line,
                prefix,
                doc_index,
                n_tokens,
            } => write!(
                f,
                "kept     {source} {file}:{line} → {} document {doc_index} ({n_tokens} tokens)",
                prefix.display()
            ),
            Fate::Dropped {
                source,
                file,
                line,
                stage,
                reason,
                detail,
            } => write!(
                f,
                "dropped  {source} {file}:{line} at {stage}: {reason}\n         {detail}"
            ),
        }
    }
}
