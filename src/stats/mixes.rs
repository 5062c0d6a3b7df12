//! The mixes of a build, as `almr stats` shows them: each one's sidecar,
//! its ALMR along the stream and its validation split per language.

use std::path::Path;

use super::{CurvePoint, MixSourceStats, MixStats, ValidSplit};
use crate::error::{Error, Result};
use crate::mix::{MixIndex, MixIndexError, MixReport, Split};
use crate::mixfile::packed;

/// Points of a mix's ALMR curve.
fn curve(weights: &[(u64, u64)], window: usize) -> Vec<CurvePoint> {
    let n = weights.len();
    let window = window.max(1);
    let mut prefix = vec![(0u64, 0u64); n + 1];
    for (i, &(add, all)) in weights.iter().enumerate() {
        prefix[i + 1] = (prefix[i].0 + add, prefix[i].1 + all);
    }
    let share = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let points = n.min(500);
    (1..=points)
        .map(|p| {
            let end = p * n / points;
            let start = end.saturating_sub(window);
            CurvePoint {
                samples: end as u64,
                cumulative: share(prefix[end].0, prefix[end].1),
                window: share(
                    prefix[end].0 - prefix[start].0,
                    prefix[end].1 - prefix[start].1,
                ),
            }
        })
        .collect()
}

/// Each training sample's weight toward the ALMR, as (additional, all): 1
/// or 0 of 1 for a window of text; the trained tokens of additional
/// sources, of all trained tokens, for a packed sequence.
fn sample_weights(path: &Path) -> Result<(MixReport, Vec<(u64, u64)>)> {
    if !packed::is_packed(path) {
        let index = MixIndex::open(path)?;
        let r = index.report();
        let w = (0..index.len(Split::Train))
            .map(|i| {
                Ok((
                    r.sources[index.source_of(Split::Train, i)?].additional as u64,
                    1,
                ))
            })
            .collect::<Result<_>>()?;
        return Ok((r.clone(), w));
    }
    let index = packed::PackedIndex::open(path)?;
    let r = index.report();
    let mut w = Vec::with_capacity(index.len(Split::Train));
    for i in 0..index.len(Split::Train) {
        let (seq, convs) = (
            index.read(Split::Train, i)?,
            index.conversations(Split::Train, i)?,
        );
        let (mut add, mut all) = (0u64, 0u64);
        for (k, e) in convs.iter().enumerate() {
            let end = seq.starts.get(k + 1).copied().unwrap_or(seq.ids.len());
            let trained = seq.mask[seq.starts[k]..end]
                .iter()
                .map(|&b| b as u64)
                .sum::<u64>();
            all += trained;
            if r.sources[e.source as usize].additional {
                add += trained;
            }
        }
        w.push((add, all));
    }
    Ok((r.clone(), w))
}

/// Mixes under `OUT/mix/`, sorted by name.
pub(super) fn mixes(out: &Path) -> Result<Vec<MixStats>> {
    let dir = out.join(crate::mix::DIR);
    let mut names = Vec::new();
    if dir.is_dir() {
        for e in std::fs::read_dir(&dir).map_err(Error::file("listing", &dir))? {
            let path = e?.path();
            if path.extension().is_some_and(|x| x == "json") {
                names.push(path);
            }
        }
    }
    names.sort();
    let mut out = Vec::new();
    for path in names {
        let (report, weights) = match sample_weights(&path) {
            Err(Error::MixIndex(e @ MixIndexError::Stale { .. })) => {
                eprintln!("warning: not shown: {e}");
                continue;
            }
            other => other?,
        };
        out.push(mix_stats(&report, &weights));
    }
    Ok(out)
}

/// One mix's statistics from its sidecar and its samples' weights.
fn mix_stats(r: &MixReport, weights: &[(u64, u64)]) -> MixStats {
    MixStats {
        name: r.name.clone(),
        samples: r.samples,
        seq_len: r.seq_len,
        tokens: r.tokens,
        target_almr: r.target_almr,
        achieved_almr: r.achieved_almr,
        max_window_deviation: r.max_window_deviation,
        window: r.window,
        sources: r
            .sources
            .iter()
            .map(|s| MixSourceStats {
                name: s.name.clone(),
                language: s.language.clone(),
                additional: s.additional,
                target_share: s.target_share,
                achieved_share: s.achieved_share,
                epochs: s.epochs,
                valid_documents: s.valid_documents,
                valid_tokens: s.valid_tokens,
                valid_samples: s.valid_samples,
            })
            .collect(),
        valid_samples: r.valid_samples,
        valid: valid_by_language(r),
        curve: curve(weights, r.window as usize),
    }
}

/// The validation split per language, in order of first appearance.
fn valid_by_language(r: &MixReport) -> Vec<ValidSplit> {
    let mut out: Vec<ValidSplit> = Vec::new();
    for s in &r.sources {
        let i = match out.iter().position(|v| v.language == s.language) {
            Some(i) => i,
            None => {
                out.push(ValidSplit {
                    language: s.language.clone(),
                    sources: Vec::new(),
                    documents: 0,
                    tokens: 0,
                    samples: 0,
                });
                out.len() - 1
            }
        };
        let v = &mut out[i];
        v.sources.push(s.name.clone());
        v.documents += s.valid_documents;
        v.tokens += s.valid_tokens;
        v.samples += s.valid_samples;
    }
    out
}
