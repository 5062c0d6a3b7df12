//! Integrity under faults and bad input, through the CLI as a user runs it:
//! an input that fails its check contributes nothing, almr writes only
//! into output directories it owns, one build at a time, and publishes a
//! build with one atomic switch.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::write_pipeline;

fn almr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_almr"))
        .args(args)
        .output()
        .unwrap()
}

fn build(pipeline: &Path, out: &Path, extra: &[&str]) -> Output {
    let (p, o) = (pipeline.to_str().unwrap(), out.to_str().unwrap());
    let mut args = vec!["build", p, "--out", o];
    args.extend(extra);
    almr(&args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap()
}

/// 2,000 JSONL records, `prefix0` … `prefix1999`.
fn records(prefix: &str) -> String {
    (0..2000)
        .map(|i| {
            format!(
                "{{\"id\":\"{prefix}{i}\",\"text\":\"This is record {i}, an English sentence about shards.\"}}\n"
            )
        })
        .collect()
}

fn gzip(text: &str) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

/// A clean file and a gzip file with 10 bytes flipped in the middle (a CRC
/// error `gzip -t` reports), in one source.
fn corrupt_corpus(dir: &Path) -> (PathBuf, PathBuf) {
    let clean = dir.join("clean.jsonl");
    std::fs::write(&clean, records("c")).unwrap();
    let mut bytes = gzip(&records("g"));
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 10] {
        *b ^= 0x5a;
    }
    let bad = dir.join("bad.jsonl.gz");
    std::fs::write(&bad, bytes).unwrap();
    let pipeline = write_pipeline(
        dir,
        &[("s", "jsonl", vec![clean, bad.clone()], "id_field = \"id\"")],
    );
    (pipeline, bad)
}

/// The corrupt corpus built into `dir/out`, with mix `m` of `samples`
/// samples: (pipeline, out).
fn built_and_mixed(dir: &Path, samples: &str) -> (PathBuf, PathBuf) {
    let (pipeline, _) = corrupt_corpus(dir);
    let out = dir.join("out");
    assert!(build(&pipeline, &out, &[]).status.success());
    let o = out.to_str().unwrap();
    let args = [
        "mix",
        o,
        "--name",
        "m",
        "--almr",
        "0",
        "--seq-len",
        "64",
        "--samples",
        samples,
    ];
    let mix = almr(&args);
    assert!(mix.status.success(), "{}", stderr(&mix));
    (pipeline, out)
}

#[test]
fn a_corrupt_gzip_file_contributes_nothing_and_is_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, bad) = corrupt_corpus(dir.path());
    let out = dir.path().join("out");
    let run = build(&pipeline, &out, &[]);
    assert!(run.status.success(), "{}", stderr(&run));
    let m = manifest(&out);
    let totals = &m["totals"];
    assert_eq!(totals["kept"], 2000, "only the clean file's records");
    assert_eq!(totals["malformed"]["by_reason"]["read_error"], 1);
    let input = m["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == bad.display().to_string())
        .unwrap();
    assert_eq!(
        (
            input["counts"]["read"].clone(),
            input["counts"]["kept"].clone()
        ),
        (1.into(), 0.into())
    );
    // No document of the shards comes from the bad file.
    let shards = m["shards"].as_array().unwrap();
    for s in shards {
        let prefix = out.join(s["prefix"].as_str().unwrap());
        let rows = almr::provenance::read_all(&almr::shard::with_suffix(&prefix, ".docs.parquet"))
            .unwrap();
        assert!(
            rows.iter().all(|r| r.id.starts_with('c')),
            "{}",
            prefix.display()
        );
    }
    // One reject row, located, saying how many records were withdrawn.
    let rows = common::read_rejects(&out.join("rejects/read.parquet"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, bad.display().to_string());
    assert_eq!(rows[0].2, "read_error");

    let strict = build(&pipeline, &dir.path().join("strict"), &["--strict"]);
    assert!(!strict.status.success());
    assert!(
        stderr(&strict).contains(&format!("{}:", bad.display())),
        "{}",
        stderr(&strict)
    );
}

#[test]
fn an_unreadable_input_is_counted_and_the_build_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.jsonl");
    std::fs::write(&clean, records("c")).unwrap();
    // Opens, then every read fails with EIO (even for root).
    let unreadable = dir.path().join("mem.jsonl");
    std::os::unix::fs::symlink("/proc/self/mem", &unreadable).unwrap();
    let pipeline = write_pipeline(dir.path(), &[("s", "jsonl", vec![clean, unreadable], "")]);
    let out = dir.path().join("out");
    let run = build(&pipeline, &out, &[]);
    assert!(run.status.success(), "{}", stderr(&run));
    let m = manifest(&out);
    assert_eq!(m["totals"]["kept"], 2000);
    assert_eq!(m["totals"]["malformed"]["total"], 1);
}

#[test]
fn almr_writes_only_into_directories_it_owns() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, _) = corrupt_corpus(dir.path());
    // A user's directory: refused by name, its files untouched.
    let user = dir.path().join("user");
    std::fs::create_dir_all(user.join("shards")).unwrap();
    std::fs::write(user.join("shards/mine.txt"), "keep me").unwrap();
    std::fs::write(user.join("tokenizer.json"), "mine").unwrap();
    let run = build(&pipeline, &user, &[]);
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains(&user.display().to_string()),
        "{}",
        stderr(&run)
    );
    assert_eq!(
        std::fs::read_to_string(user.join("shards/mine.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(
        std::fs::read_to_string(user.join("tokenizer.json")).unwrap(),
        "mine"
    );
    // A file, and an empty `output`.
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    assert!(!build(&pipeline, &file, &[]).status.success());
    let text = std::fs::read_to_string(&pipeline).unwrap();
    let empty = dir.path().join("empty.toml");
    let line = text.lines().next().unwrap();
    std::fs::write(&empty, text.replacen(line, "output = \"\"", 1)).unwrap();
    let run = almr(&["build", empty.to_str().unwrap()]);
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains("output directory is empty"),
        "{}",
        stderr(&run)
    );
    // An empty directory is taken.
    let fresh = dir.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    assert!(build(&pipeline, &fresh, &[]).status.success());
}

#[test]
fn a_rebuild_switches_generations_and_keeps_the_mixes() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, out) = built_and_mixed(dir.path(), "20");
    let first = std::fs::read_link(out.join(almr::driver::CURRENT)).unwrap();
    // Leftovers of a killed build: an unpublished generation.
    std::fs::create_dir_all(out.join(almr::driver::GENERATIONS).join("killed")).unwrap();
    assert!(build(&pipeline, &out, &[]).status.success());
    let second = std::fs::read_link(out.join(almr::driver::CURRENT)).unwrap();
    assert_ne!(first, second);
    assert_eq!(
        common::generations(&out),
        1,
        "the old and the killed generations are gone"
    );
    assert!(out.join("mix/m.mix").exists());
    assert!(out.join("shards").is_dir() && out.join("manifest.json").is_file());
}

#[test]
fn a_second_build_into_the_same_directory_is_refused_with_the_holders_pid() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, _) = corrupt_corpus(dir.path());
    let out = dir.path().join("out");
    assert!(build(&pipeline, &out, &[]).status.success());
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(out.join(almr::driver::LOCK))
        .unwrap();
    lock.try_lock().unwrap();
    std::fs::write(out.join(almr::driver::LOCK), "4242\n").unwrap();
    let run = build(&pipeline, &out, &[]);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("pid 4242"), "{}", stderr(&run));
    drop(lock);
    assert!(build(&pipeline, &out, &[]).status.success());
}

#[test]
fn a_write_error_leaves_the_previous_build_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, _) = corrupt_corpus(dir.path());
    let out = dir.path().join("out");
    assert!(build(&pipeline, &out, &[]).status.success());
    let before = std::fs::read(out.join("manifest.json")).unwrap();
    // A file-size limit makes writes fail, as a full disk does (EFBIG
    // instead of ENOSPC; SIGXFSZ ignored, as the shell passes it on).
    let script = format!(
        "trap '' XFSZ; ulimit -f 8; exec {} build {} --out {}",
        env!("CARGO_BIN_EXE_almr"),
        pipeline.display(),
        out.display()
    );
    let run = Command::new("bash").arg("-c").arg(script).output().unwrap();
    assert!(!run.status.success(), "{}", stderr(&run));
    assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), before);
    let check = almr(&["verify", out.to_str().unwrap()]);
    assert!(check.status.success(), "{}", stderr(&check));
}

/// The fixtures' build (two or more shards) in a fresh directory.
fn fixture_build(dir: &Path) -> (PathBuf, serde_json::Value) {
    let out = dir.join("out");
    common::build_to(
        &common::root().join("pipelines/tokenize_only.toml"),
        &out,
        1,
    );
    let m = manifest(&out);
    (out, m)
}

/// Runs `f` with `path` changed by `change`, then puts the file back.
fn with_changed(path: &Path, change: impl FnOnce(&mut Vec<u8>), f: impl FnOnce()) {
    let before = std::fs::read(path).unwrap();
    let mut bytes = before.clone();
    change(&mut bytes);
    std::fs::write(path, &bytes).unwrap();
    f();
    std::fs::write(path, before).unwrap();
}

/// `almr ARGS` exits 1 and says `text` (on stderr, or stdout for
/// `verify`'s list of problems).
fn fails_with(args: &[&str], text: &str) {
    let run = almr(args);
    let said = format!("{}{}", String::from_utf8_lossy(&run.stdout), stderr(&run));
    assert_eq!(run.status.code(), Some(1), "{args:?}: {said}");
    assert!(said.contains(text), "{args:?}: {said}");
}

#[test]
fn readers_refuse_a_flipped_dtype_a_swapped_provenance_table_and_ids_past_the_vocabulary() {
    std::env::set_current_dir(common::root()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (out, m) = fixture_build(dir.path());
    let prefix = |k: usize| out.join(m["shards"][k]["prefix"].as_str().unwrap());
    let (a, b) = (prefix(0), prefix(1));
    let a_str = a.to_str().unwrap().to_string();
    let o = out.to_str().unwrap();
    assert!(almr(&["verify", o]).status.success());
    // int32 → uint16: the sequences no longer lie end to end.
    with_changed(
        &a.with_extension("idx"),
        |b| b[17] = 8,
        || {
            fails_with(&["inspect", &a_str], "dtype");
            fails_with(&["verify", o], "dtype");
        },
    );
    // Another shard's provenance table.
    let (docs_a, docs_b) = (
        almr::shard::with_suffix(&a, ".docs.parquet"),
        almr::shard::with_suffix(&b, ".docs.parquet"),
    );
    let other = std::fs::read(&docs_b).unwrap();
    with_changed(
        &docs_a,
        |bytes| *bytes = other,
        || {
            fails_with(
                &["inspect", &a_str, "--doc", "0"],
                "does not belong to shard",
            );
            fails_with(&["verify", o], "sha256");
        },
    );
    // A token id past the vocabulary (int32 shards).
    let vocab = m["tokenizer"]["vocab_size"].as_u64().unwrap() as i32;
    with_changed(
        &a.with_extension("bin"),
        |b| b[..4].copy_from_slice(&(vocab + 5).to_le_bytes()),
        || {
            fails_with(
                &["inspect", &a_str, "--doc", "0"],
                "is not below the vocabulary size",
            );
            fails_with(&["verify", o], "is not below the vocabulary size");
        },
    );
    assert!(almr(&["verify", o]).status.success());
}

#[test]
fn a_mix_of_a_build_that_was_redone_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, out) = built_and_mixed(dir.path(), "20");
    let o = out.to_str().unwrap();
    let m = out.join("mix/m");
    assert!(almr(&["sample", m.to_str().unwrap()]).status.success());
    // The same build redone in place with other text.
    let clean = dir.path().join("clean.jsonl");
    std::fs::write(&clean, records("c").replace("shards", "tokens")).unwrap();
    assert!(build(&pipeline, &out, &[]).status.success());
    fails_with(&["sample", m.to_str().unwrap()], "remake the mix");
    fails_with(&["verify", o], "remake the mix");
}

#[test]
fn absurd_sizes_are_refused_up_front_with_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, _) = corrupt_corpus(dir.path());
    let out = dir.path().join("out");
    assert!(build(&pipeline, &out, &[]).status.success());
    let o = out.to_str().unwrap();
    let max = u64::MAX.to_string();
    for (flags, limit) in [
        (
            vec!["--seq-len", &max, "--samples", "10"],
            "must lie in 1..=1048576",
        ),
        (
            vec!["--seq-len", "64", "--samples", &max],
            "at most 4294967296",
        ),
        (
            vec!["--seq-len", "64", "--tokens", "1e18"],
            "at most 4294967296",
        ),
    ] {
        let mut args = vec!["mix", o, "--name", "x", "--almr", "0"];
        args.extend(flags);
        fails_with(&args, limit);
    }
    let run = build(&pipeline, &out, &["--threads", "100000"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("warning: --threads 100000"),
        "{}",
        stderr(&run)
    );
}

#[test]
fn a_closed_pipe_ends_quietly_with_status_0() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = built_and_mixed(dir.path(), "2000");
    let o = out.to_str().unwrap();
    let m = out.join("mix/m");
    // Far more than a pipe holds, so the writes meet the closed pipe.
    for args in [
        vec!["sample", m.to_str().unwrap(), "--n", "2000"],
        vec!["stats", o, "--json"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_almr"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let done = child.wait_with_output().unwrap();
        assert!(done.status.success(), "{args:?}: {}", stderr(&done));
        assert!(done.stderr.is_empty(), "{args:?}: {}", stderr(&done));
    }
}

#[test]
fn links_planted_in_the_output_directory_never_lead_almr_to_remove_what_they_name() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, _) = corrupt_corpus(dir.path());
    let precious = dir.path().join("precious");
    std::fs::create_dir_all(precious.join("sub")).unwrap();
    std::fs::write(precious.join("sub/keep.txt"), "keep").unwrap();
    let out = dir.path().join("out");
    assert!(build(&pipeline, &out, &[]).status.success());
    // `.current` pointed at a user's directory: the build replaces the link
    // and removes nothing through it.
    let current = out.join(almr::driver::CURRENT);
    std::fs::remove_file(&current).unwrap();
    std::os::unix::fs::symlink(&precious, &current).unwrap();
    let run = build(&pipeline, &out, &[]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(precious.join("sub/keep.txt").exists());
    assert!(almr(&["verify", out.to_str().unwrap()]).status.success());
    // `.generations` made a link to it: refused, nothing removed.
    let generations = out.join(almr::driver::GENERATIONS);
    std::fs::rename(&generations, dir.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(&precious, &generations).unwrap();
    let run = build(&pipeline, &out, &[]);
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains("not a directory almr made"),
        "{}",
        stderr(&run)
    );
    assert!(precious.join("sub/keep.txt").exists());
}
