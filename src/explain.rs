//! `almr explain OUT ID`: what became of one input record. It looks the id up
//! in every shard's provenance table and every rejects table of a build.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use crate::manifest::Manifest;
use crate::shard::with_suffix;

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

fn strings(batch: &RecordBatch, name: &str) -> Result<Vec<String>> {
    let col = batch
        .column_by_name(name)
        .with_context(|| format!("no column {name}"))?;
    let col = col
        .as_string_opt::<i32>()
        .with_context(|| format!("column {name} is not utf8"))?;
    Ok((0..col.len()).map(|i| col.value(i).to_string()).collect())
}

fn ints(batch: &RecordBatch, name: &str) -> Result<Vec<i64>> {
    let col = batch
        .column_by_name(name)
        .with_context(|| format!("no column {name}"))?;
    let col = col
        .as_primitive_opt::<Int64Type>()
        .with_context(|| format!("column {name} is not int64"))?;
    Ok(col.values().to_vec())
}

/// Calls `f` with every batch of the Parquet file at `path`.
fn scan(path: &Path, mut f: impl FnMut(&RecordBatch) -> Result<()>) -> Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("reading {}", path.display()))?
        .build()?;
    for batch in reader {
        f(&batch?).with_context(|| path.display().to_string())?;
    }
    Ok(())
}

/// Every place record `id` appears in the build at `out`.
pub fn explain(out: &Path, id: &str) -> Result<Vec<Fate>> {
    let manifest = Manifest::load(out)?;
    let mut fates = Vec::new();
    for shard in &manifest.shards {
        let docs = with_suffix(&out.join(&shard.prefix), ".docs.parquet");
        scan(&docs, |b| {
            let ids = strings(b, "id")?;
            if !ids.iter().any(|x| x == id) {
                return Ok(());
            }
            let (files, lines) = (strings(b, "file")?, ints(b, "line")?);
            let (index, tokens) = (ints(b, "doc_index")?, ints(b, "n_tokens")?);
            for i in (0..ids.len()).filter(|&i| ids[i] == id) {
                fates.push(Fate::Kept {
                    source: shard.source.clone(),
                    file: files[i].clone(),
                    line: lines[i],
                    prefix: shard.prefix.clone(),
                    doc_index: index[i],
                    n_tokens: tokens[i],
                });
            }
            Ok(())
        })?;
    }
    for output in &manifest.outputs {
        if !output.path.starts_with("rejects") {
            continue;
        }
        scan(&out.join(&output.path), |b| {
            let ids = strings(b, "id")?;
            if !ids.iter().any(|x| x == id) {
                return Ok(());
            }
            let (sources, files, lines) =
                (strings(b, "source")?, strings(b, "file")?, ints(b, "line")?);
            let (stages, reasons, details) = (
                strings(b, "stage")?,
                strings(b, "reason")?,
                strings(b, "detail")?,
            );
            for i in (0..ids.len()).filter(|&i| ids[i] == id) {
                fates.push(Fate::Dropped {
                    source: sources[i].clone(),
                    file: files[i].clone(),
                    line: lines[i],
                    stage: stages[i].clone(),
                    reason: reasons[i].clone(),
                    detail: details[i].clone(),
                });
            }
            Ok(())
        })?;
    }
    if fates.is_empty() {
        bail!("no record with id {id:?} in {}", out.display());
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
