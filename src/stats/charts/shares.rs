//! Each source's share of the tokens: in the build, then in every mix.

use super::bars::{stacked, Stacked};
use super::colour;
use super::key::Item;
use crate::error::Result;
use crate::stats::{MixStats, Stats};

/// Each source's achieved share of `mix`, in the build's source order.
fn mix_shares(stats: &Stats, mix: &MixStats) -> Vec<f64> {
    stats
        .sources
        .iter()
        .map(|s| {
            (mix.sources.iter())
                .find(|ms| ms.name == s.name)
                .map_or(0.0, |ms| ms.achieved_share)
        })
        .collect()
}

/// Stacked bars of each source's share of tokens: in the build, then in
/// every mix, with the sources in the key.
pub fn token_shares(stats: &Stats) -> Result<String> {
    let mut rows: Vec<(String, Vec<f64>)> = vec![(
        "build (kept tokens)".into(),
        stats.sources.iter().map(|s| s.token_share).collect(),
    )];
    for m in &stats.mixes {
        let label = format!("{} (ALMR {:.2})", m.name, m.target_almr);
        rows.push((label, mix_shares(stats, m)));
    }
    let series: Vec<Item> = (stats.sources.iter().enumerate())
        .map(|(i, s)| {
            let add = if s.additional { ", additional" } else { "" };
            Item::swatch(format!("{} ({}{add})", s.name, s.language), colour(i))
        })
        .collect();
    stacked(&Stacked {
        caption: "Share of tokens by source",
        label_width: 210,
        row_height: 46,
        rows: &rows,
        series: &series,
        x_max: 1.0,
        x_desc: "share of tokens",
        x_label: &|x| format!("{:.0}%", x * 100.0),
    })
}
