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
        let mut file = File::open(path)?;
        let file_bytes = file.metadata()?.len();
        check_footer(&mut file, file_bytes)?;
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
                Ok(Some(text)) => Item::Doc(Record {
                    line,
                    id,
                    text,
                    turns: None,
                }),
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

/// The names of the top-level columns of the Parquet file at `path`, read
/// from its footer; `None` when it cannot be read as Parquet.
pub(super) fn column_names(path: &Path) -> Option<Vec<String>> {
    let read = || -> Option<Vec<String>> {
        let mut file = File::open(path).ok()?;
        let bytes = file.metadata().ok()?.len();
        check_footer(&mut file, bytes).ok()?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).ok()?;
        let fields = builder.schema().fields();
        Some(fields.iter().map(|f| f.name().clone()).collect())
    };
    decoder_guard(read).ok().flatten()
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

/// Checks that the Thrift-encoded footer of a `PAR1` file is well formed
/// before the `parquet` crate decodes it. The crate skips an unknown
/// field's list of booleans one element at a time without consuming a byte
/// per element, so a list header that claims 2^31 elements costs seconds
/// of CPU per list: a 155-byte file held a build for over two minutes
/// (found by `fuzz/`, target `parquet`). In the compact protocol every list
/// element takes at least one byte, so a list that claims more elements
/// than the footer has bytes left is corrupt.
fn check_footer(file: &mut File, file_bytes: u64) -> Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |e: std::io::Error| format!("reading the footer: {e}");
    if file_bytes < 12 {
        return Ok(()); // too short to be Parquet: the crate says so
    }
    let mut tail = [0u8; 8];
    file.seek(SeekFrom::End(-8)).map_err(io)?;
    file.read_exact(&mut tail).map_err(io)?;
    let len = u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")) as u64;
    if &tail[4..] != b"PAR1" || len > file_bytes - 12 {
        return Ok(()); // not a plain footer: the crate reports what it is
    }
    let mut footer = vec![0u8; len as usize];
    file.seek(SeekFrom::Start(file_bytes - 8 - len))
        .map_err(io)?;
    file.read_exact(&mut footer).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut walk = Thrift {
        bytes: &footer,
        at: 0,
    };
    walk.value(STRUCT, 0)
        .map_err(|what| format!("the Parquet footer is corrupt: {what} at byte {}", walk.at))
}

/// Thrift compact-protocol type codes the footer walk needs.
const STRUCT: u8 = 12;

/// A walk over Thrift compact-protocol bytes that checks sizes against the
/// bytes left, without decoding anything.
struct Thrift<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Thrift<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.bytes.get(self.at).ok_or("unexpected end")?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    fn skip(&mut self, n: u64) -> Result<(), String> {
        let left = (self.bytes.len() - self.at) as u64;
        if n > left {
            return Err(format!("{n} bytes claimed, {left} left"));
        }
        self.at += n as usize;
        Ok(())
    }

    /// Walks one element of a list, set or map, of compact type `ty`: there
    /// a boolean takes a byte.
    fn element(&mut self, ty: u8, depth: u32) -> Result<(), String> {
        match ty {
            1 | 2 => self.skip(1),
            _ => self.value(ty, depth),
        }
    }

    /// Walks one field value of compact type `ty` (a boolean field's value
    /// is in its header).
    fn value(&mut self, ty: u8, depth: u32) -> Result<(), String> {
        if depth > 64 {
            return Err("nested too deep".into());
        }
        match ty {
            1 | 2 => Ok(()),
            3 => self.skip(1),
            4..=6 => self.varint().map(drop),
            7 => self.skip(8),
            8 => {
                let n = self.varint()?;
                self.skip(n)
            }
            9 | 10 => {
                let head = self.byte()?;
                let n = match head >> 4 {
                    15 => self.varint()?,
                    n => n as u64,
                };
                self.claims(n)?;
                for _ in 0..n {
                    self.element(head & 0x0f, depth + 1)?;
                }
                Ok(())
            }
            11 => {
                let n = self.varint()?;
                if n > 0 {
                    self.claims(n.saturating_mul(2))?;
                    let kinds = self.byte()?;
                    for _ in 0..n {
                        self.element(kinds >> 4, depth + 1)?;
                        self.element(kinds & 0x0f, depth + 1)?;
                    }
                }
                Ok(())
            }
            STRUCT => loop {
                let head = self.byte()?;
                if head == 0 {
                    return Ok(());
                }
                if head >> 4 == 0 {
                    self.varint()?; // the field id, in full
                }
                self.value(head & 0x0f, depth + 1)?;
            },
            13 => self.skip(16), // UUID
            other => Err(format!("unknown type {other}")),
        }
    }

    /// Checks that `n` elements of at least a byte each fit in what is left.
    fn claims(&self, n: u64) -> Result<(), String> {
        let left = (self.bytes.len() - self.at) as u64;
        match n <= left {
            true => Ok(()),
            false => Err(format!("a list of {n} elements in {left} bytes")),
        }
    }
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

    /// A file whose footer is a struct holding one unknown field per
    /// `lists`: a list that claims 2^31 - 1 booleans.
    fn bool_list_footer(lists: usize) -> Vec<u8> {
        let list = [0xf1, 0xff, 0xff, 0xff, 0xff, 0x07];
        let mut footer = vec![0x09, 0xc8, 0x01]; // field 100, a list
        footer.extend(list);
        for _ in 1..lists {
            footer.push(0x19); // the next field, a list
            footer.extend(list);
        }
        footer.push(0);
        let mut file = b"PAR1".to_vec();
        file.extend(&footer);
        file.extend((footer.len() as u32).to_le_bytes());
        file.extend(b"PAR1");
        file
    }

    #[test]
    fn a_footer_list_longer_than_the_footer_is_refused_at_once() {
        // Before: about 7 s of CPU per list in the parquet crate.
        let start = std::time::Instant::now();
        let e = read(&bool_list_footer(20)).unwrap_err();
        assert!(start.elapsed().as_secs() < 2, "{:?}", start.elapsed());
        assert!(e.contains("footer is corrupt"), "{e}");
        assert!(e.contains("a list of 2147483647 elements"), "{e}");
    }

    #[test]
    fn real_footers_pass_the_walk() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let path = root.join("fixtures/en/enwiki_more.parquet");
        let mut file = File::open(&path).unwrap();
        let bytes = file.metadata().unwrap().len();
        check_footer(&mut file, bytes).unwrap();
        let fields = Fields {
            text: "content".into(),
            id: Some("page_id".into()),
        };
        let progress = Arc::new(AtomicU64::new(0));
        let items: Vec<Item> = ParquetReader::open(&path, "f".into(), fields, progress)
            .unwrap()
            .collect();
        assert!(items.iter().all(|i| matches!(i, Item::Doc(_))));
        assert_eq!(items.len(), 42);
    }

    #[test]
    fn a_panic_while_opening_is_an_error() {
        let e = decoder_guard(|| -> u8 { panic!("bad footer") }).unwrap_err();
        assert_eq!(e, "the Parquet decoder failed on this file: bad footer");
        assert_eq!(decoder_guard(|| 7), Ok(7));
    }
}
