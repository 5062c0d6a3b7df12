//! For each input format, a malformed record is counted, located by
//! file:line in the rejects table, and never stops the build; `--strict`
//! turns it into a failure. A field that no record of a file has is a
//! mistake in the pipeline, and stops the build before it reads anything;
//! a source that keeps nothing is warned about.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use common::{build_to, read_rejects, write_pipeline};

fn rejects_of(out: &Path) -> Vec<(String, i64, String, String)> {
    read_rejects(&out.join("rejects/read.parquet"))
}

fn write_jsonl_gz(path: &Path, body: &[u8]) {
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(body).unwrap();
    enc.finish().unwrap();
}

#[test]
fn jsonl_plain_gz_and_zst_report_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let body: &[u8] = b"{\"id\":\"a\",\"text\":\"good one\"}\n\
{\"id\":\"b\",\"text\":\"broken\n\
{\"id\":\"c\",\"text\":\"bad \xff byte\"}\n\
\n\
{\"id\":\"d\"}\n\
{\"id\":\"e\",\"text\":[1]}\n\
{\"id\":\"f\",\"text\":\"good two\"}\n";
    let plain = dir.path().join("a.jsonl");
    std::fs::write(&plain, body).unwrap();
    let gz = dir.path().join("b.jsonl.gz");
    write_jsonl_gz(&gz, body);
    let zst = dir.path().join("c.jsonl.zst");
    std::fs::write(&zst, zstd::encode_all(body, 3).unwrap()).unwrap();

    let pipeline = write_pipeline(
        dir.path(),
        &[(
            "j",
            "jsonl",
            vec![plain.clone(), gz.clone(), zst.clone()],
            "id_field = \"id\"",
        )],
    );
    let out = dir.path().join("out");
    let m = build_to(&pipeline, &out, 2).manifest;
    let c = &m.sources[0].counts;
    assert_eq!((c.read, c.kept, c.malformed.total), (18, 6, 12));
    assert_eq!(c.malformed.by_reason["bad_json"], 3);
    assert_eq!(c.malformed.by_reason["invalid_utf8"], 3);
    assert_eq!(c.malformed.by_reason["missing_text"], 3);
    assert_eq!(c.malformed.by_reason["non_string_text"], 3);
    for f in &m.inputs {
        assert_eq!(
            (f.counts.read, f.counts.kept),
            (6, 2),
            "{}",
            f.path.display()
        );
    }

    let rows = rejects_of(&out);
    assert_eq!(rows.len(), 12);
    for file in [&plain, &gz, &zst] {
        let f = file.display().to_string();
        let mine: Vec<(i64, &str)> = rows
            .iter()
            .filter(|r| r.0 == f)
            .map(|r| (r.1, r.2.as_str()))
            .collect();
        assert_eq!(
            mine,
            [
                (2, "bad_json"),
                (3, "invalid_utf8"),
                (5, "missing_text"),
                (6, "non_string_text")
            ],
            "{f}"
        );
    }
    // Ids are kept where they could be read.
    assert!(rows.iter().any(|r| r.3 == "d" && r.2 == "missing_text"));
}

fn write_parquet(path: &Path, cols: Vec<(&str, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn parquet_reports_file_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.parquet");
    write_parquet(
        &good,
        vec![
            (
                "doc",
                Arc::new(StringArray::from(vec![Some("x1"), Some("x2"), Some("x3")])) as ArrayRef,
            ),
            (
                "body",
                Arc::new(StringArray::from(vec![
                    Some("first text"),
                    None,
                    Some("third"),
                ])) as ArrayRef,
            ),
        ],
    );
    let wrong_type = dir.path().join("wrong_type.parquet");
    write_parquet(
        &wrong_type,
        vec![
            ("doc", Arc::new(StringArray::from(vec!["z1"])) as ArrayRef),
            ("body", Arc::new(Int64Array::from(vec![5])) as ArrayRef),
        ],
    );
    let not_parquet = dir.path().join("not.parquet");
    std::fs::write(&not_parquet, b"this is not parquet").unwrap();

    let files = vec![good.clone(), wrong_type.clone(), not_parquet.clone()];
    let pipeline = write_pipeline(
        dir.path(),
        &[(
            "p",
            "parquet",
            files,
            "text_field = \"body\"\nid_field = \"doc\"",
        )],
    );
    let out = dir.path().join("out");
    let m = build_to(&pipeline, &out, 1).manifest;
    let c = &m.sources[0].counts;
    assert_eq!((c.read, c.kept, c.malformed.total), (5, 2, 3));

    let rows = rejects_of(&out);
    let got: Vec<(String, i64, String)> = rows
        .iter()
        .map(|r| (r.0.clone(), r.1, r.2.clone()))
        .collect();
    let s = |p: &PathBuf| p.display().to_string();
    assert_eq!(
        got,
        vec![
            (s(&good), 2, "missing_text".into()),
            (s(&wrong_type), 1, "non_string_text".into()),
            (s(&not_parquet), 0, "unreadable_file".into()),
        ]
    );
    assert_eq!(rows[0].3, "x2");
}

#[test]
fn text_reports_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("lines.txt");
    std::fs::write(&lines, b"first line\n\nthird \xc3( line\nfourth line\n").unwrap();
    let whole = dir.path().join("whole.txt.gz");
    write_jsonl_gz(&whole, b"ok\nok\nbad \xff here\n");
    let pipeline = write_pipeline(
        dir.path(),
        &[
            ("l", "text", vec![lines.clone()], "text_unit = \"line\""),
            ("w", "text", vec![whole.clone()], ""),
        ],
    );
    let out = dir.path().join("out");
    let m = build_to(&pipeline, &out, 2).manifest;
    assert_eq!(m.sources[0].counts.kept, 2);
    assert_eq!(m.sources[1].counts.kept, 0);
    let got: Vec<(String, i64, String)> = rejects_of(&out)
        .into_iter()
        .map(|r| (r.0, r.1, r.2))
        .collect();
    assert_eq!(
        got,
        vec![
            (lines.display().to_string(), 3, "invalid_utf8".into()),
            (whole.display().to_string(), 3, "invalid_utf8".into()),
        ]
    );
}

#[test]
fn strict_fails_with_file_line_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"text\":\"fine\"}\n{\"text\": nope}\n").unwrap();
    let pipeline = write_pipeline(dir.path(), &[("s", "jsonl", vec![input.clone()], "")]);
    let out = dir.path().join("strict-out");
    let run = |strict: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_almr"));
        cmd.arg("build").arg(&pipeline).arg("--out").arg(&out);
        if strict {
            cmd.arg("--strict");
        }
        cmd.output().unwrap()
    };
    let strict = run(true);
    assert!(!strict.status.success());
    let err = String::from_utf8_lossy(&strict.stderr);
    assert!(err.contains(&format!("{}:2", input.display())), "{err}");
    assert!(err.contains("bad_json"), "{err}");
    assert!(!out.join("manifest.json").exists());
    assert_eq!(common::generations(&out), 0);

    let lenient = run(false);
    assert!(
        lenient.status.success(),
        "{}",
        String::from_utf8_lossy(&lenient.stderr)
    );
    assert!(out.join("manifest.json").exists());
}

/// Runs `almr build PIPELINE --out OUT`; gives the exit code and stderr.
fn build_cli(pipeline: &Path, out: &Path) -> (Option<i32>, String) {
    let b = Command::new(env!("CARGO_BIN_EXE_almr"))
        .arg("build")
        .arg(pipeline)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    (
        b.status.code(),
        String::from_utf8_lossy(&b.stderr).into_owned(),
    )
}

#[test]
fn a_field_in_no_record_of_a_file_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("a.jsonl");
    std::fs::write(&good, "{\"id\":\"1\",\"text\":\"one\"}\n").unwrap();
    // Only the third record has a text: per record, the others are malformed.
    let late = dir.path().join("b.jsonl.gz");
    write_jsonl_gz(
        &late,
        b"{\"id\":\"2\"}\n{\"id\":\"3\"}\n{\"id\":\"4\",\"text\":\"four\"}\n",
    );
    let misspelt = dir.path().join("c.jsonl");
    std::fs::write(&misspelt, "{\"id\":\"5\",\"txt\":\"five\"}\nbroken\n").unwrap();
    let columns = dir.path().join("d.parquet");
    write_parquet(
        &columns,
        vec![
            ("doc", Arc::new(StringArray::from(vec!["y1"])) as ArrayRef),
            ("body", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
        ],
    );
    let out = dir.path().join("out");
    let cases: [(&str, Vec<PathBuf>, &str, String); 4] = [
        (
            "jsonl",
            vec![good.clone(), late.clone(), misspelt.clone()],
            "id_field = \"id\"",
            format!(
                "`source[0].text_field`: source \"s\": no record of {} has the key \"text\" \
                 (its first record's keys: id, txt); did you mean \"txt\"?",
                misspelt.display()
            ),
        ),
        (
            "jsonl",
            vec![good.clone()],
            "id_field = \"doc_id\"",
            format!(
                "`source[0].id_field`: source \"s\": no record of {} has the key \"doc_id\" \
                 (its first record's keys: id, text)",
                good.display()
            ),
        ),
        (
            "parquet",
            vec![columns.clone()],
            "text_field = \"bdy\"",
            format!(
                "`source[0].text_field`: source \"s\": {} has no column \"bdy\" \
                 (its columns: doc, body); did you mean \"body\"?",
                columns.display()
            ),
        ),
        (
            "chat",
            vec![good.clone()],
            "chat_schema = \"alpaca\"",
            format!(
                "`source[0].chat_schema`: source \"s\": no record of {} has the key \
                 \"instruction\" that this chat_schema reads (its first record's keys: id, text)",
                good.display()
            ),
        ),
    ];
    for (format, files, extra, said) in cases {
        let pipeline = write_pipeline(dir.path(), &[("s", format, files, extra)]);
        let (code, err) = build_cli(&pipeline, &out);
        assert_eq!(code, Some(1), "{extra}: {err}");
        assert!(
            err.starts_with(&format!("error: {}:", pipeline.display())),
            "{err}"
        );
        assert!(err.trim_end().ends_with(&said), "{extra}:\n{err}\n{said}");
        assert!(!out.exists(), "{extra}: nothing is built");
    }
    // Per record, an absent field stays a malformed record.
    let pipeline = write_pipeline(
        dir.path(),
        &[("s", "jsonl", vec![good, late], "id_field = \"id\"")],
    );
    let m = build_to(&pipeline, &out, 1).manifest;
    let c = &m.sources[0].counts;
    assert_eq!(
        (c.read, c.kept, c.malformed.by_reason["missing_text"]),
        (4, 2, 2)
    );
}

#[test]
fn a_source_that_keeps_nothing_is_warned_about_with_its_top_reason() {
    let dir = tempfile::tempdir().unwrap();
    let nulls = dir.path().join("nulls.jsonl");
    std::fs::write(&nulls, "{\"text\":null}\n{\"text\":null}\n{\"text\":3}\n").unwrap();
    let fine = dir.path().join("fine.jsonl");
    std::fs::write(&fine, "{\"text\":\"fine\"}\n").unwrap();
    let pipeline = write_pipeline(
        dir.path(),
        &[
            ("empty", "jsonl", vec![nulls], ""),
            ("fine", "jsonl", vec![fine], ""),
        ],
    );
    let (code, err) = build_cli(&pipeline, &dir.path().join("out"));
    assert_eq!(code, Some(0), "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("kept none")).collect();
    assert_eq!(
        warnings,
        [
            "warning: source \"empty\" kept none of its 3 records; the top reason is \
          read/missing_text (2 records), listed in rejects/read.parquet"
        ]
    );
}
