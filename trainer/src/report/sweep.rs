//! A sweep directory in `almr-train report`: the cells of an ALMR ×
//! learning-rate sweep (`SWEEP/cells.jsonl`, docs/sweep.md), the fit and
//! the recommendation over them, and the runs of the cells
//! (`SWEEP/cells/<cell>/steps-<S>`). A [`SweepReport`] displays as a table,
//! one row per cell, then the recommendation (`text`); serializes as the
//! cells and the recommendation (`--json`); and renders as a section of the
//! HTML page ([`page`]) with the fitted loss surfaces ([`surface`]), the
//! observed trade-off and every cell's curves ([`curves`]).
//!
//! The fit is made here, by [`crate::sweep::recommend()`] with the tolerance
//! `recommendation.json` records (0.03 without one), so the report always
//! shows the fit of the cells as they are now; a `recommendation.json` that
//! differs from it is out of date, and the report says so.

pub mod curves;
pub mod page;
mod scale;
pub mod surface;
mod text;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{read_run, Run};
use crate::sweep::cells::{Cell, Cells};
use crate::sweep::{recommend, Recommendation, SweepError, RECOMMENDATION};

/// The cells file of a sweep directory.
pub const CELLS: &str = "cells.jsonl";
/// The settings file `almr-train sweep run` writes into a sweep directory.
pub const SETTINGS: &str = "sweep.json";
/// The tolerance on the English loss when no `recommendation.json` names one.
pub const DEFAULT_TOLERANCE: f64 = 0.03;

/// Whether `dir` is a sweep directory: it has a cells file or the sweep's
/// settings.
pub fn is_sweep(dir: &Path) -> bool {
    dir.join(CELLS).is_file() || dir.join(SETTINGS).is_file()
}

/// One cell of the sweep, a row of the table: one (ALMR, LR, budget).
#[derive(Debug, Clone, Serialize)]
pub struct CellRow {
    /// Its line in the cells file.
    pub line: usize,
    /// The ALMR r.
    pub almr: f64,
    /// The peak learning rate η.
    pub lr: f64,
    /// Its optimizer steps, when the cells file records them.
    pub steps: Option<u64>,
    /// Its training tokens.
    pub tokens: f64,
    /// Chinese validation loss, when measured.
    pub zh: Option<f64>,
    /// English validation loss, when measured.
    pub en: Option<f64>,
    /// Whether the run diverged.
    pub diverged: bool,
    /// Whether its English loss is within the English limit; `None` when
    /// it diverged or has no English loss.
    pub feasible: Option<bool>,
    /// Its run directory, relative to the sweep directory, when the cells
    /// file names one.
    pub run: Option<PathBuf>,
}

/// A sweep: its cells, the fit over them, and the runs of the cells.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    /// The sweep directory.
    pub dir: PathBuf,
    /// The sweep's settings (`sweep.json`), when it has them.
    pub settings: Option<serde_json::Value>,
    /// The base's English validation loss, when the cells file has it.
    pub base_en_loss: Option<f64>,
    /// The tolerance T of the English limit.
    pub tolerance: f64,
    /// `(1 + T) × base_en_loss`.
    pub en_limit: Option<f64>,
    /// The cells, in file order.
    pub cells: Vec<CellRow>,
    /// The fit and the recommendation, when the cells can be fitted.
    pub recommendation: Option<Recommendation>,
    /// Why there is no fit.
    pub no_fit: Option<String>,
    /// What else the reader should know: an out-of-date
    /// `recommendation.json`, runs that could not be read.
    pub notes: Vec<String>,
    /// The cells' runs that could be read, each with its cell's index.
    #[serde(skip)]
    pub runs: Vec<(usize, Run)>,
}

/// What the cells file says beyond what [`Cells`] reads: each line's
/// `steps` and `run`, the number of cell lines, and the base loss.
#[derive(Default)]
struct Extras {
    by_line: BTreeMap<usize, (Option<u64>, Option<PathBuf>)>,
    cell_lines: usize,
    base_en_loss: Option<f64>,
}

impl Extras {
    /// Reads `text` leniently; [`Cells::parse`] finds what is wrong.
    fn read(text: &str) -> Extras {
        let mut x = Extras::default();
        for (i, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(raw).unwrap_or_default();
            if let Some(b) = v.get("base_en_loss") {
                x.base_en_loss = b.as_f64();
                continue;
            }
            x.cell_lines += 1;
            let run = v["run"].as_str().map(PathBuf::from);
            x.by_line.insert(i + 1, (v["steps"].as_u64(), run));
        }
        x
    }
}

impl SweepReport {
    /// Reads the sweep in `dir`: a cells file that does not parse is an
    /// error naming its line; no cells, no fit, or a run that cannot be
    /// read is reported, not an error.
    pub fn load(dir: &Path) -> Result<SweepReport, SweepError> {
        let path = dir.join(CELLS);
        let text = match path.exists() {
            true => read(&path)?,
            false => String::new(),
        };
        let extras = Extras::read(&text);
        let cells = match extras.cell_lines {
            0 => None,
            _ => Some(Cells::parse(&path, &text)?),
        };
        let (tolerance, saved) = saved_recommendation(dir);
        let base_en_loss = cells.as_ref().map(|c| c.base_en_loss);
        let base_en_loss = base_en_loss.or(extras.base_en_loss);
        let en_limit = base_en_loss.map(|b| (1.0 + tolerance) * b);
        let rows = (cells.iter().flat_map(|c| &c.cells))
            .map(|c| row(c, &extras, en_limit))
            .collect();
        let (recommendation, no_fit, note) = fit(cells.as_ref(), tolerance, &saved);
        let mut report = SweepReport {
            dir: dir.to_path_buf(),
            settings: settings(dir),
            base_en_loss,
            tolerance,
            en_limit,
            cells: rows,
            recommendation,
            no_fit,
            notes: note.into_iter().collect(),
            runs: Vec::new(),
        };
        report.read_runs();
        Ok(report)
    }

    /// Reads the runs the cells name; notes those that cannot be read.
    fn read_runs(&mut self) {
        let mut failed = Vec::new();
        for (i, c) in self.cells.iter().enumerate() {
            let Some(run) = &c.run else { continue };
            match read_run(&self.dir.join(run)) {
                Ok(mut r) => {
                    r.summary.name = cell_name(c);
                    self.runs.push((i, r));
                }
                Err(e) => failed.push(format!("line {} ({}): {e}", c.line, cell_name(c))),
            }
        }
        if let Some(first) = failed.first() {
            self.notes.push(match failed.len() {
                1 => format!("the run of a cell could not be read: {first}"),
                n => format!("the runs of {n} cells could not be read; the first: {first}"),
            });
        }
    }

    /// The sweep's name: its directory.
    pub fn name(&self) -> String {
        self.dir.display().to_string()
    }

    /// The distinct values of `f` over the cells, ascending.
    pub fn distinct(&self, f: impl Fn(&CellRow) -> f64) -> Vec<f64> {
        let mut v: Vec<f64> = self.cells.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    }
}

/// `r 0.30 η 1.0e-4`, and the steps when known.
pub fn cell_name(c: &CellRow) -> String {
    let steps = c.steps.map(|s| format!(" ({s} steps)")).unwrap_or_default();
    format!("r {:.2} η {:.1e}{steps}", c.almr, c.lr)
}

fn read(path: &Path) -> Result<String, SweepError> {
    std::fs::read_to_string(path).map_err(|source| SweepError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The row of cell `c`.
fn row(c: &Cell, extras: &Extras, en_limit: Option<f64>) -> CellRow {
    let (steps, run) = extras.by_line.get(&c.line).cloned().unwrap_or_default();
    let en = c.val_loss.en.filter(|l| l.is_finite());
    CellRow {
        line: c.line,
        almr: c.almr,
        lr: c.lr,
        steps,
        tokens: c.tokens,
        zh: c.val_loss.zh.filter(|l| l.is_finite()),
        en,
        diverged: c.diverged,
        feasible: (en.zip(en_limit))
            .filter(|_| !c.diverged)
            .map(|(e, lim)| e <= lim),
        run,
    }
}

/// What the sweep directory holds of `recommendation.json`.
enum Saved {
    /// No file.
    Absent,
    /// A file that does not parse or names no tolerance.
    Unreadable,
    /// The file's text.
    Text(String),
}

/// The tolerance `recommendation.json` records (the default without one),
/// and what the directory holds of it.
fn saved_recommendation(dir: &Path) -> (f64, Saved) {
    let Ok(text) = std::fs::read_to_string(dir.join(RECOMMENDATION)) else {
        return (DEFAULT_TOLERANCE, Saved::Absent);
    };
    let v: Option<serde_json::Value> = serde_json::from_str(&text).ok();
    match v.as_ref().and_then(|v| v["tolerance"].as_f64()) {
        Some(t) => (t, Saved::Text(text)),
        None => (DEFAULT_TOLERANCE, Saved::Unreadable),
    }
}

/// The fit of `cells`, or why there is none; and a note when the saved
/// `recommendation.json` is not the fit of these cells.
fn fit(
    cells: Option<&Cells>,
    tolerance: f64,
    saved: &Saved,
) -> (Option<Recommendation>, Option<String>, Option<String>) {
    let Some(cells) = cells else {
        return (None, Some("no finished cells yet".into()), None);
    };
    let refit = format!("`almr-train sweep fit {}`", cells.path.display());
    let note = match saved {
        Saved::Absent => format!(
            "no {RECOMMENDATION} yet: shown is the fit made here, with tolerance {tolerance} ({refit} writes it)"
        ),
        Saved::Unreadable => format!(
            "{RECOMMENDATION} does not parse or names no tolerance: the English limit uses {tolerance}; {refit} rewrites it"
        ),
        Saved::Text(_) => format!(
            "{RECOMMENDATION} is out of date (the cells changed since it was written): shown is the fit of the cells as they are now; {refit} updates it"
        ),
    };
    let rec = match recommend(cells, tolerance) {
        Ok(r) => r,
        Err(e) => return (None, Some(e.to_string()), None),
    };
    let current = matches!(saved, Saved::Text(t) if *t == rec.to_json());
    (Some(rec), None, (!current).then_some(note))
}

/// `sweep.json`, when it exists and parses.
fn settings(dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join(SETTINGS)).ok()?;
    serde_json::from_str(&text).ok()
}
