//! The sweep's table: `SWEEP/cells.jsonl` (the format `sweep fit` reads,
//! docs/sweep.md) from the base's record and the finished cells, in grid
//! order, then the fit of it into `SWEEP/recommendation.json`.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::cell::{finished, CellRecord};
use super::plan::Plan;
use super::prepare::BaseRecord;
use super::{write, RunError, RunResult};
use crate::sweep::cells::Cells;
use crate::sweep::{recommend, Recommendation};

/// The table of finished cells.
pub const CELLS: &str = "cells.jsonl";

/// The lines of `cells.jsonl`: the base's English loss, then a line per
/// budget of each finished cell. Besides the fields the fit reads, a line
/// has the budget's `steps`, its `run` directory (relative to the sweep)
/// and, when diverged, the `reason`.
pub fn lines(base: &BaseRecord, cells: &[CellRecord]) -> RunResult<String> {
    let en = base.val_loss.get("en").ok_or_else(|| {
        RunError::Plan(
            "the base has no English validation loss: the mixes hold out no English documents"
                .into(),
        )
    })?;
    let mut out = json!({ "base_en_loss": en }).to_string() + "\n";
    for c in cells {
        for b in &c.budgets {
            let mut line = json!({
                "almr": c.almr,
                "lr": c.lr,
                "tokens": b.tokens,
                "steps": b.steps,
                "val_loss": { "zh": b.val_loss.get("zh"), "en": b.val_loss.get("en") },
                "diverged": b.diverged.is_some(),
                "run": b.run,
            });
            if let Some(reason) = &b.diverged {
                line["reason"] = json!(reason);
            }
            out.push_str(&line.to_string());
            out.push('\n');
        }
    }
    Ok(out)
}

/// Writes `SWEEP/cells.jsonl` from the cells finished so far; returns how
/// many there are, and the file.
pub fn collect(sweep: &Path, plan: &Plan, base: &BaseRecord) -> RunResult<(usize, PathBuf)> {
    let mut done = Vec::new();
    for cell in plan.cells() {
        if let Some(record) = finished(sweep, cell)? {
            done.push(record);
        }
    }
    let path = sweep.join(CELLS);
    write(&path, &lines(base, &done)?)?;
    Ok((done.len(), path))
}

/// Fits `SWEEP/cells.jsonl` and writes `SWEEP/recommendation.json`, as
/// `almr-train sweep fit` does.
pub fn fit(sweep: &Path, tolerance: f64) -> RunResult<Recommendation> {
    let cells = Cells::read(&sweep.join(CELLS))?;
    let rec = recommend(&cells, tolerance)?;
    rec.write(sweep)?;
    Ok(rec)
}
