//! What a map task says of each record it read, one JSON line each in
//! `map/task-I/records.jsonl`, in pipeline order: how it fared in the
//! per-document steps, and the key it met the ordered step with. The later
//! stages number records globally: map task `t`'s `k`-th record is
//! `offset(t) + k`.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::step::Notes;

/// The records file of a map task.
pub const RECORDS: &str = "records.jsonl";

/// One record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rec {
    /// Index of its input file in the plan.
    pub file: usize,
    /// Line or row.
    pub line: u64,
    /// Its id; for a malformed record, the id a reject row shows.
    pub id: String,
    /// What the per-document steps changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<(String, u64)>,
    /// How it fared.
    pub fate: Fate,
    /// How it met the ordered step, when it reached one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reached: Option<Reach>,
}

/// How a record fared in reading and the per-document steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// It could not be read.
    Malformed {
        /// The reason, as the rejects table names it.
        reason: String,
        /// The reader's message.
        detail: String,
    },
    /// A per-document step dropped it.
    Dropped {
        /// The step.
        stage: String,
        /// Its reason.
        reason: String,
        /// The reject row's detail, snippet included.
        detail: String,
    },
    /// It passed every per-document step and was tokenized: its tokens are
    /// the next document of the task's token store.
    Tokenized {
        /// Tokens, EOS included.
        tokens: u64,
        /// UTF-8 bytes of its text.
        text_bytes: u64,
        /// The snippet a near-duplicate reject row shows.
        snippet: String,
    },
}

/// A record as it met the ordered step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reach {
    /// What the steps before it changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<(String, u64)>,
    /// The snippet a duplicate's reject row shows.
    pub snippet: String,
}

/// Notes as a record keeps them: the counters that are not 0.
pub fn changes(notes: &Notes) -> Vec<(String, u64)> {
    notes
        .iter()
        .filter(|&(_, v)| v > 0)
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// Writes records, one JSON line each.
pub struct RecWriter {
    w: BufWriter<File>,
    path: PathBuf,
}

impl RecWriter {
    /// Creates `dir/records.jsonl`.
    pub fn create(dir: &Path) -> Result<Self> {
        let path = dir.join(RECORDS);
        let file = File::create(&path).map_err(Error::file("creating", &path))?;
        Ok(RecWriter {
            w: BufWriter::new(file),
            path,
        })
    }

    /// Appends one record.
    pub fn push(&mut self, rec: &Rec) -> Result<()> {
        serde_json::to_writer(&mut self.w, rec)
            .map_err(|e| Error::Internal(format!("{}: {e}", self.path.display())))?;
        self.w
            .write_all(b"\n")
            .map_err(Error::file("writing", &self.path))
    }

    /// Flushes and syncs the file.
    pub fn finish(self) -> Result<()> {
        let path = self.path;
        self.w
            .into_inner()
            .map_err(|e| Error::file("writing", &path)(e.into_error()))?
            .sync_all()
            .map_err(Error::file("writing", &path))
    }
}

/// Reads the records of map tasks `from..` in order, numbered globally.
pub struct Records {
    dirs: Vec<PathBuf>,
    next_dir: usize,
    lines: Option<(PathBuf, std::io::Lines<BufReader<File>>)>,
    number: u64,
}

impl Records {
    /// The records of the map task directories `dirs`, the first of which
    /// starts at global record `first`.
    pub fn new(dirs: Vec<PathBuf>, first: u64) -> Self {
        Records {
            dirs,
            next_dir: 0,
            lines: None,
            number: first,
        }
    }

    /// The next record and its global number.
    pub fn next_rec(&mut self) -> Result<Option<(u64, Rec)>> {
        loop {
            if let Some((path, lines)) = &mut self.lines {
                if let Some(line) = lines.next() {
                    let line = line.map_err(Error::file("reading", path))?;
                    let rec = serde_json::from_str(&line).map_err(|source| Error::JsonFile {
                        path: path.clone(),
                        source,
                    })?;
                    self.number += 1;
                    return Ok(Some((self.number - 1, rec)));
                }
            }
            let Some(dir) = self.dirs.get(self.next_dir) else {
                return Ok(None);
            };
            let path = dir.join(RECORDS);
            let file = File::open(&path).map_err(Error::file("reading", &path))?;
            self.lines = Some((path, BufReader::new(file).lines()));
            self.next_dir += 1;
        }
    }
}
