//! Readers: stream documents out of input files, one [`Item`] at a time.
//!
//! Every reader yields either a [`Record`] or a [`Malformed`] entry that says
//! where (1-based line, or row for Parquet) and why. A reader never panics on
//! bad input and never stops silently: an I/O error mid-file becomes one last
//! `Malformed` item with reason [`MalformedReason::ReadError`].

pub mod chat;
mod check;
mod jsonl;
mod parquet;
mod probe;
mod text;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::text::snippet;

pub use self::check::{check, Checked};
pub use self::jsonl::JsonlReader;
pub use self::parquet::ParquetReader;
pub use self::probe::{absent_field, AbsentField, FieldSetting};
pub use self::text::TextReader;

/// Input file format. Compression (`.gz`, `.zst`) is taken from the file name
/// for `jsonl` and `text`; Parquet files carry their own compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet, read batch by batch.
    Parquet,
    /// Plain UTF-8 text, cut into documents by `text_unit`.
    Text,
    /// One conversation per JSON line, in the shape `chat_schema` names:
    /// SFT data, rendered with the chat template and masked.
    Chat,
}

/// How a `text` file is cut into documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TextUnit {
    /// The whole file is one document.
    #[default]
    File,
    /// Every non-blank line is a document.
    Line,
    /// Runs of non-blank lines, separated by blank lines, are documents.
    Paragraph,
}

/// Outer compression of an input file, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Read as is.
    None,
    /// gzip (`.gz`), including concatenated members.
    Gzip,
    /// Zstandard (`.zst`, `.zstd`).
    Zstd,
}

/// The compression a file name implies.
pub fn compression_of(path: &Path) -> Compression {
    match path.extension().and_then(|e| e.to_str()) {
        Some("gz") => Compression::Gzip,
        Some("zst" | "zstd") => Compression::Zstd,
        _ => Compression::None,
    }
}

/// The stage name of reading in rejects tables and manifest counts: a
/// malformed record is rejected by the reader.
pub const STAGE: &str = "read";

/// One document read from an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1-based line (JSONL, text) or row (Parquet) the document starts on.
    pub line: u64,
    /// The record's id: the `id_field` value, or `file:line` without one.
    pub id: String,
    /// The document text; for a conversation, its turns' contents joined by
    /// blank lines (what the cleaning steps judge).
    pub text: String,
    /// The turns of a conversation (`format = "chat"`).
    pub turns: Option<Vec<chat::Turn>>,
}

/// Why an input record could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MalformedReason {
    /// The file could not be opened or is not of the declared format.
    UnreadableFile,
    /// An I/O or decompression error cut the file short here.
    ReadError,
    /// The line is not a JSON object.
    BadJson,
    /// The bytes are not valid UTF-8.
    InvalidUtf8,
    /// The text field or column is absent or null.
    MissingText,
    /// The text field or column is not a string.
    NonStringText,
    /// The configured id field or column is absent or null.
    MissingId,
    /// The id is neither a string nor a number.
    BadId,
    /// A conversation's list of turns is absent or not a list of objects.
    MissingMessages,
    /// A turn's role is not one the chat schema knows.
    BadRole,
    /// A turn's content is not a string.
    NonStringContent,
    /// The turns are not: optional system, then user and assistant in turn,
    /// ending with the assistant.
    RolesOutOfOrder,
    /// An assistant turn is empty.
    EmptyAssistantTurn,
    /// The conversation has no assistant turn.
    NoAssistantTurn,
}

impl MalformedReason {
    /// The snake_case name used in the manifest and the rejects table.
    pub fn as_str(self) -> &'static str {
        match self {
            MalformedReason::UnreadableFile => "unreadable_file",
            MalformedReason::ReadError => "read_error",
            MalformedReason::BadJson => "bad_json",
            MalformedReason::InvalidUtf8 => "invalid_utf8",
            MalformedReason::MissingText => "missing_text",
            MalformedReason::NonStringText => "non_string_text",
            MalformedReason::MissingId => "missing_id",
            MalformedReason::BadId => "bad_id",
            MalformedReason::MissingMessages => "missing_messages",
            MalformedReason::BadRole => "bad_role",
            MalformedReason::NonStringContent => "non_string_content",
            MalformedReason::RolesOutOfOrder => "roles_out_of_order",
            MalformedReason::EmptyAssistantTurn => "empty_assistant_turn",
            MalformedReason::NoAssistantTurn => "no_assistant_turn",
        }
    }
}

/// A record that could not be read, with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// 1-based line or row; 0 when the whole file is unreadable.
    pub line: u64,
    /// The record id, when it could be read.
    pub id: Option<String>,
    /// Why it was rejected.
    pub reason: MalformedReason,
    /// What exactly was wrong, with a short snippet where there is one.
    pub detail: String,
}

/// What a reader yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A readable document.
    Doc(Record),
    /// A record that could not be read.
    Bad(Malformed),
}

/// A boxed stream of items from one file.
pub type ItemStream = Box<dyn Iterator<Item = Item> + Send>;

/// Field names a reader looks for, taken from the source's config.
#[derive(Debug, Clone)]
pub struct Fields {
    /// Name of the text key or column.
    pub text: String,
    /// Name of the id key or column, if any.
    pub id: Option<String>,
}

/// How one source's files are read.
#[derive(Debug, Clone)]
pub struct ReadSettings {
    /// The file format.
    pub format: Format,
    /// The text and id fields (JSONL keys, Parquet columns).
    pub fields: Fields,
    /// How `text` files are cut into documents.
    pub text_unit: TextUnit,
    /// The shape of `chat` records.
    pub chat_schema: chat::ChatSchema,
}

/// Opens `path` with the reader that `settings.format` names. `progress`
/// grows by the number of (compressed) file bytes consumed.
pub fn open(path: &Path, settings: &ReadSettings, progress: Arc<AtomicU64>) -> ItemStream {
    let fields = settings.fields.clone();
    let label = path.display().to_string();
    let result: Result<ItemStream, Box<dyn std::error::Error + Send + Sync>> =
        match settings.format {
            Format::Jsonl => open_text_stream(path, progress)
                .map(|r| Box::new(JsonlReader::new(r, label, fields)) as ItemStream)
                .map_err(Into::into),
            Format::Chat => open_text_stream(path, progress)
                .map(|r| {
                    let reader = JsonlReader::new(r, label, fields).chat(settings.chat_schema);
                    Box::new(reader) as ItemStream
                })
                .map_err(Into::into),
            Format::Text => open_text_stream(path, progress)
                .map(|r| Box::new(TextReader::new(r, label, settings.text_unit)) as ItemStream)
                .map_err(Into::into),
            Format::Parquet => ParquetReader::open(path, label, fields, progress)
                .map(|r| Box::new(r) as ItemStream),
        };
    result.unwrap_or_else(|e| {
        Box::new(std::iter::once(Item::Bad(Malformed {
            line: 0,
            id: None,
            reason: MalformedReason::UnreadableFile,
            detail: e.to_string(),
        })))
    })
}

/// Opens a file for line-oriented reading, decompressing by its name.
fn open_text_stream(path: &Path, progress: Arc<AtomicU64>) -> io::Result<Box<dyn BufRead + Send>> {
    let file = CountingReader {
        inner: File::open(path)?,
        counter: progress,
    };
    const BUF: usize = 1 << 20;
    Ok(match compression_of(path) {
        Compression::None => Box::new(BufReader::with_capacity(BUF, file)),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            BUF,
            flate2::read::MultiGzDecoder::new(BufReader::with_capacity(BUF, file)),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(BUF, zstd::Decoder::new(file)?)),
    })
}

/// Counts the bytes read through it into a shared counter.
struct CountingReader<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Reads one line into `buf` (without its `\n` or `\r\n`), returning false at
/// the end of the stream.
fn read_line(r: &mut dyn BufRead, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    if r.read_until(b'\n', buf)? == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    Ok(true)
}

/// Describes a UTF-8 error inside one line.
fn utf8_detail(bytes: &[u8], e: &std::str::Utf8Error) -> String {
    let good = String::from_utf8_lossy(&bytes[..e.valid_up_to()]);
    format!(
        "invalid UTF-8 at byte {} of the line, after {:?}",
        e.valid_up_to(),
        snippet(&good, 40)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_from_name() {
        assert_eq!(compression_of(Path::new("a.jsonl.gz")), Compression::Gzip);
        assert_eq!(compression_of(Path::new("a.jsonl.zst")), Compression::Zstd);
        assert_eq!(compression_of(Path::new("a.jsonl")), Compression::None);
    }

    #[test]
    fn read_line_strips_endings() {
        let mut r: &[u8] = b"a\r\nb\nc";
        let mut buf = Vec::new();
        let mut lines = Vec::new();
        while read_line(&mut r, &mut buf).unwrap() {
            lines.push(String::from_utf8(buf.clone()).unwrap());
        }
        assert_eq!(lines, ["a", "b", "c"]);
    }

    #[test]
    fn missing_file_is_one_malformed_item() {
        let settings = ReadSettings {
            format: Format::Jsonl,
            fields: Fields {
                text: "text".into(),
                id: None,
            },
            text_unit: TextUnit::File,
            chat_schema: Default::default(),
        };
        let items: Vec<Item> = open(
            Path::new("/nonexistent/x.jsonl"),
            &settings,
            Arc::new(AtomicU64::new(0)),
        )
        .collect();
        assert_eq!(items.len(), 1);
        match &items[0] {
            Item::Bad(m) => assert_eq!(m.reason, MalformedReason::UnreadableFile),
            other => panic!("{other:?}"),
        }
    }
}
