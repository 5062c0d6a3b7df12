//! The command line: schemas (and the key reference in docs/cleaning.md) in
//! sync, config errors that name key and line and what was meant, `inspect`
//! output, `explain` by place, the tables of `mix` and `stats`.

mod common;

use std::path::Path;
use std::process::Command;

use common::root;

fn almr(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_almr"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

#[test]
fn committed_schemas_match_the_code() {
    for (which, file) in [
        ("pipeline", "schemas/pipeline.schema.json"),
        ("manifest", "schemas/manifest.schema.json"),
        ("mix", "schemas/mix.schema.json"),
    ] {
        let out = almr(&["schema", which]);
        assert!(out.status.success());
        let committed = std::fs::read_to_string(root().join(file)).unwrap();
        assert!(
            String::from_utf8(out.stdout).unwrap() == committed,
            "{file} is stale: run scripts/update_schemas.sh"
        );
    }
}

#[test]
fn every_example_pipeline_is_valid() {
    for entry in std::fs::read_dir(root().join("pipelines")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let rel = path.strip_prefix(root()).unwrap().to_path_buf();
            std::env::set_current_dir(root()).unwrap();
            almr::config::load(&rel).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn config_errors_name_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(root().join("pipelines/default.toml")).unwrap();
    let cases = [
        (
            good.replace("text_unit = \"file\"", "text_unit = \"page\""),
            "source[1].text_unit",
        ),
        (
            good.replace("additional = false", "additonal = false"),
            "source[2].additonal",
        ),
        (
            good.replace("fixtures/en/*.parquet", "fixtures/en/*.missing"),
            "source[3].paths[0]",
        ),
        (
            good.replace("llama3/tokenizer.json", "llama3/nope.json"),
            "tokenizer.path",
        ),
    ];
    for (text, key) in cases {
        let path = dir.path().join("p.toml");
        std::fs::write(&path, &text).unwrap();
        let out = almr(&[
            "build",
            path.to_str().unwrap(),
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        let line = text
            .lines()
            .position(|l| {
                let k = key.rsplit('.').next().unwrap().split('[').next().unwrap();
                l.trim_start().starts_with(k) && text.lines().count() > 0
            })
            .unwrap();
        assert!(err.contains(&format!("`{key}`")), "{key}: {err}");
        // The reported line is one that holds the key.
        let reported: usize = err
            .split(&format!("{}:", path.display()))
            .nth(1)
            .and_then(|s| s.split(':').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no line in {err}"));
        let reported_line = text.lines().nth(reported - 1).unwrap();
        let k = key.rsplit('.').next().unwrap().split('[').next().unwrap();
        assert!(
            reported_line.trim_start().starts_with(k),
            "{key}: line {reported} is {reported_line:?} (first such key at {})",
            line + 1
        );
    }
}

#[test]
fn inspect_decodes_a_document_with_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let b = almr(&[
        "build",
        "pipelines/tokenize_only.toml",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let manifest: serde_json::Value = serde_json::from_slice(&b.stdout).unwrap();
    assert_eq!(manifest["totals"]["kept"], 321);

    let prefix = out.join("shards/en_wiki/en_wiki-00000");
    let r = almr(&["inspect", prefix.to_str().unwrap(), "--doc", "1", "--json"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["shard"]["documents"], 64);
    assert_eq!(v["shard"]["dtype"], "i32");
    let doc = &v["document"];
    assert_eq!(doc["provenance"]["file"], "fixtures/en/enwiki.jsonl.zst");
    assert_eq!(doc["provenance"]["line"], 2);
    let text = doc["text"].as_str().unwrap();
    assert!(text.ends_with("<|end_of_text|>"), "{text}");

    // The decoded text is the input record's text.
    let raw =
        zstd::decode_all(std::fs::File::open(root().join("fixtures/en/enwiki.jsonl.zst")).unwrap())
            .unwrap();
    let line2: serde_json::Value =
        serde_json::from_str(String::from_utf8(raw).unwrap().lines().nth(1).unwrap()).unwrap();
    assert_eq!(doc["provenance"]["id"], line2["id"]);
    assert_eq!(
        text.strip_suffix("<|end_of_text|>").unwrap(),
        line2["text"].as_str().unwrap()
    );

    let plain = almr(&["inspect", prefix.to_str().unwrap(), "--doc", "1"]);
    let s = String::from_utf8_lossy(&plain.stdout);
    assert!(
        s.contains("from       fixtures/en/enwiki.jsonl.zst:2"),
        "{s}"
    );

    let missing = almr(&["inspect", prefix.to_str().unwrap(), "--doc", "64"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("out of range"));
}

#[test]
fn mix_and_stats_print_their_tables() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out_s = out.to_str().unwrap();
    let b = almr(&["build", "pipelines/tokenize_only.toml", "--out", out_s]);
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));

    let mix = |extra: &[&str]| {
        let mut args = vec![
            "mix",
            out_s,
            "--name",
            "m",
            "--almr",
            "0.25",
            "--seq-len",
            "128",
            "--tokens",
            "25.6K",
        ];
        args.extend(extra);
        almr(&args)
    };
    let m = mix(&[
        "--weight",
        "zh_news=3",
        "--weight",
        "zh_tech=1",
        "--valid-share",
        "0.02",
        "--valid-share",
        "en_wiki=0.05",
    ]);
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    let text = String::from_utf8(m.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "mix m: 200 samples of 128+1 tokens = 25600 training tokens, seed 1234"
    );
    assert!(lines[1].starts_with("ALMR target 0.2500, achieved 0.2500; "));
    assert!(lines[2].starts_with("source           lang add   target    share"));
    assert!(lines[3].starts_with("zh_news            zh yes   0.1875 "));
    assert_eq!(
        lines[7],
        format!("wrote {out_s}/mix/m.mix and {out_s}/mix/m.json")
    );
    // The pairs reached the mixer.
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("mix/m.json")).unwrap()).unwrap();
    let sources = sidecar["sources"].as_array().unwrap();
    assert_eq!(sources[0]["group_weight"], 3.0);
    assert_eq!(sources[0]["valid_share"], 0.02);
    assert_eq!(sources[2]["valid_share"], 0.05);

    // The same name again is refused, naming the sidecar and the flag, and
    // leaves the mix as it was; --force overwrites it.
    let again = mix(&[]);
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    for part in [format!("{out_s}/mix/m.json"), "--force".to_string()] {
        assert!(err.contains(&part), "{part}: {err}");
    }
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("mix/m.json")).unwrap()).unwrap();
    assert_eq!(kept["sources"][0]["group_weight"], 3.0);
    let forced = mix(&["--force"]);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("mix/m.json")).unwrap()).unwrap();
    assert_ne!(sidecar["sources"][0]["group_weight"], 3.0);

    // A malformed pair is a usage error, named by clap.
    let bad = mix(&["--weight", "zh_news"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("'--weight <SRC=W>': expected SRC=VALUE"),
        "{err}"
    );

    let s = almr(&["stats", out_s]);
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let text = String::from_utf8(s.stdout).unwrap();
    assert!(text.starts_with("source/lang      lang      docs  rejected"));
    assert!(
        text.lines()
            .any(|l| l.starts_with("mix m: target ALMR 0.2500, achieved 0.2500")),
        "{text}"
    );
}

/// Writes `text` as `p.toml` in `dir` and builds it; gives the pipeline's
/// path as printed, the exit code and stderr.
fn build_text(dir: &Path, text: &str) -> (String, Option<i32>, String) {
    let path = dir.join("p.toml");
    std::fs::write(&path, text).unwrap();
    let out = dir.join("o");
    let b = almr(&[
        "build",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&b.stderr).into_owned();
    (path.display().to_string(), b.status.code(), err)
}

/// `good` with the first `from` replaced by `to`, and the 1-based line
/// where it stands.
fn replaced(good: &str, from: &str, to: &str) -> (String, usize) {
    let at = good.find(from).unwrap_or_else(|| panic!("{from}"));
    let line = good[..at].matches('\n').count() + 1;
    (good.replacen(from, to, 1), line)
}

#[test]
fn config_mistakes_say_what_was_meant() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(root().join("pipelines/default.toml")).unwrap();
    let cases = [
        (
            "format = \"jsonl\"",
            "format = \"json\"",
            "`source[0].format`: \"json\" is not a valid value: expected one of jsonl, parquet, \
             text, chat; did you mean \"jsonl\"?",
        ),
        (
            "language = \"zh\"",
            "language = \"cn\"",
            "`source[0].language`: \"cn\" is not a language code the language step knows; \
             did you mean \"zh\"?",
        ),
        (
            "text_field = \"text\"",
            "txt_field = \"text\"",
            "`source[0].txt_field`: unknown key `txt_field` (did you mean `text_field`?)",
        ),
        (
            "eos = \"<|end_of_text|>\"",
            "eos = \"<|end_of_txt|>\"",
            "`tokenizer.eos`: fixtures/tokenizers/llama3/tokenizer.json: the EOS token \
             \"<|end_of_txt|>\" is not in the vocabulary; did you mean \"<|end_of_text|>\"?",
        ),
    ];
    for (from, to, said) in cases {
        let (text, line) = replaced(&good, from, to);
        let (path, code, err) = build_text(dir.path(), &text);
        assert_eq!(code, Some(1), "{to}: {err}");
        assert_eq!(err, format!("error: {path}:{line}: {said}\n"), "{to}");
    }
}

#[test]
fn the_key_reference_in_the_cleaning_doc_is_the_schema() {
    let out = almr(&["schema", "pipeline", "--markdown"]);
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    let doc = std::fs::read_to_string(root().join("docs/cleaning.md")).unwrap();
    let begin = "<!-- BEGIN generated by `almr schema pipeline --markdown` -->\n";
    let block = doc.split(begin).nth(1).expect("the begin marker");
    let block = block
        .split("<!-- END generated -->")
        .next()
        .expect("the end marker");
    assert!(
        block == generated,
        "docs/cleaning.md's key reference is stale: run scripts/update_schemas.sh"
    );
    for key in [
        "reject_curly_bracket",
        "max_bad_line_char_frac",
        "min_words",
        "t2s",
    ] {
        assert!(block.contains(&format!("| `{key}` |")), "{key}");
    }
    let other = almr(&["schema", "manifest", "--markdown"]);
    assert_eq!(other.status.code(), Some(1));
}

#[test]
fn explain_finds_a_record_by_its_place_in_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out_s = out.to_str().unwrap();
    let b = almr(&["build", "pipelines/default.toml", "--out", out_s]);
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let explain = |what: &str| {
        let e = almr(&["explain", out_s, what]);
        let stdout = String::from_utf8(e.stdout).unwrap();
        (
            e.status.code(),
            stdout,
            String::from_utf8(e.stderr).unwrap(),
        )
    };
    // zh_news has an id_field: its place finds the same record as its id,
    // by the file as the build names it or by its last components.
    let (code, by_id, _) = explain("pd199801-0168");
    assert_eq!(code, Some(0));
    assert!(
        by_id.starts_with(
            "dropped  zh_news fixtures/zh/peoples_daily_1998_01.jsonl.gz:168 at filter: "
        ),
        "{by_id}"
    );
    for place in [
        "fixtures/zh/peoples_daily_1998_01.jsonl.gz:168",
        "./fixtures/zh/peoples_daily_1998_01.jsonl.gz:168",
        "peoples_daily_1998_01.jsonl.gz:168",
    ] {
        assert_eq!(explain(place).1, by_id, "{place}");
    }
    let (_, kept, _) = explain("zh/peoples_daily_1998_01.jsonl.gz:61");
    assert!(kept.starts_with("kept     zh_news "), "{kept}");
    // A Parquet record by its row.
    let e = almr(&["explain", out_s, "enwiki_more.parquet:2", "--json"]);
    let fates: serde_json::Value = serde_json::from_slice(&e.stdout).unwrap();
    assert_eq!(fates[0]["file"], "fixtures/en/enwiki_more.parquet");
    assert_eq!(fates[0]["line"], 2);
    // A place without a record says why.
    let (code, _, err) = explain("peoples_daily_1998_01.jsonl.gz:100000");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("no record of peoples_daily_1998_01.jsonl.gz starts on line 100000"),
        "{err}"
    );
    let (_, _, err) = explain("nope.jsonl:3");
    assert!(
        err.contains("no input of the build is nope.jsonl: its inputs are fixtures/"),
        "{err}"
    );
}
