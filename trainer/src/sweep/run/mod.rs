//! `almr-train sweep run`: the ALMR × learning-rate grid, run.
//!
//! The data flow: the [`plan`] (`SWEEP/sweep.json`) → [`prepare`] makes a
//! mix per ALMR through the almr library, checks that every mix holds out
//! the same validation documents, and makes the base (trained, or a given
//! checkpoint) and measures its losses (`SWEEP/base.json`) → [`cell`] runs
//! each (ALMR, LR) cell: a WSD run to the longest budget that stops at each
//! shorter budget's branch point, and a decay branch per shorter budget,
//! each an ordinary run directory, then `cell.json` → [`collect`] writes
//! `SWEEP/cells.jsonl` from the finished cells and fits it → [`jobs`] runs
//! cells in child processes (`-j`) or writes them as a Slurm job array.
//!
//! A finished cell (its `cell.json`) is never rerun, and an unfinished one
//! continues from its runs' checkpoints: training is deterministic and
//! resumes exactly, so a killed sweep ends with the same bytes as one that
//! was never stopped.

pub mod cell;
pub mod collect;
pub mod jobs;
pub mod plan;
pub mod prepare;

use std::path::{Path, PathBuf};

use self::plan::Plan;
use crate::device::DeviceSpec;
use crate::error::TrainerError;
use crate::train::{train, Outcome, RunOptions, RunSpec};

/// Why a sweep could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The sweep's settings are unusable, or differ from those it started
    /// with.
    #[error("{0}")]
    Plan(String),
    /// A file operation failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done: `reading`, `writing`, ….
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file of the sweep does not parse.
    #[error("{}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// Making a mix failed.
    #[error("making the mix {name}")]
    Mix {
        /// The mix name.
        name: String,
        /// The cause.
        #[source]
        source: Box<almr::Error>,
    },
    /// A training run failed.
    #[error("{}", run.display())]
    Train {
        /// The run directory.
        run: PathBuf,
        /// The cause.
        #[source]
        source: Box<TrainerError>,
    },
    /// A cell's child process failed.
    #[error("cell {cell} failed ({status}); its log: {}", log.display())]
    Child {
        /// The cell's name.
        cell: String,
        /// How it ended.
        status: String,
        /// Its stderr.
        log: PathBuf,
    },
    /// The fit of the finished cells failed.
    #[error(transparent)]
    Fit(Box<super::SweepError>),
}

impl From<super::SweepError> for RunError {
    fn from(e: super::SweepError) -> RunError {
        RunError::Fit(Box::new(e))
    }
}

/// The sweep runner's results.
pub type RunResult<T> = std::result::Result<T, RunError>;

impl RunError {
    /// A mapper of an I/O error on `path` into [`RunError::Io`].
    pub fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RunError {
        let path = path.to_path_buf();
        move |source| RunError::Io {
            action,
            path,
            source,
        }
    }

    /// A mapper of a training error of run `run` into [`RunError::Train`].
    pub fn train(run: &Path) -> impl FnOnce(TrainerError) -> RunError {
        let run = run.to_path_buf();
        move |source| RunError::Train {
            run,
            source: Box::new(source),
        }
    }
}

/// Where and how this process trains.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// The device.
    pub device: DeviceSpec,
    /// Show a progress bar per run.
    pub progress: bool,
}

/// Trains `spec` in the run directory `dir` up to `stop_at` (or to the
/// end): continues the run there from its latest checkpoint, or starts it,
/// afresh when the run there stopped before saving one.
pub(crate) fn train_in(
    spec: &RunSpec,
    dir: &Path,
    stop_at: Option<u64>,
    diverge_factor: Option<f64>,
    ctx: &Context,
) -> RunResult<Outcome> {
    let device = ctx.device.open().map_err(RunError::train(dir))?;
    let options = |resume| RunOptions {
        out: dir.to_path_buf(),
        device: device.clone(),
        resume,
        stop_at,
        progress: ctx.progress,
        max_memory: None,
        diverge_factor,
    };
    let resume = dir.join("run.json").exists();
    match train(spec, &options(resume)) {
        Err(TrainerError::NoCheckpoint { .. }) => {
            std::fs::remove_dir_all(dir).map_err(RunError::io("removing", dir))?;
            train(spec, &options(false))
        }
        other => other,
    }
    .map_err(RunError::train(dir))
}

/// Writes `text` to `path` atomically.
pub(crate) fn write(path: &Path, text: &str) -> RunResult<()> {
    almr::fsutil::write_atomic(path, text.as_bytes()).map_err(RunError::io("writing", path))
}

/// Reads the JSON file `path`.
pub(crate) fn read<T: serde::de::DeserializeOwned>(path: &Path) -> RunResult<T> {
    let text = std::fs::read_to_string(path).map_err(RunError::io("reading", path))?;
    serde_json::from_str(&text).map_err(|source| RunError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// How `sweep run` runs the cells.
pub struct Options {
    /// Where and how to train.
    pub ctx: Context,
    /// Cells at once.
    pub jobs: usize,
    /// Keep each run's checkpoints after its cell is finished.
    pub keep_checkpoints: bool,
    /// The English tolerance of the fit.
    pub tolerance: f64,
}

/// What the sweep's fit gave: the recommendation, or why there is none
/// (too few usable cells, say): the table stays.
pub type Fitted = std::result::Result<super::Recommendation, super::SweepError>;

/// Runs the sweep in `sweep`: starts it with `plan` (or checks it is the
/// plan it started with), makes the mixes and the base, runs every cell
/// not yet finished, then writes the table and fits it.
pub fn run(sweep: &Path, plan: &Plan, opts: &Options) -> RunResult<(PathBuf, Fitted)> {
    prepare::start(sweep, plan)?;
    prepare::mixes(plan)?;
    let base = prepare::base(sweep, plan, &opts.ctx)?;
    let todo = jobs::todo(sweep, plan)?;
    let cells = plan.cells().len();
    eprintln!(
        "sweep: {cells} cells × {} budgets; {} finished, {} to run, {} at a time",
        plan.steps.len(),
        cells - todo.len(),
        todo.len(),
        opts.jobs.max(1)
    );
    let after = || collect::collect(sweep, plan, &base).map(|_| ());
    let pool = jobs::Pool {
        sweep,
        ctx: opts.ctx,
        keep_checkpoints: opts.keep_checkpoints,
        jobs: opts.jobs,
        after: &after,
    };
    pool.run(&todo)?;
    finish(sweep, plan, &base, opts.tolerance)
}

/// Writes `SWEEP/cells.jsonl` from the finished cells and fits it into
/// `SWEEP/recommendation.json`; returns the table's path and the fit.
pub fn finish(
    sweep: &Path,
    plan: &Plan,
    base: &prepare::BaseRecord,
    tolerance: f64,
) -> RunResult<(PathBuf, Fitted)> {
    let (_, path) = collect::collect(sweep, plan, base)?;
    match collect::fit(sweep, tolerance) {
        Ok(rec) => Ok((path, Ok(rec))),
        Err(RunError::Fit(e)) => Ok((path, Err(*e))),
        Err(e) => Err(e),
    }
}

/// The table of the sweep in `sweep` as it stands: `SWEEP/cells.jsonl`
/// rewritten from its finished cells. What `sweep fit SWEEP` fits.
pub fn table(sweep: &Path) -> RunResult<PathBuf> {
    let plan = Plan::load(sweep)?;
    let base: prepare::BaseRecord = read(&sweep.join(prepare::BASE))?;
    Ok(collect::collect(sweep, &plan, &base)?.1)
}
