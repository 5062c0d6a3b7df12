//! `almr stats`: what a build and its mixes hold, per source and per
//! language, as a table (the [`fmt::Display`](std::fmt::Display) of
//! [`Stats`]), as JSON, or as a self-contained HTML report with charts
//! ([`html`], drawn by [`charts`]). `mixes` reads the mixes of the build.

pub mod charts;
pub mod html;
mod mixes;
mod text;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::chain::Step;
use crate::error::Result;
use crate::manifest::{Counts, Manifest};
use crate::shard::ShardReader;

/// Document lengths in tokens (EOS included): nearest-rank percentiles.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Lengths {
    /// Shortest.
    pub min: u64,
    /// 10th percentile.
    pub p10: u64,
    /// 25th percentile.
    pub p25: u64,
    /// Median.
    pub p50: u64,
    /// 75th percentile.
    pub p75: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Longest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl Lengths {
    fn of(sorted: &[u32]) -> Lengths {
        if sorted.is_empty() {
            return Lengths::default();
        }
        let rank = |p: f64| {
            let k = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
            sorted[k.clamp(1, sorted.len()) - 1] as u64
        };
        Lengths {
            min: sorted[0] as u64,
            p10: rank(10.0),
            p25: rank(25.0),
            p50: rank(50.0),
            p75: rank(75.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: *sorted.last().unwrap() as u64,
            mean: sorted.iter().map(|&l| l as f64).sum::<f64>() / sorted.len() as f64,
        }
    }
}

/// One bin of a length histogram: documents of `lo ≤ tokens < hi`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bin {
    /// Lower bound, a power of two.
    pub lo: u64,
    /// Upper bound (exclusive), twice `lo`.
    pub hi: u64,
    /// Documents in the bin.
    pub documents: u64,
}

fn histogram(sorted: &[u32]) -> Vec<Bin> {
    let mut bins: Vec<Bin> = Vec::new();
    for &l in sorted {
        let lo = if l == 0 {
            0
        } else {
            1u64 << (31 - l.leading_zeros())
        };
        match bins.last_mut() {
            Some(b) if b.lo == lo => b.documents += 1,
            _ => bins.push(Bin {
                lo,
                hi: (lo * 2).max(1),
                documents: 1,
            }),
        }
    }
    bins
}

/// Statistics of a group of documents: one source, or one language.
#[derive(Debug, Clone, Serialize)]
pub struct GroupStats {
    /// Source name, or language code.
    pub name: String,
    /// Language code.
    pub language: String,
    /// Sources in the group.
    pub sources: Vec<String>,
    /// Whether the group counts toward the ALMR.
    pub additional: bool,
    /// Records read, kept, rejected and malformed, with reasons.
    pub counts: Counts,
    /// Share of records read that exact dedup removed.
    pub exact_dedup_rate: f64,
    /// Share of records read that near dedup removed.
    pub near_dedup_rate: f64,
    /// Share of all kept tokens of the build.
    pub token_share: f64,
    /// Kept document lengths.
    pub lengths: Lengths,
    /// Kept documents by length, in power-of-two bins.
    pub length_histogram: Vec<Bin>,
}

/// A point of a mix's ALMR curve.
#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    /// Samples so far.
    pub samples: u64,
    /// Additional share of the samples so far.
    pub cumulative: f64,
    /// Additional share of the `window` samples that end here.
    pub window: f64,
}

/// One mix of the build.
#[derive(Debug, Clone, Serialize)]
pub struct MixStats {
    /// Mix name.
    pub name: String,
    /// Training samples.
    pub samples: u64,
    /// `seq_len`.
    pub seq_len: u64,
    /// Training tokens.
    pub tokens: u64,
    /// ALMR asked for.
    pub target_almr: f64,
    /// ALMR over the whole stream.
    pub achieved_almr: f64,
    /// Worst deviation over windows of `window` samples.
    pub max_window_deviation: f64,
    /// Window length.
    pub window: u64,
    /// Per source: name, target share, achieved share, epochs, validation
    /// split.
    pub sources: Vec<MixSourceStats>,
    /// Validation samples, over all sources.
    pub valid_samples: u64,
    /// The validation split per language, in order of first appearance.
    pub valid: Vec<ValidSplit>,
    /// The ALMR along the stream, at up to 500 evenly spaced points.
    pub curve: Vec<CurvePoint>,
}

/// A mix's validation split in one language.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidSplit {
    /// Language code.
    pub language: String,
    /// The mix's sources in that language.
    pub sources: Vec<String>,
    /// Documents held out.
    pub documents: u64,
    /// Their tokens.
    pub tokens: u64,
    /// Validation samples cut from them: windows of `seq_len + 1` tokens,
    /// or packed sequences.
    pub samples: u64,
}

/// How one mix uses one source.
#[derive(Debug, Clone, Serialize)]
pub struct MixSourceStats {
    /// Source name.
    pub name: String,
    /// Language code.
    pub language: String,
    /// Whether it is additional.
    pub additional: bool,
    /// Target share of the stream.
    pub target_share: f64,
    /// Achieved share.
    pub achieved_share: f64,
    /// Times its training tokens are seen.
    pub epochs: f64,
    /// Validation documents held out.
    pub valid_documents: u64,
    /// Their tokens.
    pub valid_tokens: u64,
    /// Validation samples cut from them.
    pub valid_samples: u64,
}

/// Everything `almr stats` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// The build's output directory.
    pub out: PathBuf,
    /// Per source, in pipeline order.
    pub sources: Vec<GroupStats>,
    /// Per language, in order of first appearance.
    pub languages: Vec<GroupStats>,
    /// Every mix in `OUT/mix/`, by name.
    pub mixes: Vec<MixStats>,
}

/// The share of records read that `step` removed.
fn rate(c: &Counts, step: Step) -> f64 {
    let stage = format!("{step}/");
    let removed: u64 = c
        .rejected
        .by_reason
        .iter()
        .filter(|(k, _)| k.starts_with(&stage))
        .map(|(_, v)| v)
        .sum();
    if c.read == 0 {
        0.0
    } else {
        removed as f64 / c.read as f64
    }
}

fn group(
    name: &str,
    language: &str,
    members: &[usize],
    manifest: &Manifest,
    lengths: &[Vec<u32>],
) -> GroupStats {
    let mut counts = Counts::default();
    let mut all: Vec<u32> = Vec::new();
    for &s in members {
        counts.merge(&manifest.sources[s].counts);
        all.extend(&lengths[s]);
    }
    all.sort_unstable();
    let total = manifest.totals.tokens.max(1) as f64;
    GroupStats {
        name: name.to_string(),
        language: language.to_string(),
        sources: members
            .iter()
            .map(|&s| manifest.sources[s].name.clone())
            .collect(),
        additional: members.iter().all(|&s| manifest.sources[s].additional),
        exact_dedup_rate: rate(&counts, Step::ExactDedup),
        near_dedup_rate: rate(&counts, Step::NearDedup),
        token_share: counts.tokens as f64 / total,
        lengths: Lengths::of(&all),
        length_histogram: histogram(&all),
        counts,
    }
}

/// Gathers the statistics of the build in `out` and of its mixes.
pub fn stats(out: &Path) -> Result<Stats> {
    let manifest = Manifest::load(out)?;
    let (dtype, vocab) = manifest.tokenizer.shard_facts();
    let mut lengths = Vec::new();
    for s in &manifest.sources {
        let mut l = Vec::new();
        for sh in manifest.shards.iter().filter(|sh| sh.source == s.name) {
            let r = ShardReader::open(&out.join(&sh.prefix))?.expect(dtype, vocab)?;
            for d in 0..r.len() {
                l.push(r.seq_len(d)? as u32);
            }
        }
        lengths.push(l);
    }
    let sources = (0..manifest.sources.len())
        .map(|s| {
            let src = &manifest.sources[s];
            group(&src.name, &src.language, &[s], &manifest, &lengths)
        })
        .collect();
    let mut by_language: BTreeMap<&str, (usize, Vec<usize>)> = BTreeMap::new();
    for (s, src) in manifest.sources.iter().enumerate() {
        let e = by_language
            .entry(src.language.as_str())
            .or_insert((s, Vec::new()));
        e.1.push(s);
    }
    let mut langs: Vec<(usize, &str, Vec<usize>)> = by_language
        .into_iter()
        .map(|(lang, (first, members))| (first, lang, members))
        .collect();
    langs.sort();
    let languages = langs
        .iter()
        .map(|(_, lang, members)| group(lang, lang, members, &manifest, &lengths))
        .collect();
    Ok(Stats {
        out: out.to_path_buf(),
        sources,
        languages,
        mixes: mixes::mixes(out)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        let l = Lengths::of(&v);
        assert_eq!((l.min, l.p10, l.p50, l.p99, l.max), (1, 10, 50, 99, 100));
        assert_eq!(Lengths::of(&[7]).p90, 7);
    }

    #[test]
    fn histogram_bins_are_powers_of_two() {
        let bins = histogram(&[1, 2, 3, 4, 7, 8, 100]);
        let got: Vec<(u64, u64)> = bins.iter().map(|b| (b.lo, b.documents)).collect();
        assert_eq!(got, [(1, 1), (2, 2), (4, 2), (8, 1), (64, 1)]);
    }
}
