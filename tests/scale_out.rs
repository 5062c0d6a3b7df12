//! Scale-out (docs/scale-out.md): `almr plan` + `almr run` give the bytes
//! of `almr build` for any number of tasks, on a corpus whose exact and
//! near copies straddle tasks, with a near-copy cluster over three tasks,
//! small shuffled shards, an empty file and malformed lines; a task that
//! fails half-way is the only one rerun; and a real Slurm runs the emitted
//! jobs, one killed and resubmitted.

mod common;
#[path = "common/slurm.rs"]
mod slurm;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{root, LLAMA3};
use slurm::Slurm;

/// The planted three-member near-copy cluster: the original, its planted
/// copy (fixtures/neardup/truth.json) and a second copy made here.
const CLUSTER: [&str; 3] = ["pd199801-1571", "pd199801-1571-near", "pd199801-1571-near2"];

fn almr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_almr"))
        .args(args)
        .env_remove("ALMR_FAULT")
        .output()
        .unwrap()
}

fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn gz_lines(path: &str) -> Vec<String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(root().join(path)).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text.lines().map(str::to_string).collect()
}

fn id_of(line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// The corpus: fixtures/neardup's People's Daily articles (exact and near
/// copies planted) dealt round-robin into five files, the cluster's three
/// members in files 0, 2 and 4, two malformed lines, an empty sixth file;
/// and 240 of its English documents in three files, in shards of at most
/// 30,000 tokens, shuffled. Returns the pipeline file.
fn corpus(dir: &Path, steps: &str) -> PathBuf {
    let mut zh = gz_lines("fixtures/neardup/zh.jsonl.gz");
    let take = |zh: &mut Vec<String>, id: &str| {
        let at = zh.iter().position(|l| id_of(l) == id).unwrap();
        zh.remove(at)
    };
    let original = take(&mut zh, CLUSTER[0]);
    let copy = take(&mut zh, CLUSTER[1]);
    let mut v: serde_json::Value = serde_json::from_str(&original).unwrap();
    let text: String = v["text"].as_str().unwrap().chars().collect();
    let edited: String = text
        .chars()
        .enumerate()
        .map(|(i, c)| if i % 97 == 50 { '改' } else { c })
        .collect();
    v["text"] = edited.into();
    v["id"] = CLUSTER[2].into();
    let copy2 = v.to_string();
    let mut parts: Vec<Vec<String>> = vec![Vec::new(); 6];
    for (i, line) in zh.into_iter().enumerate() {
        parts[i % 5].push(line);
    }
    parts[0].insert(0, original);
    parts[2].push(copy);
    parts[4].push(copy2);
    parts[1].insert(3, r#"{"id": "broken", "text": "unterminated"#.into());
    parts[3].insert(5, r#"{"id": "no-text"}"#.into());
    std::fs::create_dir_all(dir.join("zh")).unwrap();
    for (k, p) in parts.iter().enumerate() {
        let body: String = p.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(dir.join(format!("zh/part-{k}.jsonl")), body).unwrap();
    }
    let en = gz_lines("fixtures/neardup/en.jsonl.gz");
    std::fs::create_dir_all(dir.join("en")).unwrap();
    for k in 0..3 {
        let body: String = en[..240]
            .iter()
            .skip(k)
            .step_by(3)
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(dir.join(format!("en/part-{k}.jsonl")), body).unwrap();
    }
    let pipeline = format!(
        r#"output = "out"
{steps}
[tokenizer]
path = {tok:?}
eos = "<|end_of_text|>"

[[source]]
name = "zh_news"
language = "zh"
additional = true
paths = ["zh/*.jsonl"]
format = "jsonl"
id_field = "id"
max_shard_tokens = 60000

[[source]]
name = "en_docs"
language = "en"
additional = false
paths = ["en/*.jsonl"]
format = "jsonl"
id_field = "id"
max_shard_tokens = 30000
shuffle_seed = 7
"#,
        tok = root().join(LLAMA3).display().to_string()
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, pipeline).unwrap();
    path
}

/// Every file of a published build, by path.
fn tree(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let base = out.join(".current");
    let mut files = BTreeMap::new();
    let mut stack = vec![base.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            match p.is_dir() {
                true => stack.push(p),
                false => {
                    let rel = p.strip_prefix(&base).unwrap().display().to_string();
                    files.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
    }
    files
}

fn assert_same(one: &Path, other: &Path, what: &str) {
    let (a, b) = (tree(one), tree(other));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}: the files differ"
    );
    for (path, bytes) in &a {
        assert!(bytes == &b[path], "{what}: {path} differs");
    }
}

/// `almr plan` into `work`, publishing into `out`.
fn plan(dir: &Path, pipeline: &Path, work: &str, out: &str, tasks: usize, extra: &[&str]) {
    let tasks = tasks.to_string();
    let mut args = vec![
        "plan",
        pipeline.to_str().unwrap(),
        "--work",
        work,
        "--out",
        out,
    ];
    args.extend(["--tasks", &tasks]);
    args.extend(extra);
    let out = Command::new(env!("CARGO_BIN_EXE_almr"))
        .args(&args)
        .current_dir(dir)
        .output()
        .unwrap();
    succeeded(&out);
}

fn run_local(work: &Path, fault: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_almr"));
    c.args(["run", work.to_str().unwrap(), "--local", "-j", "2"]);
    match fault {
        Some(f) => c.env("ALMR_FAULT", f),
        None => c.env_remove("ALMR_FAULT"),
    };
    c.output().unwrap()
}

/// The map task that reads each input file, by file name.
fn tasks_of_files(work: &Path) -> BTreeMap<String, usize> {
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join("plan.json")).unwrap()).unwrap();
    let files = plan["files"].as_array().unwrap();
    let mut owner = BTreeMap::new();
    for (t, r) in plan["map"].as_array().unwrap().iter().enumerate() {
        let (a, b) = (r[0].as_u64().unwrap(), r[1].as_u64().unwrap());
        for f in a..b {
            let path = files[f as usize]["path"].as_str().unwrap();
            owner.insert(path.to_string(), t);
        }
    }
    owner
}

/// The sequential build, checked to hold what the test is about.
fn one_build(dir: &Path, pipeline: &Path) -> PathBuf {
    let one = dir.join("one");
    let out = Command::new(env!("CARGO_BIN_EXE_almr"))
        .args([
            "build",
            pipeline.to_str().unwrap(),
            "--out",
            "one",
            "--json",
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    let m: almr::manifest::Manifest = serde_json::from_str(&succeeded(&out)).unwrap();
    let reasons = &m.totals.rejected.by_reason;
    assert!(reasons["exact_dedup/duplicate"] >= 5, "{reasons:?}");
    assert!(reasons["near_dedup/near_duplicate"] >= 20, "{reasons:?}");
    assert_eq!(m.totals.malformed.total, 2);
    assert!(m.shards.iter().filter(|s| s.source == "en_docs").count() >= 3);
    assert!(m.shards.iter().filter(|s| s.source == "zh_news").count() >= 3);
    let rows = almr::rejects::read_all(&one.join("rejects/near_dedup.parquet")).unwrap();
    for id in &CLUSTER[1..] {
        let row = rows.iter().find(|r| r.id == *id).unwrap();
        assert!(row.detail.contains(CLUSTER[0]), "{}", row.detail);
    }
    one
}

#[test]
fn any_number_of_tasks_gives_the_bytes_of_one_build() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = corpus(dir.path(), "");
    let one = one_build(dir.path(), &pipeline);
    let files = 9;
    for n in [1, 2, 3, 7, files + 1] {
        let (work, out) = (format!("w{n}"), format!("out{n}"));
        plan(dir.path(), &pipeline, &work, &out, n, &[]);
        let work = dir.path().join(work);
        succeeded(&run_local(&work, None));
        assert_same(&one, &dir.path().join(out), &format!("{n} tasks"));
        if n == 7 {
            let owner = tasks_of_files(&work);
            let cluster: std::collections::BTreeSet<usize> = [0, 2, 4]
                .iter()
                .map(|k| owner[&format!("zh/part-{k}.jsonl")])
                .collect();
            assert_eq!(cluster.len(), 3, "the cluster spans three tasks: {owner:?}");
        }
        if n == files + 1 {
            let status = succeeded(&almr(&["status", work.to_str().unwrap(), "--json"]));
            assert!(status.contains("\"missing\": []"), "{status}");
        }
    }
}

#[test]
fn an_ordered_step_before_the_filters_is_decided_as_one_build_decides() {
    let dir = tempfile::tempdir().unwrap();
    let steps = r#"steps = ["normalize", "exact_dedup", "language", "filter", "near_dedup"]"#;
    let pipeline = corpus(dir.path(), steps);
    let one = one_build(dir.path(), &pipeline);
    plan(dir.path(), &pipeline, "w", "out3", 3, &[]);
    succeeded(&run_local(&dir.path().join("w"), None));
    assert_same(&one, &dir.path().join("out3"), "exact_dedup first");
}

#[test]
fn a_task_that_fails_half_way_is_the_only_one_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = corpus(dir.path(), "");
    let one = one_build(dir.path(), &pipeline);
    plan(dir.path(), &pipeline, "w", "out", 3, &[]);
    let work = dir.path().join("w");
    let w = work.to_str().unwrap();
    // A later stage before the one it reads is refused; so is a task past
    // the stage's count.
    let early = almr(&["run", w, "--stage", "exact", "--task", "0"]);
    assert!(!early.status.success());
    assert!(String::from_utf8_lossy(&early.stderr).contains("stage map is not done"));
    let p = pipeline.to_str().unwrap();
    let cases: [(&[&str], &str); 2] = [
        (&["--tasks", "0"], "at least 1"),
        (&["--tasks", "2", "--exact-tasks", "1000000000"], "at most"),
    ];
    for (args, says) in cases {
        let mut all = vec!["plan", p, "--work", "w2"];
        all.extend(args);
        let bad = almr(&all);
        assert!(
            String::from_utf8_lossy(&bad.stderr).contains(says),
            "{args:?}"
        );
    }
    let past = almr(&["run", w, "--stage", "map", "--task", "3"]);
    assert!(String::from_utf8_lossy(&past.stderr).contains("has 3 task(s)"));

    let failed = run_local(&work, Some("map:1:fail"));
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("failing half-way"));
    assert_eq!(
        succeeded(&almr(&["status", w, "--array", "map"])).trim(),
        "1"
    );
    assert_eq!(
        succeeded(&almr(&["status", w, "--array", "finish"])).trim(),
        "0"
    );
    let status = succeeded(&almr(&["status", w]));
    assert!(status.contains("--array=1"), "{status}");
    assert!(!dir.path().join("out").exists(), "nothing is published");
    let marker = |t: usize| work.join(format!("map/done/{t:05}.json"));
    let before: Vec<_> = [0, 2]
        .iter()
        .map(|&t| std::fs::metadata(marker(t)).unwrap().modified().unwrap())
        .collect();
    // Task 0 again: done, so it exits at once.
    let again = almr(&["run", w, "--stage", "map", "--task", "0"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already done"));

    let rerun = succeeded(&run_local(&work, None));
    assert!(
        rerun.contains("12 tasks run"),
        "map 1, 3 exact, 3 bands, cluster, 3 write, finish: {rerun}"
    );
    let after: Vec<_> = [0, 2]
        .iter()
        .map(|&t| std::fs::metadata(marker(t)).unwrap().modified().unwrap())
        .collect();
    assert_eq!(before, after, "map tasks 0 and 2 were not run again");
    assert_same(&one, &dir.path().join("out"), "after the rerun");

    // A task's input changed under the plan is an error, not a wrong result.
    std::fs::remove_file(work.join("write/done/00000.json")).unwrap();
    let kept = work.join("map/task-00000/kept.bin");
    let bytes = std::fs::read(&kept).unwrap();
    std::fs::write(&kept, &bytes[..bytes.len() - 8]).unwrap();
    let changed = almr(&["run", w, "--stage", "write", "--task", "0"]);
    assert!(!changed.status.success());
    assert!(String::from_utf8_lossy(&changed.stderr).contains("the work directory changed"));

    // A pipeline changed since the plan is refused.
    let mut text = std::fs::read_to_string(&pipeline).unwrap();
    text.push_str("# changed\n");
    std::fs::write(&pipeline, text).unwrap();
    std::fs::remove_file(marker(0)).unwrap();
    let changed = almr(&["run", w, "--stage", "map", "--task", "0"]);
    assert!(String::from_utf8_lossy(&changed.stderr).contains("changed since `almr plan`"));
}

#[test]
fn a_real_slurm_runs_the_emitted_jobs_and_resubmits_a_killed_one() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = corpus(dir.path(), "");
    let one = one_build(dir.path(), &pipeline);
    plan(
        dir.path(),
        &pipeline,
        "w",
        "out",
        3,
        &["--emit", "slurm", "--sbatch=--time=10"],
    );
    let work = dir.path().join("w");
    let submit = std::fs::read_to_string(work.join("slurm/submit.sh")).unwrap();
    assert!(submit.contains("--dependency=afterok:\"$id\" --kill-on-invalid-dep=yes"));
    let map = std::fs::read_to_string(work.join("slurm/map.sbatch")).unwrap();
    assert!(map.contains("#SBATCH --time=10"), "{map}");

    let slurm = Slurm::start(dir.path(), &root().join("scripts/slurm-local.sh"));
    let t0 = Instant::now();
    // Map task 1 stops half-way; it is killed there, as a node failure or
    // a time limit would kill it.
    let out = slurm
        .command("bash")
        .arg(work.join("slurm/submit.sh"))
        .env("ALMR_FAULT", "map:1:stall")
        .output()
        .unwrap();
    let printed = succeeded(&out);
    let map_job = printed
        .lines()
        .find_map(|l| l.strip_prefix("map: job "))
        .and_then(|l| l.split(',').next())
        .unwrap()
        .to_string();
    let started = work.join("map/.tmp-00001/.started.json");
    while !started.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "map task 1 never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // While it runs, a second copy of it is refused, and status says so.
    let w = work.to_str().unwrap();
    let twice = almr(&["run", w, "--stage", "map", "--task", "1"]);
    assert!(String::from_utf8_lossy(&twice.stderr).contains("stage map task 1 is running"));
    assert!(succeeded(&almr(&["status", w])).contains("task 1: running (pid"));
    let kill = slurm
        .command("scancel")
        .arg(format!("{map_job}_1"))
        .output()
        .unwrap();
    succeeded(&kill);
    slurm.wait_idle(Duration::from_secs(120));
    assert_eq!(
        succeeded(&almr(&["status", w, "--array", "map"])).trim(),
        "1"
    );
    assert!(!dir.path().join("out").exists());

    // submit.sh again: only map task 1, then the stages after it.
    let out = slurm
        .command("bash")
        .arg(work.join("slurm/submit.sh"))
        .env_remove("ALMR_FAULT")
        .output()
        .unwrap();
    let printed = succeeded(&out);
    assert!(printed.contains("tasks 1\n"), "{printed}");
    slurm.wait_idle(Duration::from_secs(120));
    let status = succeeded(&almr(&["status", w]));
    assert_eq!(
        succeeded(&almr(&["status", w, "--array", "finish"])).trim(),
        "",
        "{status}"
    );
    assert_same(&one, &dir.path().join("out"), "Slurm");
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
}
