//! What a sweep is: the grid, the budgets, the base, the training settings
//! (`SWEEP/sweep.json`), and what follows from them: each cell's name and
//! run directories, each ALMR's mix, each budget's [`RunSpec`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{RunError, RunResult};
use crate::device::Precision;
use crate::optim::AdamWConfig;
use crate::schedule::{Kind, Schedule};
use crate::train::{RunSpec, Start};

/// The file that holds a sweep's [`Plan`].
pub const PLAN: &str = "sweep.json";

/// Where the sweep's CPT runs start from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Base {
    /// A Hugging Face checkpoint directory.
    Init {
        /// The checkpoint.
        checkpoint: PathBuf,
    },
    /// A proxy pre-trained by the sweep, from scratch, on a mix of its own
    /// (English-heavy: ALMR `almr`), with a cosine schedule.
    Pretrain {
        /// A preset (tiny, proxy-125m, proxy-1b) or a config.json.
        config: String,
        /// Optimizer steps.
        steps: u64,
        /// The ALMR of its mix.
        almr: f64,
        /// Peak learning rate.
        lr: f64,
        /// Linear warmup steps.
        warmup: u64,
    },
}

/// A sweep: ALMR × peak learning rate, each cell a WSD run whose stable
/// phase serves every token budget through a decay branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The build (`almr build`'s OUT) the mixes are made over.
    pub build: PathBuf,
    /// The prefix of the sweep's mix names: `OUT/mix/NAME-rR`.
    pub name: String,
    /// The ALMRs, ascending.
    pub almr: Vec<f64>,
    /// The peak learning rates, ascending.
    pub lr: Vec<f64>,
    /// The budgets in optimizer steps, ascending; the last is the length
    /// of each cell's stable run.
    pub steps: Vec<u64>,
    /// The share of each budget's steps that decays (WSD's cooldown).
    pub decay: f64,
    /// Linear warmup steps.
    pub warmup: u64,
    /// The decay's floor, as a share of the peak learning rate.
    pub min_lr_ratio: f64,
    /// Samples per forward pass.
    pub micro_batch: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Tokens a sample is trained on.
    pub seq_len: u64,
    /// The seed of the mixes (and the base's initialisation).
    pub seed: u64,
    /// Share of each source's documents held out for validation: the same
    /// documents in every mix, since the hold-out depends only on the seed.
    pub valid_share: f64,
    /// Validation samples per language at each evaluation.
    pub eval_samples: usize,
    /// Evaluate every this many steps too (0: at the end only).
    pub eval_every: u64,
    /// A run diverges when a step's loss passes this many times the
    /// lowest before it, or is not finite.
    pub diverge_factor: f64,
    /// The runs' optimizer settings.
    pub adamw: AdamWConfig,
    /// Global gradient-norm limit.
    pub clip: f64,
    /// dtype of the forward pass.
    pub compute_dtype: Precision,
    /// dtype of each run's final weights.
    pub save_dtype: Precision,
    /// The base.
    pub base: Base,
}

/// One cell: an (ALMR, learning rate) pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellId {
    /// Its number, ALMR-major: `i · lrs + j`.
    pub index: usize,
    /// The ALMR.
    pub almr: f64,
    /// The peak learning rate.
    pub lr: f64,
}

impl CellId {
    /// `r0.300-lr3.00e-4`: its directory under `SWEEP/cells`.
    pub fn name(&self) -> String {
        format!("r{:.3}-lr{:.2e}", self.almr, self.lr)
    }
}

/// The mix name of ALMR `r`: `NAME-r0.300`.
pub fn mix_name(prefix: &str, r: f64) -> String {
    format!("{prefix}-r{r:.3}")
}

impl Plan {
    /// Refuses a plan that cannot run.
    pub fn check(&self) -> RunResult<()> {
        let bad = |what: String| Err(RunError::Plan(what));
        if self.almr.is_empty() || self.lr.is_empty() || self.steps.is_empty() {
            return bad("give at least one --almr, --lr and --steps".into());
        }
        if !ascending(&self.almr) || self.almr.iter().any(|r| !(0.0..=1.0).contains(r)) {
            return bad("--almr: distinct values in [0, 1]".into());
        }
        if !ascending(&self.lr) || self.lr.iter().any(|l| !(l.is_finite() && *l > 0.0)) {
            return bad("--lr: distinct finite values > 0".into());
        }
        let steps: Vec<f64> = self.steps.iter().map(|&s| s as f64).collect();
        if !ascending(&steps) || self.steps[0] == 0 {
            return bad("--steps: distinct budgets > 0".into());
        }
        if !(self.decay > 0.0 && self.decay <= 1.0) {
            return bad(format!("--decay {}: must be in (0, 1]", self.decay));
        }
        if !(0.0..=1.0).contains(&self.min_lr_ratio) {
            return bad(format!(
                "--min-lr-ratio {}: must be in [0, 1]",
                self.min_lr_ratio
            ));
        }
        if !(self.diverge_factor.is_finite() && self.diverge_factor > 1.0) {
            return bad(format!(
                "--diverge-factor {}: must be > 1",
                self.diverge_factor
            ));
        }
        self.check_branches()
    }

    /// Every shorter budget branches off the stable phase after warmup.
    fn check_branches(&self) -> RunResult<()> {
        for &s in &self.steps[..self.steps.len() - 1] {
            let at = self.branch_point(s);
            if at == 0 || at < self.warmup {
                return Err(RunError::Plan(format!(
                    "budget {s} decays over {} steps from step {at}: its branch must start after the {} warmup steps (more steps, a smaller --decay or less --warmup)",
                    self.decay_steps(s),
                    self.warmup
                )));
            }
        }
        Ok(())
    }

    /// Every cell, ALMR-major.
    pub fn cells(&self) -> Vec<CellId> {
        let mut out = Vec::new();
        for &almr in &self.almr {
            for &lr in &self.lr {
                let index = out.len();
                out.push(CellId { index, almr, lr });
            }
        }
        out
    }

    /// The cell numbered `index`.
    pub fn cell(&self, index: usize) -> RunResult<CellId> {
        let cells = self.cells();
        cells.get(index).copied().ok_or_else(|| {
            RunError::Plan(format!(
                "no cell {index}: the sweep has cells 0..{}",
                cells.len()
            ))
        })
    }

    /// The longest budget: the steps of each cell's stable run.
    pub fn longest(&self) -> u64 {
        *self.steps.last().expect("a checked plan has budgets")
    }

    /// Steps of budget `steps`'s decay: `decay · steps`, at least 1.
    pub fn decay_steps(&self, steps: u64) -> u64 {
        ((self.decay * steps as f64).round() as u64).clamp(1, steps)
    }

    /// The step after which budget `steps` branches off the stable run.
    pub fn branch_point(&self, steps: u64) -> u64 {
        steps - self.decay_steps(steps)
    }

    /// Training samples a run of `steps` reads.
    pub fn samples(&self, steps: u64) -> u64 {
        steps * (self.micro_batch * self.grad_accum) as u64
    }

    /// Training tokens of budget `steps`.
    pub fn tokens(&self, steps: u64) -> u64 {
        self.samples(steps) * self.seq_len
    }

    /// The mix of ALMR `r`: `OUT/mix/NAME-rR`.
    pub fn mix_path(&self, r: f64) -> PathBuf {
        self.build
            .join(almr::mixfile::DIR)
            .join(mix_name(&self.name, r))
    }

    /// The run of `cell` for budget `steps`, starting from `base` (the
    /// base checkpoint); `mix_sha256` is its mix's index digest.
    pub fn run_spec(&self, cell: CellId, steps: u64, base: &Path, mix_sha256: &str) -> RunSpec {
        RunSpec {
            mix: self.mix_path(cell.almr),
            mix_sha256: mix_sha256.to_string(),
            start: Start::Checkpoint(base.to_path_buf()),
            steps,
            micro_batch: self.micro_batch,
            grad_accum: self.grad_accum,
            schedule: Schedule {
                kind: Kind::Wsd,
                peak: cell.lr,
                min: cell.lr * self.min_lr_ratio,
                warmup: self.warmup,
                total: steps,
                decay_steps: self.decay_steps(steps),
            },
            adamw: self.adamw.clone(),
            clip: self.clip,
            eval_every: self.eval_every,
            eval_samples: self.eval_samples,
            save_every: 0,
            compute_dtype: self.compute_dtype,
            save_dtype: self.save_dtype,
            mean_init: Vec::new(),
            mean_left_out: Vec::new(),
        }
    }

    /// `SWEEP/sweep.json` as stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a plan serializes") + "\n"
    }

    /// Reads and checks `SWEEP/sweep.json`: one edited by hand into a plan
    /// that cannot run is refused, as the command line would refuse it.
    pub fn load(sweep: &Path) -> RunResult<Plan> {
        let plan: Plan = super::read(&sweep.join(PLAN))?;
        plan.check()?;
        Ok(plan)
    }

    /// The top-level keys in which `self` and `other` differ.
    pub fn differences(&self, other: &Plan) -> Vec<String> {
        let value = |p: &Plan| serde_json::to_value(p).expect("a plan serializes");
        let (a, b) = (value(self), value(other));
        let (a, b) = (a.as_object().expect("a map"), b.as_object().expect("a map"));
        a.keys()
            .filter(|k| a.get(*k) != b.get(*k))
            .cloned()
            .collect()
    }
}

/// Whether `xs` rises strictly.
fn ascending(xs: &[f64]) -> bool {
    xs.windows(2).all(|w| w[0] < w[1])
}
