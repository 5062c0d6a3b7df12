//! The line charts of a sweep: the observed loss of each language against
//! the ALMR, one line per learning rate (the trade-off: zh falls and en
//! rises as r rises), and the curves of every cell's run, one row of
//! charts per ALMR (training loss, validation loss zh and en by tokens),
//! one line per learning rate. A learning rate has the same colour
//! everywhere.

use std::ops::Range;

use plotters::style::{RGBColor, BLACK};

use super::super::charts::{self, colour, line_chart, run_points, By, Format, Line, Spec};
use super::super::Record;
use super::{CellRow, SweepReport};
use crate::error::Result;
use crate::sweep::cells::Lang;
use crate::sweep::Recommendation;

/// Size of a trade-off chart.
pub const TRADEOFF_SIZE: (u32, u32) = (640, 420);
/// Size of one chart of a cell's curves.
pub const CURVE_SIZE: (u32, u32) = (420, 250);
/// The grey of reference lines.
const GREY: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// The colour of learning rate `lr` of the sweep.
pub fn lr_colour(sweep: &SweepReport, lr: f64) -> RGBColor {
    let lrs = sweep.distinct(|c| c.lr);
    colour(lrs.iter().position(|&x| x == lr).unwrap_or(0))
}

/// `η 1.0e-4`.
pub fn lr_name(lr: f64) -> String {
    format!("η {lr:.1e}")
}

/// The observed loss of `lang` of each cell of learning rate `lr` against
/// its ALMR (NaN where it diverged or has none); of several budgets of an
/// ALMR, the largest.
fn observed_line(sweep: &SweepReport, lr: f64, lang: Lang) -> Vec<(f64, f64)> {
    let mut cells: Vec<&CellRow> = sweep.cells.iter().filter(|c| c.lr == lr).collect();
    cells.sort_by(|a, b| {
        a.almr
            .total_cmp(&b.almr)
            .then(b.tokens.total_cmp(&a.tokens))
    });
    cells.dedup_by(|b, a| a.almr == b.almr);
    let loss = |c: &CellRow| match lang {
        Lang::Zh => c.zh,
        Lang::En => c.en,
    };
    (cells.iter())
        .map(|c| (c.almr, loss(c).filter(|_| !c.diverged).unwrap_or(f64::NAN)))
        .collect()
}

/// The fitted loss of `lang` at learning rate `lr` across the ALMR range.
fn fitted_line(rec: &Recommendation, lr: f64, lang: Lang) -> Vec<(f64, f64)> {
    let law = match lang {
        Lang::Zh => &rec.fit.zh.fit.law,
        Lang::En => &rec.fit.en.fit.law,
    };
    let [a, b] = rec.region.almr;
    (0..=40)
        .map(|i| a + (b - a) * i as f64 / 40.0)
        .map(|r| (r, law.predict(lang, r, lr.ln(), rec.region.tokens)))
        .collect()
}

/// A horizontal line at `y` over the sweep's ALMRs.
fn level(sweep: &SweepReport, y: f64) -> Vec<(f64, f64)> {
    let almr = sweep.distinct(|c| c.almr);
    vec![(almr[0], y), (almr[almr.len() - 1], y)]
}

/// The observed loss of `lang` against the ALMR, a line per learning rate;
/// the fitted law dashed, and for en the English limit.
pub fn tradeoff(sweep: &SweepReport, lang: Lang) -> Result<String> {
    let lrs = sweep.distinct(|c| c.lr);
    let names: Vec<String> = lrs.iter().map(|&lr| lr_name(lr)).collect();
    let mut lines: Vec<Line> = (lrs.iter().zip(&names))
        .map(|(&lr, name)| Line {
            name,
            colour: lr_colour(sweep, lr),
            width: 2,
            dashed: false,
            dots: true,
            points: observed_line(sweep, lr, lang),
        })
        .collect();
    let limit = sweep.en_limit.map(|l| format!("English limit {l:.3}"));
    if let (Some(l), Some(name), Lang::En) = (sweep.en_limit, &limit, lang) {
        let mut line = reference(name, level(sweep, l));
        (line.colour, line.dashed) = (BLACK, false);
        lines.push(line);
    }
    if let Some(rec) = &sweep.recommendation {
        lines.push(reference("fitted law", Vec::new()));
        lines.extend(lrs.iter().map(|&lr| Line {
            name: "",
            colour: lr_colour(sweep, lr),
            width: 1,
            dashed: true,
            dots: false,
            points: fitted_line(rec, lr, lang),
        }));
    }
    let almr = sweep.distinct(|c| c.almr);
    let pad = ((almr[almr.len() - 1] - almr[0]) * 0.04).max(0.02);
    let x = almr[0] - pad..almr[almr.len() - 1] + pad;
    let spec = Spec {
        title: format!(
            "Observed {} loss by ALMR, a line per learning rate",
            lang.name()
        ),
        x_desc: "ALMR r".into(),
        x_format: Format::Fraction,
        y_desc: "validation loss",
        y_format: Format::Loss,
        from_zero: false,
        ranges: Some((x, charts::ranges(&lines, false).1)),
        size: TRADEOFF_SIZE,
        key: true,
    };
    line_chart(&spec, &lines)
}

/// A grey dashed line named `name`.
fn reference<'a>(name: &'a str, points: Vec<(f64, f64)>) -> Line<'a> {
    Line {
        name,
        colour: GREY,
        width: 2,
        dashed: true,
        dots: false,
        points,
    }
}

/// A curve of a run: training loss, or validation loss of a language.
#[derive(Clone, Copy)]
pub enum Metric {
    /// The training loss.
    Training,
    /// The validation loss of a language.
    Validation(Lang),
}

impl Metric {
    /// Training loss, then validation loss zh and en.
    pub const ALL: [Metric; 3] = [
        Metric::Training,
        Metric::Validation(Lang::Zh),
        Metric::Validation(Lang::En),
    ];

    /// `training loss`, `validation loss zh`.
    pub fn name(self) -> String {
        match self {
            Metric::Training => "training loss".into(),
            Metric::Validation(l) => format!("validation loss {}", l.name()),
        }
    }

    fn value(self, r: &Record) -> Option<f64> {
        match self {
            Metric::Training => Some(r.loss),
            Metric::Validation(l) => r.val_loss.get(l.name()).copied(),
        }
    }
}

/// The ranges shared by the charts of `metric`: tokens from 0 to the
/// most of any run; the loss over the runs that did not diverge, past the
/// first tenth of each (the first steps of a run from scratch would
/// flatten the rest), padded.
fn shared_ranges(sweep: &SweepReport, metric: Metric) -> (Range<f64>, Range<f64>) {
    let mut xs = 0.0f64;
    let mut ys = Vec::new();
    for (i, run) in &sweep.runs {
        let points = run_points(&run.records, By::Tokens, |r| metric.value(r));
        let last = points.last().map_or(0.0, |p| p.0);
        xs = xs.max(last);
        if !sweep.cells[*i].diverged {
            ys.extend((points.iter()).filter(|p| p.0 >= last * 0.1).map(|p| p.1));
        }
    }
    ys.retain(|y| y.is_finite());
    let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let y = match lo.is_finite() {
        true => {
            let pad = ((hi - lo) * 0.06).max(hi.abs() * 0.01).max(1e-9);
            lo - pad..hi + pad
        }
        false => 0.0..1.0,
    };
    (0.0..xs.max(1.0) * 1.02, y)
}

/// The chart of `metric` for the runs of the cells of ALMR `almr`.
fn curve(
    sweep: &SweepReport,
    almr: f64,
    metric: Metric,
    ranges: (Range<f64>, Range<f64>),
) -> Result<String> {
    let lines: Vec<Line> = (sweep.runs.iter())
        .filter(|(i, _)| sweep.cells[*i].almr == almr)
        .map(|(i, run)| Line {
            name: "",
            colour: lr_colour(sweep, sweep.cells[*i].lr),
            width: 2,
            dashed: false,
            dots: matches!(metric, Metric::Validation(_)),
            points: run_points(&run.records, By::Tokens, |r| metric.value(r)),
        })
        .collect();
    let spec = Spec {
        title: format!("r {almr:.2}: {}", metric.name()),
        x_desc: charts::By::Tokens.desc().into(),
        x_format: Format::Count,
        y_desc: "loss",
        y_format: Format::Loss,
        from_zero: false,
        ranges: Some(ranges),
        size: CURVE_SIZE,
        key: false,
    };
    line_chart(&spec, &lines)
}

/// The curves of every cell's run: for each ALMR with a run, its charts
/// of [`Metric::ALL`].
pub fn cell_curves(sweep: &SweepReport) -> Result<Vec<Vec<String>>> {
    let ranges = Metric::ALL.map(|m| shared_ranges(sweep, m));
    let mut almrs: Vec<f64> = sweep
        .runs
        .iter()
        .map(|(i, _)| sweep.cells[*i].almr)
        .collect();
    almrs.sort_by(f64::total_cmp);
    almrs.dedup();
    almrs
        .into_iter()
        .map(|a| {
            (Metric::ALL.iter().zip(&ranges))
                .map(|(&m, r)| curve(sweep, a, m, r.clone()))
                .collect()
        })
        .collect()
}
