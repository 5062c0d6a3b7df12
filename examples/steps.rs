//! Throughput of each cleaning step alone, on one thread, over JSONL files
//! held in memory: what `scripts/bench_steps.py` reports for the whole build,
//! broken down by step.
//!
//!     cargo run --release --example steps -- LANG FILE.jsonl...

use std::io::BufRead;
use std::time::Instant;

use almr::chain::{Chain, Stage, Step};
use almr::config::Source;
use almr::dedup::exact::ExactDedup;
use almr::dedup::near::{NearDedup, NearDedupConfig};
use almr::step::Notes;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let lang = args.next().unwrap_or_else(|| "zh".into());
    let mut texts = Vec::new();
    for f in args {
        for line in std::io::BufReader::new(std::fs::File::open(f)?).lines() {
            let v: serde_json::Value = serde_json::from_str(&line?)?;
            texts.push(v["text"].as_str().unwrap_or_default().to_string());
        }
    }
    let mb = texts.iter().map(String::len).sum::<usize>() as f64 / 1e6;
    let source: Source = toml::from_str(&format!(
        "name = 'bench'\nlanguage = '{lang}'\nadditional = false\npaths = ['x']\nformat = 'jsonl'"
    ))?;
    let report = |name: &str, secs: f64, dropped: usize| {
        println!(
            "{lang} {name:<12} {:>8.2} MB/s  ({:.3} s for {mb:.2} MB, {dropped} of {} dropped)",
            mb / secs,
            secs,
            texts.len()
        )
    };
    let dir = tempfile::tempdir()?;
    let near_config = NearDedupConfig::default();
    let shared = almr::chain::SharedSteps {
        near_dedup: &near_config,
        mem_budget: almr::driver::DEFAULT_MEM_BUDGET,
        scratch: dir.path(),
    };
    for step in [Step::Normalize, Step::Language, Step::Filter] {
        let chain = Chain::new(&[step], &[source.step_settings()], &shared)?;
        let Some(Stage::Doc(per_source)) = chain.stages.first() else {
            anyhow::bail!("{step:?} is not a per-document step");
        };
        let doc_step = &per_source[0];
        let start = Instant::now();
        let mut dropped = 0;
        for t in &texts {
            let mut t = t.clone();
            dropped += doc_step.apply(&mut t, &mut Notes::default()).is_err() as usize;
        }
        report(doc_step.name(), start.elapsed().as_secs_f64(), dropped);
    }
    let start = Instant::now();
    let mut exact = ExactDedup::default();
    let dropped = texts
        .iter()
        .filter(|t| exact.first(t, String::new).is_some())
        .count();
    report("exact_dedup", start.elapsed().as_secs_f64(), dropped);
    let start = Instant::now();
    let mut near = NearDedup::new(&near_config, almr::driver::DEFAULT_MEM_BUDGET, dir.path())?;
    let unit = near.unit_for(&lang);
    for t in &texts {
        let sig = near.signature(t, unit);
        near.add(&sig)?;
    }
    let dropped = near.finish()?.len();
    report("near_dedup", start.elapsed().as_secs_f64(), dropped);
    Ok(())
}
