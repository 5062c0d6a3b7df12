//! `almr plan PIPELINE --work W --tasks N`: the frozen input list, cut into
//! N contiguous ranges balanced by bytes, and the pipeline's hash, in
//! `W/plan.json`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{self, LoadedPipeline};
use crate::error::{Error, Result};
use crate::fsutil;

/// The plan's file in the work directory.
pub const FILE_NAME: &str = "plan.json";
/// The most tasks a stage may have.
pub const MAX_TASKS: usize = 100_000;

/// What `almr plan` writes: everything a task needs besides the pipeline
/// file and the inputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// The almr that made the plan; tasks run by another are refused.
    pub almr_version: String,
    /// The directory relative paths (pipeline, inputs, output) start from.
    pub cwd: PathBuf,
    /// The pipeline file, as given to `almr plan`.
    pub pipeline: PathBuf,
    /// SHA-256 of the pipeline file; tasks refuse a changed pipeline.
    pub pipeline_sha256: String,
    /// The output directory `finish` publishes into.
    pub out: PathBuf,
    /// Fail on the first malformed record, as `almr build --strict`.
    pub strict: bool,
    /// Every input file, in pipeline order.
    pub files: Vec<PlannedFile>,
    /// For each map task, the range `[start, end)` of `files` it reads.
    pub map: Vec<[usize; 2]>,
    /// Tasks of the exact stage: hash ranges.
    pub exact_tasks: usize,
    /// Tasks of the bands stage: groups of LSH bands.
    pub band_tasks: usize,
}

/// One input file of a plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedFile {
    /// Index of its source in the pipeline.
    pub source: usize,
    /// Its path, as the source's glob matched it.
    pub path: PathBuf,
    /// Its size when planned; a task refuses a file whose size changed.
    pub bytes: u64,
}

/// Options of `almr plan`.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Map and write tasks.
    pub tasks: usize,
    /// Exact-stage tasks; `min(tasks, 16)` when unset.
    pub exact_tasks: Option<usize>,
    /// Bands-stage tasks; `min(tasks, bands)` when unset.
    pub band_tasks: Option<usize>,
    /// Output directory; the pipeline's `output` when unset.
    pub out: Option<PathBuf>,
    /// As `almr build --strict`.
    pub strict: bool,
}

/// Makes the plan of `pipeline_path` and writes it to `W/plan.json`. A
/// work directory with another plan is refused; the same plan again is
/// accepted, so that `almr plan` can be rerun.
pub fn make_plan(pipeline_path: &Path, work: &Path, opts: &PlanOptions) -> Result<Plan> {
    for (flag, n) in [
        ("--tasks", Some(opts.tasks)),
        ("--exact-tasks", opts.exact_tasks),
        ("--band-tasks", opts.band_tasks),
    ] {
        match n {
            Some(0) => return Err(Error::Invalid(format!("{flag} must be at least 1"))),
            Some(n) if n > MAX_TASKS => {
                return Err(Error::Invalid(format!(
                    "{flag} {n}: at most {MAX_TASKS} tasks a stage (a Slurm array holds far fewer)"
                )))
            }
            _ => {}
        }
    }
    let loaded = config::load(pipeline_path)?;
    let files = planned_files(&loaded)?;
    let bands = loaded.pipeline.near_dedup.bands;
    let plan = Plan {
        almr_version: env!("CARGO_PKG_VERSION").to_string(),
        cwd: std::env::current_dir()?,
        pipeline: pipeline_path.to_path_buf(),
        pipeline_sha256: fsutil::sha256_hex(loaded.raw.as_bytes()),
        out: opts.out.clone().unwrap_or(loaded.pipeline.output.clone()),
        strict: opts.strict,
        map: split_by_bytes(&files, opts.tasks),
        files,
        exact_tasks: opts.exact_tasks.unwrap_or(opts.tasks.min(16)).max(1),
        band_tasks: opts
            .band_tasks
            .unwrap_or(opts.tasks.min(bands))
            .clamp(1, bands),
    };
    if plan.out.as_os_str().is_empty() {
        return Err(Error::Invalid(
            "the output directory is empty: set `output` in the pipeline or pass --out".into(),
        ));
    }
    plan.write(work)?;
    Ok(plan)
}

fn planned_files(loaded: &LoadedPipeline) -> Result<Vec<PlannedFile>> {
    let mut files = Vec::new();
    for (source, paths) in loaded.inputs.iter().enumerate() {
        for path in paths {
            let bytes = path.metadata().map_err(Error::file("reading", path))?.len();
            files.push(PlannedFile {
                source,
                path: path.clone(),
                bytes,
            });
        }
    }
    Ok(files)
}

/// Cuts `files` into `tasks` contiguous ranges of about equal bytes: a file
/// goes to the task whose share of the bytes holds its middle byte.
pub fn split_by_bytes(files: &[PlannedFile], tasks: usize) -> Vec<[usize; 2]> {
    let total: u128 = files.iter().map(|f| f.bytes as u128).sum::<u128>().max(1);
    let mut before = 0u128;
    let mut owner = Vec::with_capacity(files.len());
    for f in files {
        let middle = 2 * before + f.bytes as u128;
        let task = (middle * tasks as u128 / (2 * total)) as usize;
        owner.push(task.min(tasks - 1));
        before += f.bytes as u128;
    }
    (0..tasks)
        .map(|t| {
            let start = owner.partition_point(|&o| o < t);
            let end = owner.partition_point(|&o| o <= t);
            [start, end]
        })
        .collect()
}

impl Plan {
    /// Writes the plan to `W/plan.json`, unless the same plan is there.
    fn write(&self, work: &Path) -> Result<()> {
        std::fs::create_dir_all(work).map_err(Error::file("creating", work))?;
        let path = work.join(FILE_NAME);
        let json = self.to_json();
        if let Ok(old) = std::fs::read_to_string(&path) {
            if old == json {
                return Ok(());
            }
            return Err(Error::Invalid(format!(
                "{} holds another plan; plan into a new work directory, or remove {} to start over",
                path.display(),
                work.display()
            )));
        }
        fsutil::write_atomic(&path, json.as_bytes()).map_err(Error::file("writing", &path))
    }

    fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("a plan serializes");
        json.push('\n');
        json
    }

    /// Reads `W/plan.json`, checks that this almr made it and that the
    /// pipeline file is unchanged, and enters the plan's directory. Returns
    /// the plan and the SHA-256 of its file.
    pub fn load_checked(work: &Path) -> Result<(Plan, String)> {
        let (plan, sha) = Plan::load(work)?;
        std::env::set_current_dir(&plan.cwd).map_err(Error::file("entering", &plan.cwd))?;
        if plan.almr_version != env!("CARGO_PKG_VERSION") {
            return Err(Error::Invalid(format!(
                "the plan was made by almr {}, this is almr {}; plan again",
                plan.almr_version,
                env!("CARGO_PKG_VERSION")
            )));
        }
        let raw = std::fs::read(&plan.pipeline).map_err(Error::file("reading", &plan.pipeline))?;
        if fsutil::sha256_hex(&raw) != plan.pipeline_sha256 {
            return Err(Error::Invalid(format!(
                "{} changed since `almr plan`; plan again into a new work directory",
                plan.pipeline.display()
            )));
        }
        Ok((plan, sha))
    }

    /// Reads `W/plan.json` and the SHA-256 of its bytes.
    pub fn load(work: &Path) -> Result<(Plan, String)> {
        let path = work.join(FILE_NAME);
        let raw = std::fs::read(&path).map_err(Error::file("reading", &path))?;
        let plan: Plan = serde_json::from_slice(&raw).map_err(|source| Error::JsonFile {
            path: path.clone(),
            source,
        })?;
        plan.check()
            .map_err(|why| Error::Invalid(format!("{}: {why}", path.display())))?;
        Ok((plan, fsutil::sha256_hex(&raw)))
    }

    /// What every stage relies on: at least one task a stage, and map
    /// ranges that cover the files in order.
    fn check(&self) -> std::result::Result<(), String> {
        let counts = [self.map.len(), self.exact_tasks, self.band_tasks];
        if counts.iter().any(|&n| n == 0 || n > MAX_TASKS) {
            return Err(format!("task counts {counts:?} out of 1..={MAX_TASKS}"));
        }
        let mut at = 0;
        for r in &self.map {
            if r[0] != at || r[1] < r[0] {
                return Err(format!(
                    "map range {r:?} does not start where the last ended ({at})"
                ));
            }
            at = r[1];
        }
        match at == self.files.len() {
            true => Ok(()),
            false => Err(format!(
                "map ranges end at {at}, not at its {} files",
                self.files.len()
            )),
        }
    }

    /// The pipeline as planned: parsed from its file, with the frozen input
    /// list instead of its globs.
    pub fn pipeline(&self) -> Result<LoadedPipeline> {
        let raw = std::fs::read_to_string(&self.pipeline)
            .map_err(Error::file("reading", &self.pipeline))?;
        let pipeline = config::parse(&self.pipeline, &raw)?;
        let mut inputs = vec![Vec::new(); pipeline.sources.len()];
        for f in &self.files {
            let list = inputs.get_mut(f.source).ok_or_else(|| {
                Error::Invalid(format!(
                    "the plan names source {} that the pipeline lacks",
                    f.source
                ))
            })?;
            list.push(f.path.clone());
        }
        Ok(LoadedPipeline {
            path: self.pipeline.clone(),
            raw,
            pipeline,
            inputs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(sizes: &[u64]) -> Vec<PlannedFile> {
        sizes
            .iter()
            .map(|&bytes| PlannedFile {
                source: 0,
                path: PathBuf::from("f"),
                bytes,
            })
            .collect()
    }

    #[test]
    fn ranges_are_contiguous_balanced_and_cover_every_file() {
        let f = files(&[10, 10, 10, 10, 40, 10, 10]);
        let r = split_by_bytes(&f, 3);
        assert_eq!(r, vec![[0, 3], [3, 5], [5, 7]]);
        let many = split_by_bytes(&f, 10);
        assert_eq!(many.len(), 10);
        assert_eq!(many.iter().map(|r| r[1] - r[0]).sum::<usize>(), 7);
        assert!(many.windows(2).all(|w| w[0][1] == w[1][0]));
        assert_eq!(split_by_bytes(&files(&[]), 2), vec![[0, 0], [0, 0]]);
    }
}
