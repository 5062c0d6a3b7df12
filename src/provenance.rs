//! Provenance: `PREFIX.docs.parquet` next to each shard maps every document
//! index to where it came from, so any training sample can be traced back to
//! its raw record.
//!
//! Columns: `doc_index` (int64), `source`, `file` (utf8), `line` (int64,
//! 1-based line or Parquet row), `id` (utf8), `n_tokens` (int64, EOS included).

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, StringBuilder};
use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use crate::error::{Context, Error, Result};
use crate::fsutil::FileDigest;
use crate::shard::ShardReader;
use crate::table::{self, TableWriter, BATCH_ROWS};

/// One document's provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocRow {
    /// Position of the document in its shard.
    pub doc_index: u64,
    /// Source name from the pipeline.
    pub source: String,
    /// Input file, as matched by the source's glob.
    pub file: String,
    /// 1-based line (JSONL, text) or row (Parquet).
    pub line: u64,
    /// The input record's id.
    pub id: String,
    /// Tokens in the shard, EOS included.
    pub n_tokens: u64,
}

/// The provenance table's Arrow schema.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("doc_index", DataType::Int64, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("file", DataType::Utf8, false),
        Field::new("line", DataType::Int64, false),
        Field::new("id", DataType::Utf8, false),
        Field::new("n_tokens", DataType::Int64, false),
    ]))
}

/// Streams provenance rows to `PREFIX.docs.parquet`.
pub struct ProvenanceWriter {
    table: TableWriter,
    rows: Vec<DocRow>,
}

impl ProvenanceWriter {
    /// Creates the table at `path`.
    pub fn create(path: &Path) -> Result<Self> {
        Ok(ProvenanceWriter {
            table: TableWriter::create(path, schema())?,
            rows: Vec::with_capacity(BATCH_ROWS),
        })
    }

    /// Appends one row; rows must come in `doc_index` order.
    pub fn push(&mut self, row: DocRow) -> Result<()> {
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
        let n = self.rows.len();
        let mut doc_index = Int64Builder::with_capacity(n);
        let mut source = StringBuilder::new();
        let mut file = StringBuilder::new();
        let mut line = Int64Builder::with_capacity(n);
        let mut id = StringBuilder::new();
        let mut n_tokens = Int64Builder::with_capacity(n);
        for r in self.rows.drain(..) {
            doc_index.append_value(r.doc_index as i64);
            source.append_value(&r.source);
            file.append_value(&r.file);
            line.append_value(r.line as i64);
            id.append_value(&r.id);
            n_tokens.append_value(r.n_tokens as i64);
        }
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(doc_index.finish()),
                Arc::new(source.finish()),
                Arc::new(file.finish()),
                Arc::new(line.finish()),
                Arc::new(id.finish()),
                Arc::new(n_tokens.finish()),
            ],
        )?;
        self.table.write(&batch)
    }

    /// Flushes the last rows and closes the file.
    pub fn finish(mut self) -> Result<FileDigest> {
        self.flush()?;
        self.table.finish()
    }
}

/// Reads every row of a provenance table, in order.
pub fn read_all(path: &Path) -> Result<Vec<DocRow>> {
    let mut rows = Vec::new();
    table::scan(path, |batch| {
        for i in 0..batch.num_rows() {
            rows.push(row_of(batch, i)?);
        }
        Ok(())
    })?;
    Ok(rows)
}

fn row_of(batch: &RecordBatch, i: usize) -> Result<DocRow> {
    let int = |name: &str| -> Result<u64> { Ok(table::ints(batch, name)?.value(i) as u64) };
    let text =
        |name: &str| -> Result<String> { Ok(table::strings(batch, name)?.value(i).to_string()) };
    Ok(DocRow {
        doc_index: int("doc_index")?,
        source: text("source")?,
        file: text("file")?,
        line: int("line")?,
        id: text("id")?,
        n_tokens: int("n_tokens")?,
    })
}

/// Reads the provenance row of document `doc` of `shard` from `path`, and
/// checks that the table belongs to the shard: one row per document, and
/// the row's index and token count are the document's.
pub fn read_row_of(path: &Path, shard: &ShardReader, doc: usize) -> Result<DocRow> {
    let builder = open(path)?;
    let rows = builder.metadata().file_metadata().num_rows();
    let tokens = shard.seq_len(doc)? as u64;
    let row = read_row_from(builder, path, doc as u64)?;
    if rows != shard.documents() as i64 || row.doc_index != doc as u64 || row.n_tokens != tokens {
        return Err(Error::Invalid(format!(
            "{}: does not belong to shard {}: it has {rows} rows for {} documents, and says \
             document {doc} is document {} of {} tokens where the shard holds {tokens}",
            path.display(),
            shard.prefix().display(),
            shard.documents(),
            row.doc_index,
            row.n_tokens
        )));
    }
    Ok(row)
}

fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<std::fs::File>> {
    let file = std::fs::File::open(path).map_err(Error::file("opening", path))?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(Error::parquet_file("reading", path))
}

/// Reads the provenance row of document `doc` from `path`, decoding only the
/// row group that holds it.
pub fn read_row(path: &Path, doc: u64) -> Result<DocRow> {
    read_row_from(open(path)?, path, doc)
}

fn read_row_from(
    builder: ParquetRecordBatchReaderBuilder<std::fs::File>,
    path: &Path,
    doc: u64,
) -> Result<DocRow> {
    let mut first = 0u64;
    let mut group = None;
    for (g, rg) in builder.metadata().row_groups().iter().enumerate() {
        let rows = rg.num_rows() as u64;
        if doc < first + rows {
            group = Some(g);
            break;
        }
        first += rows;
    }
    let no_row = || Error::NoRow {
        path: path.to_path_buf(),
        doc,
    };
    let Some(group) = group else {
        return Err(no_row());
    };
    let reader = builder.with_row_groups(vec![group]).build()?;
    let mut at = first;
    for batch in reader {
        let batch = batch?;
        if doc < at + batch.num_rows() as u64 {
            return row_of(&batch, (doc - at) as usize).with_context(|| path.display().to_string());
        }
        at += batch.num_rows() as u64;
    }
    Err(no_row())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_across_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.docs.parquet");
        let mut w = ProvenanceWriter::create(&path).unwrap();
        let n = BATCH_ROWS as u64 + 10;
        for i in 0..n {
            w.push(DocRow {
                doc_index: i,
                source: "s".into(),
                file: "f.jsonl".into(),
                line: i + 1,
                id: format!("id{i}"),
                n_tokens: i % 7 + 1,
            })
            .unwrap();
        }
        w.finish().unwrap();
        let row = read_row(&path, n - 1).unwrap();
        assert_eq!(row.id, format!("id{}", n - 1));
        assert_eq!(row.line, n);
        assert!(read_row(&path, n).is_err());
    }
}
