//! `almr status W`: per stage, which tasks are done, running (or killed:
//! a `.tmp-` directory without a marker) or missing, and the `--array=`
//! list of the tasks to resubmit.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::task::{array_list, host_name, marker_path, read_json, Started};
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
            s.started.push((t, describe_starter(&who)));
        }
    }
    s
}

/// `running (pid N)` when the process lives on this machine, else who
/// started it.
fn describe_starter(who: &Started) -> String {
    let here = who.host == host_name();
    match here && Path::new(&format!("/proc/{}", who.pid)).exists() {
        true => format!("running (pid {})", who.pid),
        false if here => format!("killed (pid {} is gone)", who.pid),
        false => format!(
            "started on {} (pid {}): running or killed",
            who.host, who.pid
        ),
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
