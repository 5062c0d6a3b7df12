//! Builds the default pipeline on the fixtures and reads everything back.

mod common;

use std::collections::HashMap;
use std::io::BufRead;

use almr::manifest::Manifest;
use almr::provenance;
use almr::shard::{with_suffix, DType, ShardReader};
use common::{build_to, root};

/// Golden ids from Python `tokenizers` (`scripts/make_golden.py`), keyed by
/// (file, line), without EOS.
fn golden() -> HashMap<(String, u64), Vec<u32>> {
    let f = std::fs::File::open(root().join("fixtures/golden/llama3_ids.jsonl.gz")).unwrap();
    let r = std::io::BufReader::new(flate2::read::GzDecoder::new(f));
    r.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
            let ids = v["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32);
            (
                (
                    v["file"].as_str().unwrap().to_string(),
                    v["line"].as_u64().unwrap(),
                ),
                ids.collect(),
            )
        })
        .collect()
}

#[test]
fn default_pipeline_matches_python_tokenizers_and_adds_up() {
    std::env::set_current_dir(root()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let outcome = build_to(&root().join("pipelines/tokenize_only.toml"), &out, 2);
    let m = Manifest::load(&out).unwrap();
    assert_eq!(m.to_json(), outcome.manifest.to_json());
    assert!(m.check().is_empty(), "{:?}", m.check());
    // The check catches numbers that do not add up.
    let mut bad = m.clone();
    bad.sources[0].counts.kept += 1;
    assert!(
        bad.check().iter().any(|p| p.contains("do not add up")),
        "{:?}",
        bad.check()
    );
    let mut bad = m.clone();
    bad.shards[0].tokens -= 1;
    assert!(
        bad.check().iter().any(|p| p.contains("shards do not hold")),
        "{:?}",
        bad.check()
    );
    assert_eq!(m.tokenizer.dtype, DType::I32);
    assert_eq!(m.tokenizer.vocab_size, 128256);
    assert_eq!(m.tokenizer.eos_id, 128001);

    let golden = golden();
    assert_eq!(m.totals.read, golden.len() as u64);
    assert_eq!(m.totals.kept, golden.len() as u64);
    assert_eq!(m.totals.malformed.total, 0);
    let golden_tokens: usize = golden.values().map(Vec::len).sum();
    assert_eq!(m.totals.tokens, (golden_tokens + golden.len()) as u64);

    let mut seen = 0;
    for shard in &m.shards {
        let prefix = out.join(&shard.prefix);
        let r = ShardReader::open(&prefix).unwrap();
        assert_eq!(r.len() as u64, shard.documents);
        assert_eq!(r.total_tokens(), shard.tokens);
        let docs = with_suffix(&prefix, ".docs.parquet");
        for i in 0..r.len() {
            let row = provenance::read_row(&docs, i as u64).unwrap();
            assert_eq!(row.doc_index, i as u64);
            assert_eq!(row.source, shard.source);
            let mut want = golden
                .get(&(row.file.clone(), row.line))
                .unwrap_or_else(|| panic!("no golden ids for {}:{}", row.file, row.line))
                .clone();
            want.push(128001);
            let got = r.get(i).unwrap();
            assert_eq!(got.len() as u64, row.n_tokens);
            assert_eq!(got, want, "{}:{}", row.file, row.line);
            seen += 1;
        }
    }
    assert_eq!(seen, golden.len());

    // Every listed output exists with the listed size and checksum.
    for o in &m.outputs {
        let d = almr::FileDigest::clone(&o.digest);
        let bytes = std::fs::read(out.join(&o.path)).unwrap();
        assert_eq!(bytes.len() as u64, d.bytes, "{}", o.path.display());
    }
    // One generation, the published one: nothing staged is left.
    assert_eq!(common::generations(&out), 1);
}

#[test]
fn input_order_is_kept_and_provenance_points_at_input_lines() {
    std::env::set_current_dir(root()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let m = build_to(&root().join("pipelines/tokenize_only.toml"), &out, 1).manifest;
    let zh = m.shards.iter().find(|s| s.source == "zh_news").unwrap();
    let docs = with_suffix(&out.join(&zh.prefix), ".docs.parquet");
    for i in 0..zh.documents {
        let row = provenance::read_row(&docs, i).unwrap();
        // The zh fixture has one record per line, ids pd199801-0001, ...
        assert_eq!(row.line, i + 1);
        assert_eq!(row.id, format!("pd199801-{:04}", i + 1));
    }
}
