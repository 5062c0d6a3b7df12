//! The rejects table: one row for every input record that did not become a
//! document, with where it was and why, so a user can ask "why was this dropped?".
//!
//! One table per stage: `rejects/read.parquet` (malformed input),
//! `rejects/filter.parquet`, … Columns: `id`, `source`, `file` (utf8), `line` (int64), `stage`, `reason`,
//! `detail` (utf8). `detail` holds the measured value or error and a snippet.

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, StringBuilder};
use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::error::{Error, Result};
use crate::fsutil::FileDigest;
use crate::table::{self, TableWriter, BATCH_ROWS};

/// One rejected record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RejectRow {
    /// The record's id (`file:line` when it had none that could be read).
    pub id: String,
    /// Source name.
    pub source: String,
    /// Input file.
    pub file: String,
    /// 1-based line or row; 0 for a whole unreadable file.
    pub line: u64,
    /// The stage that rejected it (`read` for malformed input).
    pub stage: String,
    /// Machine-readable reason.
    pub reason: String,
    /// Measured value or error, and a snippet.
    pub detail: String,
}

/// The rejects table's Arrow schema.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("file", DataType::Utf8, false),
        Field::new("line", DataType::Int64, false),
        Field::new("stage", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("detail", DataType::Utf8, false),
    ]))
}

/// Streams reject rows to a Parquet file.
pub struct RejectsWriter {
    table: TableWriter,
    rows: Vec<RejectRow>,
}

impl RejectsWriter {
    /// Creates the table at `path`.
    pub fn create(path: &Path) -> Result<Self> {
        Ok(RejectsWriter {
            table: TableWriter::create(path, schema())?,
            rows: Vec::new(),
        })
    }

    /// Appends one row.
    pub fn push(&mut self, row: RejectRow) -> Result<()> {
        self.rows.push(row);
        if self.rows.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let mut cols: Vec<StringBuilder> = (0..6).map(|_| StringBuilder::new()).collect();
        let mut line = Int64Builder::new();
        for r in self.rows.drain(..) {
            for (b, v) in cols
                .iter_mut()
                .zip([&r.id, &r.source, &r.file, &r.stage, &r.reason, &r.detail])
            {
                b.append_value(v);
            }
            line.append_value(r.line as i64);
        }
        let mut cols = cols.into_iter().map(|mut b| Arc::new(b.finish()) as _);
        let mut next = || cols.next().expect("six string columns");
        let (id, source, file) = (next(), next(), next());
        let (stage, reason, detail) = (next(), next(), next());
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                id,
                source,
                file,
                Arc::new(line.finish()),
                stage,
                reason,
                detail,
            ],
        )?;
        self.table.write(&batch)
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) -> Result<FileDigest> {
        self.flush()?;
        self.table.finish()
    }
}

/// Reads every row of a rejects table, in order.
pub fn read_all(path: &Path) -> Result<Vec<RejectRow>> {
    let mut rows = Vec::new();
    for_each(path, |row| rows.push(row))?;
    Ok(rows)
}

/// Hands every row of a rejects table to `f`, in order, one Parquet batch
/// in memory at a time.
pub fn for_each(path: &Path, mut f: impl FnMut(RejectRow)) -> Result<()> {
    table::scan(path, |b| {
        let s = |name| table::strings(b, name);
        let (id, source, file) = (s("id")?, s("source")?, s("file")?);
        let (stage, reason, detail) = (s("stage")?, s("reason")?, s("detail")?);
        let line = table::ints(b, "line")?;
        for i in 0..b.num_rows() {
            f(RejectRow {
                id: id.value(i).into(),
                source: source.value(i).into(),
                file: file.value(i).into(),
                line: line.value(i) as u64,
                stage: stage.value(i).into(),
                reason: reason.value(i).into(),
                detail: detail.value(i).into(),
            });
        }
        Ok(())
    })
}

/// One rejects table per stage, `DIR/<stage>.parquet`, created when the build
/// starts so that every stage of the pipeline has its file.
pub struct RejectTables {
    dir: std::path::PathBuf,
    writers: std::collections::BTreeMap<&'static str, RejectsWriter>,
}

impl RejectTables {
    /// Creates `DIR/<stage>.parquet` for every stage.
    pub fn create(dir: &Path, stages: &[&'static str]) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut writers = std::collections::BTreeMap::new();
        for &stage in stages {
            writers.insert(
                stage,
                RejectsWriter::create(&dir.join(format!("{stage}.parquet")))?,
            );
        }
        Ok(RejectTables {
            dir: dir.to_path_buf(),
            writers,
        })
    }

    /// Appends a row to its stage's table.
    pub fn push(&mut self, row: RejectRow) -> Result<()> {
        let stage = row.stage.clone();
        let w = self
            .writers
            .iter_mut()
            .find(|(s, _)| **s == stage)
            .map(|(_, w)| w)
            .ok_or_else(|| Error::Internal(format!("no rejects table for stage {stage}")))?;
        w.push(row)
    }

    /// Closes every table; returns `(path, digest)` for each.
    pub fn finish(self) -> Result<Vec<(std::path::PathBuf, FileDigest)>> {
        self.writers
            .into_iter()
            .map(|(stage, w)| Ok((self.dir.join(format!("{stage}.parquet")), w.finish()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, stage: &str) -> RejectRow {
        RejectRow {
            id: id.into(),
            source: "s".into(),
            file: "f.jsonl".into(),
            line: 3,
            stage: stage.into(),
            reason: "r".into(),
            detail: "d".into(),
        }
    }

    #[test]
    fn one_table_per_stage() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = RejectTables::create(dir.path(), &["read", "filter"]).unwrap();
        t.push(row("a", "filter")).unwrap();
        t.push(row("b", "filter")).unwrap();
        assert!(t.push(row("c", "language")).is_err());
        let files = t.finish().unwrap();
        assert_eq!(files.len(), 2);
        let read = |name: &str| -> Vec<String> {
            read_all(&dir.path().join(name))
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect()
        };
        assert_eq!(read("filter.parquet"), ["a", "b"]);
        assert!(read("read.parquet").is_empty());
    }
}
