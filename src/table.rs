//! Parquet tables written through arrow-rs: the per-shard provenance table and
//! the rejects table share this writer.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Context, Error, Result};
use crate::fsutil::{create_hashed, finish_hashed, FileDigest, HashingWriter};

/// Rows buffered before they are handed to the Parquet writer as one batch.
pub const BATCH_ROWS: usize = 8192;

/// A Parquet file being written, zstd-compressed, in row groups of 64k rows.
pub struct TableWriter {
    writer: ArrowWriter<HashingWriter<BufWriter<File>>>,
    path: std::path::PathBuf,
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
            .map_err(Error::parquet_file("creating", path))?;
        Ok(TableWriter {
            writer,
            path: path.to_path_buf(),
        })
    }

    /// Appends a batch of rows.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let path = &self.path;
        self.writer
            .write(batch)
            .with_context(|| format!("writing Parquet rows to {}", path.display()))
    }

    /// Writes the footer and returns the file's digest.
    pub fn finish(self) -> Result<FileDigest> {
        let path = self.path;
        let finishing = || format!("finishing {}", path.display());
        let out = self.writer.into_inner().with_context(finishing)?;
        finish_hashed(out).with_context(finishing)
    }
}

/// Calls `f` with every batch of the Parquet file at `path`, in order.
pub fn scan(path: &Path, mut f: impl FnMut(&RecordBatch) -> Result<()>) -> Result<()> {
    let file = std::fs::File::open(path).map_err(Error::file("opening", path))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(Error::parquet_file("reading", path))?
        .build()?;
    for batch in reader {
        f(&batch?).with_context(|| path.display().to_string())?;
    }
    Ok(())
}

/// The utf8 column `name` of `batch`.
pub fn strings<'b>(batch: &'b RecordBatch, name: &str) -> Result<&'b StringArray> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Error::MissingColumn(name.into()))?
        .as_string_opt::<i32>()
        .ok_or_else(|| Error::ColumnType {
            name: name.into(),
            expected: "utf8",
        })
}

/// The int64 column `name` of `batch`.
pub fn ints<'b>(batch: &'b RecordBatch, name: &str) -> Result<&'b Int64Array> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Error::MissingColumn(name.into()))?
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| Error::ColumnType {
            name: name.into(),
            expected: "int64",
        })
}
