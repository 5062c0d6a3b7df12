//! The `almr-train` binary: a run killed part-way (SIGKILL), or stopped by
//! `--stop-at` as a job with a time limit is, and resumed ends with the same
//! loss curve and weights as an uninterrupted one; `--resume` needs a run;
//! memory is estimated, refused with advice and measured; checkpoints get
//! the umask's mode; a mix of a build redone since is refused; `init` and
//! `eval` and training from a checkpoint work from the command line.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use almr_trainer::config::LlamaConfig;
use almr_trainer::device::Precision;
use almr_trainer::memory::{self, Workload};

const BIN: &str = env!("CARGO_BIN_EXE_almr-train");

fn train_args(mix: &Path, out: &Path) -> Vec<String> {
    [
        "train",
        "--mix",
        mix.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--config",
        "tiny",
        "--steps",
        "12",
        "--micro-batch",
        "2",
        "--lr",
        "2e-3",
        "--warmup",
        "2",
        "--save-every",
        "4",
        "--eval-every",
        "6",
        "--eval-samples",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn curve(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("tokens_per_s");
            v
        })
        .collect()
}

#[test]
fn a_killed_run_resumes_to_the_same_curve() {
    let dir = tempfile::tempdir().unwrap();
    let mix = common::fixture_mix(dir.path(), "kill", 16, 100);
    let whole = dir.path().join("whole");
    let status = Command::new(BIN)
        .args(train_args(&mix, &whole))
        .status()
        .unwrap();
    assert!(status.success());

    let killed = dir.path().join("killed");
    let mut child = Command::new(BIN)
        .args(train_args(&mix, &killed))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !killed.join("checkpoint-000004").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !killed.join("final").exists(),
        "the run finished before it was killed"
    );

    let mut args = train_args(&mix, &killed);
    args.push("--resume".into());
    let out = Command::new(BIN).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(curve(&killed), curve(&whole));
    let a = std::fs::read(whole.join("final/model.safetensors")).unwrap();
    let b = std::fs::read(killed.join("final/model.safetensors")).unwrap();
    assert!(a == b, "final weights differ");
}

/// Runs `almr-train ARGS`; returns (success, stdout, stderr).
fn run_bin(args: &[String]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_job_stopped_at_a_step_resumes_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let mix = common::fixture_mix(dir.path(), "stop", 16, 100);
    let whole = dir.path().join("whole");
    let (ok, _, err) = run_bin(&train_args(&mix, &whole));
    assert!(ok, "{err}");
    assert!(err.contains("memory: estimated peak "), "{err}");
    assert!(err.contains("memory: peak RSS "), "{err}");

    // The job script's command line, as Slurm runs it twice: the first job
    // stops at step 7 (between the checkpoints of steps 4 and 8), the
    // second adds --resume.
    let job = dir.path().join("job");
    let mut args = train_args(&mix, &job);
    args.extend(["--stop-at".to_string(), "7".to_string()]);
    let (ok, out, err) = run_bin(&args);
    assert!(ok, "{err}");
    assert!(
        out.contains("step 7/12") && out.contains("--resume continues"),
        "{out}"
    );
    assert!(job.join("checkpoint-000007").exists());
    assert!(!job.join("final").exists());
    args.push("--resume".into());
    let (ok, _, err) = run_bin(&args);
    assert!(ok, "{err}");

    assert_eq!(curve(&job), curve(&whole));
    let a = std::fs::read(whole.join("final/model.safetensors")).unwrap();
    let b = std::fs::read(job.join("final/model.safetensors")).unwrap();
    assert!(a == b, "final weights differ");
    // memory.jsonl: one line per process; the second started at step 7.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(job.join("memory.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let steps: Vec<(u64, u64)> = lines
        .iter()
        .map(|v| {
            (
                v["from_step"].as_u64().unwrap(),
                v["to_step"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(steps, [(0, 7), (7, 12)]);
    assert!(lines[1]["peak_rss_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn resume_without_a_run_and_too_little_memory_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mix = common::fixture_mix(dir.path(), "errors", 16, 100);
    let none = dir.path().join("none");
    let mut args = train_args(&mix, &none);
    args.push("--resume".into());
    let (ok, _, err) = run_bin(&args);
    assert!(!ok);
    assert!(
        err.contains("holds no run to continue (no run.json): start the run without --resume"),
        "{err}"
    );
    assert!(!none.exists());

    // A limit (in bytes) that one sample per forward pass fits and two do
    // not: the advice keeps the 6 samples per step.
    let small = dir.path().join("small");
    let one = Workload {
        micro_batch: 1,
        grad_accum: 6,
        seq_len: 16,
        compute: Precision::F32,
        cuda: false,
    };
    let tiny = LlamaConfig::preset_or_file("tiny").unwrap();
    let limit = memory::estimate(&tiny, &one).total().to_string();
    let mut args = train_args(&mix, &small);
    args.extend(["--grad-accum", "3", "--max-memory", &limit].map(String::from));
    let (ok, _, err) = run_bin(&args);
    assert!(!ok);
    assert!(
        err.contains("at --micro-batch 2 (seq-len 16), more than the")
            && err.contains("limit (--max-memory): use --micro-batch 1 --grad-accum 6 (the same 6 samples per step"),
        "{err}"
    );
    assert!(!small.exists());
    // A size clap cannot parse is a usage error that shows the forms.
    let mut args = train_args(&mix, &small);
    args.extend(["--max-memory", "2.5X"].map(String::from));
    let out = Command::new(BIN).args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("e.g. 2.5G or 800M"));
}

#[test]
fn a_mix_of_a_build_redone_since_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mix = common::fixture_mix(dir.path(), "stale", 16, 100);
    // The same output directory rebuilt from another pipeline.
    let out = dir.path().join("build").display().to_string();
    common::run_almr(&["build", "pipelines/default.toml", "--out", &out, "--json"]);
    let run = dir.path().join("run");
    let (ok, _, err) = run_bin(&train_args(&mix, &run));
    assert!(!ok);
    assert!(
        err.contains("changed after this mix was made") && err.contains("remake the mix"),
        "{err}"
    );
    assert!(!run.exists());
}

#[cfg(unix)]
#[test]
fn checkpoints_get_the_mode_the_umask_gives() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    for (umask, mode) in [("022", 0o644), ("027", 0o640), ("002", 0o664)] {
        let ckpt = dir.path().join(format!("init-{umask}"));
        let status = Command::new("sh")
            .args(["-c", &format!("umask {umask} && exec \"$0\" \"$@\"")])
            .arg(BIN)
            .args(["init", "--config", "tiny", "--out", ckpt.to_str().unwrap()])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        for file in ["model.safetensors", "config.json"] {
            let m = std::fs::metadata(ckpt.join(file))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(m, mode, "{file} under umask {umask}: {m:o}");
        }
    }
}

#[test]
fn init_then_eval_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let mix = common::fixture_mix(dir.path(), "eval", 16, 20);
    let ckpt = dir.path().join("ckpt");
    let ok = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    ok(&[
        "init",
        "--config",
        "tiny",
        "--out",
        ckpt.to_str().unwrap(),
        "--seed",
        "4",
    ]);
    let report = ok(&[
        "eval",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--mix",
        mix.to_str().unwrap(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&report).unwrap();
    for lang in ["zh", "en"] {
        let loss = v[lang]["loss"].as_f64().unwrap();
        assert!((loss - (128256f64).ln()).abs() < 0.5, "{lang}: {loss}");
    }
    // Training from the checkpoint starts from its weights: the same first
    // loss as fresh weights from its seed, not another seed's.
    let first_loss = |name: &str, start: &[&str]| -> f64 {
        let run = dir.path().join(name);
        let mut args = vec![
            "train",
            "--mix",
            mix.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
        ];
        args.extend_from_slice(start);
        args.extend_from_slice(&["--steps", "1", "--micro-batch", "2", "--eval-samples", "0"]);
        ok(&args);
        let line = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
        v["loss"].as_f64().unwrap()
    };
    let from_ckpt = first_loss("cpt", &["--init", ckpt.to_str().unwrap()]);
    assert_eq!(
        from_ckpt,
        first_loss("seed4", &["--config", "tiny", "--seed", "4"])
    );
    assert_ne!(
        from_ckpt,
        first_loss("seed5", &["--config", "tiny", "--seed", "5"])
    );
    let bad = Command::new(BIN)
        .args([
            "eval",
            "--checkpoint",
            dir.path().to_str().unwrap(),
            "--mix",
            mix.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("config.json"));
}
