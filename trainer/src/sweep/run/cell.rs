//! One cell of the sweep: an (ALMR, learning rate) pair trained from the
//! base under WSD, one run directory per token budget.
//!
//! ```text
//! SWEEP/cells/r0.300-lr3.00e-4/steps-000400/   the stable run: the longest budget,
//!                                              stopped (and checkpointed) at each
//!                                              shorter budget's branch point
//! SWEEP/cells/r0.300-lr3.00e-4/steps-000200/   a decay branch off it (train::branch)
//! SWEEP/cells/r0.300-lr3.00e-4/cell.json       written when every budget is done
//! ```
//!
//! A budget of S steps decays over its last `decay · S` steps, so it
//! branches off the stable run after step `S − decay · S`, and is then the
//! run of S steps it would have been on its own, bit for bit (Hägele et
//! al. 2024: one stable phase serves every budget).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plan::{CellId, Plan};
use super::prepare::BaseRecord;
use super::{read, train_in, write, Context, RunError, RunResult};
use crate::checkpoint;
use crate::train::{branch, Diverged, Metrics, RunSpec, DIVERGED};

/// The file a finished cell writes.
pub const CELL: &str = "cell.json";

/// One budget of a finished cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Optimizer steps.
    pub steps: u64,
    /// Training tokens.
    pub tokens: u64,
    /// Validation loss per language at its last step (none when diverged).
    pub val_loss: BTreeMap<String, f64>,
    /// Why it counts as diverged, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverged: Option<String>,
    /// Its run directory, relative to the sweep directory.
    pub run: String,
}

/// `cells/NAME/cell.json`: a finished cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRecord {
    /// The ALMR.
    pub almr: f64,
    /// The peak learning rate.
    pub lr: f64,
    /// Its budgets, shortest first.
    pub budgets: Vec<Budget>,
}

/// `SWEEP/cells/NAME`.
pub fn cell_dir(sweep: &Path, cell: CellId) -> PathBuf {
    sweep.join("cells").join(cell.name())
}

/// The run directory of budget `steps` of the cell in `dir`.
fn run_dir(dir: &Path, steps: u64) -> PathBuf {
    dir.join(format!("steps-{steps:06}"))
}

/// The run's checkpoint after `step`, if it saved one.
fn has_checkpoint(run: &Path, step: u64) -> bool {
    (run.join(format!("checkpoint-{step:06}")))
        .join("trainer_state.json")
        .exists()
}

/// Whether the run in `run` ended: trained to its end, or diverged.
fn ended(run: &Path) -> bool {
    run.join("final").join(checkpoint::CONFIG).exists() || run.join(DIVERGED).exists()
}

/// The finished cell's record, if it has one.
pub fn finished(sweep: &Path, cell: CellId) -> RunResult<Option<CellRecord>> {
    let path = cell_dir(sweep, cell).join(CELL);
    match path.exists() {
        true => read(&path).map(Some),
        false => Ok(None),
    }
}

/// A cell as it runs: the sweep, the cell and the base it starts from.
pub struct CellRun<'a> {
    /// The sweep directory.
    pub sweep: &'a Path,
    /// The sweep's plan.
    pub plan: &'a Plan,
    /// The cell.
    pub cell: CellId,
    /// The base.
    pub base: &'a BaseRecord,
    /// Its mix's index digest.
    pub mix_sha256: &'a str,
}

impl CellRun<'_> {
    /// Runs what is left of the cell and writes its `cell.json`; a
    /// finished cell is only read. Unless `keep_checkpoints`, the runs'
    /// checkpoints are removed once the cell is finished: they serve only
    /// to continue it.
    pub fn run(&self, ctx: &Context, keep_checkpoints: bool) -> RunResult<CellRecord> {
        if let Some(done) = finished(self.sweep, self.cell)? {
            return Ok(done);
        }
        self.stable(ctx)?;
        let plan = self.plan;
        for &steps in &plan.steps[..plan.steps.len() - 1] {
            self.decay_branch(steps, ctx)?;
        }
        let budgets = (plan.steps.iter())
            .map(|&s| self.budget(s))
            .collect::<RunResult<Vec<_>>>()?;
        let record = CellRecord {
            almr: self.cell.almr,
            lr: self.cell.lr,
            budgets,
        };
        let dir = cell_dir(self.sweep, self.cell);
        let text = serde_json::to_string_pretty(&record).expect("a cell serializes") + "\n";
        write(&dir.join(CELL), &text)?;
        if !keep_checkpoints {
            self.remove_checkpoints()?;
        }
        Ok(record)
    }

    fn spec(&self, steps: u64) -> RunSpec {
        let base = &self.base.checkpoint;
        self.plan.run_spec(self.cell, steps, base, self.mix_sha256)
    }

    /// The stable run, to the longest budget: stopped at each shorter
    /// budget's branch point to leave a checkpoint there.
    fn stable(&self, ctx: &Context) -> RunResult<()> {
        let plan = self.plan;
        let longest = plan.longest();
        let run = run_dir(&cell_dir(self.sweep, self.cell), longest);
        let mut stops: Vec<u64> = plan.steps[..plan.steps.len() - 1]
            .iter()
            .map(|&s| plan.branch_point(s))
            .collect();
        stops.sort_unstable();
        stops.dedup();
        stops.push(longest);
        let spec = self.spec(longest);
        for stop in stops {
            if ended(&run) {
                break;
            }
            if stop < longest && has_checkpoint(&run, stop) {
                continue;
            }
            let stop_at = (stop < longest).then_some(stop);
            let outcome = train_in(&spec, &run, stop_at, Some(plan.diverge_factor), ctx)?;
            if outcome.diverged.is_some() {
                break;
            }
        }
        Ok(())
    }

    /// The decay branch of budget `steps`, off the stable run; none when
    /// the stable run diverged before the branch point.
    fn decay_branch(&self, steps: u64, ctx: &Context) -> RunResult<()> {
        let dir = cell_dir(self.sweep, self.cell);
        let (run, parent) = (run_dir(&dir, steps), run_dir(&dir, self.plan.longest()));
        let at = self.plan.branch_point(steps);
        if ended(&run) || !has_checkpoint(&parent, at) {
            return Ok(());
        }
        let spec = self.spec(steps);
        if !run.join("run.json").exists() {
            if run.exists() {
                std::fs::remove_dir_all(&run).map_err(RunError::io("removing", &run))?;
            }
            branch(&spec, &parent, at, &run).map_err(RunError::train(&run))?;
        }
        train_in(&spec, &run, None, Some(self.plan.diverge_factor), ctx)?;
        Ok(())
    }

    /// The result of budget `steps`.
    fn budget(&self, steps: u64) -> RunResult<Budget> {
        let dir = cell_dir(self.sweep, self.cell);
        let run = run_dir(&dir, steps);
        let rel = run.strip_prefix(self.sweep).unwrap_or(&run);
        let mut out = Budget {
            steps,
            tokens: self.plan.tokens(steps),
            val_loss: BTreeMap::new(),
            diverged: None,
            run: rel.display().to_string(),
        };
        if run.join(DIVERGED).exists() {
            let d: Diverged = read(&run.join(DIVERGED))?;
            out.diverged = Some(d.reason);
        } else if ended(&run) {
            out.val_loss = last_val_loss(&run)?;
        } else {
            let parent = run_dir(&dir, self.plan.longest());
            let d: Diverged = read(&parent.join(DIVERGED))?;
            out.diverged = Some(format!(
                "the stable run diverged before this budget's branch point, step {}: {}",
                self.plan.branch_point(steps),
                d.reason
            ));
        }
        Ok(out)
    }

    /// Removes every `checkpoint-*` directory of the cell's runs.
    fn remove_checkpoints(&self) -> RunResult<()> {
        let dir = cell_dir(self.sweep, self.cell);
        for &steps in &self.plan.steps {
            let run = run_dir(&dir, steps);
            let Ok(entries) = std::fs::read_dir(&run) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                if name.to_string_lossy().starts_with("checkpoint-") {
                    let path = e.path();
                    std::fs::remove_dir_all(&path).map_err(RunError::io("removing", &path))?;
                }
            }
        }
        Ok(())
    }
}

/// The validation losses of the last line of `RUN/metrics.jsonl`: the
/// evaluation at the run's last step.
fn last_val_loss(run: &Path) -> RunResult<BTreeMap<String, f64>> {
    let path = run.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).map_err(RunError::io("reading", &path))?;
    let last = text.lines().last().unwrap_or_default();
    let m: Metrics = serde_json::from_str(last).map_err(|source| RunError::Json {
        path: path.clone(),
        source,
    })?;
    Ok(m.val_loss)
}
