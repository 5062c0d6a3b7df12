//! Trying a pipeline before building it: `almr build --limit N` reads part
//! of each source ([`super::limit`]), and `--dry-run` runs the build
//! without writing it.
//!
//! A dry run stages into a temporary directory instead of OUT, which it
//! never touches. Its sinks write no shards; every step runs, tokenizing
//! included, and the corpus steps' late drops are counted as a build counts
//! them. Its rejects tables go to the temporary directory, and [`DryRun`]
//! is made from them and the counts before the directory is removed.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::publish;
use crate::error::{Error, Result};
use crate::manifest::{Counts, Limit, Manifest, SourceCounts};
use crate::read;
use crate::rejects;

/// Example records shown for each reason.
const EXAMPLES: usize = 2;
/// Reasons shown per source in the text report (`--json` has them all).
const TOP_REASONS: usize = 5;

/// The options that make a build a trial: `--limit`, `--sample-seed` and
/// `--dry-run`. The default is a full build.
#[derive(Debug, Clone, Default)]
pub struct Trial {
    /// Read only part of each source.
    pub limit: Option<Limit>,
    /// Write nothing: report what the build would keep and drop.
    pub dry_run: bool,
}

/// Where a build stages its output: a new generation of OUT, or for a dry
/// run a temporary directory.
pub(super) enum Output {
    /// A real build, published into OUT.
    Publish(publish::Output),
    /// A dry run's scratch, removed when dropped.
    Dry(tempfile::TempDir),
}

impl Output {
    /// OUT prepared for a build ([`publish::prepare`]), or for a dry run a
    /// temporary directory.
    pub fn prepare(out: &Path, trial: &Trial) -> Result<Output> {
        if !trial.dry_run {
            return Ok(Output::Publish(publish::prepare(out)?));
        }
        let tmp = std::env::temp_dir();
        let dir = tempfile::Builder::new()
            .prefix("almr-dry-run-")
            .tempdir_in(&tmp)
            .map_err(Error::file("creating a directory in", &tmp))?;
        Ok(Output::Dry(dir))
    }

    /// The directory the build writes into.
    pub fn staging(&self) -> &Path {
        match self {
            Output::Publish(o) => o.staging(),
            Output::Dry(dir) => dir.path(),
        }
    }

    /// Publishes a build; for a dry run, makes its report and removes its
    /// scratch.
    pub fn publish(self, manifest: &Manifest) -> Result<Option<DryRun>> {
        match self {
            Output::Publish(o) => o.publish(manifest).map(|()| None),
            Output::Dry(dir) => DryRun::new(manifest, dir.path()).map(Some),
        }
    }

    /// Removes what a failed build staged.
    pub fn abandon(self) {
        if let Output::Publish(o) = self {
            o.abandon();
        }
    }
}

/// What a dry run found: per source, what was kept and why the rest was
/// dropped, with example records. Its `Display` is the report `almr build
/// --dry-run` prints.
#[derive(Debug, Serialize)]
pub struct DryRun {
    /// The pipeline file, as given.
    pub pipeline: PathBuf,
    /// How much of each source was read; `null` for all of it.
    pub limit: Option<Limit>,
    /// Per source, in pipeline order.
    pub sources: Vec<SourceTrial>,
    /// Sums over the sources.
    pub totals: Tally,
}

/// One source in a dry run.
#[derive(Debug, Serialize)]
pub struct SourceTrial {
    /// Source name.
    pub name: String,
    /// Language code.
    pub language: String,
    /// Its counts.
    #[serde(flatten)]
    pub tally: Tally,
    /// Why records were dropped, most frequent first; malformed records
    /// under `read/REASON`.
    pub reasons: Vec<ReasonTrial>,
}

/// Record counts, as the manifest has them, and the keep rate.
#[derive(Debug, Serialize)]
pub struct Tally {
    /// Records read (documents plus malformed entries).
    pub read: u64,
    /// Records a build would write to a shard.
    pub kept: u64,
    /// `kept / read`; `null` when nothing was read.
    pub keep_rate: Option<f64>,
    /// Documents a step dropped.
    pub rejected: u64,
    /// Records that could not be read.
    pub malformed: u64,
    /// Tokens of the kept documents, EOS included.
    pub tokens: u64,
}

/// One reason records of a source were dropped for.
#[derive(Debug, Serialize)]
pub struct ReasonTrial {
    /// `stage/reason`, e.g. `filter/gopher_quality.min_words` or
    /// `read/bad_json`.
    pub reason: String,
    /// Records dropped for it.
    pub records: u64,
    /// The first records dropped for it (at most two), as the rejects
    /// table lists them.
    pub examples: Vec<Example>,
}

/// A dropped record, as its reject row has it.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    /// Its id, which `almr explain` finds.
    pub id: String,
    /// Input file, as the build names it.
    pub file: String,
    /// 1-based line or row.
    pub line: u64,
    /// Measured value or error, and a snippet.
    pub detail: String,
}

/// Example records by source and `stage/reason`.
type Examples = HashMap<(String, String), Vec<Example>>;

impl DryRun {
    /// The report of the dry run staged in `staging`.
    fn new(manifest: &Manifest, staging: &Path) -> Result<DryRun> {
        let mut examples = examples(manifest, staging)?;
        Ok(DryRun {
            pipeline: manifest.pipeline.path.clone(),
            limit: manifest.limit.clone(),
            sources: manifest
                .sources
                .iter()
                .map(|s| SourceTrial::new(s, &mut examples))
                .collect(),
            totals: Tally::new(&manifest.totals),
        })
    }

    /// The first example of all, to show `almr explain` with.
    fn first_example(&self) -> Option<&Example> {
        let reasons = self.sources.iter().flat_map(|s| &s.reasons);
        reasons.flat_map(|r| &r.examples).next()
    }

    /// The command that builds what this dry run tried, into `DIR`.
    fn build_command(&self) -> String {
        let mut cmd = format!(
            "almr build {}",
            shell_word(&self.pipeline.display().to_string())
        );
        if let Some(l) = &self.limit {
            cmd.push_str(&format!(" --limit {}", l.records));
            if let Some(seed) = l.sample_seed {
                cmd.push_str(&format!(" --sample-seed {seed}"));
            }
        }
        cmd + " --out DIR"
    }
}

/// The first [`EXAMPLES`] rows of each source and reason in the staged
/// rejects tables.
fn examples(manifest: &Manifest, staging: &Path) -> Result<Examples> {
    let mut found = Examples::new();
    let tables = manifest.outputs.iter().map(|o| &o.path);
    for path in tables.filter(|p| p.starts_with("rejects")) {
        rejects::for_each(&staging.join(path), |row| {
            let reason = format!("{}/{}", row.stage, row.reason);
            let list = found.entry((row.source, reason)).or_default();
            if list.len() < EXAMPLES {
                list.push(Example {
                    id: row.id,
                    file: row.file,
                    line: row.line,
                    detail: row.detail,
                });
            }
        })?;
    }
    Ok(found)
}

impl SourceTrial {
    /// A source's counts, its reasons with their examples taken from
    /// `examples`.
    fn new(s: &SourceCounts, examples: &mut Examples) -> SourceTrial {
        let c = &s.counts;
        let malformed = c.malformed.by_reason.iter();
        let mut reasons: Vec<ReasonTrial> = c
            .rejected
            .by_reason
            .iter()
            .map(|(r, &n)| (r.clone(), n))
            .chain(malformed.map(|(r, &n)| (format!("{}/{r}", read::STAGE), n)))
            .map(|(reason, records)| ReasonTrial {
                examples: examples
                    .remove(&(s.name.clone(), reason.clone()))
                    .unwrap_or_default(),
                reason,
                records,
            })
            .collect();
        reasons.sort_by(|a, b| b.records.cmp(&a.records).then(a.reason.cmp(&b.reason)));
        SourceTrial {
            name: s.name.clone(),
            language: s.language.clone(),
            tally: Tally::new(c),
            reasons,
        }
    }
}

impl Tally {
    fn new(c: &Counts) -> Tally {
        Tally {
            read: c.read,
            kept: c.kept,
            keep_rate: (c.read > 0).then(|| c.kept as f64 / c.read as f64),
            rejected: c.rejected.total,
            malformed: c.malformed.total,
            tokens: c.tokens,
        }
    }

    /// One row of the summary table.
    fn row(&self, f: &mut fmt::Formatter<'_>, name: &str, lang: &str) -> fmt::Result {
        let rate = match self.keep_rate {
            Some(r) => format!("{:.1} %", 100.0 * r),
            None => "-".into(),
        };
        writeln!(
            f,
            "{name:<16} {lang:>4} {:>9} {:>9} {rate:>9} {:>9} {:>9} {:>12}",
            self.read, self.kept, self.rejected, self.malformed, self.tokens
        )
    }
}

impl fmt::Display for DryRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dry run of {}", self.pipeline.display())?;
        match &self.limit {
            Some(l) => writeln!(f, " over {l}")?,
            None => writeln!(f, " over every record")?,
        }
        writeln!(
            f,
            "{:<16} {:>4} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12}",
            "source", "lang", "read", "kept", "keep rate", "rejected", "malformed", "tokens"
        )?;
        for s in &self.sources {
            s.tally.row(f, &s.name, &s.language)?;
        }
        self.totals.row(f, "total", "")?;
        for s in self.sources.iter().filter(|s| !s.reasons.is_empty()) {
            write!(f, "\n{s}")?;
        }
        writeln!(
            f,
            "\nnothing was written: no shards, no rejects tables, no output directory"
        )?;
        if let Some(e) = self.first_example() {
            writeln!(
                f,
                "to ask `almr explain` about a record, build the same records for real:\n  {} && almr explain DIR {}",
                self.build_command(),
                shell_word(&e.id)
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for SourceTrial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dropped = self.tally.rejected + self.tally.malformed;
        writeln!(f, "{}: {} dropped", self.name, plural(dropped, "record"))?;
        for r in self.reasons.iter().take(TOP_REASONS) {
            writeln!(f, "{:>9}  {}", r.records, r.reason)?;
            for e in &r.examples {
                let place = format!("{}:{}", e.file, e.line);
                match e.id == place {
                    true => writeln!(f, "           {place}  {}", e.detail)?,
                    false => writeln!(f, "           {} ({place})  {}", e.id, e.detail)?,
                }
            }
        }
        let rest = &self.reasons[self.reasons.len().min(TOP_REASONS)..];
        if !rest.is_empty() {
            let records: u64 = rest.iter().map(|r| r.records).sum();
            let reasons = plural(rest.len() as u64, "more reason");
            writeln!(f, "{records:>9}  for {reasons} (--json lists them all)")?;
        }
        Ok(())
    }
}

/// `n thing`, or `n things`.
fn plural(n: u64, thing: &str) -> String {
    match n {
        1 => format!("1 {thing}"),
        _ => format!("{n} {thing}s"),
    }
}

/// `s` as one shell word: as is when it is plain, else in single quotes.
fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._-/:=+@%,".contains(c);
    match !s.is_empty() && s.chars().all(plain) {
        true => s.to_string(),
        false => format!("'{}'", s.replace('\'', r"'\''")),
    }
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("pd199801-0168"), "pd199801-0168");
        assert_eq!(shell_word("zh/a.jsonl.gz:12"), "zh/a.jsonl.gz:12");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
