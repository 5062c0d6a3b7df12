//! Apache Parquet, read through arrow-rs one record batch at a time, with only
//! the text (and id) columns decoded. The "line" of a record is its 1-based row.

use std::collections::VecDeque;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;

use super::{Fields, Item, Malformed, MalformedReason, Record};

/// Rows decoded per batch: bounds memory to one batch of the text column.
const BATCH_ROWS: usize = 1024;

/// Streams records from one Parquet file.
pub struct ParquetReader {
    label: String,
    fields: Fields,
    state: State,
    /// Rows handed out so far.
    row: u64,
    total_rows: u64,
    file_bytes: u64,
    progress: Arc<AtomicU64>,
    reported_bytes: u64,
    pending: VecDeque<Item>,
}

enum State {
    Batches(ParquetRecordBatchReader),
    /// The file's schema makes every row malformed in the same way.
    EveryRow(MalformedReason, String),
    Done,
}

impl ParquetReader {
    /// Opens `path` and checks its schema against `fields`.
    pub fn open(
        path: &Path,
        label: String,
        fields: Fields,
        progress: Arc<AtomicU64>,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        decoder_guard(|| Self::open_unguarded(path, label, fields, progress))?
    }

    fn open_unguarded(
        path: &Path,
        label: String,
        fields: Fields,
        progress: Arc<AtomicU64>,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let file = File::open(path)?;
        let file_bytes = file.metadata()?.len();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
        let total_rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
        let schema = builder.schema().clone();

        let column = |name: &str| schema.fields().iter().position(|f| f.name() == name);
        let text_idx = column(&fields.text);
        let id_idx = fields.id.as_deref().map(|name| (name, column(name)));
        let every_row = match (text_idx, id_idx) {
            (None, _) => Some((
                MalformedReason::MissingText,
                format!("no column {:?} in this file", fields.text),
            )),
            (Some(i), _) if !is_text_type(schema.field(i).data_type()) => Some((
                MalformedReason::NonStringText,
                format!(
                    "column {:?} has type {}, not a string",
                    fields.text,
                    schema.field(i).data_type()
                ),
            )),
            (_, Some((name, None))) => Some((
                MalformedReason::MissingId,
                format!("no id column {name:?} in this file"),
            )),
            _ => None,
        };
        let state = match (every_row, text_idx) {
            (Some((reason, detail)), _) => State::EveryRow(reason, detail),
            (None, Some(text_idx)) => {
                let mut roots = vec![text_idx];
                if let Some((_, Some(i))) = id_idx {
                    roots.push(i);
                }
                let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
                State::Batches(
                    builder
                        .with_projection(mask)
                        .with_batch_size(BATCH_ROWS)
                        .build()?,
                )
            }
            (None, None) => State::Done,
        };
        Ok(ParquetReader {
            label,
            fields,
            state,
            row: 0,
            total_rows,
            file_bytes,
            progress,
            reported_bytes: 0,
            pending: VecDeque::new(),
        })
    }

    fn report_progress(&mut self) {
        let done = (self.file_bytes * self.row.min(self.total_rows))
            .checked_div(self.total_rows)
            .unwrap_or(self.file_bytes);
        if done > self.reported_bytes {
            self.progress
                .fetch_add(done - self.reported_bytes, Ordering::Relaxed);
            self.reported_bytes = done;
        }
    }

    fn bad(&self, line: u64, id: Option<String>, reason: MalformedReason, detail: String) -> Item {
        Item::Bad(Malformed {
            line,
            id,
            reason,
            detail,
        })
    }

    /// Turns one record batch into items, in row order.
    fn push_batch(&mut self, batch: &RecordBatch) {
        let text = batch
            .column_by_name(&self.fields.text)
            .expect("projected text column");
        let ids = self
            .fields
            .id
            .as_deref()
            .and_then(|name| batch.column_by_name(name));
        let ids = match ids.map(|c| arrow_cast::cast(c, &DataType::LargeUtf8)) {
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => {
                let detail = format!("id column cannot be read as text: {e}");
                for _ in 0..batch.num_rows() {
                    self.row += 1;
                    let item = self.bad(self.row, None, MalformedReason::BadId, detail.clone());
                    self.pending.push_back(item);
                }
                return;
            }
            None => None,
        };
        let (strings, binary) = text_columns(text);
        for i in 0..batch.num_rows() {
            self.row += 1;
            let line = self.row;
            let id = match &ids {
                None => format!("{}:{line}", self.label),
                Some(col) => {
                    let col = col.as_string::<i64>();
                    if col.is_null(i) {
                        let item =
                            self.bad(line, None, MalformedReason::MissingId, "id is null".into());
                        self.pending.push_back(item);
                        continue;
                    }
                    col.value(i).to_string()
                }
            };
            let value: Result<Option<String>, String> = match (&strings, &binary) {
                (Some(s), _) => Ok((!s.is_null(i)).then(|| s.value(i).to_string())),
                (_, Some(b)) if b.is_null(i) => Ok(None),
                (_, Some(b)) => match std::str::from_utf8(b.value(i)) {
                    Ok(s) => Ok(Some(s.to_string())),
                    Err(e) => Err(format!(
                        "invalid UTF-8 at byte {} of the value",
                        e.valid_up_to()
                    )),
                },
                (None, None) => Err("text column cannot be read as text".into()),
            };
            let item = match value {
                Ok(Some(text)) => Item::Doc(Record { line, id, text }),
                Ok(None) => self.bad(
                    line,
                    Some(id),
                    MalformedReason::MissingText,
                    "text is null".into(),
                ),
                Err(detail) => self.bad(line, Some(id), MalformedReason::InvalidUtf8, detail),
            };
            self.pending.push_back(item);
        }
    }
}

/// Runs `f`, a call into the `parquet` crate, turning a panic into an
/// error. The crate asserts instead of returning an error on some malformed
/// files (a column chunk whose byte range is negative, found by
/// `fuzz/regressions/parquet/`), and a bad input file must be a malformed
/// record, not the end of the build.
fn decoder_guard<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        format!("the Parquet decoder failed on this file: {message}")
    })
}

/// Whether a column type can hold text.
fn is_text_type(t: &DataType) -> bool {
    match t {
        DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView => true,
        DataType::Dictionary(_, value) => is_text_type(value),
        _ => false,
    }
}

/// The text column as large strings, or (for binary columns) as large binary
/// whose values still need UTF-8 checking.
fn text_columns(
    col: &ArrayRef,
) -> (
    Option<arrow_array::LargeStringArray>,
    Option<arrow_array::LargeBinaryArray>,
) {
    let is_binary = |t: &DataType| {
        matches!(
            t,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView
        )
    };
    let binary = match col.data_type() {
        DataType::Dictionary(_, v) => is_binary(v),
        t => is_binary(t),
    };
    if binary {
        let b = arrow_cast::cast(col, &DataType::LargeBinary).ok();
        (None, b.map(|b| b.as_binary::<i64>().clone()))
    } else {
        let s = arrow_cast::cast(col, &DataType::LargeUtf8).ok();
        (s.map(|s| s.as_string::<i64>().clone()), None)
    }
}

impl Iterator for ParquetReader {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            match &mut self.state {
                State::Done => return None,
                State::EveryRow(reason, detail) => {
                    if self.row >= self.total_rows {
                        self.state = State::Done;
                        self.report_progress();
                        continue;
                    }
                    self.row += 1;
                    return Some(Item::Bad(Malformed {
                        line: self.row,
                        id: None,
                        reason: *reason,
                        detail: detail.clone(),
                    }));
                }
                State::Batches(reader) => match decoder_guard(|| reader.next())
                    .unwrap_or_else(|failure| Some(Err(ArrowError::ParquetError(failure))))
                {
                    None => {
                        self.state = State::Done;
                        self.row = self.row.max(self.total_rows);
                        self.report_progress();
                    }
                    Some(Ok(batch)) => {
                        self.push_batch(&batch);
                        self.report_progress();
                    }
                    Some(Err(e)) => {
                        self.state = State::Done;
                        let item = self.bad(
                            self.row + 1,
                            None,
                            MalformedReason::ReadError,
                            format!("reading stopped here: {e}"),
                        );
                        return Some(item);
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<Vec<Item>, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.parquet");
        std::fs::write(&path, bytes).unwrap();
        let fields = Fields {
            text: "text".into(),
            id: Some("id".into()),
        };
        let progress = Arc::new(AtomicU64::new(0));
        ParquetReader::open(&path, "f.parquet".into(), fields, progress)
            .map(Iterator::collect)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_panic_in_the_decoder_is_a_read_error_on_its_row() {
        // Found by fuzzing: a column chunk whose byte range is negative makes
        // the parquet crate assert while it reads the first batch.
        let bytes = include_bytes!("../../fuzz/regressions/parquet/negative_column_chunk_range");
        let items = read(bytes).unwrap();
        match &items[..] {
            [Item::Bad(m)] => {
                assert_eq!((m.line, m.reason), (1, MalformedReason::ReadError));
                assert!(m.detail.contains("decoder failed"), "{}", m.detail);
                assert!(m.detail.contains("should not be negative"), "{}", m.detail);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_panic_while_opening_is_an_error() {
        let e = decoder_guard(|| -> u8 { panic!("bad footer") }).unwrap_err();
        assert_eq!(e, "the Parquet decoder failed on this file: bad footer");
        assert_eq!(decoder_guard(|| 7), Ok(7));
    }
}
