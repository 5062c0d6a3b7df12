//! The charts of `almr-train report --html`, drawn with plotters into SVG
//! strings, as `almr stats --html` draws its own: one line per run, in the
//! run's colour, and a key of the runs under each chart, outside the plot,
//! so that it never covers a line. The sweep's charts ([`super::sweep`])
//! draw their lines with the same `line_chart`.

use std::ops::Range;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::text::si;
use super::{Record, Report};
use crate::error::Result;

/// Colours of the runs, in order (matplotlib's "tab10", as almr's own
/// charts).
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

/// The charts' font family.
pub(crate) const FONT: &str = "sans-serif";

/// Width and height of a chart.
pub const SIZE: (u32, u32) = (640, 380);

/// Height of one row of the key under a chart.
pub(crate) const KEY_ROW: u32 = 24;

/// The colour of run `i`.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// CSS hex of run `i`'s colour.
pub fn css_colour(i: usize) -> String {
    let RGBColor(r, g, b) = colour(i);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// What a chart's x axis counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// Optimizer steps.
    Step,
    /// Training tokens seen.
    Tokens,
}

impl By {
    /// The x of record `r`.
    pub(crate) fn x(self, r: &Record) -> f64 {
        match self {
            By::Step => r.step as f64,
            By::Tokens => r.tokens as f64,
        }
    }

    /// What the axis is called.
    pub(crate) fn desc(self) -> &'static str {
        match self {
            By::Step => "step",
            By::Tokens => "training tokens seen",
        }
    }
}

/// How an axis writes its numbers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Format {
    /// Counts: `40`, `81.9k`, `1.05M`.
    Count,
    /// Losses: as many decimals as the axis's range needs.
    Loss,
    /// Learning rates: `1.0e-3`.
    Rate,
    /// Fractions (an ALMR): `0.25`.
    Fraction,
    /// Learning rates on a log axis, whose values are log10 η: `3.2e-4`.
    Log10Rate,
}

impl Format {
    /// The label of `x` on an axis over `range`.
    pub(crate) fn label(self, x: f64, range: &Range<f64>) -> String {
        match self {
            Format::Count => si(x),
            Format::Loss => {
                let span = range.end - range.start;
                let decimals = if span > 2.5 {
                    1
                } else if span > 0.25 {
                    2
                } else {
                    3
                };
                format!("{x:.decimals$}")
            }
            Format::Rate if x == 0.0 => "0".into(),
            Format::Rate => format!("{x:.1e}"),
            Format::Fraction => format!("{x:.2}"),
            Format::Log10Rate => format!("{:.1e}", 10f64.powf(x)),
        }
    }
}

/// One line of a chart: its name in the key (none when empty), colour,
/// width, dashes, dots, and points, NaN where a value is not a number (the
/// line breaks there).
pub(crate) struct Line<'a> {
    pub name: &'a str,
    pub colour: RGBColor,
    pub width: u32,
    /// Whether the line is dashed.
    pub dashed: bool,
    /// Whether every point gets a dot (sparse validation points).
    pub dots: bool,
    pub points: Vec<(f64, f64)>,
}

/// What a chart shows.
pub(crate) struct Spec {
    pub title: String,
    pub x_desc: String,
    pub x_format: Format,
    pub y_desc: &'static str,
    pub y_format: Format,
    /// Whether the y axis starts at 0 (rates, speeds) or hugs the values
    /// (losses).
    pub from_zero: bool,
    /// The axes' ranges, when not fitted to the lines (the y range clips
    /// them).
    pub ranges: Option<(Range<f64>, Range<f64>)>,
    /// The size of the chart.
    pub size: (u32, u32),
    /// Whether the key goes under the chart.
    pub key: bool,
}

impl Spec {
    /// A chart of the run report: by `by`, sized [`SIZE`], with a key.
    fn runs(
        title: String,
        by: By,
        y_desc: &'static str,
        y_format: Format,
        from_zero: bool,
    ) -> Spec {
        Spec {
            title,
            x_desc: by.desc().into(),
            x_format: Format::Count,
            y_desc,
            y_format,
            from_zero,
            ranges: None,
            size: SIZE,
            key: true,
        }
    }
}

/// Each run's `value` against `by`, over the records that have one.
fn lines<'a>(report: &'a Report, by: By, value: impl Fn(&Record) -> Option<f64>) -> Vec<Line<'a>> {
    (report.runs.iter().enumerate())
        .map(|(i, run)| Line {
            name: &run.summary.name,
            colour: colour(i),
            width: 2,
            dashed: false,
            dots: false,
            points: run_points(&run.records, by, &value),
        })
        .collect()
}

/// A run's `value` against `by`, over the records that have one.
pub(crate) fn run_points(
    records: &[Record],
    by: By,
    value: impl Fn(&Record) -> Option<f64>,
) -> Vec<(f64, f64)> {
    (records.iter())
        .filter_map(|r| value(r).map(|y| (by.x(r), y)))
        .collect()
}

/// The ranges of the axes: x from 0 to the last point; y over the finite
/// values, padded, from 0 if `from_zero`.
pub(crate) fn ranges(lines: &[Line], from_zero: bool) -> (Range<f64>, Range<f64>) {
    let finite = || (lines.iter().flat_map(|l| &l.points)).filter(|p| p.1.is_finite());
    let x_max = finite().map(|p| p.0).fold(0.0, f64::max);
    let lo = finite().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = finite().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = match (lo.is_finite(), from_zero) {
        (false, _) => (0.0, 1.0),
        (true, true) => (0.0, if hi > 0.0 { hi * 1.08 } else { 1.0 }),
        (true, false) => {
            let pad = ((hi - lo) * 0.06).max(hi.abs() * 0.01).max(1e-9);
            (lo - pad, hi + pad)
        }
    };
    (0.0..x_max.max(1.0) * 1.02, lo..hi)
}

/// Draws into an SVG string of `size`.
pub(crate) fn svg(
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

/// Roughly how wide `text` is in pixels at `size` (sans-serif).
pub(crate) fn text_width(text: &str, size: f64) -> i32 {
    (text.chars().count() as f64 * size * 0.5).ceil() as i32
}

/// Where each run's key item goes: (row, x), rows wrapping at `width`.
pub(crate) fn key_layout(names: &[&str], width: u32) -> Vec<(u32, i32)> {
    let (mut row, mut x) = (0, 64);
    let mut at = Vec::new();
    for name in names {
        let w = 30 + text_width(name, 14.0) + 18;
        if x + w > width as i32 && x > 64 {
            row += 1;
            x = 64;
        }
        at.push((row, x));
        x += w;
    }
    at
}

/// The lines named in the key.
fn keyed<'a, 'b>(lines: &'b [Line<'a>]) -> Vec<&'b Line<'a>> {
    lines.iter().filter(|l| !l.name.is_empty()).collect()
}

/// Draws the key: a short line in each line's colour and style, then its
/// name.
fn draw_key(area: &DrawingArea<SVGBackend, Shift>, lines: &[Line], width: u32) -> Result<()> {
    let lines = keyed(lines);
    let names: Vec<&str> = lines.iter().map(|l| l.name).collect();
    for (l, (row, x)) in lines.iter().zip(key_layout(&names, width)) {
        let y = (row * KEY_ROW + KEY_ROW / 2) as i32;
        let style = l.colour.stroke_width(l.width + 1);
        match l.dashed {
            true => area.draw(&plotters::element::DashedPathElement::new(
                [(x, y), (x + 24, y)],
                6,
                4,
                style,
            ))?,
            false => area.draw(&PathElement::new([(x, y), (x + 24, y)], style))?,
        }
        let text = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        area.draw(&Text::new(l.name.to_string(), (x + 30, y), text))?;
    }
    Ok(())
}

/// The stretches of a line inside `y`: it breaks at each NaN, and where
/// it leaves the range it is cut at the range's edge.
pub(crate) fn stretches(points: &[(f64, f64)], y: &Range<f64>) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new()];
    let inside = |p: (f64, f64)| p.1.is_finite() && y.start <= p.1 && p.1 <= y.end;
    let mut prev: Option<(f64, f64)> = None;
    for &p in points {
        let cut = prev.filter(|q| q.1.is_finite() && p.1.is_finite() && inside(*q) != inside(p));
        if let Some(q) = cut {
            out.last_mut().expect("one").push(edge(q, p, y));
        }
        if inside(p) {
            out.last_mut().expect("one").push(p);
        } else if !out.last().expect("one").is_empty() {
            out.push(Vec::new());
        }
        prev = Some(p);
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Where the segment from `q` to `p`, one end inside `y` and one outside,
/// crosses the edge of `y`.
fn edge(q: (f64, f64), p: (f64, f64), y: &Range<f64>) -> (f64, f64) {
    let at = if q.1.max(p.1) >= y.end {
        y.end
    } else {
        y.start
    };
    let t = (at - q.1) / (p.1 - q.1);
    (q.0 + t * (p.0 - q.0), at)
}

/// A line chart of `lines`, with their key under it when `spec.key`.
pub(crate) fn line_chart(spec: &Spec, lines: &[Line]) -> Result<String> {
    let (x_range, y_range) = (spec.ranges.clone()).unwrap_or_else(|| ranges(lines, spec.from_zero));
    let (x, y) = (x_range.clone(), y_range.clone());
    let size = spec.size;
    let names: Vec<&str> = keyed(lines).iter().map(|l| l.name).collect();
    let key_rows = match spec.key {
        true => key_layout(&names, size.0).last().map_or(1, |a| a.0 + 1),
        false => 0,
    };
    svg(size, |root| {
        let (plot, key) = root.split_vertically(size.1 - key_rows * KEY_ROW - 6);
        let mut chart = ChartBuilder::on(&plot)
            .caption(&spec.title, (FONT, 17))
            .margin(10)
            .margin_right(24)
            .x_label_area_size(40)
            .y_label_area_size(62)
            .build_cartesian_2d(x, y)?;
        chart
            .configure_mesh()
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .light_line_style(WHITE)
            .bold_line_style(BLACK.mix(0.08))
            .x_labels(8)
            .y_labels(7)
            .x_label_formatter(&|v| spec.x_format.label(*v, &x_range))
            .y_label_formatter(&|v| spec.y_format.label(*v, &y_range))
            .x_desc(&spec.x_desc)
            .y_desc(spec.y_desc)
            .draw()?;
        for l in lines {
            draw_line(&mut chart, l, &y_range)?;
        }
        if spec.key {
            draw_key(&key, lines, size.0)?;
        }
        Ok(())
    })
}

/// A chart's plot, in data coordinates.
pub(crate) type Plot<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws `l` into `chart`, cut to `y`: its stretches, and a dot at each
/// point of a dotted line or of a stretch of one point.
fn draw_line(chart: &mut Plot, l: &Line, y: &Range<f64>) -> Result<()> {
    let c = l.colour;
    for s in stretches(&l.points, y) {
        if l.dots || s.len() == 1 {
            chart.draw_series(s.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
        }
        match l.dashed {
            true => chart.draw_series(DashedLineSeries::new(s, 7, 5, c.stroke_width(l.width)))?,
            false => chart.draw_series(LineSeries::new(s, c.stroke_width(l.width)))?,
        };
    }
    Ok(())
}

/// Training loss of each run, against steps or tokens.
pub fn training_loss(report: &Report, by: By) -> Result<String> {
    let title = format!("Training loss by {}", by.desc());
    let spec = Spec::runs(title, by, "loss (nats per token)", Format::Loss, false);
    line_chart(&spec, &lines(report, by, |r| Some(r.loss)))
}

/// Validation loss of `lang` for each run, against steps or tokens.
pub fn validation_loss(report: &Report, lang: &str, by: By) -> Result<String> {
    let title = format!("Validation loss, {lang}, by {}", by.desc());
    let spec = Spec::runs(title, by, "loss (nats per token)", Format::Loss, false);
    let mut lines = lines(report, by, |r| r.val_loss.get(lang).copied());
    lines.iter_mut().for_each(|l| l.dots = true);
    line_chart(&spec, &lines)
}

/// The learning rate of each run, by step. Runs often share a schedule, so
/// each line is drawn narrower than the one before it: lines that coincide
/// still show every run's colour.
pub fn learning_rate(report: &Report) -> Result<String> {
    let title = "Learning rate by step".into();
    let spec = Spec::runs(title, By::Step, "learning rate", Format::Rate, true);
    let mut lines = lines(report, By::Step, |r| Some(r.lr));
    let n = lines.len() as u32;
    for (i, l) in lines.iter_mut().enumerate() {
        l.width = (2 + 3 * (n - 1 - i as u32)).min(11);
    }
    line_chart(&spec, &lines)
}

/// Training tokens per second of each run, by step.
pub fn tokens_per_s(report: &Report) -> Result<String> {
    let title = "Training speed by step".into();
    let spec = Spec::runs(title, By::Step, "tokens per second", Format::Count, true);
    line_chart(&spec, &lines(report, By::Step, |r| Some(r.tokens_per_s)))
}
