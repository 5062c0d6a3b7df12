//! `almr-train report` on runs trained here (the tiny preset shrunk to two
//! blocks, a few steps): the HTML page has a chart per curve and the runs'
//! names, the summary equals what `metrics.jsonl` says, a directory that is
//! not a run is an error; and a validation split of fewer than 8 windows a
//! language is warned about, by `train` (once), `eval --mix` and the report,
//! and one of 8 is not.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use almr_trainer::report::{median, Report};
use almr_trainer::train::Metrics;
use almr_trainer::TrainerError;

const BIN: &str = env!("CARGO_BIN_EXE_almr-train");

fn almr_train(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running almr-train")
}

/// Runs `almr-train ARGS`, which must succeed; returns (stdout, stderr).
fn ok(args: &[&str]) -> (String, String) {
    let out = almr_train(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "almr-train {args:?} failed:\n{stderr}"
    );
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

/// Writes the two-block tiny config to `dir/tiny2.json`.
fn tiny2(dir: &Path) -> PathBuf {
    let path = dir.join("tiny2.json");
    std::fs::write(&path, common::tiny(2).to_json()).unwrap();
    path
}

/// A mix of the fixture build (seq_len 128) whose validation split is one
/// document of zh_news, 8 windows, and one of en_wiki_more, 7: too few.
fn small_valid_mix(dir: &Path) -> PathBuf {
    let build = common::fixture_mix(dir, "first", 16, 20)
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    common::run_almr(&[
        "mix",
        build.to_str().unwrap(),
        "--name",
        "small",
        "--almr",
        "0.5",
        "--seq-len",
        "128",
        "--samples",
        "60",
        "--valid-share",
        "0",
        "--valid-share",
        "zh_news=0.001",
        "--valid-share",
        "en_wiki_more=0.001",
        "--seed",
        "7",
        "--json",
    ]);
    build.join("mix").join("small")
}

/// The warnings of `stderr` about `lang`'s validation windows.
fn warnings<'a>(stderr: &'a str, lang: &str) -> Vec<&'a str> {
    let start = format!("warning: validation loss of {lang} is over ");
    stderr.lines().filter(|l| l.starts_with(&start)).collect()
}

/// Trains `steps` steps into `dir/name`, evaluating every 2 steps; returns
/// the run directory and the stderr.
fn train(dir: &Path, mix: &Path, name: &str, steps: u64, lr: &str) -> (PathBuf, String) {
    let run = dir.join(name);
    let config = tiny2(dir);
    let steps = steps.to_string();
    let (_, stderr) = ok(&[
        "train",
        "--mix",
        mix.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--steps",
        &steps,
        "--micro-batch",
        "2",
        "--lr",
        lr,
        "--eval-every",
        "2",
    ]);
    (run, stderr)
}

/// The complete lines of `run`'s metrics (a partial last line, as a
/// killed run leaves, is not one).
fn metrics(run: &Path) -> Vec<Metrics> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The summary `almr-train report --json` gives of `run` is what its
/// metrics say.
fn check_summary(summary: &serde_json::Value, run: &Path, steps: u64) {
    let m = metrics(run);
    let last = m.last().unwrap();
    assert_eq!(summary["steps_done"], last.step);
    assert_eq!(summary["steps_planned"], steps);
    assert_eq!(summary["finished"], true);
    assert_eq!(summary["tokens"], last.tokens);
    assert_eq!(summary["last_loss"].as_f64().unwrap(), last.loss);
    let with_val = m.iter().rev().find(|x| !x.val_loss.is_empty()).unwrap();
    assert_eq!(summary["last_val_step"], with_val.step);
    for (lang, loss) in &with_val.val_loss {
        assert_eq!(summary["last_val_loss"][lang].as_f64().unwrap(), *loss);
    }
    let speed = median(m.iter().map(|x| x.tokens_per_s)).unwrap();
    assert_eq!(summary["median_tokens_per_s"].as_f64().unwrap(), speed);
}

#[test]
fn a_report_of_two_runs_draws_every_curve_and_sums_up_their_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mix = small_valid_mix(dir.path());
    let (alpha, warned) = train(dir.path(), &mix, "alpha", 6, "2e-3");
    let (beta, _) = train(dir.path(), &mix, "beta", 4, "1e-3");
    // en's 7 windows are warned about once, not at each of the three
    // evaluations; zh's 8 are enough.
    let en = warnings(&warned, "en");
    assert_eq!(en.len(), 1, "{warned}");
    assert!(
        en[0].contains("over 7 windows of 128 tokens (fewer than 8)"),
        "{warned}"
    );
    assert!(warnings(&warned, "zh").is_empty(), "{warned}");
    // A run killed while writing a line: the partial line is skipped.
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(beta.join("metrics.jsonl"))
        .unwrap();
    write!(log, "{{\"step\":5,\"lr\":0.00").unwrap();
    drop(log);

    let html = dir.path().join("report.html");
    let (alpha_s, beta_s, html_s) = (
        alpha.to_str().unwrap(),
        beta.to_str().unwrap(),
        html.to_str().unwrap(),
    );
    let (json, _) = ok(&["report", alpha_s, beta_s, "--html", html_s, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["name"], "alpha");
    assert_eq!(runs[1]["name"], "beta");
    check_summary(&runs[0], &alpha, 6);
    check_summary(&runs[1], &beta, 4);
    assert_eq!(runs[1]["skipped_partial_line"], true);
    // The peak resident size each run recorded in its memory.jsonl.
    for (i, run) in [&alpha, &beta].iter().enumerate() {
        let line = std::fs::read_to_string(run.join("memory.jsonl")).unwrap();
        let record: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(
            runs[i]["peak"]["peak_rss_bytes"].as_f64(),
            record["peak_rss_bytes"].as_f64()
        );
    }
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(alpha.join("valid.json")).unwrap()).unwrap();
    assert_eq!(recorded["windows"], serde_json::json!({"en": 7, "zh": 8}));
    assert_eq!(runs[0]["valid_windows"], recorded["windows"]);
    assert_eq!(runs[0]["warnings"].as_array().unwrap().len(), 1);

    // Training loss and validation loss per language (en, zh), each by
    // step and by tokens; learning rate; tokens/s.
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<svg").count(), 2 + 2 * 2 + 2, "{page}");
    for needle in [
        "alpha",
        "beta",
        "Validation loss, zh",
        "Learning rate",
        "fewer than 8",
        "<td class=\"few\">7</td>",
    ] {
        assert!(page.contains(needle), "the page lacks {needle}");
    }
    for outside in ["<script", "src=", "href=", "<link"] {
        assert!(!page.contains(outside), "the page has {outside}");
    }

    let (table, _) = ok(&["report", alpha_s, beta_s]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("run"), "{table}");
    assert!(
        lines[0].contains("val en") && lines[0].contains("val zh"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("alpha") && lines[1].contains("6/6"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("beta") && lines[2].contains("4/4"),
        "{table}"
    );
    assert!(
        table.contains("warning: alpha: validation loss of en"),
        "{table}"
    );
}

#[test]
fn eval_of_a_mix_with_a_small_validation_split_warns() {
    let dir = tempfile::tempdir().unwrap();
    let mix = small_valid_mix(dir.path());
    let ckpt = dir.path().join("ckpt");
    let config = tiny2(dir.path());
    ok(&[
        "init",
        "--config",
        config.to_str().unwrap(),
        "--out",
        ckpt.to_str().unwrap(),
    ]);
    let (stdout, stderr) = ok(&[
        "eval",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--mix",
        mix.to_str().unwrap(),
    ]);
    let en = warnings(&stderr, "en");
    assert_eq!(en.len(), 1, "{stderr}");
    assert!(en[0].contains("over 7 windows"), "{stderr}");
    assert!(warnings(&stderr, "zh").is_empty(), "{stderr}");
    // The counts are the ones eval measures.
    assert!(stdout.contains("over 7 windows (896 tokens)"), "{stdout}");
    assert!(stdout.contains("over 8 windows (1024 tokens)"), "{stdout}");
}

/// A run directory written by hand: `run.json` and these metrics.
fn fake_run(dir: &Path, name: &str, metrics: &str) -> PathBuf {
    let run = dir.join(name);
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("run.json"),
        r#"{"mix": "nowhere/mix/m", "steps": 10}"#,
    )
    .unwrap();
    std::fs::write(run.join("metrics.jsonl"), metrics).unwrap();
    run
}

const LINE1: &str =
    r#"{"step":1,"lr":0.001,"loss":11.5,"grad_norm":2.0,"tokens":32,"tokens_per_s":100.0}"#;
const LINE2: &str = r#"{"step":2,"lr":0.002,"loss":null,"grad_norm":2.0,"tokens":64,"tokens_per_s":300.0,"val_loss":{"en":9.5},"peak_rss_bytes":1073741824}"#;

#[test]
fn a_directory_that_is_not_a_run_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for d in [empty.clone(), dir.path().join("missing")] {
        let err = Report::load(std::slice::from_ref(&d)).unwrap_err();
        assert!(matches!(err, TrainerError::NotARun { .. }), "{err}");
        assert!(err.to_string().contains("is not a training run"), "{err}");
    }
    let out = almr_train(&["report", empty.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not a training run: it has no run.json"),
        "{stderr}"
    );

    // A line that does not parse before the last is an error that names it.
    let bad = fake_run(
        dir.path(),
        "bad",
        &format!("{LINE1}\n{{\"step\":\n{LINE2}\n"),
    );
    let err = Report::load(&[bad]).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("metrics.jsonl:2: not a metrics line"),
        "{err}"
    );

    // A diverged loss (null) reads as NaN; a peak-memory field is shown.
    let good = fake_run(dir.path(), "good", &format!("{LINE1}\n{LINE2}\n"));
    let report = Report::load(&[good]).unwrap();
    let s = &report.runs[0].summary;
    assert_eq!((s.steps_done, s.steps_planned, s.finished), (2, 10, false));
    assert!(s.last_loss.unwrap().is_nan());
    assert_eq!(s.median_tokens_per_s, Some(200.0));
    assert_eq!(s.last_val_loss["en"], 9.5);
    assert_eq!(s.peak["peak_rss_bytes"], 1073741824.0);
    let table = report.to_string();
    assert!(
        table.contains("2/10 (not finished)") && table.contains("1.00 GiB"),
        "{table}"
    );
}
