//! `almr plan --emit slurm`: one `W/slurm/STAGE.sbatch` per stage, an
//! array job whose element runs one task, and `W/slurm/submit.sh`, which
//! submits the stages that are not done, each
//! `--dependency=afterok:PREV --kill-on-invalid-dep=yes` on the one
//! before. Rerun after a failure, `submit.sh` resubmits only the missing
//! tasks (`almr status W --array STAGE`). `--emit local` writes
//! `W/local.sh` instead, which runs the plan on this machine.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{Plan, Stage};
use crate::error::{Error, Result};

/// How the stages are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    /// Slurm batch scripts and `submit.sh`.
    Slurm,
    /// `local.sh`: `almr run W --local`.
    Local,
}

/// Options of the emitted scripts.
#[derive(Debug, Clone, Default)]
pub struct EmitOptions {
    /// At most this many elements of an array run at once (`%P`).
    pub parallel: Option<usize>,
    /// Extra `#SBATCH` lines, e.g. `--partition=cpu`.
    pub sbatch: Vec<String>,
    /// Processes at once for `--emit local`.
    pub jobs: usize,
}

/// Writes the scripts of `emit` for the plan in `work`, run with the almr
/// at `almr`. Returns the script to run.
pub fn emit(
    work: &Path,
    plan: &Plan,
    how: Emit,
    almr: &Path,
    opts: &EmitOptions,
) -> Result<std::path::PathBuf> {
    let work = std::path::absolute(work).map_err(Error::file("finding", work))?;
    let q = |p: &Path| shell_quote(&p.display().to_string());
    if how == Emit::Local {
        let path = work.join("local.sh");
        let body = format!(
            "#!/bin/bash\n# Runs the plan in {w} on this machine; rerun to continue after a failure.\nexec {a} run {w} --local -j {j}\n",
            w = q(&work),
            a = q(almr),
            j = opts.jobs.max(1)
        );
        write_script(&path, &body)?;
        return Ok(path);
    }
    let dir = work.join("slurm");
    std::fs::create_dir_all(&dir).map_err(Error::file("creating", &dir))?;
    std::fs::create_dir_all(work.join("logs")).map_err(Error::file("creating", &work))?;
    for stage in Stage::ALL {
        let mut s = format!("#!/bin/bash\n#SBATCH --job-name=almr-{}\n", stage.name());
        s += &format!(
            "#SBATCH --output={}\n",
            q(&work.join("logs").join(format!("{}-%a.log", stage.name())))
        );
        for line in &opts.sbatch {
            s += &format!("#SBATCH {line}\n");
        }
        s += &format!(
            "# Task $SLURM_ARRAY_TASK_ID of stage {n} of {tasks}; a task already done exits at once.\n\
             exec {a} run {w} --stage {n} --task \"${{SLURM_ARRAY_TASK_ID:?submit with sbatch --array}}\"\n",
            n = stage.name(),
            tasks = stage.tasks(plan),
            a = q(almr),
            w = q(&work),
        );
        write_script(&dir.join(format!("{}.sbatch", stage.name())), &s)?;
    }
    let path = dir.join("submit.sh");
    write_script(&path, &submit_script(&work, almr, opts))?;
    Ok(path)
}

fn submit_script(work: &Path, almr: &Path, opts: &EmitOptions) -> String {
    let q = |p: &Path| shell_quote(&p.display().to_string());
    let throttle = opts.parallel.map(|p| format!("%{p}")).unwrap_or_default();
    let stages: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
    format!(
        r#"#!/bin/bash
# Submits the stages of the plan in {w} that are not done, each an array
# job that starts when the one before has succeeded. Rerun it after a
# failure: only the missing tasks are submitted again.
set -euo pipefail
almr={a}
work={w}
dep=()
for stage in {stages}; do
    array=$("$almr" status "$work" --array "$stage")
    [ -n "$array" ] || continue
    id=$(sbatch --parsable --array="$array{throttle}" "${{dep[@]}}" "$work/slurm/$stage.sbatch")
    id=${{id%%;*}}
    echo "$stage: job $id, tasks $array"
    dep=(--dependency=afterok:"$id" --kill-on-invalid-dep=yes)
done
"#,
        w = q(work),
        a = q(almr),
        stages = stages.join(" "),
    )
}

fn write_script(path: &Path, body: &str) -> Result<()> {
    crate::fsutil::write_atomic(path, body.as_bytes()).map_err(Error::file("writing", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(Error::file("writing", path))
}

/// `s` quoted for bash when it needs it.
fn shell_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c);
    match !s.is_empty() && s.chars().all(plain) {
        true => s.to_string(),
        false => format!("'{}'", s.replace('\'', r"'\''")),
    }
}
