//! Histograms of document lengths in tokens, in power-of-two bins, for a
//! source or a language; histograms side by side share their bins.

use plotters::prelude::*;

use super::{colour, plain_mesh, svg, FONT};
use crate::error::Result;
use crate::stats::GroupStats;

/// Most tick labels under a histogram; past it, every second (third, …)
/// bin is labelled.
const MAX_LABELS: usize = 8;

/// The bins of histograms of `groups`: the lower bounds from the shortest
/// document's bin to the longest's, empty bins included.
pub fn length_bins<'a>(groups: impl IntoIterator<Item = &'a GroupStats>) -> Vec<u64> {
    let (mut first, mut last) = (u64::MAX, 0);
    for g in groups {
        if let (Some(a), Some(b)) = (g.length_histogram.first(), g.length_histogram.last()) {
            (first, last) = (first.min(a.lo), last.max(b.lo));
        }
    }
    let mut bins = Vec::new();
    let mut lo = first;
    while lo <= last {
        bins.push(lo);
        lo = (lo * 2).max(1);
    }
    bins
}

/// Documents of `group` in each of `bins`.
fn counts(group: &GroupStats, bins: &[u64]) -> Vec<u64> {
    (bins.iter())
        .map(|&lo| {
            (group.length_histogram.iter())
                .find(|b| b.lo == lo)
                .map_or(0, |b| b.documents)
        })
        .collect()
}

/// The tick label of bin `i` of `bins`.
fn bin_label(v: &SegmentValue<u32>, bins: &[u64]) -> String {
    let step = bins.len().div_ceil(MAX_LABELS).max(1);
    match v {
        SegmentValue::CenterOf(i) if (*i as usize).is_multiple_of(step) => {
            bins.get(*i as usize).map_or(String::new(), u64::to_string)
        }
        _ => String::new(),
    }
}

/// Documents of `group` by length over `bins` (from [`length_bins`]), in
/// colour `colour_index`.
pub fn length_histogram(group: &GroupStats, bins: &[u64], colour_index: usize) -> Result<String> {
    let docs = counts(group, bins);
    let n = bins.len().max(1) as u32;
    let top = docs.iter().copied().max().unwrap_or(0);
    svg((400, 300), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("{}: median {} tokens", group.name, group.lengths.p50),
                (FONT, 19),
            )
            .margin(10)
            .margin_right(18)
            .x_label_area_size(50)
            .y_label_area_size(56)
            .build_cartesian_2d((0u32..n - 1).into_segmented(), 0u64..top + top / 10 + 1)?;
        let mut mesh = chart.configure_mesh();
        plain_mesh(&mut mesh);
        mesh.disable_x_mesh()
            .x_labels(n as usize)
            .y_labels(6)
            .x_label_formatter(&|v| bin_label(v, bins))
            .x_desc("tokens (bin start, ×2 per bin)")
            .y_desc("documents")
            .draw()?;
        chart.draw_series(docs.iter().enumerate().filter(|d| *d.1 > 0).map(|(i, &d)| {
            let mut r = Rectangle::new(
                [
                    (SegmentValue::Exact(i as u32), 0),
                    (SegmentValue::Exact(i as u32 + 1), d),
                ],
                colour(colour_index).filled(),
            );
            r.set_margin(0, 0, 2, 2);
            r
        }))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Bin;

    fn group(bins: &[(u64, u64)]) -> GroupStats {
        GroupStats {
            name: "g".into(),
            language: "en".into(),
            sources: Vec::new(),
            additional: false,
            counts: Default::default(),
            exact_dedup_rate: 0.0,
            near_dedup_rate: 0.0,
            token_share: 0.0,
            lengths: Default::default(),
            length_histogram: (bins.iter())
                .map(|&(lo, documents)| Bin {
                    lo,
                    hi: lo * 2,
                    documents,
                })
                .collect(),
        }
    }

    #[test]
    fn histograms_share_their_bins_empty_ones_included() {
        let (a, b) = (group(&[(4, 1), (32, 2)]), group(&[(16, 5), (64, 1)]));
        let bins = length_bins([&a, &b]);
        assert_eq!(bins, [4, 8, 16, 32, 64]);
        assert_eq!(counts(&a, &bins), [1, 0, 0, 2, 0]);
        assert_eq!(length_bins([&group(&[])]), Vec::<u64>::new());
    }
}
