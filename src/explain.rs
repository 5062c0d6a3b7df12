//! `almr explain OUT ID`: what became of one input record. It looks the
//! record up, by its id or by its place in the input (`FILE:LINE`), in every
//! shard's provenance table and every rejects table of a build.

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::shard::with_suffix;
use crate::{provenance, rejects};

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

/// What `almr explain` looks for: a record id, or a record's place in the
/// input, `FILE:LINE`.
struct Query<'q> {
    /// The argument as given: an id.
    id: &'q str,
    /// The argument read as a place: a file and a 1-based line or row.
    place: Option<(PathBuf, u64)>,
}

impl<'q> Query<'q> {
    /// Reads `arg` as an id and, when it ends in `:LINE`, as a place.
    fn new(arg: &'q str) -> Self {
        let place = arg.rsplit_once(':').and_then(|(file, line)| {
            let line = line.parse().ok()?;
            let file: PathBuf = Path::new(file)
                .components()
                .filter(|c| *c != Component::CurDir)
                .collect();
            (!file.as_os_str().is_empty()).then_some((file, line))
        });
        Query { id: arg, place }
    }

    /// Whether a row with this id, input file and line is the record asked
    /// for.
    fn matches(&self, id: &str, file: &str, line: u64) -> bool {
        id == self.id
            || self
                .place
                .as_ref()
                .is_some_and(|(f, l)| *l == line && same_file(file, f))
    }
}

/// Whether `asked` names the input file `label` (as the build names it):
/// the same path, its last components (`zh/a.jsonl.gz`), or the same file
/// on disk.
fn same_file(label: &str, asked: &Path) -> bool {
    let label = Path::new(label);
    if label.ends_with(asked) {
        return true;
    }
    match (label.canonicalize(), asked.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Every place the record `arg` appears in the build at `out`: `arg` is its
/// id, or its place in the input as `FILE:LINE` (the row for Parquet), the
/// file as the build names it or by its last components.
pub fn explain(out: &Path, arg: &str) -> Result<Vec<Fate>> {
    let manifest = Manifest::load(out)?;
    let query = Query::new(arg);
    let mut fates = Vec::new();
    for shard in &manifest.shards {
        let docs = with_suffix(&out.join(&shard.prefix), ".docs.parquet");
        for row in provenance::read_all(&docs)?
            .into_iter()
            .filter(|r| query.matches(&r.id, &r.file, r.line))
        {
            fates.push(Fate::Kept {
                source: row.source,
                file: row.file,
                line: row.line as i64,
                prefix: shard.prefix.clone(),
                doc_index: row.doc_index as i64,
                n_tokens: row.n_tokens as i64,
            });
        }
    }
    for output in manifest
        .outputs
        .iter()
        .filter(|o| o.path.starts_with("rejects"))
    {
        for row in rejects::read_all(&out.join(&output.path))?
            .into_iter()
            .filter(|r| query.matches(&r.id, &r.file, r.line))
        {
            fates.push(Fate::Dropped {
                source: row.source,
                file: row.file,
                line: row.line as i64,
                stage: row.stage,
                reason: row.reason,
                detail: row.detail,
            });
        }
    }
    if fates.is_empty() {
        return Err(Error::NoRecord {
            id: arg.to_string(),
            out: out.to_path_buf(),
            hint: no_record_hint(&manifest, &query),
        });
    }
    Ok(fates)
}

/// Why a place names no record: no input of the build is that file (and
/// which are), or no record starts on that line.
fn no_record_hint(manifest: &Manifest, query: &Query) -> String {
    let Some((file, line)) = &query.place else {
        return String::new();
    };
    let inputs: Vec<String> = manifest
        .inputs
        .iter()
        .map(|i| i.path.display().to_string())
        .collect();
    if inputs.iter().any(|i| same_file(i, file)) {
        return format!(
            "; no record of {} starts on line {line} (lines count from 1, blank lines hold no record; for Parquet, rows)",
            file.display()
        );
    }
    let shown = inputs
        .iter()
        .take(5)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let more = match inputs.len() {
        n if n > 5 => format!(", … ({n} in all)"),
        _ => String::new(),
    };
    format!(
        "; no input of the build is {}: its inputs are {shown}{more}",
        file.display()
    )
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
