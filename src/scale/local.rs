//! `almr run W --local -j P`: every stage of a plan on this machine, each
//! task a child process (`almr run W --stage S --task I`), at most P at a
//! time, with the cores shared between them. Tasks already done are
//! skipped, so a failed run continues where it stopped.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::task::missing_tasks;
use super::{Plan, Stage};
use crate::error::{Error, Result};

/// Runs the stages of the plan in `work` that are not done, `jobs` tasks
/// at a time. Returns the number of tasks run.
pub fn run_local(work: &Path, jobs: usize, verbose: bool) -> Result<usize> {
    let work = std::path::absolute(work).map_err(Error::file("finding", work))?;
    let (plan, _) = Plan::load(&work)?;
    let jobs = jobs.max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / jobs).max(1);
    let exe = std::env::current_exe().map_err(Error::file("finding", Path::new("almr")))?;
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs).map_err(Error::file("creating", &logs))?;
    let mut ran = 0;
    for stage in Stage::ALL {
        let missing = missing_tasks(&work, &plan, stage)?;
        let mut queue = missing.into_iter();
        let mut running: Vec<(usize, Child)> = Vec::new();
        loop {
            while running.len() < jobs {
                let Some(task) = queue.next() else { break };
                running.push((task, spawn(&exe, &work, stage, task, threads, &logs)?));
            }
            let Some((task, mut child)) = (!running.is_empty()).then(|| running.remove(0)) else {
                break;
            };
            let status = child.wait()?;
            ran += 1;
            if !status.success() {
                for (_, mut c) in running {
                    let _ = c.wait();
                }
                let log = logs.join(format!("{}-{task:05}.log", stage.name()));
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(Error::Invalid(format!(
                    "stage {} task {task} failed ({status}); its log, {}:\n{}",
                    stage.name(),
                    log.display(),
                    tail.trim_end()
                )));
            }
            if verbose {
                eprintln!("{} {task}: done", stage.name());
            }
        }
    }
    Ok(ran)
}

fn spawn(
    exe: &Path,
    work: &Path,
    stage: Stage,
    task: usize,
    threads: usize,
    logs: &Path,
) -> Result<Child> {
    let log = logs.join(format!("{}-{task:05}.log", stage.name()));
    let file = std::fs::File::create(&log).map_err(Error::file("creating", &log))?;
    Command::new(exe)
        .arg("run")
        .arg(work)
        .args(["--stage", stage.name(), "--task", &task.to_string()])
        .args(["--threads", &threads.to_string()])
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .map_err(Error::file("running", exe))
}
