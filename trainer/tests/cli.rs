//! The `almr-train` binary: a run killed part-way (SIGKILL) and resumed ends
//! with the same loss curve and weights as an uninterrupted one; `init` and
//! `eval` and training from a checkpoint work from the command line.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
