//! The loss surfaces of a sweep: per language, the fitted loss over ALMR r
//! (x) × learning rate η (y, log scale) as bands of colour, with the cells
//! on top (filled with their observed loss, on the same scale; a cross
//! where one diverged), the region past the English limit faded and
//! outlined, the fitted η*(r) of both languages, and the recommended and
//! unconstrained optima. Without a fit, the cells alone, filled with their
//! observed loss and labelled with it.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::super::charts::{self, stretches, svg, text_width, Format, Plot, FONT};
use super::scale::Scale;
use super::SweepReport;
use crate::error::Result;
use crate::sweep::cells::Lang;
use crate::sweep::fit::Law;
use crate::sweep::recommend::Setting;
use crate::sweep::Recommendation;

/// Width and height of a surface chart.
pub const SIZE: (u32, u32) = (640, 650);
/// Grid cells per axis of the drawn surface.
const GRID: usize = 120;
/// Width of the colour bar's strip, right of the plot.
const BAR: u32 = 92;
/// Height of the key under the plot.
const KEY: u32 = 84;
/// The colour of the recommended optimum.
const RECOMMENDED: RGBColor = RGBColor(0xe6, 0x1e, 0x28);
/// The background outside the swept range.
const OUTSIDE: RGBColor = RGBColor(0xe4, 0xe4, 0xe4);

/// A drawing area in pixels.
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// The plotted ranges: ALMR and log10 η, the swept box padded so that a
/// cell on its edge shows whole.
struct Frame {
    swept: [Range<f64>; 2],
    x: Range<f64>,
    y: Range<f64>,
}

impl Frame {
    /// The frame of a swept box of ALMRs `almr` and log10 η `lr`.
    fn new(almr: [f64; 2], lr: [f64; 2]) -> Frame {
        let pad = |r: [f64; 2], least: f64| ((r[1] - r[0]) * 0.05).max(least);
        let (px, py) = (pad(almr, 0.03), pad(lr, 0.1));
        Frame {
            swept: [almr[0]..almr[1], lr[0]..lr[1]],
            x: almr[0] - px..almr[1] + px,
            y: lr[0] - py..lr[1] + py,
        }
    }
}

/// A language's loss over a grid of the swept box: `v[i][j]` at the
/// node `(xs[i], ys[j])`, ys in log10 η.
struct Grid {
    xs: Vec<f64>,
    ys: Vec<f64>,
    v: Vec<Vec<f64>>,
}

impl Grid {
    /// `law`'s loss of `lang` over `frame`'s swept box, at `tokens`.
    fn new(law: &Law, lang: Lang, frame: &Frame, tokens: f64) -> Grid {
        let nodes = |r: &Range<f64>| -> Vec<f64> {
            let step = (r.end - r.start) / GRID as f64;
            (0..=GRID).map(|i| r.start + step * i as f64).collect()
        };
        let (xs, ys) = (nodes(&frame.swept[0]), nodes(&frame.swept[1]));
        let ln10 = std::f64::consts::LN_10;
        let v = (xs.iter())
            .map(|&r| (ys.iter().map(|&y| law.predict(lang, r, y * ln10, tokens))).collect())
            .collect();
        Grid { xs, ys, v }
    }

    /// The mean of cell `(i, j)`'s corners.
    fn cell(&self, i: usize, j: usize) -> f64 {
        (self.v[i][j] + self.v[i + 1][j] + self.v[i][j + 1] + self.v[i + 1][j + 1]) / 4.0
    }

    /// Runs of cells along each row of `j` with the same `key`: (j, first
    /// i, last i, key).
    fn runs<K: PartialEq + Copy>(&self, key: impl Fn(f64) -> K) -> Vec<(usize, usize, usize, K)> {
        let mut out = Vec::new();
        for j in 0..GRID {
            let mut start = 0;
            for i in 1..=GRID {
                let k = key(self.cell(start, j));
                if i == GRID || key(self.cell(i, j)) != k {
                    out.push((j, start, i - 1, k));
                    start = i;
                }
            }
        }
        out
    }

    /// The least and most values.
    fn span(&self) -> [f64; 2] {
        let all = self.v.iter().flatten().copied().filter(|v| v.is_finite());
        [
            all.clone().fold(f64::INFINITY, f64::min),
            all.fold(f64::NEG_INFINITY, f64::max),
        ]
    }

    /// The segments of the contour at `level` (marching squares; a saddle
    /// joins its crossings in edge order).
    fn contour(&self, level: f64) -> Vec<[(f64, f64); 2]> {
        let mut out = Vec::new();
        for i in 0..GRID {
            for j in 0..GRID {
                let at = |a: (usize, usize)| (self.xs[a.0], self.ys[a.1], self.v[a.0][a.1]);
                let corners = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)].map(at);
                let cross: Vec<(f64, f64)> = (0..4)
                    .filter_map(|e| crossing(corners[e], corners[(e + 1) % 4], level))
                    .collect();
                out.extend(cross.chunks_exact(2).map(|p| [p[0], p[1]]));
            }
        }
        out
    }
}

/// Where the level crosses the edge from `a` to `b`, if it does.
fn crossing(a: (f64, f64, f64), b: (f64, f64, f64), level: f64) -> Option<(f64, f64)> {
    if (a.2 > level) == (b.2 > level) {
        return None;
    }
    let t = (level - a.2) / (b.2 - a.2);
    Some((a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1)))
}

/// The observed loss of `lang` of a cell, as the table has it.
fn observed(c: &super::CellRow, lang: Lang) -> Option<f64> {
    match lang {
        Lang::Zh => c.zh,
        Lang::En => c.en,
    }
    .filter(|_| !c.diverged)
}

/// The surface chart of `lang`: fitted when the sweep has a fit, the
/// observed cells alone when it has not.
pub fn chart(sweep: &SweepReport, lang: Lang) -> Result<String> {
    match &sweep.recommendation {
        Some(rec) => fitted(sweep, rec, lang),
        None => cells_only(sweep, lang),
    }
}

/// The frame, plot and colour bar areas of a surface chart.
fn layout<'a>(root: &Area<'a>) -> (Area<'a>, Area<'a>, Area<'a>) {
    let (top, key) = root.split_vertically(SIZE.1 - KEY);
    let (plot, bar) = top.split_horizontally(SIZE.0 - BAR);
    (plot, bar, key)
}

/// The plot's axes over `frame`, grey outside the swept box.
fn axes<'a, 'b>(plot: &'a Area<'b>, title: &str, frame: &Frame) -> Result<Plot<'a, 'b>> {
    let mut chart = ChartBuilder::on(plot)
        .caption(title, (FONT, 17))
        .margin(10)
        .margin_right(8)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(frame.x.clone(), frame.y.clone())?;
    chart
        .configure_mesh()
        .disable_mesh()
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .x_labels(9)
        .y_labels(7)
        .x_label_formatter(&|v| Format::Fraction.label(*v, &frame.x))
        .y_label_formatter(&|v| Format::Log10Rate.label(*v, &frame.y))
        .x_desc("ALMR r (share of Chinese tokens)")
        .y_desc("peak learning rate η (log scale)")
        .draw()?;
    let whole = [(frame.x.start, frame.y.start), (frame.x.end, frame.y.end)];
    chart.draw_series([Rectangle::new(whole, OUTSIDE.filled())])?;
    Ok(chart)
}

/// The fitted surface of `lang`, with the cells, the English limit, η*(r)
/// and the optima.
fn fitted(sweep: &SweepReport, rec: &Recommendation, lang: Lang) -> Result<String> {
    let ln10 = std::f64::consts::LN_10;
    let r = &rec.region;
    let frame = Frame::new(r.almr, [r.ln_lr[0] / ln10, r.ln_lr[1] / ln10]);
    let law = |l: Lang| match l {
        Lang::Zh => &rec.fit.zh.fit.law,
        Lang::En => &rec.fit.en.fit.law,
    };
    let grid = Grid::new(law(lang), lang, &frame, r.tokens);
    let en = Grid::new(law(Lang::En), Lang::En, &frame, r.tokens);
    let scale = Scale::new(grid.span());
    let title = format!(
        "{} validation loss: the fitted law{}",
        lang.name(),
        at_tokens(rec)
    );
    svg(SIZE, |root| {
        let (plot, bar, key) = layout(root);
        let mut chart = axes(&plot, &title, &frame)?;
        draw_bands(&mut chart, &grid, &scale)?;
        draw_limit(&mut chart, &en, rec.en_limit)?;
        for l in Lang::ALL {
            draw_lr_opt(&mut chart, law(l), &frame, l != lang)?;
        }
        draw_cells(&mut chart, sweep, lang, &scale, false)?;
        draw_optima(root, &chart, sweep, rec, lang)?;
        draw_bar(&bar, &scale, &format!("fitted {}", lang.name()))?;
        draw_key(&key, &fitted_key(lang, rec.en_limit))
    })
}

/// ` at 1.05G tokens` when the law has the tokens term.
fn at_tokens(rec: &Recommendation) -> String {
    match rec.fit.tokens_term {
        true => format!(" at {} tokens", super::super::text::si(rec.region.tokens)),
        false => String::new(),
    }
}

/// The cells of `lang` alone, filled with their observed loss and
/// labelled with it.
fn cells_only(sweep: &SweepReport, lang: Lang) -> Result<String> {
    let log = |c: &super::CellRow| c.lr.log10();
    let span = |f: &dyn Fn(&super::CellRow) -> f64| {
        let v = sweep.distinct(f);
        [v[0], v[v.len() - 1]]
    };
    let frame = Frame::new(span(&|c| c.almr), span(&log));
    let values: Vec<f64> = (sweep.cells.iter())
        .filter_map(|c| observed(c, lang))
        .collect();
    let least = values.iter().copied().fold(f64::INFINITY, f64::min);
    let scale = Scale::new([least, values.iter().copied().fold(least, f64::max)]);
    let title = format!("{} validation loss of the cells (no fit)", lang.name());
    svg(SIZE, |root| {
        let (plot, bar, key) = layout(root);
        let mut chart = axes(&plot, &title, &frame)?;
        let swept = [
            (frame.swept[0].start, frame.swept[1].start),
            (frame.swept[0].end, frame.swept[1].end),
        ];
        chart.draw_series([Rectangle::new(swept, WHITE.filled())])?;
        draw_cells(&mut chart, sweep, lang, &scale, true)?;
        draw_bar(&bar, &scale, &format!("observed {}", lang.name()))?;
        draw_key(&key, &[Glyph::Cell, Glyph::Diverged])
    })
}

/// The surface as bands of colour, a rectangle per run of a row.
fn draw_bands(chart: &mut Plot, grid: &Grid, scale: &Scale) -> Result<()> {
    let rects = grid
        .runs(|v| scale.band(v))
        .into_iter()
        .map(|(j, a, b, band)| {
            let corners = [(grid.xs[a], grid.ys[j]), (grid.xs[b + 1], grid.ys[j + 1])];
            Rectangle::new(corners, scale.colour(band).filled())
        });
    chart.draw_series(rects)?;
    Ok(())
}

/// Fades where the fitted English loss is past `limit`, and outlines it.
fn draw_limit(chart: &mut Plot, en: &Grid, limit: f64) -> Result<()> {
    let over = en.runs(|v| v > limit).into_iter().filter(|r| r.3);
    let fade = WHITE.mix(0.6).filled();
    chart.draw_series(over.map(|(j, a, b, _)| {
        Rectangle::new([(en.xs[a], en.ys[j]), (en.xs[b + 1], en.ys[j + 1])], fade)
    }))?;
    let line = BLACK.stroke_width(2);
    chart
        .draw_series((en.contour(limit).into_iter()).map(|s| PathElement::new(s.to_vec(), line)))?;
    Ok(())
}

/// `law`'s η*(r) over the frame: white under black, dashed for the other
/// language's.
fn draw_lr_opt(chart: &mut Plot, law: &Law, frame: &Frame, dashed: bool) -> Result<()> {
    let r = &frame.swept[0];
    let points: Vec<(f64, f64)> = (0..=40)
        .map(|i| r.start + (r.end - r.start) * i as f64 / 40.0)
        .map(|x| (x, law.lr_opt(x).log10()))
        .collect();
    for s in stretches(&points, &frame.swept[1]) {
        for (style, w) in [(WHITE, 5), (BLACK, 2)] {
            match dashed {
                true => chart.draw_series(DashedLineSeries::new(
                    s.clone(),
                    9,
                    6,
                    style.stroke_width(w),
                ))?,
                false => chart.draw_series(LineSeries::new(s.clone(), style.stroke_width(w)))?,
            };
        }
    }
    Ok(())
}

/// The cells: a circle filled with the observed loss of `lang` (hollow
/// without one), a cross where a cell diverged; with its value when
/// `labels`.
fn draw_cells(
    chart: &mut Plot,
    sweep: &SweepReport,
    lang: Lang,
    scale: &Scale,
    labels: bool,
) -> Result<()> {
    let mut cells: Vec<&super::CellRow> = sweep.cells.iter().collect();
    cells.sort_by(|a, b| a.tokens.total_cmp(&b.tokens));
    for c in cells {
        let at = (c.almr, c.lr.log10());
        if c.diverged {
            cross(chart, at)?;
            continue;
        }
        let fill = observed(c, lang).map_or(WHITE, |v| scale.colour(scale.band(v)));
        chart.draw_series([Circle::new(at, 7, fill.filled())])?;
        chart.draw_series([Circle::new(at, 7, BLACK.stroke_width(2))])?;
        if let Some(v) = observed(c, lang).filter(|_| labels) {
            let text =
                TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
            chart.draw_series([
                EmptyElement::at(at) + Text::new(format!("{v:.3}"), (11, 0), text)
            ])?;
        }
    }
    Ok(())
}

/// A cross at `at`: black over white.
fn cross(chart: &mut Plot, at: (f64, f64)) -> Result<()> {
    for (w, c) in [(6, WHITE), (3, BLACK)] {
        let s = c.stroke_width(w);
        chart.draw_series([EmptyElement::at(at)
            + PathElement::new(vec![(-7, -7), (7, 7)], s)
            + PathElement::new(vec![(-7, 7), (7, -7)], s)])?;
    }
    Ok(())
}

/// The recommended optimum (a red star) and the unconstrained one (a white
/// diamond), each labelled with its setting and fitted loss of `lang`,
/// where the label covers the fewest cells.
fn draw_optima(
    root: &Area,
    chart: &Plot,
    sweep: &SweepReport,
    rec: &Recommendation,
    lang: Lang,
) -> Result<()> {
    let px = |s: &Setting| chart.backend_coord(&(s.almr, s.lr.log10()));
    let loss = |s: &Setting| match lang {
        Lang::Zh => s.zh_loss,
        Lang::En => s.en_loss,
    };
    let label = |what: &str, s: &Setting| {
        let (r, lr, l) = (s.almr, s.lr, loss(s));
        format!("{what}: r {r:.3}, η {lr:.2e}, {} {l:.3}", lang.name())
    };
    let u = &rec.unconstrained;
    let same = rec
        .recommended
        .is_some_and(|s| s.almr == u.almr && s.lr == u.lr);
    let markers = (sweep.cells.iter().map(|c| (c.almr, c.lr.log10()))).chain(
        rec.recommended
            .iter()
            .chain([u])
            .map(|s| (s.almr, s.lr.log10())),
    );
    let mut taken: Vec<PixelBox> = markers
        .map(|at| chart.backend_coord(&at))
        .map(|(x, y)| [(x - 10, y - 10), (x + 10, y + 10)])
        .collect();
    if let Some(s) = &rec.recommended {
        let what = if same {
            "recommended (= unconstrained)"
        } else {
            "recommended"
        };
        star(root, px(s))?;
        taken.push(tag(root, chart, px(s), &label(what, s), &taken)?);
    }
    if !same && u.almr.is_finite() {
        diamond(root, px(u))?;
        tag(root, chart, px(u), &label("unconstrained", u), &taken)?;
    }
    Ok(())
}

/// A five-pointed star of `RECOMMENDED` centred at `c`.
fn star(root: &Area, c: (i32, i32)) -> Result<()> {
    let points: Vec<(i32, i32)> = (0..10)
        .map(|k| {
            let radius = if k % 2 == 0 { 13.0 } else { 5.5 };
            let a = std::f64::consts::PI * (k as f64 / 5.0 - 0.5);
            let p = (radius * a.cos(), radius * a.sin());
            (c.0 + p.0.round() as i32, c.1 + p.1.round() as i32)
        })
        .collect();
    root.draw(&Polygon::new(points.clone(), RECOMMENDED.filled()))?;
    let mut outline = points;
    outline.push(outline[0]);
    root.draw(&PathElement::new(outline, BLACK.stroke_width(1)))?;
    Ok(())
}

/// A white diamond centred at `c`.
fn diamond(root: &Area, c: (i32, i32)) -> Result<()> {
    let d = 9;
    let points = vec![
        (c.0, c.1 - d),
        (c.0 + d, c.1),
        (c.0, c.1 + d),
        (c.0 - d, c.1),
    ];
    root.draw(&Polygon::new(points.clone(), WHITE.filled()))?;
    let mut outline = points;
    outline.push(outline[0]);
    root.draw(&PathElement::new(outline, BLACK.stroke_width(2)))?;
    Ok(())
}

/// A box in pixels: its top left and bottom right corners.
type PixelBox = [(i32, i32); 2];

/// How many of `taken` `b` overlaps.
fn overlaps(b: &PixelBox, taken: &[PixelBox]) -> usize {
    let apart =
        |t: &PixelBox| b[1].0 < t[0].0 || t[1].0 < b[0].0 || b[1].1 < t[0].1 || t[1].1 < b[0].1;
    taken.iter().filter(|t| !apart(t)).count()
}

/// `text` on a white box beside the marker at `c`, inside the plot, where
/// it overlaps the fewest of `taken` (cells and labels); returns the box.
fn tag(
    root: &Area,
    chart: &Plot,
    c: (i32, i32),
    text: &str,
    taken: &[PixelBox],
) -> Result<PixelBox> {
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let (w, h) = (text_width(text, 12.0) + 12, 20);
    let inside = |b: &PixelBox| {
        xr.start <= b[0].0 && b[1].0 <= xr.end && yr.start <= b[0].1 && b[1].1 <= yr.end
    };
    let at = |side: i32, x: i32| {
        let y = c.1 + side * 24 - h / 2;
        [(x, y), (x + w, y + h)]
    };
    let best = ([-1, 1].into_iter())
        .flat_map(|side| [c.0 - w / 2, c.0 - 12, c.0 + 12 - w].map(|x| at(side, x)))
        .min_by_key(|b| (!inside(b), overlaps(b, taken)))
        .unwrap_or(at(-1, c.0));
    root.draw(&Rectangle::new(best, WHITE.mix(0.88).filled()))?;
    root.draw(&Rectangle::new(best, BLACK.mix(0.5).stroke_width(1)))?;
    let style = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    root.draw(&Text::new(
        text.to_string(),
        (best[0].0 + 6, best[0].1 + h / 2),
        style,
    ))?;
    Ok(best)
}

/// The colour bar: a band per level, equal heights, labelled at the
/// levels, titled `title`.
fn draw_bar(area: &Area, scale: &Scale, title: &str) -> Result<()> {
    let (top, bottom, x) = (52, SIZE.1 as i32 - KEY as i32 - 56, 8);
    let n = scale.bands() as i32;
    let h = (bottom - top) as f64 / n as f64;
    let y = |k: i32| bottom - (h * k as f64).round() as i32;
    for k in 0..n {
        let rect = [(x, y(k + 1)), (x + 22, y(k))];
        area.draw(&Rectangle::new(rect, scale.colour(k as usize).filled()))?;
    }
    area.draw(&Rectangle::new(
        [(x, top), (x + 22, bottom)],
        BLACK.stroke_width(1),
    ))?;
    let left =
        |size| TextStyle::from((FONT, size).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (k, label) in scale.labels().into_iter().enumerate() {
        area.draw(&Text::new(label, (x + 27, y(k as i32)), left(12)))?;
    }
    area.draw(&Text::new(title.to_string(), (x - 4, top - 30), left(13)))?;
    area.draw(&Text::new("loss".to_string(), (x - 4, top - 14), left(13)))?;
    Ok(())
}

/// What the key of a surface chart explains.
#[derive(Clone, Copy)]
enum Glyph {
    /// A cell, filled with its observed loss.
    Cell,
    /// A diverged cell.
    Diverged,
    /// The recommended optimum.
    Recommended,
    /// The unconstrained optimum.
    Unconstrained,
    /// η*(r) of the chart's language.
    LrOpt(Lang),
    /// η*(r) of the other language.
    OtherLrOpt(Lang),
    /// The region past the English limit.
    Limit(f64),
}

impl Glyph {
    fn text(self) -> String {
        match self {
            Glyph::Cell => "cell (fill: observed loss)".into(),
            Glyph::Diverged => "diverged".into(),
            Glyph::Recommended => "recommended".into(),
            Glyph::Unconstrained => "unconstrained optimum".into(),
            Glyph::LrOpt(l) | Glyph::OtherLrOpt(l) => format!("fitted η*(r), {}", l.name()),
            Glyph::Limit(x) => format!("faded: fitted en > limit {x:.3}"),
        }
    }

    /// Draws the glyph in the 24 pixels from `x`, centred on `y`.
    fn draw(self, area: &Area, x: i32, y: i32) -> Result<()> {
        let c = (x + 12, y);
        match self {
            Glyph::Cell => {
                area.draw(&Circle::new(c, 7, RGBColor(0x21, 0x91, 0x8c).filled()))?;
                area.draw(&Circle::new(c, 7, BLACK.stroke_width(2)))?;
            }
            Glyph::Diverged => {
                let s = BLACK.stroke_width(3);
                area.draw(&PathElement::new([(c.0 - 6, y - 6), (c.0 + 6, y + 6)], s))?;
                area.draw(&PathElement::new([(c.0 - 6, y + 6), (c.0 + 6, y - 6)], s))?;
            }
            Glyph::Recommended => star(area, c)?,
            Glyph::Unconstrained => diamond(area, c)?,
            Glyph::LrOpt(_) => area.draw(&PathElement::new(
                [(x, y), (x + 24, y)],
                BLACK.stroke_width(2),
            ))?,
            Glyph::OtherLrOpt(_) => {
                let s = BLACK.stroke_width(2);
                area.draw(&plotters::element::DashedPathElement::new(
                    [(x, y), (x + 24, y)],
                    6,
                    4,
                    s,
                ))?
            }
            Glyph::Limit(_) => {
                let r = [(x, y - 8), (x + 24, y + 8)];
                area.draw(&Rectangle::new(r, RGBColor(0xb0, 0xc8, 0xc6).filled()))?;
                area.draw(&Rectangle::new(r, BLACK.stroke_width(2)))?;
            }
        }
        Ok(())
    }
}

/// The key of a fitted chart of `lang`.
fn fitted_key(lang: Lang, limit: f64) -> Vec<Glyph> {
    let other = match lang {
        Lang::Zh => Lang::En,
        Lang::En => Lang::Zh,
    };
    vec![
        Glyph::Cell,
        Glyph::Diverged,
        Glyph::Recommended,
        Glyph::Unconstrained,
        Glyph::LrOpt(lang),
        Glyph::OtherLrOpt(other),
        Glyph::Limit(limit),
    ]
}

/// Draws the key: each glyph, then what it means; rows wrap.
fn draw_key(area: &Area, glyphs: &[Glyph]) -> Result<()> {
    let texts: Vec<String> = glyphs.iter().map(|g| g.text()).collect();
    let names: Vec<&str> = texts.iter().map(String::as_str).collect();
    let style = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for ((g, t), (row, x)) in glyphs
        .iter()
        .zip(&texts)
        .zip(charts::key_layout(&names, SIZE.0))
    {
        let y = (row * charts::KEY_ROW + charts::KEY_ROW / 2) as i32 + 4;
        g.draw(area, x, y)?;
        area.draw(&Text::new(t.clone(), (x + 30, y), style.clone()))?;
    }
    Ok(())
}
