//! Records removed, coloured by the stage that removed them: per source,
//! and per reason. A stage is a step of the chain, or `malformed` for
//! records that could not be read.

use std::collections::BTreeMap;

use super::bars::{stacked, Stacked};
use super::key::Item;
use super::{colour, count_label};
use crate::chain::Step;
use crate::error::Result;
use crate::manifest::Counts;
use crate::stats::Stats;

/// The stage of records that could not be read.
const MALFORMED: &str = "malformed";

/// The stage of a reason, `stage/reason`.
fn stage_of(reason: &str) -> &str {
    reason.split('/').next().unwrap_or(reason)
}

/// Where a stage sorts, and its colour: the steps in pipeline order, then
/// any other stage, then `malformed`.
fn rank(stage: &str) -> (usize, usize) {
    match Step::ALL.iter().position(|s| s.to_string() == stage) {
        Some(p) => (p, p),
        None if stage == MALFORMED => (Step::ALL.len() + 1, 7),
        None => (Step::ALL.len(), 8),
    }
}

/// The distinct stages of `names`, in order, each named in the key in
/// its colour.
fn stages<'a>(names: impl Iterator<Item = &'a str>) -> (Vec<String>, Vec<Item>) {
    let mut stages: Vec<&str> = names.collect();
    stages.sort_by_key(|s| (rank(s).0, *s));
    stages.dedup();
    let key = stages
        .iter()
        .map(|s| Item::swatch(*s, colour(rank(s).1)))
        .collect();
    (stages.into_iter().map(String::from).collect(), key)
}

/// Records a source lost, by stage.
fn removed_by_stage(c: &Counts) -> BTreeMap<String, u64> {
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    for (reason, n) in &c.rejected.by_reason {
        *by.entry(stage_of(reason).to_string()).or_default() += n;
    }
    if c.malformed.total > 0 {
        by.insert(MALFORMED.into(), c.malformed.total);
    }
    by
}

/// Records removed or unreadable, by `stage/reason`, over all sources:
/// the most first, at most 25.
fn reasons(stats: &Stats) -> Vec<(String, u64)> {
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for c in stats.sources.iter().map(|s| &s.counts) {
        let malformed =
            (c.malformed.by_reason.iter()).map(|(k, v)| (format!("{MALFORMED}/{k}"), v));
        for (reason, n) in (c.rejected.by_reason.iter())
            .map(|(k, v)| (k.clone(), v))
            .chain(malformed)
        {
            *reasons.entry(reason).or_default() += n;
        }
    }
    let mut reasons: Vec<(String, u64)> = reasons.into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    reasons.truncate(25);
    reasons
}

/// The end of an x axis of counts up to `top`, with room to spare.
fn count_axis(top: f64) -> f64 {
    (top * 1.08).max(top + 1.0)
}

/// Stacked bars of the records each source lost, coloured by stage, with
/// the stages in the key.
pub fn rejects_by_source(stats: &Stats) -> Result<String> {
    let removed: Vec<BTreeMap<String, u64>> = (stats.sources.iter())
        .map(|s| removed_by_stage(&s.counts))
        .collect();
    let (stages, key) = stages(removed.iter().flat_map(|r| r.keys().map(String::as_str)));
    let rows: Vec<(String, Vec<f64>)> = (stats.sources.iter().zip(&removed))
        .map(|(s, r)| {
            let lengths = stages
                .iter()
                .map(|st| r.get(st).copied().unwrap_or(0) as f64);
            (format!("{} ({})", s.name, s.language), lengths.collect())
        })
        .collect();
    let top = rows
        .iter()
        .map(|r| r.1.iter().sum::<f64>())
        .fold(0.0, f64::max);
    stacked(&Stacked {
        caption: "Records removed per source, by stage",
        label_width: 190,
        row_height: 40,
        rows: &rows,
        series: &key,
        x_max: count_axis(top),
        x_desc: "records",
        x_label: &count_label,
    })
}

/// Bars of the records removed or unreadable for each reason, over all
/// sources, coloured by stage, with the stages in the key.
pub fn rejects_by_reason(stats: &Stats) -> Result<String> {
    let reasons = reasons(stats);
    let (stages, key) = stages(reasons.iter().map(|r| stage_of(&r.0)));
    let rows: Vec<(String, Vec<f64>)> = (reasons.iter())
        .map(|(reason, n)| {
            let at = |st: &String| {
                if st == stage_of(reason) {
                    *n as f64
                } else {
                    0.0
                }
            };
            (reason.clone(), stages.iter().map(at).collect())
        })
        .collect();
    let top = reasons.first().map_or(0, |r| r.1) as f64;
    stacked(&Stacked {
        caption: "Records removed, by reason",
        label_width: 340,
        row_height: 28,
        rows: &rows,
        series: &key,
        x_max: count_axis(top),
        x_desc: "records",
        x_label: &count_label,
    })
}

#[cfg(test)]
mod tests {
    use plotters::style::Color;

    use super::*;

    #[test]
    fn stages_follow_the_pipeline_and_malformed_comes_last() {
        let names = [
            "malformed",
            "near_dedup",
            "filter",
            "zz",
            "filter",
            "language",
        ];
        let (stages, key) = stages(names.into_iter());
        assert_eq!(
            stages,
            ["language", "filter", "near_dedup", "zz", "malformed"]
        );
        assert_eq!(key[1].name, "filter");
        assert_eq!(key[1].style.color, colour(2).to_rgba());
        assert_eq!(key[4].style.color, colour(7).to_rgba());
    }

    #[test]
    fn a_source_loses_records_by_stage() {
        let mut c = Counts::default();
        for r in ["filter/a", "filter/b", "exact_dedup/duplicate"] {
            c.rejected.add(r);
        }
        c.malformed.add("bad_json");
        let by = removed_by_stage(&c);
        let got: Vec<(&str, u64)> = by.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(got, [("exact_dedup", 1), ("filter", 2), ("malformed", 1)]);
    }
}
