//! Shell conventions: completion scripts, `-q` and `-v`, errors as one JSON
//! object under `--json`, and `almr mix`'s warning about validation splits
//! too small to measure, whose advice works.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{root, write_pipeline};

fn almr(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_almr"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn completion_scripts_cover_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let out = almr(&root(), &["completions", shell]);
        assert!(out.status.success(), "{}", stderr(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        for command in ["build", "plan", "mix", "stats", "verify", "completions"] {
            assert!(script.contains(command), "{shell}: no {command}");
        }
    }
    assert!(!almr(&root(), &["completions", "tcsh"]).status.success());
}

#[test]
fn a_json_error_is_one_json_object_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let out = almr(dir.path(), &["verify", missing.to_str().unwrap(), "--json"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let text = stderr(&out);
    assert_eq!(text.trim_end().lines().count(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("manifest.json"),
        "{v}"
    );
    assert!(!v["causes"].as_array().unwrap().is_empty());
    let plain = almr(dir.path(), &["verify", missing.to_str().unwrap()]);
    assert!(stderr(&plain).starts_with("error: "));
}

#[test]
fn quiet_says_nothing_and_verbose_names_every_malformed_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::new();
    for i in 0..14 {
        body.push_str(&format!(
            "{{\"text\": \"record {i}\"}}\n{{\"text\": broken {i}\n"
        ));
    }
    std::fs::write(dir.path().join("a.jsonl"), body).unwrap();
    let pipeline = write_pipeline(
        dir.path(),
        &[("a", "jsonl", vec![dir.path().join("a.jsonl")], "")],
    );
    let p = pipeline.to_str().unwrap();
    let warned = |args: &[&str]| -> Vec<String> {
        let out = almr(dir.path(), args);
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out).lines().map(str::to_string).collect()
    };
    let normal = warned(&["build", p]);
    assert_eq!(normal.iter().filter(|l| l.contains("a.jsonl:")).count(), 10);
    assert!(normal
        .iter()
        .any(|l| l.contains("4 more malformed records")));
    let verbose = warned(&["-v", "build", p]);
    assert_eq!(
        verbose.iter().filter(|l| l.contains("a.jsonl:")).count(),
        14
    );
    assert!(verbose.iter().all(|l| !l.contains("more malformed")));
    assert!(warned(&["build", p, "-q"]).is_empty());
    assert!(!almr(dir.path(), &["-q", "-v", "build", p]).status.success());
}

#[test]
fn mix_warns_of_a_validation_split_of_few_windows_and_its_advice_works() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let built = almr(
        &root(),
        &[
            "build",
            "pipelines/default.toml",
            "--out",
            out.to_str().unwrap(),
            "-q",
        ],
    );
    assert!(built.status.success(), "{}", stderr(&built));
    assert!(built.stderr.is_empty(), "-q: {}", stderr(&built));
    let o = out.to_str().unwrap();
    let mix = |extra: &[&str]| -> String {
        let mut args = vec!["mix", o, "--name", "m", "--almr", "0.3", "--seq-len", "512"];
        args.extend(["--samples", "20", "--force"]);
        args.extend(extra);
        let out = almr(&root(), &args);
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    let warned = mix(&[]);
    assert!(
        warned.contains("source zh_news: its validation split gives"),
        "{warned}"
    );
    assert!(
        warned.contains("language en: validation windows"),
        "{warned}"
    );
    assert!(mix(&["-q"]).is_empty());
    let advice: Vec<String> = warned
        .split_whitespace()
        .filter(|w| w.contains('=') && !w.starts_with("--"))
        .map(|w| format!("--valid-share={w}"))
        .collect();
    assert_eq!(advice.len(), 4, "{warned}");
    let advised: Vec<&str> = advice.iter().map(String::as_str).collect();
    let after = mix(&advised);
    assert!(!after.contains("fewer than 8"), "{after}");
}
