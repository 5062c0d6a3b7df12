//! A task's life in the work directory: it writes into
//! `W/STAGE/.tmp-TASK/`, renames that to `W/STAGE/task-TASK/`, then writes
//! its marker `W/STAGE/done/TASK.json` with its counts, the SHA-256 of each
//! file it wrote and the plan's hash. A marker means done; a `.tmp-` left
//! behind is a task running or killed, and is started afresh.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Plan, Stage};
use crate::error::{Error, Result};
use crate::fsutil::{self, FileDigest};

/// The environment variable of fault drills: `STAGE:TASK:fail` makes that
/// task fail half-way, `STAGE:TASK:stall` makes it stop half-way until it
/// is killed.
pub const FAULT_VAR: &str = "ALMR_FAULT";

/// What a task's marker records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Marker {
    /// The stage.
    pub stage: Stage,
    /// The task.
    pub task: usize,
    /// SHA-256 of the `plan.json` the task ran under.
    pub plan_sha256: String,
    /// The task's counts.
    pub counts: serde_json::Value,
    /// Size and SHA-256 of each file the task wrote, by path under its
    /// directory.
    pub outputs: BTreeMap<String, FileDigest>,
}

/// Who runs a task: written into its `.tmp-` directory when it starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Started {
    /// The machine.
    pub host: String,
    /// The process.
    pub pid: u32,
}

/// One task of one stage, and the plan it runs under.
pub struct Context<'a> {
    /// The work directory.
    pub work: PathBuf,
    /// The plan.
    pub plan: &'a Plan,
    /// SHA-256 of the plan file.
    pub plan_sha256: String,
    /// The stage.
    pub stage: Stage,
    /// The task.
    pub task: usize,
}

impl<'a> Context<'a> {
    /// The context of `task` of `stage`.
    pub fn new(work: &Path, plan: &'a Plan, sha: &str, stage: Stage, task: usize) -> Self {
        Context {
            work: work.to_path_buf(),
            plan,
            plan_sha256: sha.to_string(),
            stage,
            task,
        }
    }

    /// Whether the task's marker exists (and names this plan).
    pub fn is_done(&self) -> Result<bool> {
        match read_marker(&self.work, self.stage, self.task)? {
            None => Ok(false),
            Some(m) if m.plan_sha256 == self.plan_sha256 => Ok(true),
            Some(_) => Err(Error::Invalid(format!(
                "{}: done under another plan; remove {} to start over",
                marker_path(&self.work, self.stage, self.task).display(),
                self.work.display()
            ))),
        }
    }

    /// Fails, naming what is missing, unless every task of the stage
    /// before is done.
    pub fn require_before(&self) -> Result<()> {
        let Some(before) = self.stage.before() else {
            return Ok(());
        };
        let missing = missing_tasks(&self.work, self.plan, before)?;
        if missing.is_empty() {
            return self.check_earlier();
        }
        Err(Error::Invalid(format!(
            "stage {} is not done: tasks {} are missing; `almr status {}` lists them",
            before.name(),
            array_list(&missing),
            self.work.display()
        )))
    }

    /// Checks that every file the earlier stages' markers list is there,
    /// with its size: a work directory changed under the plan is an error,
    /// not a wrong result.
    fn check_earlier(&self) -> Result<()> {
        for &stage in Stage::ALL.iter().take_while(|&&s| s != self.stage) {
            for (task, marker) in self.markers(stage)?.iter().enumerate() {
                let dir = self.dir_of(stage, task);
                for (rel, digest) in &marker.outputs {
                    let path = dir.join(rel);
                    let bytes = std::fs::metadata(&path).map(|m| m.len()).ok();
                    if bytes != Some(digest.bytes) {
                        return Err(Error::Invalid(format!(
                            "{}: {}, its marker says {} bytes: the work directory changed since \
                             stage {} task {task} finished; remove {} to run that task again",
                            path.display(),
                            bytes.map_or("missing".into(), |b| format!("{b} bytes")),
                            digest.bytes,
                            stage.name(),
                            marker_path(&self.work, stage, task).display()
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// The finished directory of task `task` of `stage`.
    pub fn dir_of(&self, stage: Stage, task: usize) -> PathBuf {
        task_dir(&self.work, stage, task)
    }

    /// Runs `body` in a fresh `.tmp-` directory; on success renames it into
    /// place and writes the marker.
    pub fn run(
        &self,
        body: impl FnOnce(&Path) -> Result<serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let stage_dir = self.work.join(self.stage.name());
        std::fs::create_dir_all(&stage_dir).map_err(Error::file("creating", &stage_dir))?;
        let _lock = self.lock()?;
        let tmp = stage_dir.join(format!(".tmp-{:05}", self.task));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(Error::file("removing", &tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(Error::file("creating", &tmp))?;
        let started = Started {
            host: host_name(),
            pid: std::process::id(),
        };
        let started_path = tmp.join(".started.json");
        write_json(&started_path, &started)?;
        let counts = body(&tmp)?;
        std::fs::remove_file(&started_path).map_err(Error::file("removing", &started_path))?;
        let outputs = digest_tree(&tmp)?;
        let dir = self.dir_of(self.stage, self.task);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(Error::file("removing", &dir))?;
        }
        std::fs::rename(&tmp, &dir).map_err(Error::file("renaming", &tmp))?;
        fsutil::sync_dir(&stage_dir).map_err(Error::file("syncing", &stage_dir))?;
        let marker = Marker {
            stage: self.stage,
            task: self.task,
            plan_sha256: self.plan_sha256.clone(),
            counts,
            outputs,
        };
        let path = marker_path(&self.work, self.stage, self.task);
        std::fs::create_dir_all(stage_dir.join("done"))?;
        write_json(&path, &marker)?;
        Ok(marker.counts)
    }

    /// Takes the task's lock, `W/STAGE/.lock-TASK`, held while it runs: a
    /// second copy of a running task (a resubmission while the first still
    /// runs) fails at once instead of writing over it.
    fn lock(&self) -> Result<std::fs::File> {
        let path = lock_path(&self.work, self.stage, self.task);
        match fsutil::lock_with_pid(&path).map_err(Error::file("locking", &path))? {
            Ok(file) => Ok(file),
            Err(pid) => Err(Error::Invalid(format!(
                "stage {} task {} is running: {} holds {}",
                self.stage.name(),
                self.task,
                fsutil::holder_name(&pid),
                path.display()
            ))),
        }
    }

    /// The fault drill of [`FAULT_VAR`], called half-way through a task.
    pub fn half_way(&self) -> Result<()> {
        let Ok(spec) = std::env::var(FAULT_VAR) else {
            return Ok(());
        };
        let me = format!("{}:{}:", self.stage.name(), self.task);
        match spec.strip_prefix(&me) {
            Some("fail") => Err(Error::Invalid(format!(
                "{FAULT_VAR}={spec}: failing half-way, as asked"
            ))),
            Some("stall") => loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            },
            _ => Ok(()),
        }
    }

    /// The global number of each map task's first record.
    pub fn record_offsets(&self) -> Result<Vec<u64>> {
        let mut offsets = Vec::new();
        let mut at = 0u64;
        for m in self.markers(Stage::Map)? {
            offsets.push(at);
            at += m.counts["records"].as_u64().unwrap_or(0);
        }
        Ok(offsets)
    }

    /// The map task directories from task `from` on.
    pub fn map_dirs(&self, from: usize) -> Vec<PathBuf> {
        (from..self.plan.map.len())
            .map(|t| self.dir_of(Stage::Map, t))
            .collect()
    }

    /// The markers of every task of `stage`, in task order.
    pub fn markers(&self, stage: Stage) -> Result<Vec<Marker>> {
        (0..stage.tasks(self.plan))
            .map(|t| {
                read_marker(&self.work, stage, t)?.ok_or_else(|| {
                    Error::Invalid(format!("stage {} task {t} is not done", stage.name()))
                })
            })
            .collect()
    }
}

/// `W/STAGE/task-TASK`.
pub fn task_dir(work: &Path, stage: Stage, task: usize) -> PathBuf {
    work.join(stage.name()).join(format!("task-{task:05}"))
}

/// `W/STAGE/.lock-TASK`, held by the process running the task.
pub fn lock_path(work: &Path, stage: Stage, task: usize) -> PathBuf {
    work.join(stage.name()).join(format!(".lock-{task:05}"))
}

/// `W/STAGE/done/TASK.json`.
pub fn marker_path(work: &Path, stage: Stage, task: usize) -> PathBuf {
    work.join(stage.name())
        .join("done")
        .join(format!("{task:05}.json"))
}

/// The marker of a task, if it is done.
pub fn read_marker(work: &Path, stage: Stage, task: usize) -> Result<Option<Marker>> {
    let path = marker_path(work, stage, task);
    match std::fs::read(&path) {
        Ok(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|source| Error::JsonFile { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::file("reading", &path)(e)),
    }
}

/// The tasks of `stage` without a marker.
pub fn missing_tasks(work: &Path, plan: &Plan, stage: Stage) -> Result<Vec<usize>> {
    let mut missing = Vec::new();
    for t in 0..stage.tasks(plan) {
        if !marker_path(work, stage, t).exists() {
            missing.push(t);
        }
    }
    Ok(missing)
}

/// Task numbers as `--array=` writes them: `0-3,5,7-8`.
pub fn array_list(tasks: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < tasks.len() {
        let mut j = i;
        while j + 1 < tasks.len() && tasks[j + 1] == tasks[j] + 1 {
            j += 1;
        }
        parts.push(match j > i {
            true => format!("{}-{}", tasks[i], tasks[j]),
            false => tasks[i].to_string(),
        });
        i = j + 1;
    }
    parts.join(",")
}

/// The machine's name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Writes `value` as JSON to `path`, atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut json = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?;
    json.push(b'\n');
    fsutil::write_atomic(path, &json).map_err(Error::file("writing", path))
}

/// Reads JSON from `path`.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let raw = std::fs::read(path).map_err(Error::file("reading", path))?;
    serde_json::from_slice(&raw).map_err(|source| Error::JsonFile {
        path: path.to_path_buf(),
        source,
    })
}

/// Size and SHA-256 of every file under `dir`, by relative path.
fn digest_tree(dir: &Path) -> Result<BTreeMap<String, FileDigest>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(Error::file("reading", &d))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let digest = fsutil::digest_file(&path).map_err(Error::file("reading", &path))?;
            let rel = path.strip_prefix(dir).unwrap_or(&path);
            out.insert(rel.display().to_string(), digest);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_lists_compress_runs() {
        assert_eq!(array_list(&[0, 1, 2, 3, 5, 7, 8]), "0-3,5,7-8");
        assert_eq!(array_list(&[4]), "4");
        assert_eq!(array_list(&[]), "");
    }
}
