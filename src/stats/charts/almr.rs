//! A mix's deviation from its target ALMR along its stream, in samples:
//! the additional samples it has, less the target's share of the samples,
//! over all samples so far (a pale area) and over the last `window`
//! samples (a line over it). A greedy blend stays within a sample or two
//! of zero; a mix that cannot reach its target drifts away.

use std::ops::Range;

use plotters::prelude::*;

use super::key::{keyed_svg, Item};
use super::{colour, count_label, plain_mesh, CAPTION, FONT};
use crate::error::Result;
use crate::stats::{CurvePoint, MixStats};

/// How far `p` is from the target, in samples: (over all samples so far,
/// over the last `window` samples). For a packed mix, in sequences' worth
/// of trained tokens.
fn deviation(mix: &MixStats, p: &CurvePoint) -> (f64, f64) {
    let t = mix.target_almr;
    let window = p.samples.min(mix.window.max(1)) as f64;
    (
        (p.cumulative - t) * p.samples as f64,
        (p.window - t) * window,
    )
}

/// The y axis: zero and every deviation of `points` (samples, cumulative,
/// windowed), at least one sample high, with some room.
fn y_range(points: &[(f64, f64, f64)]) -> Range<f64> {
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for &(_, c, w) in points {
        (lo, hi) = (lo.min(c).min(w), hi.max(c).max(w));
    }
    let (mid, half) = ((lo + hi) / 2.0, (hi - lo).max(1.0) * 0.56);
    mid - half..mid + half
}

/// A y tick label: tenths of a sample on a short axis, whole samples on a
/// tall one.
fn y_label(value: f64, y: &Range<f64>) -> String {
    if value.abs() < 1e-9 {
        "0".into()
    } else if y.end - y.start >= 20.0 {
        count_label(value)
    } else {
        format!("{value:.1}")
    }
}

/// The key: the target, the cumulative deviation's area, the windowed
/// deviation's line.
fn key(mix: &MixStats) -> [Item; 3] {
    [
        Item {
            name: format!("target (ALMR {:.3})", mix.target_almr),
            style: BLACK.stroke_width(1),
        },
        Item::swatch("all samples so far", colour(3).mix(0.3)),
        Item {
            name: format!("last {} samples", mix.window),
            style: colour(0).stroke_width(2),
        },
    ]
}

/// The deviation of `mix` from its target along its stream.
pub fn almr_deviation(mix: &MixStats) -> Result<String> {
    let points: Vec<(f64, f64, f64)> = (mix.curve.iter())
        .map(|p| {
            let (c, w) = deviation(mix, p);
            (p.samples as f64, c, w)
        })
        .collect();
    let last = points.last().map_or(1.0, |p| p.0).max(1.0);
    let y = y_range(&points);
    let key = key(mix);
    let caption = format!(
        "{}: ALMR {:.4} for a target of {:.3}; worst window off by {:.4}",
        mix.name, mix.achieved_almr, mix.target_almr, mix.max_window_deviation
    );
    keyed_svg((900, 340), &key, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(caption, (FONT, CAPTION))
            .margin(12)
            .margin_right(28)
            .x_label_area_size(52)
            .y_label_area_size(72)
            .build_cartesian_2d(0f64..last, y.clone())?;
        let mut mesh = chart.configure_mesh();
        plain_mesh(&mut mesh);
        mesh.x_labels(8)
            .y_labels(7)
            .x_label_formatter(&|x| count_label(*x))
            .y_label_formatter(&|v| y_label(*v, &y))
            .x_desc("training samples")
            .y_desc("achieved − target (samples)")
            .draw()?;
        let mut area = vec![(0.0, 0.0)];
        area.extend(points.iter().map(|p| (p.0, p.1)));
        area.push((last, 0.0));
        chart.draw_series([Polygon::new(area, key[1].style)])?;
        chart.draw_series(LineSeries::new([(0.0, 0.0), (last, 0.0)], key[0].style))?;
        let window = points.iter().map(|p| (p.0, p.2));
        chart.draw_series(LineSeries::new(window, key[2].style))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(window: u64) -> MixStats {
        MixStats {
            name: "m".into(),
            samples: 3000,
            seq_len: 8,
            tokens: 24000,
            target_almr: 0.25,
            achieved_almr: 0.25,
            max_window_deviation: 0.0,
            window,
            sources: Vec::new(),
            valid_samples: 0,
            valid: Vec::new(),
            curve: Vec::new(),
        }
    }

    #[test]
    fn deviation_counts_samples_over_the_stream_and_the_window() {
        let p = CurvePoint {
            samples: 2000,
            cumulative: 0.2505,
            window: 0.252,
        };
        let (c, w) = deviation(&mix(1000), &p);
        assert!((c - 1.0).abs() < 1e-9, "{c}");
        assert!((w - 2.0).abs() < 1e-9, "{w}");
        // Before a full window, the window is the samples so far.
        let early = CurvePoint {
            samples: 10,
            cumulative: 0.3,
            window: 0.3,
        };
        let (c, w) = deviation(&mix(1000), &early);
        assert!((c - 0.5).abs() < 1e-9 && (w - 0.5).abs() < 1e-9);
    }

    #[test]
    fn the_y_axis_holds_zero_and_every_deviation() {
        let r = y_range(&[]);
        assert!(
            r.start < 0.0 && r.end > 0.0 && r.end - r.start >= 1.0,
            "{r:?}"
        );
        let r = y_range(&[(1.0, 3.0, 1.0), (2.0, 0.5, 2.0)]);
        assert!(r.start < 0.0 && r.end > 3.0 && r.end < 3.5, "{r:?}");
        let r = y_range(&[(1.0, -30.0, -2.0)]);
        assert!(r.start < -30.0 && r.end > 0.0, "{r:?}");
        assert_eq!(y_label(-1e-12, &r), "0");
        assert_eq!(y_label(-10.0, &r), "-10");
        assert_eq!(y_label(0.5, &(-1.0..1.0)), "0.5");
    }
}
