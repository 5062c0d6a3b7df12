//! Scale-out: one build cut into stages whose tasks run as job arrays on a
//! cluster scheduler (Slurm), or as processes on one machine, and give the
//! same bytes as `almr build`.
//!
//! `almr plan` ([`plan`]) expands the globs once, freezes the input list
//! and cuts it into N contiguous ranges balanced by bytes. Each stage then
//! runs as `almr run W --stage S --task I` ([`run_task`]), reading only what
//! the stages before it wrote under the work directory `W`:
//!
//! ```text
//! map (N)      read, per-document steps, tokenize, sketch   -> records, tokens, hash and band runs
//! exact (E)    merge hash runs of a hash range               -> exact duplicates
//! bands (B)    merge band runs of a band group, verify pairs -> candidate edges, in order
//! cluster (1)  union-find over the edges; the shard plan     -> near duplicates, shards
//! write (N)    the shards whose first document a map task read -> shards, provenance, near rejects
//! finish (1)   counts, rejects, manifest; publish OUT        -> OUT
//! ```
//!
//! Each task writes into `W/STAGE/.tmp-TASK/`, renames it to
//! `W/STAGE/task-TASK/`, then writes `W/STAGE/done/TASK.json` ([`task`]);
//! a task whose marker exists exits at once. `docs/scale-out.md` has the
//! graph, the memory of each stage and a worked example.

mod bands;
mod cluster;
mod exact;
mod finish;
mod local;
mod map;
pub mod plan;
mod record;
mod runs;
pub mod slurm;
pub mod status;
pub mod task;
mod write;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use self::local::run_local;
pub use self::plan::{make_plan, Plan, PlanOptions};

/// A stage of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Read, per-document steps, tokenize, sketch (N tasks).
    Map,
    /// Exact duplicates by hash range (E tasks).
    Exact,
    /// Near-duplicate candidates by band group (B tasks).
    Bands,
    /// Clusters and the shard plan (1 task).
    Cluster,
    /// Shards and provenance (N tasks).
    Write,
    /// Rejects, manifest and publishing (1 task).
    Finish,
}

impl Stage {
    /// Every stage, in the order they run.
    pub const ALL: [Stage; 6] = [
        Stage::Map,
        Stage::Exact,
        Stage::Bands,
        Stage::Cluster,
        Stage::Write,
        Stage::Finish,
    ];

    /// The stage's name, as `--stage` and the work directory write it.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Map => "map",
            Stage::Exact => "exact",
            Stage::Bands => "bands",
            Stage::Cluster => "cluster",
            Stage::Write => "write",
            Stage::Finish => "finish",
        }
    }

    /// The number of tasks the stage has under `plan`.
    pub fn tasks(self, plan: &Plan) -> usize {
        match self {
            Stage::Map | Stage::Write => plan.map.len(),
            Stage::Exact => plan.exact_tasks,
            Stage::Bands => plan.band_tasks,
            Stage::Cluster | Stage::Finish => 1,
        }
    }

    /// The stage before this one.
    pub fn before(self) -> Option<Stage> {
        let at = Stage::ALL.iter().position(|&s| s == self)?;
        at.checked_sub(1).map(|b| Stage::ALL[b])
    }
}

/// Options of `almr run W --stage S --task I`.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Threads of the task's pool; all cores when unset.
    pub threads: Option<usize>,
    /// Print a line when the task starts and ends.
    pub verbose: bool,
}

/// Runs task `task` of `stage` of the plan in `work`. A task already done
/// returns at once with `false`; else `true` once it is done.
pub fn run_task(work: &Path, stage: Stage, task: usize, opts: &RunOptions) -> Result<bool> {
    let work = std::path::absolute(work).map_err(Error::file("finding", work))?;
    let (plan, sha) = Plan::load_checked(&work)?;
    let tasks = stage.tasks(&plan);
    if task >= tasks {
        return Err(Error::Invalid(format!(
            "--task {task}: stage {} has {tasks} task(s), 0 to {}",
            stage.name(),
            tasks - 1
        )));
    }
    let ctx = task::Context::new(&work, &plan, &sha, stage, task);
    if ctx.is_done()? {
        return Ok(false);
    }
    ctx.require_before()?;
    let t0 = std::time::Instant::now();
    let counts = ctx.run(|dir| match stage {
        Stage::Map => map::run(&ctx, dir, opts),
        Stage::Exact => exact::run(&ctx, dir),
        Stage::Bands => bands::run(&ctx, dir),
        Stage::Cluster => cluster::run(&ctx, dir),
        Stage::Write => write::run(&ctx, dir),
        Stage::Finish => finish::run(&ctx, dir, opts),
    })?;
    if opts.verbose {
        eprintln!(
            "{} {task} of {tasks}: done in {:.1} s: {counts}",
            stage.name(),
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(true)
}
