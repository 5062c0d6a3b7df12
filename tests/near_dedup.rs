//! Near-duplicate removal on real Chinese and English documents with planted
//! near-copies (1–3 % of characters edited) and exact copies
//! (`fixtures/neardup`, made by `scripts/make_neardup.py`).

mod common;

use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;

use almr::driver::{build, BuildOptions};
use almr::manifest::Manifest;
use common::{read_rejects, root, LLAMA3};

struct Pair {
    original: String,
    copy: String,
    lang: String,
}

fn truth() -> Vec<Pair> {
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/neardup/truth.json")).unwrap(),
    )
    .unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| Pair {
            original: p["original"].as_str().unwrap().into(),
            copy: p["copy"].as_str().unwrap().into(),
            lang: p["lang"].as_str().unwrap().into(),
        })
        .collect()
}

fn all_ids() -> HashSet<String> {
    let mut ids = HashSet::new();
    for lang in ["zh", "en"] {
        let f =
            std::fs::File::open(root().join(format!("fixtures/neardup/{lang}.jsonl.gz"))).unwrap();
        for line in std::io::BufReader::new(flate2::read::GzDecoder::new(f)).lines() {
            let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            ids.insert(v["id"].as_str().unwrap().to_string());
        }
    }
    ids
}

fn run(dir: &Path, extra: &str, mem_budget: usize) -> (Manifest, HashSet<String>) {
    run_steps(dir, "steps = [\"near_dedup\"]", extra, mem_budget)
}

/// Builds the near-duplicate fixtures with the `steps` line given (empty:
/// the default, every step); returns the manifest and the kept ids.
fn run_steps(
    dir: &Path,
    steps: &str,
    extra: &str,
    mem_budget: usize,
) -> (Manifest, HashSet<String>) {
    let mut s = format!(
        "output = \"unused\"\n{steps}\n{extra}\n[tokenizer]\npath = {:?}\neos = \"<|end_of_text|>\"\n",
        root().join(LLAMA3).display().to_string()
    );
    for lang in ["zh", "en"] {
        s.push_str(&format!(
            "[[source]]\nname = \"{lang}\"\nlanguage = \"{lang}\"\nadditional = {}\npaths = [{:?}]\nformat = \"jsonl\"\nid_field = \"id\"\n",
            lang == "zh",
            root().join(format!("fixtures/neardup/{lang}.jsonl.gz")).display().to_string()
        ));
    }
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("pipeline.toml");
    std::fs::write(&p, s).unwrap();
    let opts = BuildOptions {
        out: Some(dir.join("out")),
        threads: Some(2),
        strict: false,
        verbose: false,
        all_warnings: false,
        mem_budget,
        trial: Default::default(),
    };
    let m = build(&p, &opts).unwrap().manifest;
    let mut kept = HashSet::new();
    for sh in &m.shards {
        let docs = almr::shard::with_suffix(&dir.join("out").join(&sh.prefix), ".docs.parquet");
        kept.extend(
            almr::provenance::read_all(&docs)
                .unwrap()
                .into_iter()
                .map(|r| r.id),
        );
    }
    (m, kept)
}

/// (share of pairs with exactly one survivor per language, false removals, others)
fn score(kept: &HashSet<String>, lang: &str) -> f64 {
    let pairs: Vec<Pair> = truth().into_iter().filter(|p| p.lang == lang).collect();
    let caught = pairs
        .iter()
        .filter(|p| kept.contains(&p.original) != kept.contains(&p.copy))
        .count();
    caught as f64 / pairs.len() as f64
}

fn false_removals(kept: &HashSet<String>) -> (usize, usize) {
    let planted: HashSet<String> = truth()
        .into_iter()
        .flat_map(|p| [p.original, p.copy])
        .collect();
    let others: Vec<String> = all_ids()
        .into_iter()
        .filter(|id| !planted.contains(id))
        .collect();
    (
        others.iter().filter(|id| !kept.contains(*id)).count(),
        others.len(),
    )
}

#[test]
fn planted_pairs_are_caught_in_both_languages_without_collateral() {
    let dir = tempfile::tempdir().unwrap();
    let (m, kept) = run(dir.path(), "", almr::driver::DEFAULT_MEM_BUDGET);
    assert!(m.check().is_empty(), "{:?}", m.check());
    let (zh, en) = (score(&kept, "zh"), score(&kept, "en"));
    let (lost, others) = false_removals(&kept);
    println!("caught: zh {zh:.3} en {en:.3}; other documents removed: {lost} of {others}");
    assert!(zh >= 0.95 && en >= 0.95, "zh {zh} en {en}");
    assert!(lost as f64 <= 0.002 * others as f64, "{lost} of {others}");

    // Of each pair, the one that comes first in the input stays, and the
    // other's reject row names it.
    let rows = read_rejects(&dir.path().join("out/rejects/near_dedup.parquet"));
    for p in truth() {
        let (gone, stays) = if kept.contains(&p.original) {
            (&p.copy, &p.original)
        } else {
            (&p.original, &p.copy)
        };
        let row = rows
            .iter()
            .find(|r| &r.3 == gone)
            .unwrap_or_else(|| panic!("{gone} has no reject row"));
        assert_eq!(row.2, "near_duplicate");
        let fates = almr::explain::explain(&dir.path().join("out"), gone).unwrap();
        let text = format!("{fates:?}");
        assert!(
            text.contains(&format!("near duplicate of {stays} (")),
            "{text}"
        );
    }
}

#[test]
fn leaving_out_steps_runs_near_dedup_too() {
    // The documented default: without a `steps` key every step runs, so no
    // planted pair survives whole (the other steps may drop either copy).
    let dir = tempfile::tempdir().unwrap();
    let (m, kept) = run_steps(dir.path(), "", "", almr::driver::DEFAULT_MEM_BUDGET);
    assert!(m.check().is_empty(), "{:?}", m.check());
    assert_eq!(m.pipeline.config.steps, None);
    let near = m.totals.rejected.by_reason["near_dedup/near_duplicate"];
    let both: Vec<String> = truth()
        .into_iter()
        .filter(|p| kept.contains(&p.original) && kept.contains(&p.copy))
        .map(|p| p.copy)
        .collect();
    println!("near_dedup removed {near}; pairs kept whole: {both:?}");
    assert!(near >= 20, "{near}");
    assert!(both.is_empty(), "{both:?}");
    assert!(dir.path().join("out/rejects/near_dedup.parquet").is_file());
}

#[test]
fn spilling_band_tables_gives_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = run(
        &dir.path().join("mem"),
        "",
        almr::driver::DEFAULT_MEM_BUDGET,
    );
    // 24 kB holds 100 documents' entries (20 bands × 12 bytes): a dozen runs.
    let (b, _) = run(&dir.path().join("spill"), "", 24_000);
    assert_eq!(a.totals, b.totals);
    assert!(a.totals.rejected.total >= 80);
    for o in &a.outputs {
        assert_eq!(
            std::fs::read(dir.path().join("mem/out").join(&o.path)).unwrap(),
            std::fs::read(dir.path().join("spill/out").join(&o.path)).unwrap(),
            "{}",
            o.path.display()
        );
    }
}

#[test]
fn word_shingles_miss_english_copies_with_typos() {
    // Why `char` is the default: datatrove-style word 5-grams lose English
    // near-copies whose characters were edited.
    let dir = tempfile::tempdir().unwrap();
    let (_, kept) = run(
        dir.path(),
        "[near_dedup]\nunit = \"word\"",
        almr::driver::DEFAULT_MEM_BUDGET,
    );
    let en = score(&kept, "en");
    println!("word 5-grams catch {en:.3} of English pairs");
    assert!(en < 0.5, "{en}");
}
