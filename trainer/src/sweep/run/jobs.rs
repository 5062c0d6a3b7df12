//! Running the cells: one after another in this process, several at once
//! in child processes (`-j`), or as a Slurm job array (`--emit slurm`).
//! Every way runs a cell with the same code ([`run_one`], which the
//! children and the job scripts reach through `almr-train sweep cell`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use super::cell::{cell_dir, finished, CellRecord, CellRun};
use super::plan::{CellId, Plan};
use super::prepare::{BaseRecord, BASE};
use super::{read, write, Context, RunError, RunResult};

/// Runs cell `index` of the sweep in `sweep`, whose mixes and base are
/// ready (`sweep run` made them); a finished cell is only read. Returns
/// the cell and its record.
pub fn run_one(
    sweep: &Path,
    index: usize,
    ctx: &Context,
    keep_checkpoints: bool,
) -> RunResult<(CellId, CellRecord)> {
    let plan = Plan::load(sweep)?;
    let cell = plan.cell(index)?;
    let base_path = sweep.join(BASE);
    if !base_path.exists() {
        return Err(RunError::Plan(format!(
            "{}: the base is not ready; `almr-train sweep base {}` makes it",
            base_path.display(),
            sweep.display()
        )));
    }
    let base: BaseRecord = read(&base_path)?;
    let mix: almr::mixfile::MixReport =
        read(&almr::mixfile::mix_file(&plan.mix_path(cell.almr), "json"))?;
    let run = CellRun {
        sweep,
        plan: &plan,
        cell,
        base: &base,
        mix_sha256: &mix.index.digest.sha256,
    };
    Ok((cell, run.run(ctx, keep_checkpoints)?))
}

/// One line about a finished cell: its losses per budget.
pub fn describe(cell: CellId, record: &CellRecord) -> String {
    let mut out = cell.name();
    for b in &record.budgets {
        let _ = write!(out, "  steps {}:", b.steps);
        match &b.diverged {
            Some(why) => {
                let _ = write!(out, " diverged ({why})");
            }
            None => {
                for (lang, loss) in &b.val_loss {
                    let _ = write!(out, " {lang} {loss:.4}");
                }
            }
        }
    }
    out
}

/// The cells left to run.
pub fn todo(sweep: &Path, plan: &Plan) -> RunResult<Vec<CellId>> {
    let mut out = Vec::new();
    for cell in plan.cells() {
        if finished(sweep, cell)?.is_none() {
            out.push(cell);
        }
    }
    Ok(out)
}

/// What the cells are run with.
pub struct Pool<'a> {
    /// The sweep directory.
    pub sweep: &'a Path,
    /// Where and how to train.
    pub ctx: Context,
    /// Keep each run's checkpoints after its cell is finished.
    pub keep_checkpoints: bool,
    /// Cells at once.
    pub jobs: usize,
    /// Called after each cell finishes (the table is rewritten).
    pub after: &'a (dyn Fn() -> RunResult<()> + Sync),
}

impl Pool<'_> {
    /// Runs `cells`: in this process when `jobs` is 1, else each in a
    /// child `almr-train sweep cell`, `jobs` at a time, each given its
    /// share of the threads. Stops starting cells at the first failure.
    pub fn run(&self, cells: &[CellId]) -> RunResult<()> {
        let total = cells.len();
        let next = AtomicUsize::new(0);
        let failed: Mutex<Option<RunError>> = Mutex::new(None);
        let worker = || loop {
            let k = next.fetch_add(1, Ordering::SeqCst);
            if k >= total || failed.lock().expect("not poisoned").is_some() {
                break;
            }
            let t0 = Instant::now();
            let done = self.one(cells[k]).and_then(|r| {
                let secs = t0.elapsed().as_secs_f64();
                eprintln!(
                    "[{}/{total}] {} ({secs:.0} s)",
                    k + 1,
                    describe(cells[k], &r)
                );
                (self.after)()
            });
            if let Err(e) = done {
                failed.lock().expect("not poisoned").get_or_insert(e);
            }
        };
        std::thread::scope(|s| {
            for _ in 0..self.jobs.max(1) {
                s.spawn(worker);
            }
        });
        match failed.into_inner().expect("not poisoned") {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Runs one cell, here or in a child.
    fn one(&self, cell: CellId) -> RunResult<CellRecord> {
        if self.jobs <= 1 {
            return run_one(self.sweep, cell.index, &self.ctx, self.keep_checkpoints)
                .map(|(_, r)| r);
        }
        let dir = cell_dir(self.sweep, cell);
        std::fs::create_dir_all(&dir).map_err(RunError::io("creating", &dir))?;
        let log = dir.join("log.txt");
        let file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(RunError::io("opening", &log))?;
        let err = file.try_clone().map_err(RunError::io("opening", &log))?;
        let threads = (rayon::current_num_threads() / self.jobs).max(1);
        let exe = exe()?;
        let status = Command::new(&exe)
            .args(cell_args(
                self.sweep,
                cell.index,
                &self.ctx,
                self.keep_checkpoints,
            ))
            .env("RAYON_NUM_THREADS", threads.to_string())
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .status()
            .map_err(RunError::io("running", &exe))?;
        if !status.success() {
            return Err(RunError::Child {
                cell: cell.name(),
                status: status.to_string(),
                log,
            });
        }
        finished(self.sweep, cell)?
            .ok_or_else(|| RunError::Plan(format!("{} wrote no cell.json", cell.name())))
    }
}

/// This program.
fn exe() -> RunResult<PathBuf> {
    std::env::current_exe().map_err(RunError::io("finding", Path::new("almr-train")))
}

/// The arguments of `almr-train sweep cell` for cell `index`.
fn cell_args(sweep: &Path, index: usize, ctx: &Context, keep: bool) -> Vec<String> {
    let mut args = vec![
        "sweep".to_string(),
        "cell".to_string(),
        sweep.display().to_string(),
        "--index".to_string(),
        index.to_string(),
        "--device".to_string(),
        ctx.device.to_string(),
    ];
    if keep {
        args.push("--keep-checkpoints".to_string());
    }
    args
}

/// A shell word: `s` in single quotes.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What `--emit slurm` writes the scripts with.
pub struct Slurm<'a> {
    /// The sweep directory (absolute).
    pub sweep: &'a Path,
    /// The plan.
    pub plan: &'a Plan,
    /// Where and how to train.
    pub ctx: Context,
    /// Array tasks at once (`%P`).
    pub parallel: usize,
    /// The English tolerance of the fit.
    pub tolerance: f64,
    /// Extra `#SBATCH` options, each as given (`--partition=gpu`).
    pub options: &'a [String],
}

impl Slurm<'_> {
    /// Writes `SWEEP/jobs/`: `base.sh`, `cell-NNN.sh` per cell,
    /// `cells.sbatch` (the array over them), `fit.sh` and `submit.sh`,
    /// which submits the three, each after the one before succeeded.
    /// Returns `submit.sh`.
    pub fn write(&self) -> RunResult<PathBuf> {
        let jobs = self.sweep.join("jobs");
        std::fs::create_dir_all(jobs.join("logs")).map_err(RunError::io("creating", &jobs))?;
        let exe = quote(&exe()?.display().to_string());
        let sweep = quote(&self.sweep.display().to_string());
        let device = self.ctx.device;
        let base = format!("exec {exe} sweep base {sweep} --device {device}\n");
        self.script(&jobs.join("base.sh"), "base", &base)?;
        for cell in self.plan.cells() {
            let args: Vec<String> = cell_args(self.sweep, cell.index, &self.ctx, false);
            let args: Vec<String> = args.iter().map(|a| quote(a)).collect();
            let body = format!("exec {exe} {}\n", args.join(" "));
            let path = jobs.join(format!("cell-{:03}.sh", cell.index));
            self.script(&path, &format!("cell-{:03}", cell.index), &body)?;
        }
        let n = self.plan.cells().len();
        let array = format!(
            "exec bash {}/cell-\"$(printf %03d \"$SLURM_ARRAY_TASK_ID\")\".sh\n",
            quote(&jobs.display().to_string())
        );
        let header = format!("--array=0-{}%{}", n - 1, self.parallel.max(1));
        self.script_with(&jobs.join("cells.sbatch"), "cells", &[header], &array)?;
        let fit = format!(
            "exec {exe} sweep fit {sweep} --tolerance {}\n",
            self.tolerance
        );
        self.script(&jobs.join("fit.sh"), "fit", &fit)?;
        let submit = jobs.join("submit.sh");
        write(&submit, &submit_script())?;
        executable(&submit)?;
        Ok(submit)
    }

    /// Writes a job script: the `#SBATCH` header, then `body`.
    fn script(&self, path: &Path, name: &str, body: &str) -> RunResult<()> {
        self.script_with(path, name, &[], body)
    }

    /// Writes a job script with `extra` `#SBATCH` options too. sbatch reads
    /// options only up to the first command, so every one is in the header.
    fn script_with(&self, path: &Path, name: &str, extra: &[String], body: &str) -> RunResult<()> {
        let logs = self.sweep.join("jobs").join("logs");
        // An array task's log is JOB_TASK; another job's, its job id.
        let log = match extra.iter().any(|o| o.starts_with("--array")) {
            true => "%A_%a",
            false => "%j",
        };
        let mut text = format!(
            "#!/usr/bin/env bash\n#SBATCH --job-name=almr-sweep-{name}\n#SBATCH --output={}/{name}-{log}.out\n",
            logs.display()
        );
        for o in extra.iter().chain(self.options) {
            let _ = writeln!(text, "#SBATCH {o}");
        }
        text.push_str("set -euo pipefail\n");
        text.push_str(body);
        write(path, &text)?;
        executable(path)
    }
}

/// `submit.sh`: base, then the cells' array after it, then the fit after
/// every cell, each `afterok` the one before.
fn submit_script() -> String {
    "#!/usr/bin/env bash\n\
     # Submits the sweep: the base, the cells' job array after it, the fit after them.\n\
     # A finished cell exits at once, so submitting again runs only what is left.\n\
     set -euo pipefail\n\
     cd \"$(dirname \"$0\")\"\n\
     base=$(sbatch --parsable base.sh)\n\
     cells=$(sbatch --parsable --dependency=afterok:\"$base\" --kill-on-invalid-dep=yes cells.sbatch)\n\
     fit=$(sbatch --parsable --dependency=afterok:\"$cells\" --kill-on-invalid-dep=yes fit.sh)\n\
     echo \"base $base, cells $cells, fit $fit\"\n"
        .to_string()
}

/// Makes `path` executable by whoever may read it.
fn executable(path: &Path) -> RunResult<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(RunError::io("reading", path))?;
    let mut perm = meta.permissions();
    perm.set_mode(perm.mode() | ((perm.mode() & 0o444) >> 2));
    std::fs::set_permissions(path, perm).map_err(RunError::io("writing", path))
}
