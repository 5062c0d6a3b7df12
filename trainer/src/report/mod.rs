//! `almr-train report`: the curves of one or several training runs, read
//! from each run directory's `run.json`, `metrics.jsonl` and `valid.json`.
//! A [`Report`] displays as a table, one row per run (`text`),
//! serializes as its summaries (`--json`), and renders as a self-contained
//! HTML page with charts ([`html`], drawn by [`charts`]). A sweep directory
//! reads as a [`sweep::SweepReport`]: its cells, the fit over them, and the
//! runs of the cells.
//!
//! A run still going, stopped or killed reads as far as it got: a partial
//! last line of `metrics.jsonl` is skipped, as the trainer itself does when
//! it resumes; a line that does not parse before the last is an error.

pub mod charts;
pub mod html;
mod markup;
pub mod sweep;
mod text;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{IoContext, Result, TrainerError};
use crate::eval::ValidWindows;

/// Reads a number the trainer wrote; `null` (how JSON writes a NaN, a
/// diverged loss) reads as NaN.
fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// [`nan_if_null`] for each value of a map.
fn nan_map<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<String, f64>, D::Error> {
    let m = BTreeMap::<String, Option<f64>>::deserialize(d)?;
    Ok(m.into_iter()
        .map(|(k, v)| (k, v.unwrap_or(f64::NAN)))
        .collect())
}

/// One line of `metrics.jsonl` ([`crate::train::Metrics`]), read leniently:
/// a NaN the trainer wrote as `null` is NaN, and fields it may add later
/// are kept in `extra`.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    /// Optimizer steps done.
    pub step: u64,
    /// Learning rate of this step.
    #[serde(deserialize_with = "nan_if_null")]
    pub lr: f64,
    /// Mean training loss of the step.
    #[serde(deserialize_with = "nan_if_null")]
    pub loss: f64,
    /// Global gradient norm before clipping.
    #[serde(deserialize_with = "nan_if_null")]
    pub grad_norm: f64,
    /// Training tokens seen so far.
    pub tokens: u64,
    /// Training tokens per second over the step.
    #[serde(deserialize_with = "nan_if_null")]
    pub tokens_per_s: f64,
    /// Validation loss per language, on evaluation steps.
    #[serde(default, deserialize_with = "nan_map")]
    pub val_loss: BTreeMap<String, f64>,
    /// Any other field (a `peak_*` memory record, for one).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// What the report needs of `run.json` ([`crate::train::RunSpec`]).
#[derive(Deserialize)]
struct RunHeader {
    mix: PathBuf,
    steps: u64,
}

/// One run's numbers: the table's row and `--json`'s entry.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run's name: its directory's name (the whole path where two
    /// runs' names are the same).
    pub name: String,
    /// The run directory.
    pub dir: PathBuf,
    /// The mix it trains on, as `run.json` names it.
    pub mix: PathBuf,
    /// The mix's target ALMR, when its sidecar can still be read.
    pub target_almr: Option<f64>,
    /// The last step in `metrics.jsonl`.
    pub steps_done: u64,
    /// The run's optimizer steps.
    pub steps_planned: u64,
    /// Whether the run wrote its final weights.
    pub finished: bool,
    /// Training tokens seen by the last step.
    pub tokens: u64,
    /// Training loss of the last step.
    pub last_loss: Option<f64>,
    /// The last step with validation losses.
    pub last_val_step: Option<u64>,
    /// Validation loss per language at that step.
    pub last_val_loss: BTreeMap<String, f64>,
    /// Median training tokens/s over the steps.
    pub median_tokens_per_s: Option<f64>,
    /// The largest value of each numeric `peak_*` field of the metrics
    /// lines (a peak-memory record), if the run wrote any.
    pub peak: BTreeMap<String, f64>,
    /// Validation windows per language (`RUN/valid.json`), if recorded.
    pub valid_windows: Option<BTreeMap<String, usize>>,
    /// The warnings of languages with too few validation windows.
    pub warnings: Vec<String>,
    /// Whether a partial last line of `metrics.jsonl` was skipped.
    pub skipped_partial_line: bool,
}

/// A run: its summary and its metrics, step by step.
#[derive(Debug, Clone)]
pub struct Run {
    /// The numbers of the table.
    pub summary: RunSummary,
    /// The lines of `metrics.jsonl`, in order.
    pub records: Vec<Record>,
}

/// The runs of one `almr-train report`, in the order given. Serializes
/// as `{"runs": [summary, …]}`.
#[derive(Debug, Clone)]
pub struct Report {
    /// The runs.
    pub runs: Vec<Run>,
}

impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            runs: Vec<&'a RunSummary>,
        }
        Out {
            runs: self.runs.iter().map(|r| &r.summary).collect(),
        }
        .serialize(s)
    }
}

impl Report {
    /// Reads the runs in `dirs`.
    pub fn load(dirs: &[PathBuf]) -> Result<Report> {
        let mut runs = dirs
            .iter()
            .map(|d| read_run(d))
            .collect::<Result<Vec<_>>>()?;
        let names: Vec<String> = runs.iter().map(|r| r.summary.name.clone()).collect();
        for r in &mut runs {
            if names.iter().filter(|n| **n == r.summary.name).count() > 1 {
                r.summary.name = r.summary.dir.display().to_string();
            }
        }
        Ok(Report { runs })
    }

    /// The languages with validation losses in any run, sorted.
    pub fn languages(&self) -> Vec<String> {
        let mut langs: Vec<String> = (self.runs.iter())
            .flat_map(|r| r.records.iter().flat_map(|m| m.val_loss.keys().cloned()))
            .collect();
        langs.sort();
        langs.dedup();
        langs
    }
}

/// Reads `RUN/metrics.jsonl`: every line, except a partial last one
/// (returned as `true`); none if the run has not written it yet.
pub fn read_metrics(run: &Path) -> Result<(Vec<Record>, bool)> {
    read_lines(&run.join("metrics.jsonl"), "metrics")
}

/// The JSON lines of `path` (none if it does not exist), and whether a
/// partial last line, as a killed process leaves, was skipped.
fn read_lines<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<(Vec<T>, bool)> {
    if !path.exists() {
        return Ok((Vec::new(), false));
    }
    let text = std::fs::read_to_string(path).at("reading", path)?;
    let lines: Vec<&str> = text.lines().collect();
    let mut records = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(line) {
            Ok(r) => records.push(r),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => return Ok((records, true)),
            Err(source) => {
                return Err(TrainerError::JsonLine {
                    path: path.to_path_buf(),
                    what,
                    line: i + 1,
                    source,
                })
            }
        }
    }
    Ok((records, false))
}

/// Reads one run directory.
pub(crate) fn read_run(dir: &Path) -> Result<Run> {
    if !dir.is_dir() {
        return Err(TrainerError::NotARun {
            dir: dir.to_path_buf(),
            why: "no such directory",
        });
    }
    let run_json = dir.join("run.json");
    if !run_json.exists() {
        return Err(TrainerError::NotARun {
            dir: dir.to_path_buf(),
            why: "it has no run.json (almr-train train --out DIR makes one)",
        });
    }
    let text = std::fs::read_to_string(&run_json).at("reading", &run_json)?;
    let header: RunHeader = serde_json::from_str(&text).map_err(|source| TrainerError::Json {
        path: run_json,
        source,
    })?;
    let (records, skipped_partial_line) = read_metrics(dir)?;
    let windows = ValidWindows::read(dir)?;
    let mut summary = summarize(dir, header, &records, windows, skipped_partial_line);
    if let Some(rss) = peak_rss(dir)? {
        summary.peak.insert("peak_rss_bytes".into(), rss);
    }
    Ok(Run { summary, records })
}

/// The largest `peak_rss_bytes` of `RUN/memory.jsonl` (one line per
/// process of the run), if the run wrote one.
fn peak_rss(dir: &Path) -> Result<Option<f64>> {
    let (lines, _) = read_lines::<serde_json::Value>(&dir.join("memory.jsonl"), "memory")?;
    Ok(lines
        .iter()
        .filter_map(|v| v["peak_rss_bytes"].as_f64())
        .reduce(f64::max))
}

/// The median of the finite values of `xs`.
pub fn median(xs: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = xs.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The largest value of each numeric `peak_*` field.
fn peaks(records: &[Record]) -> BTreeMap<String, f64> {
    let mut peak: BTreeMap<String, f64> = BTreeMap::new();
    for r in records {
        for (k, v) in &r.extra {
            if let (true, Some(x)) = (k.starts_with("peak"), v.as_f64()) {
                let e = peak.entry(k.clone()).or_insert(x);
                *e = e.max(x);
            }
        }
    }
    peak
}

/// The target ALMR in the sidecar `MIX.json` of the mix `OUT/mix/NAME`,
/// when it can be found: `run.json` names the mix as it was given to
/// `train`, so a relative path is tried from here, then from each folder
/// above the run.
fn target_almr(dir: &Path, mix: &Path) -> Option<f64> {
    let sidecar = PathBuf::from(format!("{}.json", mix.display()));
    let above = std::path::absolute(dir).ok();
    let above = above.iter().flat_map(|d| d.ancestors());
    let found = std::iter::once(sidecar.clone())
        .chain(above.map(|d| d.join(&sidecar)))
        .find(|p| p.is_file())?;
    let text = std::fs::read_to_string(found).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["target_almr"].as_f64()
}

/// A run's summary from what it wrote.
fn summarize(
    dir: &Path,
    header: RunHeader,
    records: &[Record],
    windows: Option<ValidWindows>,
    skipped_partial_line: bool,
) -> RunSummary {
    let last = records.last();
    let last_val = records.iter().rev().find(|r| !r.val_loss.is_empty());
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    RunSummary {
        name,
        dir: dir.to_path_buf(),
        target_almr: target_almr(dir, &header.mix),
        mix: header.mix,
        steps_done: last.map_or(0, |r| r.step),
        steps_planned: header.steps,
        finished: dir.join("final").join("config.json").exists(),
        tokens: last.map_or(0, |r| r.tokens),
        last_loss: last.map(|r| r.loss),
        last_val_step: last_val.map(|r| r.step),
        last_val_loss: last_val.map(|r| r.val_loss.clone()).unwrap_or_default(),
        median_tokens_per_s: median(records.iter().map(|r| r.tokens_per_s)),
        peak: peaks(records),
        warnings: windows.as_ref().map(|w| w.warnings()).unwrap_or_default(),
        valid_windows: windows.map(|w| w.windows),
        skipped_partial_line,
    }
}
