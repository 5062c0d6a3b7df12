//! The pipeline's errors: one [`Error`] for every module above the formats.
//!
//! The formats (layer 1) have their own: [`ShardError`] for shards and
//! [`MixIndexError`] for mix indexes, and `std::io::Error` in
//! [`crate::fsutil`]. [`Error`] wraps them unchanged.
//!
//! Each variant says what went wrong in terms a caller can act on: the
//! pipeline file, a shard, a mix index, a file (with its path), a Parquet
//! table, the tokenizer, a malformed record, a check of the user's options or
//! data that failed. A cause (an I/O error, a JSON syntax error, …) is either
//! kept as [`std::error::Error::source`] or written into the message, never
//! both, so printing the chain, as `almr` does with anyhow's `{:#}`, shows
//! each part once: `reading out/manifest.json: No such file or directory (os
//! error 2)`. The messages are those the `almr` CLI has always printed.
//!
//! [`ConfigError`] and [`TokenizerError`] live here rather than in `config`
//! and `tokenize` so that [`Error`] wraps them without an upward import.
//!
//! Context is added the way `anyhow` adds it: [`Error::context`], or
//! [`Context::with_context`] on a result, wraps an error in
//! [`Error::Context`], whose message is printed before the cause's.

use std::path::{Path, PathBuf};

use parquet::errors::ParquetError;
use plotters::drawing::DrawingAreaErrorKind;

use crate::mixfile::MixIndexError;
use crate::shard::ShardError;
use crate::template::TemplateError;

/// A result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a pipeline operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline file is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A shard could not be opened or read.
    #[error(transparent)]
    Shard(#[from] ShardError),
    /// A mix index could not be written, opened or read.
    #[error(transparent)]
    MixIndex(#[from] MixIndexError),
    /// The tokenizer could not be loaded, or failed on a text.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// A file operation failed: `{action} {path}`, e.g. `reading
    /// out/manifest.json`.
    #[error("{action} {}", path.display())]
    File {
        /// What was being done: `reading`, `creating`, `writing`, ….
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An I/O error without a path beside it: the writers of
    /// [`crate::fsutil`] and [`crate::shard`] name their file in the
    /// message; the others concern the build's own staging and scratch
    /// files.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A JSON file (the manifest) does not parse.
    #[error("parsing {}", path.display())]
    JsonFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A Parquet table could not be created or opened: `{action} {path}`.
    #[error("{action} {}", path.display())]
    ParquetFile {
        /// `creating` or `reading`.
        action: &'static str,
        /// The table.
        path: PathBuf,
        /// The cause.
        #[source]
        source: ParquetError,
    },
    /// Writing or reading the rows of a Parquet table failed.
    #[error(transparent)]
    Parquet(#[from] ParquetError),
    /// A batch of rows could not be assembled or decoded.
    #[error(transparent)]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A table lacks a column almr reads.
    #[error("no column {0}")]
    MissingColumn(String),
    /// A column of a table has another type than almr's.
    #[error("column {name} is not {expected}")]
    ColumnType {
        /// The column.
        name: String,
        /// The type almr reads: `utf8` or `int64`.
        expected: &'static str,
    },
    /// A provenance table has no row for a document.
    #[error("{}: no row for document {doc}", path.display())]
    NoRow {
        /// The provenance table.
        path: PathBuf,
        /// The document asked for.
        doc: u64,
    },
    /// `almr explain`: no input record has this id, or is at this place.
    #[error("no record with id {id:?} in {}{hint}", out.display())]
    NoRecord {
        /// The id (or `FILE:LINE`) asked for.
        id: String,
        /// The build's output directory.
        out: PathBuf,
        /// Why a place names no record, starting with "; "; or empty.
        hint: String,
    },
    /// A shard outside a build was given no tokenizer to decode with.
    #[error("{}: no manifest.json above this shard to name its tokenizer; pass --tokenizer", shard.display())]
    NoManifest {
        /// The shard prefix.
        shard: PathBuf,
    },
    /// `--strict`: an input record could not be read.
    #[error("{file}:{line}: malformed record ({reason}): {detail}")]
    Malformed {
        /// The input file, as the source's glob matched it.
        file: String,
        /// 1-based line or row.
        line: u64,
        /// Why, as the rejects table names it (`bad_json`, …).
        reason: &'static str,
        /// The reader's message, with a snippet of the record.
        detail: String,
    },
    /// The user's options or data fail a check, e.g. `--almr 1.5: must lie
    /// in [0, 1]` or `not enough data: …`. The message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// The word lists could not be compiled.
    #[error(transparent)]
    WordList(#[from] aho_corasick::BuildError),
    /// The thread pool could not be started.
    #[error("starting the tokenizer threads")]
    Threads(#[source] rayon::ThreadPoolBuildError),
    /// A chart of the HTML report could not be drawn.
    #[error(transparent)]
    Chart(#[from] DrawingAreaErrorKind<std::io::Error>),
    /// A bug in almr, not a problem of the input: a thread panicked, or the
    /// build's own files disagree.
    #[error("{0}")]
    Internal(String),
    /// `source` happened while doing `what`: printed `{what}: {source}`.
    #[error("{what}")]
    Context {
        /// What was being done, or where: `document 3`, `data.jsonl:12`.
        what: String,
        /// The cause.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// Wraps the error in [`Error::Context`]: printed `{what}: {self}`.
    pub fn context(self, what: impl Into<String>) -> Error {
        Error::Context {
            what: what.into(),
            source: Box::new(self),
        }
    }

    /// For `map_err`: an I/O error while doing `action` on `path`, as
    /// [`Error::File`].
    pub(crate) fn file<'a>(
        action: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(std::io::Error) -> Error + 'a {
        move |source| Error::File {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// For `map_err`: a Parquet error while doing `action` on `path`, as
    /// [`Error::ParquetFile`].
    pub(crate) fn parquet_file<'a>(
        action: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(ParquetError) -> Error + 'a {
        move |source| Error::ParquetFile {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Adds context to the error of a result, as [`Error::context`] does.
pub trait Context<T> {
    /// On error, wraps it in [`Error::Context`] with the message `what`
    /// makes (called only on error).
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| e.into().context(what()))
    }
}

/// A pipeline error that names the key and, where known, the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The pipeline file.
    pub file: PathBuf,
    /// 1-based line in the pipeline file, when known.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `source[0].format`; empty for the document.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": `{}`: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Why a tokenizer could not be loaded, or failed on a text. The cause is
/// part of the message (the `tokenizers` crate's errors carry no more).
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The `tokenizers` crate cannot load the file.
    #[error("{}: cannot load tokenizer: {cause}", path.display())]
    Load {
        /// The `tokenizer.json`.
        path: PathBuf,
        /// Why.
        cause: tokenizers::Error,
    },
    /// almr's own encoder cannot read the file.
    #[error("{}: cannot read tokenizer: {cause}", path.display())]
    Read {
        /// The `tokenizer.json`.
        path: PathBuf,
        /// Why.
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The pipeline's EOS token is not in the vocabulary.
    #[error("{}: the EOS token {eos:?} is not in the vocabulary{}", path.display(),
        nearest.as_ref().map_or(String::new(), |n| format!("; did you mean {n:?}?")))]
    UnknownEos {
        /// The `tokenizer.json`.
        path: PathBuf,
        /// The token asked for.
        eos: String,
        /// The added token nearest to it, when one is close.
        nearest: Option<String>,
    },
    /// The vocabulary has more ids than a shard can store.
    #[error("{}: vocabulary of {ids} ids is too large", path.display())]
    VocabTooLarge {
        /// The `tokenizer.json`.
        path: PathBuf,
        /// Its largest id plus one.
        ids: usize,
    },
    /// The chat template cannot be found, loaded or rendered.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// Encoding a text failed.
    #[error("tokenizer failed: {0}")]
    Encode(tokenizers::Error),
    /// Decoding ids failed.
    #[error("cannot decode tokens: {0}")]
    Decode(tokenizers::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error and its causes joined by ": ", as anyhow's `{:#}` prints
    /// them in `almr`.
    fn chain(e: &Error) -> String {
        let mut out = e.to_string();
        let mut cause = std::error::Error::source(e);
        while let Some(c) = cause {
            out.push_str(&format!(": {c}"));
            cause = c.source();
        }
        out
    }

    fn not_found() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, "gone")
    }

    #[test]
    fn each_cause_is_printed_once() {
        let e = Error::file("reading", Path::new("out/manifest.json"))(not_found());
        assert_eq!(e.to_string(), "reading out/manifest.json");
        assert_eq!(chain(&e), "reading out/manifest.json: gone");
        let e = Error::from(TokenizerError::Load {
            path: "t.json".into(),
            cause: "bad".into(),
        });
        assert_eq!(chain(&e), "t.json: cannot load tokenizer: bad");
        let e = Error::from(MixIndexError::Corrupt {
            path: "m.mix".into(),
            problem: "bad magic".into(),
        });
        assert_eq!(chain(&e), "m.mix: not a valid mix index: bad magic");
    }

    #[test]
    fn context_comes_before_its_cause() {
        let e = Error::from(TokenizerError::Decode("no such id".into())).context("document 3");
        assert_eq!(e.to_string(), "document 3");
        assert_eq!(chain(&e), "document 3: cannot decode tokens: no such id");
        let r: Result<()> = Err(not_found()).with_context(|| "moving x into place".into());
        assert_eq!(chain(&r.unwrap_err()), "moving x into place: gone");
    }
}
