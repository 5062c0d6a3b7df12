//! The charts of the HTML report, drawn with plotters into SVG strings.

use plotters::coord::ranged1d::{AsRangedCoord, SegmentedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordu32;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{GroupStats, MixStats, Stats};
use crate::chain::Step;
use crate::error::Result;

/// Colours for sources and languages, in order.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// The row axis of horizontal bar charts.
type RowCoord = SegmentedCoord<RangedCoordu32>;

/// The colour of item `i`.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// CSS hex of item `i`'s colour.
pub fn css_colour(i: usize) -> String {
    let RGBColor(r, g, b) = colour(i);
    format!("#{r:02x}{g:02x}{b:02x}")
}

const FONT: &str = "sans-serif";

/// The label of a horizontal bar chart's row at `v`, with row 0 at the top
/// of `n` rows: `label(r)` names row `r`.
fn row_label(v: &SegmentValue<u32>, n: u32, label: impl Fn(usize) -> Option<String>) -> String {
    match v {
        SegmentValue::CenterOf(i) => (n - 1)
            .checked_sub(*i)
            .and_then(|r| label(r as usize))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The frame of a horizontal bar chart over `x`: one row per label, the
/// first at the top, labels in a column `label_width` wide, and the x axis
/// described by `x_desc` and labelled by `x_label`.
fn bar_rows<'a, 'b, X>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
    label_width: u32,
    x: X,
    labels: &[String],
    x_desc: &str,
    x_label: &dyn Fn(&X::Value) -> String,
) -> Result<ChartContext<'a, SVGBackend<'b>, Cartesian2d<X::CoordDescType, RowCoord>>>
where
    X: AsRangedCoord,
    X::CoordDescType: Ranged<ValueType = X::Value> + ValueFormatter<X::Value>,
{
    let n = labels.len().max(1) as u32;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, 20))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(label_width)
        .build_cartesian_2d(x, (0u32..n.max(2) - 1).into_segmented())?;
    chart
        .configure_mesh()
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .disable_y_mesh()
        .y_labels(n as usize)
        .y_label_formatter(&|v| row_label(v, n, |r| labels.get(r).cloned()))
        .x_label_formatter(x_label)
        .x_desc(x_desc)
        .draw()?;
    Ok(chart)
}

fn svg(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<()>,
) -> Result<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(buf)
}

/// Stacked bars of each source's share of tokens: in the build, then in
/// every mix.
pub fn token_shares(stats: &Stats) -> Result<String> {
    let mut rows: Vec<(String, Vec<f64>)> = vec![(
        "build (kept tokens)".into(),
        stats.sources.iter().map(|s| s.token_share).collect(),
    )];
    for m in &stats.mixes {
        rows.push((
            format!("{} (ALMR {:.2})", m.name, m.target_almr),
            stats
                .sources
                .iter()
                .map(|s| {
                    m.sources
                        .iter()
                        .find(|ms| ms.name == s.name)
                        .map_or(0.0, |ms| ms.achieved_share)
                })
                .collect(),
        ));
    }
    let n = rows.len() as u32;
    let height = 90 + 46 * n.max(2);
    svg((900, height), |root| {
        let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        let mut chart = bar_rows(
            root,
            "Share of tokens by source",
            190,
            0f64..1f64,
            &labels,
            "share of tokens",
            &|x| format!("{:.0}%", x * 100.0),
        )?;
        for s in 0..stats.sources.len() {
            let bars = rows.iter().enumerate().map(|(r, (_, shares))| {
                let r = n as usize - 1 - r;
                let x0: f64 = shares[..s].iter().sum();
                let mut rect = Rectangle::new(
                    [
                        (x0, SegmentValue::Exact(r as u32)),
                        (x0 + shares[s], SegmentValue::Exact(r as u32 + 1)),
                    ],
                    colour(s).filled(),
                );
                rect.set_margin(6, 6, 0, 0);
                rect
            });
            chart.draw_series(bars)?;
        }
        Ok(())
    })
}

/// The additional share along a mix's stream: over the last `window`
/// samples, and cumulative, against the target.
pub fn almr_curve(mix: &MixStats) -> Result<String> {
    let last = mix.curve.last().map_or(1, |p| p.samples).max(1);
    let (mut lo, mut hi) = (mix.target_almr, mix.target_almr);
    for p in &mix.curve {
        lo = lo.min(p.window).min(p.cumulative);
        hi = hi.max(p.window).max(p.cumulative);
    }
    let pad = ((hi - lo) * 0.15).max(0.01);
    let (lo, hi) = ((lo - pad).max(0.0), (hi + pad).min(1.0));
    svg((900, 340), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "{}: ALMR along the stream (target {:.3}, achieved {:.4})",
                    mix.name, mix.target_almr, mix.achieved_almr
                ),
                (FONT, 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0u64..last, lo..hi)?;
        chart
            .configure_mesh()
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .x_desc("training samples")
            .y_desc("ALMR")
            .y_label_formatter(&|y| format!("{y:.3}"))
            .draw()?;
        chart
            .draw_series(LineSeries::new(
                [(0, mix.target_almr), (last, mix.target_almr)],
                BLACK.stroke_width(1),
            ))?
            .label("target")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK));
        let cumulative = colour(1);
        chart
            .draw_series(LineSeries::new(
                mix.curve.iter().map(|p| (p.samples, p.cumulative)),
                cumulative.stroke_width(2),
            ))?
            .label("all samples so far")
            .legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 18, y)], cumulative.stroke_width(2))
            });
        let window = colour(0);
        chart
            .draw_series(LineSeries::new(
                mix.curve.iter().map(|p| (p.samples, p.window)),
                window.stroke_width(2),
            ))?
            .label(format!("last {} samples", mix.window))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], window.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// Documents by length (power-of-two bins) for one language.
pub fn length_histogram(lang: &GroupStats, colour_index: usize) -> Result<String> {
    let bins = &lang.length_histogram;
    let n = bins.len().max(1) as u32;
    let top = bins.iter().map(|b| b.documents).max().unwrap_or(1);
    svg((440, 300), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "{}: document length (median {} tokens)",
                    lang.name, lang.lengths.p50
                ),
                (FONT, 16),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((0u32..n - 1).into_segmented(), 0u64..top + top / 10 + 1)?;
        chart
            .configure_mesh()
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .disable_x_mesh()
            .x_labels(n as usize)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => bins
                    .get(*i as usize)
                    .map_or(String::new(), |b| format!("{}", b.lo)),
                _ => String::new(),
            })
            .x_desc("tokens (bin start, ×2 per bin)")
            .y_desc("documents")
            .draw()?;
        chart.draw_series(bins.iter().enumerate().map(|(i, b)| {
            let mut r = Rectangle::new(
                [
                    (SegmentValue::Exact(i as u32), 0),
                    (SegmentValue::Exact(i as u32 + 1), b.documents),
                ],
                colour(colour_index).filled(),
            );
            r.set_margin(0, 0, 2, 2);
            r
        }))?;
        Ok(())
    })
}

/// Records dropped or unreadable, by `stage/reason`, over all sources.
pub fn reject_reasons(stats: &Stats) -> Result<String> {
    let mut reasons: Vec<(String, u64)> = Vec::new();
    for s in &stats.sources {
        let rejected = s
            .counts
            .rejected
            .by_reason
            .iter()
            .map(|(k, &v)| (k.clone(), v));
        let malformed =
            (s.counts.malformed.by_reason.iter()).map(|(k, &v)| (format!("malformed/{k}"), v));
        for (key, v) in rejected.chain(malformed) {
            match reasons.iter_mut().find(|(r, _)| *r == key) {
                Some(e) => e.1 += v,
                None => reasons.push((key, v)),
            }
        }
    }
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    reasons.truncate(25);
    let n = reasons.len().max(1) as u32;
    let top = reasons.first().map_or(1, |r| r.1);
    svg((900, 80 + 26 * n), |root| {
        let labels: Vec<String> = reasons.iter().map(|r| r.0.clone()).collect();
        let mut chart = bar_rows(
            root,
            "Records removed, by reason",
            330,
            0u64..top + top / 10 + 1,
            &labels,
            "records",
            &|x| x.to_string(),
        )?;
        chart.draw_series(reasons.iter().enumerate().map(|(i, (reason, v))| {
            let i = n as usize - 1 - i;
            let stage = reason.split('/').next().unwrap_or("");
            let c = Step::ALL
                .iter()
                .position(|s| s.to_string() == stage)
                .unwrap_or(7);
            let mut r = Rectangle::new(
                [
                    (0, SegmentValue::Exact(i as u32)),
                    (*v, SegmentValue::Exact(i as u32 + 1)),
                ],
                colour(c).filled(),
            );
            r.set_margin(3, 3, 0, 0);
            r
        }))?;
        Ok(())
    })
}
