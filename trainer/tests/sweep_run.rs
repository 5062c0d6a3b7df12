//! `almr-train sweep run` on the fixture build, through the command line:
//! a sweep killed part-way and run again (two cells at a time) ends with
//! the bytes of one never stopped, without rerunning a finished cell; the
//! job scripts of `--emit slurm`, submitted to a real one-node Slurm
//! (scripts/slurm-local.sh), give the same; a diverged cell stays in the
//! table; other settings for a started sweep are refused.

mod common;
#[path = "../../tests/common/slurm.rs"]
mod slurm;
use slurm::Slurm;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_almr-train");

/// The fixture build, made once per test in `dir/build`.
fn build(dir: &Path) -> PathBuf {
    let out = dir.join("build");
    common::run_almr(&[
        "build",
        "pipelines/tokenize_only.toml",
        "--out",
        &out.display().to_string(),
        "--threads",
        "2",
        "--json",
    ]);
    out
}

/// A two-block tiny model's config.json in `dir`.
fn config(dir: &Path) -> PathBuf {
    let path = dir.join("tiny2.json");
    std::fs::write(&path, common::tiny(2).to_json()).unwrap();
    path
}

/// The settings of the test's sweep: 3 ALMRs × 4 learning rates (the
/// last far too high: it diverges), budgets of 4 and 8 steps.
fn settings(build: &Path, config: &Path) -> Vec<String> {
    let s = |x: &str| x.to_string();
    let mut v = vec![s("--build"), build.display().to_string()];
    v.extend([s("--config"), config.display().to_string()]);
    for (k, val) in [
        ("--base-steps", "6"),
        ("--base-lr", "3e-3"),
        ("--almr", "0.2,0.5,0.8"),
        ("--lr", "1e-3,3e-3,1e-2,8"),
        ("--steps", "4,8"),
        ("--decay", "0.25"),
        ("--seq-len", "16"),
        ("--micro-batch", "2"),
        ("--eval-samples", "4"),
        ("--seed", "3"),
    ] {
        v.extend([s(k), s(val)]);
    }
    v
}

fn sweep(args: &[String]) -> Output {
    Command::new(BIN)
        .arg("sweep")
        .args(args)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap()
}

fn ok(args: &[String]) -> String {
    let out = sweep(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sweep {args:?}:\n{err}");
    format!("{}{err}", String::from_utf8_lossy(&out.stdout))
}

fn run_args(dir: &Path, rest: &[String]) -> Vec<String> {
    let mut v = vec!["run".to_string(), dir.display().to_string()];
    v.extend_from_slice(rest);
    v
}

/// Panics with its stderr unless `out` is a success.
fn succeeded(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn finished_cells(sweep: &Path) -> usize {
    std::fs::read_dir(sweep.join("cells"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join("cell.json").exists())
                .count()
        })
        .unwrap_or(0)
}

/// Starts a sweep and kills it (SIGKILL) once its first cell is finished.
fn start_and_kill(args: &[String], sweep: &Path) {
    let mut child = Command::new(BIN)
        .arg("sweep")
        .args(args)
        .env("RAYON_NUM_THREADS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while finished_cells(sweep) == 0 {
        assert!(child.try_wait().unwrap().is_none(), "the sweep ended early");
        assert!(t0.elapsed() < Duration::from_secs(600), "no cell finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_killed_sweep_resumes_to_the_same_bytes_and_emitted_jobs_agree() {
    let dir = tempfile::tempdir().unwrap();
    let (build, config) = (build(dir.path()), config(dir.path()));
    let settings = settings(&build, &config);

    // No settings and no sweep, or a grid that cannot run: an error, and
    // nothing made.
    let none = dir.path().join("none");
    let e = sweep(&run_args(&none, &[]));
    assert!(String::from_utf8_lossy(&e.stderr).contains("no sweep to continue"));
    let mut bad = settings.clone();
    let at = bad.iter().position(|a| a == "--almr").unwrap();
    bad[at + 1] = "0.2,1.5".into();
    let e = sweep(&run_args(&none, &bad));
    assert!(String::from_utf8_lossy(&e.stderr).contains("--almr: distinct values in [0, 1]"));
    assert!(!e.status.success() && !none.exists());

    // Uninterrupted, one cell at a time.
    let whole = dir.path().join("whole");
    let out = ok(&run_args(&whole, &settings));
    assert!(out.contains("[12/12]"), "{out}");
    let cells = String::from_utf8(read(&whole.join("cells.jsonl"))).unwrap();
    let lines: Vec<serde_json::Value> = cells
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1 + 12 * 2, "{cells}");
    assert!(lines[0]["base_en_loss"].as_f64().unwrap() > 0.0);
    let diverged: Vec<_> = lines[1..]
        .iter()
        .filter(|l| l["diverged"] == true)
        .collect();
    assert_eq!(
        diverged.len(),
        6,
        "the lr 8 column diverges at both budgets: {cells}"
    );
    assert!(diverged
        .iter()
        .all(|l| l["lr"] == 8.0 && l["reason"].is_string()));
    for l in &lines[1..] {
        let run = whole.join(l["run"].as_str().unwrap());
        let done = run.join("final/config.json").exists();
        assert_eq!(done, l["diverged"] == false, "{l}");
        assert!(
            !run.join("checkpoint-000006").exists(),
            "checkpoints are removed"
        );
    }
    // Other settings for a started sweep are refused, naming them.
    let mut other = settings.clone();
    let at = other.iter().position(|a| a == "--steps").unwrap();
    other[at + 1] = "4,10".into();
    let e = sweep(&run_args(&whole, &other));
    let e = String::from_utf8_lossy(&e.stderr);
    assert!(e.contains("other settings (steps)"), "{e}");

    // A sweep.json edited into a plan that cannot run: an error, no panic.
    let edited = dir.path().join("edited");
    std::fs::create_dir(&edited).unwrap();
    let mut plan: serde_json::Value =
        serde_json::from_slice(&read(&whole.join("sweep.json"))).unwrap();
    plan["steps"] = serde_json::json!([]);
    std::fs::write(edited.join("sweep.json"), plan.to_string()).unwrap();
    let args = ["cell", edited.to_str().unwrap(), "--index", "0"].map(String::from);
    let e = sweep(&args);
    assert!(!e.status.success() && e.status.code() == Some(1));
    assert!(String::from_utf8_lossy(&e.stderr).contains("--steps"));

    // Killed after its first cell, then continued two cells at a time.
    let parts = dir.path().join("parts");
    start_and_kill(&run_args(&parts, &settings), &parts);
    let first = parts.join("cells/r0.200-lr1.00e-3");
    let stamp = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let before = stamp(&first.join("steps-000008/metrics.jsonl"));
    assert!(finished_cells(&parts) < 12);
    let out = ok(&run_args(&parts, &["-j".into(), "2".into()]));
    assert!(out.contains(" to run, 2 at a time"), "{out}");
    assert_eq!(
        stamp(&first.join("steps-000008/metrics.jsonl")),
        before,
        "a finished cell reran"
    );
    assert_eq!(read(&parts.join("cells.jsonl")), cells.as_bytes());
    let rec = read(&whole.join("recommendation.json"));
    assert_eq!(read(&parts.join("recommendation.json")), rec);

    // The job scripts of --emit slurm, run by hand in order.
    let emitted = dir.path().join("emitted");
    let mut args = run_args(&emitted, &settings);
    args.extend(["--emit", "slurm", "-j", "2", "--sbatch=--time=10"].map(String::from));
    ok(&args);
    let jobs = emitted.join("jobs");
    let array = String::from_utf8(read(&jobs.join("cells.sbatch"))).unwrap();
    // sbatch reads #SBATCH lines only before the first command.
    let header: Vec<&str> = (array.lines().skip(1))
        .take_while(|l| l.starts_with('#'))
        .collect();
    assert!(header.contains(&"#SBATCH --array=0-11%2"), "{array}");
    assert!(header.contains(&"#SBATCH --time=10"), "{array}");
    let submit = String::from_utf8(read(&jobs.join("submit.sh"))).unwrap();
    assert!(submit.contains("--dependency=afterok:\"$base\" --kill-on-invalid-dep=yes"));
    // Each script is a plain bash script too: the base, by hand.
    let out = Command::new("bash")
        .arg(jobs.join("base.sh"))
        .output()
        .unwrap();
    succeeded(&out);
    // The rest through a real Slurm: submit.sh, then wait for the fit.
    let slurm = Slurm::start(dir.path(), &common::root().join("scripts/slurm-local.sh"));
    let out = slurm
        .command("bash")
        .arg(jobs.join("submit.sh"))
        .output()
        .unwrap();
    succeeded(&out);
    slurm.wait_idle(Duration::from_secs(900));
    assert!(
        jobs.join("logs").read_dir().unwrap().count() >= 13,
        "a log per job"
    );
    assert_eq!(read(&emitted.join("cells.jsonl")), cells.as_bytes());
    assert_eq!(read(&emitted.join("recommendation.json")), rec);
}
