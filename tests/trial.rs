//! Trying a pipeline through the command line: `almr build --limit N`
//! (first N or a seeded sample per source) and `--dry-run` (every step, no
//! output), checked against real builds of the same records.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{root, LLAMA3};
use serde_json::Value;

/// Runs `almr ARGS` from the repository root, with `TMPDIR` set to `tmp`.
fn almr_in(tmp: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_almr"))
        .args(args)
        .current_dir(root())
        .env("TMPDIR", tmp)
        .output()
        .unwrap()
}

/// Runs `almr ARGS`, which must succeed, and parses its stdout as JSON.
fn almr_json(tmp: &Path, args: &[&str]) -> Value {
    let out = almr_in(tmp, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {err}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// `almr build PIPELINE --out OUT --json EXTRA…`: the manifest (or, with
/// --dry-run, the report).
fn build_json(tmp: &Path, pipeline: &str, out: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["build", pipeline, "--out", out.to_str().unwrap(), "--json"];
    args.extend(extra);
    almr_json(tmp, &args)
}

/// The lines of the documents in a build's shards of `source`, in order.
fn kept_lines(out: &Path, manifest: &Value, source: &str) -> Vec<u64> {
    let shards = manifest["shards"].as_array().unwrap();
    let prefixes = shards.iter().filter(|s| s["source"] == source);
    prefixes
        .flat_map(|s| {
            let prefix = out.join(s["prefix"].as_str().unwrap());
            let docs = almr::shard::with_suffix(&prefix, ".docs.parquet");
            almr::provenance::read_all(&docs).unwrap()
        })
        .map(|row| row.line)
        .collect()
}

/// `manifest["sources"]` as `name → counts`.
fn counts<'m>(manifest: &'m Value, name: &str) -> &'m Value {
    let sources = manifest["sources"].as_array().unwrap();
    let s = sources.iter().find(|s| s["name"] == name).unwrap();
    &s["counts"]
}

#[test]
fn limit_reads_the_first_n_records_of_each_source() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let m = build_json(
        dir.path(),
        "pipelines/tokenize_only.toml",
        &out,
        &["--limit", "50"],
    );
    assert_eq!(m["limit"], serde_json::json!({ "records": 50 }));
    // zh_tech has 5 records, en_wiki_more 42: a limit past the end reads all.
    for (source, read) in [
        ("zh_news", 50),
        ("zh_tech", 5),
        ("en_wiki", 50),
        ("en_wiki_more", 42),
    ] {
        let c = counts(&m, source);
        assert_eq!(c["read"], read, "{source}");
        assert_eq!(c["kept"], read, "{source}: steps = [] keeps every record");
    }
    assert_eq!(m["totals"]["read"], 147);
    assert_eq!(
        kept_lines(&out, &m, "zh_news"),
        (1..=50).collect::<Vec<_>>()
    );
    // The counts add up and every file is as the manifest says.
    let v = almr_json(dir.path(), &["verify", out.to_str().unwrap(), "--json"]);
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");

    // zh_tech is one record per file: the files after the second are not
    // read, and the manifest lists the two that were.
    let m = build_json(
        dir.path(),
        "pipelines/tokenize_only.toml",
        &out,
        &["--limit", "2"],
    );
    assert_eq!(counts(&m, "zh_tech")["read"], 2);
    let inputs = m["inputs"].as_array().unwrap();
    let zh_tech = inputs.iter().filter(|i| i["source"] == "zh_tech").count();
    assert_eq!(zh_tech, 2);

    // A full build says nothing of a limit.
    let m = build_json(dir.path(), "pipelines/tokenize_only.toml", &out, &[]);
    assert!(m.get("limit").is_none(), "{}", m["limit"]);
    assert_eq!(m["totals"]["read"], 321);
}

#[test]
fn a_sample_is_seeded_and_the_same_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let sample = |seed: &str, threads: &str| {
        let out = dir.path().join(format!("s{seed}-t{threads}"));
        let mut args = vec!["--limit", "50", "--threads", threads];
        if !seed.is_empty() {
            args.extend(["--sample-seed", seed]);
        }
        let m = build_json(dir.path(), "pipelines/tokenize_only.toml", &out, &args);
        (kept_lines(&out, &m, "zh_news"), m)
    };
    let (a, m) = sample("7", "1");
    assert_eq!(
        m["limit"],
        serde_json::json!({ "records": 50, "sample_seed": 7 })
    );
    assert_eq!(counts(&m, "zh_news")["read"], 50);
    assert_eq!(counts(&m, "en_wiki_more")["read"], 42);
    // Distinct lines of the file, in reading order, not the first 50.
    assert_eq!(a.len(), 50);
    assert!(a.windows(2).all(|w| w[0] < w[1]), "{a:?}");
    assert!(*a.last().unwrap() <= 210);
    let first: Vec<u64> = (1..=50).collect();
    assert_ne!(a, first);
    assert_eq!(sample("", "1").0, first);
    // The same seed gives the same sample whatever the thread count; another
    // seed another sample.
    let (b, m2) = sample("7", "2");
    assert_eq!(a, b);
    assert_eq!(m["totals"], m2["totals"]);
    assert_ne!(sample("8", "2").0, a);
}

/// A pipeline over the near-duplicate fixtures, every step on.
fn neardup_pipeline(dir: &Path) -> String {
    let mut s = format!(
        "output = \"unused\"\n[tokenizer]\npath = {:?}\neos = \"<|end_of_text|>\"\n",
        root().join(LLAMA3).display().to_string()
    );
    for lang in ["zh", "en"] {
        let path = root().join(format!("fixtures/neardup/{lang}.jsonl.gz"));
        s.push_str(&format!(
            "[[source]]\nname = \"{lang}\"\nlanguage = \"{lang}\"\nadditional = {}\npaths = [{:?}]\nformat = \"jsonl\"\nid_field = \"id\"\n",
            lang == "zh",
            path.display().to_string()
        ));
    }
    let p = dir.join("neardup.toml");
    std::fs::write(&p, s).unwrap();
    p.display().to_string()
}

/// Runs `--dry-run` with `extra`, then the same build for real, and checks
/// that the dry run wrote nothing and reported what the build did: the same
/// counts, and example records that the build rejected for their reason.
/// Returns the dry run's report.
fn dry_run_matches_a_build(pipeline: &str, extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("tmp");
    std::fs::create_dir(&scratch).unwrap();
    let out = dir.path().join("out");
    let mut args = extra.to_vec();
    args.push("--dry-run");
    let report = build_json(&scratch, pipeline, &out, &args);
    assert!(!out.exists(), "the dry run created {}", out.display());
    let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert!(left.is_empty(), "the dry run left {left:?}");

    let real = dir.path().join("real");
    let m = build_json(&scratch, pipeline, &real, extra);
    assert_eq!(report["limit"], m["limit"]);
    for s in report["sources"].as_array().unwrap() {
        check_source(s, counts(&m, s["name"].as_str().unwrap()), &real);
    }
    for key in ["read", "kept", "tokens"] {
        assert_eq!(report["totals"][key], m["totals"][key], "{key}");
    }
    report
}

/// One source of a dry run's report against the real build's counts; each
/// example is found by `almr explain` among the build's rejects.
fn check_source(s: &Value, c: &Value, real: &Path) {
    let name = &s["name"];
    for key in ["read", "kept", "tokens"] {
        assert_eq!(s[key], c[key], "{name} {key}");
    }
    assert_eq!(s["rejected"], c["rejected"]["total"], "{name}");
    assert_eq!(s["malformed"], c["malformed"]["total"], "{name}");
    let rate = c["kept"].as_f64().unwrap() / c["read"].as_f64().unwrap();
    assert_eq!(s["keep_rate"].as_f64(), Some(rate), "{name}");
    let mut sum = 0;
    for r in s["reasons"].as_array().unwrap() {
        let reason = r["reason"].as_str().unwrap();
        let counted = match reason.strip_prefix("read/") {
            Some(malformed) => &c["malformed"]["by_reason"][malformed],
            None => &c["rejected"]["by_reason"][reason],
        };
        assert_eq!(&r["records"], counted, "{reason}");
        sum += r["records"].as_u64().unwrap();
        let examples = r["examples"].as_array().unwrap();
        assert_eq!(examples.len() as u64, r["records"].as_u64().unwrap().min(2));
        for e in examples {
            let id = e["id"].as_str().unwrap();
            let fates = almr_json(real, &["explain", real.to_str().unwrap(), id, "--json"]);
            let dropped = fates.as_array().unwrap().iter().any(|f| {
                f["fate"] == "dropped"
                    && format!(
                        "{}/{}",
                        f["stage"].as_str().unwrap(),
                        f["reason"].as_str().unwrap()
                    ) == reason
                    && f["file"] == e["file"]
                    && f["line"] == e["line"]
            });
            assert!(dropped, "{name}: {id} is not a {reason} reject: {fates}");
        }
    }
    let dropped =
        c["rejected"]["total"].as_u64().unwrap() + c["malformed"]["total"].as_u64().unwrap();
    assert_eq!(sum, dropped, "{name}");
}

#[test]
fn dry_run_writes_nothing_and_reports_what_a_build_rejects() {
    let report = dry_run_matches_a_build("pipelines/default.toml", &["--limit", "100"]);
    let zh = &report["sources"][0];
    assert_eq!(zh["name"], "zh_news");
    assert_eq!(zh["read"], 100);
    assert!(!zh["reasons"].as_array().unwrap().is_empty());

    // The text report: the table with keep rates, the reasons with their
    // examples, and how to explain one after a real build.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let args = [
        "build",
        "pipelines/default.toml",
        "--limit",
        "100",
        "--dry-run",
        "--out",
        out.to_str().unwrap(),
    ];
    let text = almr_in(dir.path(), &args);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.starts_with("dry run of pipelines/default.toml over the first 100 records of each source\nsource           lang      read      kept keep rate"),
        "{text}"
    );
    let rate = 100.0 * zh["keep_rate"].as_f64().unwrap();
    let kept = zh["kept"].as_u64().unwrap();
    let row = format!(
        "zh_news            zh       100 {kept:>9} {:>9}",
        format!("{rate:.1} %")
    );
    assert!(text.contains(&row), "{row:?} in {text}");
    let first = &zh["reasons"][0];
    let records = first["records"].as_u64().unwrap();
    let reason = format!("{records:>9}  {}\n", first["reason"].as_str().unwrap());
    assert!(text.contains(&reason), "{text}");
    let id = first["examples"][0]["id"].as_str().unwrap();
    assert!(text.contains(&format!("           {id} (")), "{text}");
    assert!(
        text.ends_with(&format!(
            "almr build pipelines/default.toml --limit 100 --out DIR && almr explain DIR {id}\n"
        )),
        "{text}"
    );
    assert!(!out.exists());
}

#[test]
fn a_sampled_dry_run_decides_near_duplicates_as_the_build_does() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = neardup_pipeline(dir.path());
    let args = ["--limit", "400", "--sample-seed", "5"];
    let report = dry_run_matches_a_build(&pipeline, &args);
    let near = report["sources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["reasons"].as_array().unwrap())
        .filter(|r| r["reason"] == "near_dedup/near_duplicate")
        .count();
    assert!(near > 0, "no near duplicates in the sample: {report}");
}

#[test]
fn trial_arguments_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (
            &["--limit", "0"],
            "invalid value '0' for '--limit <N>': the limit must be at least 1 record",
        ),
        (
            &["--limit", "many"],
            "invalid value 'many' for '--limit <N>'",
        ),
        (
            &["--sample-seed", "3"],
            "the following required arguments were not provided:\n  --limit <N>",
        ),
    ];
    for (extra, said) in cases {
        let out = dir.path().join("out");
        let mut args = vec![
            "build",
            "pipelines/default.toml",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let r = almr_in(dir.path(), &args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(said), "{extra:?}: {err}");
        assert!(!out.exists());
    }
}
