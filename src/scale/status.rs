//! `almr status W`: per stage, which tasks are done, running (or killed:
//! a `.tmp-` directory without a marker) or missing, and the `--array=`
//! list of the tasks to resubmit.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::task::{array_list, host_name, lock_path, marker_path, read_json, Started};
use super::{Plan, Stage};
use crate::error::Result;

/// One stage's tasks.
#[derive(Debug, Clone, Serialize)]
pub struct StageStatus {
    /// The stage.
    pub stage: Stage,
    /// Its number of tasks.
    pub tasks: usize,
    /// Tasks with a marker.
    pub done: Vec<usize>,
    /// Tasks started and not done, with who started them.
    pub started: Vec<(usize, String)>,
    /// Tasks not done: `--array=` resubmits these.
    pub missing: Vec<usize>,
}

/// The status of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Every stage, in order.
    pub stages: Vec<StageStatus>,
}

/// Reads the status of the plan in `work`.
pub fn status(work: &Path) -> Result<Status> {
    let (plan, _) = Plan::load(work)?;
    let stages = Stage::ALL
        .iter()
        .map(|&stage| stage_status(work, &plan, stage))
        .collect();
    Ok(Status { stages })
}

fn stage_status(work: &Path, plan: &Plan, stage: Stage) -> StageStatus {
    let mut s = StageStatus {
        stage,
        tasks: stage.tasks(plan),
        done: Vec::new(),
        started: Vec::new(),
        missing: Vec::new(),
    };
    for t in 0..s.tasks {
        if marker_path(work, stage, t).exists() {
            s.done.push(t);
            continue;
        }
        s.missing.push(t);
        let tmp = work.join(stage.name()).join(format!(".tmp-{t:05}"));
        if let Ok(who) = read_json::<Started>(&tmp.join(".started.json")) {
            let running = is_locked(&lock_path(work, stage, t));
            s.started.push((t, describe_starter(&who, running)));
        }
    }
    s
}

/// Whether a task's lock is held: the task is running.
fn is_locked(path: &Path) -> bool {
    std::fs::File::open(path).is_ok_and(|f| match f.try_lock_shared() {
        Ok(()) => {
            let _ = f.unlock();
            false
        }
        Err(_) => true,
    })
}

/// Who started a task and whether it still runs: its lock tells.
fn describe_starter(who: &Started, running: bool) -> String {
    let at = match who.host == host_name() {
        true => format!("pid {}", who.pid),
        false => format!("pid {} on {}", who.pid, who.host),
    };
    match running {
        true => format!("running ({at})"),
        false => format!("killed ({at} is gone)"),
    }
}

impl Status {
    /// The `--array=` list of the missing tasks of `stage`.
    pub fn array(&self, stage: Stage) -> String {
        self.stages
            .iter()
            .find(|s| s.stage == stage)
            .map(|s| array_list(&s.missing))
            .unwrap_or_default()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<8} {:>6} {:>6} {:>8}  resubmit",
            "stage", "tasks", "done", "missing"
        )?;
        for s in &self.stages {
            let resubmit = match s.missing.is_empty() {
                true => String::from("-"),
                false => format!("--array={}", array_list(&s.missing)),
            };
            writeln!(
                f,
                "{:<8} {:>6} {:>6} {:>8}  {resubmit}",
                s.stage.name(),
                s.tasks,
                s.done.len(),
                s.missing.len()
            )?;
            for (t, who) in &s.started {
                writeln!(f, "         task {t}: {who}")?;
            }
        }
        Ok(())
    }
}
