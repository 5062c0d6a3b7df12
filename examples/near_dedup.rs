//! Near-dedup throughput and recall on JSONL files, without tokenizing:
//! reading, signatures (in parallel), LSH and clustering through the
//! library, as the `near_dedup` step runs them. Used by `scripts/bench_near_dedup.sh` to set
//! almr beside datatrove's MinHash pipeline on the same corpus.
//!
//!     cargo run --release --example near_dedup -- [--threads N] [--unit char|word]
//!         [--truth truth.json] FILE.jsonl...

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::time::Instant;

use almr::dedup::minhash::ShingleUnit;
use almr::dedup::near::{NearDedup, NearDedupConfig};
use rayon::prelude::*;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut threads, mut unit, mut truth, mut files) =
        (0usize, ShingleUnit::Char, None, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => threads = args.next().unwrap_or_default().parse()?,
            "--unit" => {
                unit = match args.next().as_deref() {
                    Some("word") => ShingleUnit::Word,
                    _ => ShingleUnit::Char,
                }
            }
            "--truth" => truth = args.next(),
            _ => files.push(a),
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;

    // Timed from here: reading and parsing the JSON lines, signatures, LSH,
    // clustering (datatrove's timing likewise includes its reader).
    let start = Instant::now();
    let mut ids = Vec::new();
    let mut texts = Vec::new();
    for f in &files {
        for line in std::io::BufReader::new(std::fs::File::open(f)?).lines() {
            let v: serde_json::Value = serde_json::from_str(&line?)?;
            ids.push(v["id"].as_str().unwrap_or_default().to_string());
            texts.push(v["text"].as_str().unwrap_or_default().to_string());
        }
    }
    let bytes: usize = texts.iter().map(String::len).sum();

    let dir = tempfile::tempdir()?;
    let config = NearDedupConfig {
        unit,
        ..NearDedupConfig::default()
    };
    let mut nd = NearDedup::new(&config, almr::driver::DEFAULT_MEM_BUDGET, dir.path())?;
    let sigs: Vec<Vec<u32>> =
        pool.install(|| texts.par_iter().map(|t| nd.signature(t, unit)).collect());
    for s in &sigs {
        nd.add(s)?;
    }
    let removals = nd.finish()?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "docs {} MB {:.2} threads {} seconds {secs:.3} docs/s {:.0} MB/s {:.2} removed {}",
        texts.len(),
        bytes as f64 / 1e6,
        pool.current_num_threads(),
        texts.len() as f64 / secs,
        bytes as f64 / 1e6 / secs,
        removals.len()
    );

    if let Some(truth) = truth {
        let removed: HashSet<&str> = removals
            .iter()
            .map(|r| ids[r.doc as usize].as_str())
            .collect();
        let pairs: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(truth)?)?;
        let mut caught: HashMap<String, (usize, usize)> = HashMap::new();
        let mut planted = HashSet::new();
        for p in &pairs {
            let (o, c) = (
                p["original"].as_str().unwrap_or_default(),
                p["copy"].as_str().unwrap_or_default(),
            );
            planted.insert(o);
            planted.insert(c);
            let key = format!(
                "{} {}",
                p["lang"].as_str().unwrap_or("?"),
                p["kind"].as_str().unwrap_or("?")
            );
            let e = caught.entry(key).or_default();
            e.1 += 1;
            if removed.contains(o) != removed.contains(c) {
                e.0 += 1;
            }
        }
        let mut keys: Vec<_> = caught.into_iter().collect();
        keys.sort();
        for (k, (c, n)) in keys {
            println!("recall {k}: {c}/{n}");
        }
        let others = ids.iter().filter(|i| !planted.contains(i.as_str())).count();
        let lost = removed.iter().filter(|i| !planted.contains(*i)).count();
        println!("false removals {lost}/{others}");
    }
    Ok(())
}
