//! Parquet tables written through arrow-rs: the per-shard provenance table and
//! the rejects table share this writer.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{Context, Result};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::fsutil::{create_hashed, finish_hashed, FileDigest, HashingWriter};

/// Rows buffered before they are handed to the Parquet writer as one batch.
pub const BATCH_ROWS: usize = 8192;

/// A Parquet file being written, zstd-compressed, in row groups of 64k rows.
pub struct TableWriter {
    writer: ArrowWriter<HashingWriter<BufWriter<File>>>,
}

impl TableWriter {
    /// Creates `path` with `schema`.
    pub fn create(path: &Path, schema: SchemaRef) -> Result<Self> {
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_max_row_group_row_count(Some(65536))
            .build();
        let out = create_hashed(path)?;
        let writer = ArrowWriter::try_new(out, schema, Some(props))
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(TableWriter { writer })
    }

    /// Appends a batch of rows.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch).context("writing Parquet rows")
    }

    /// Writes the footer and returns the file's digest.
    pub fn finish(self) -> Result<FileDigest> {
        let out = self.writer.into_inner().context("finishing Parquet file")?;
        Ok(finish_hashed(out)?)
    }
}
