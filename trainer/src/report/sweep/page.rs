//! A sweep's section of the HTML page: the recommendation in words, the
//! fitted loss surfaces, the observed trade-off, the table of cells, and
//! every cell's curves.

use std::fmt::Write as _;

use super::super::markup::{chart_row, esc};
use super::super::text::{loss, si};
use super::curves::{self, lr_colour, lr_name, Metric};
use super::text::{edges, setting};
use super::{surface, CellRow, SweepReport};
use crate::error::Result;
use crate::sweep::cells::Lang;
use crate::sweep::recommend::sci;
use crate::sweep::Recommendation;

/// The page's style rules of a sweep's section.
pub const CSS: &str = "div.rec{background:#f6f8fa;border:1px solid #d0d7de;padding:4px 16px;margin:8px 0 16px;max-width:1380px}\
    p.big{font-size:1.25em} pre{background:#fff;border:1px solid #ddd;padding:8px;overflow-x:auto}\
    p.edge{background:#fff3cd;border:1px solid #e0b100;padding:6px 10px;color:#5c4400}\
    p.note{color:#555} tr.diverged td{color:#999} td.over{color:#a61b1b}\
    .curves{display:grid;grid-template-columns:repeat(3,auto);gap:8px;justify-content:start}";

/// Writes the section of `sweep`.
pub fn section(html: &mut String, sweep: &SweepReport) -> Result<()> {
    let _ = writeln!(html, "<h2>Sweep {}</h2>", esc(&sweep.name()));
    let _ = writeln!(html, "<p>{}</p>", esc(&sweep.headline()));
    match &sweep.recommendation {
        Some(rec) => recommendation(html, sweep, rec),
        None => {
            let why = sweep.no_fit.as_deref().unwrap_or("");
            let _ = writeln!(
                html,
                "<p class=\"warn\">No fit: {}. The charts show the cells as observed.</p>",
                esc(why)
            );
        }
    }
    for n in &sweep.notes {
        let _ = writeln!(html, "<p class=\"note\">Note: {}</p>", esc(n));
    }
    if sweep.cells.is_empty() {
        return Ok(());
    }
    let surfaces = Lang::ALL.map(|l| surface::chart(sweep, l));
    chart_row(
        html,
        "Loss over ALMR × learning rate",
        &surfaces.into_iter().collect::<Result<Vec<_>>>()?,
    );
    let tradeoff = Lang::ALL.map(|l| curves::tradeoff(sweep, l));
    chart_row(
        html,
        "The trade-off: loss by ALMR",
        &tradeoff.into_iter().collect::<Result<Vec<_>>>()?,
    );
    cells_table(html, sweep);
    cell_curves(html, sweep)?;
    settings(html, sweep);
    Ok(())
}

/// The recommendation in words: the setting, its interval, the optimum
/// without the limit, the grid edge, the fit's quality, the commands.
fn recommendation(html: &mut String, sweep: &SweepReport, rec: &Recommendation) {
    html.push_str("<div class=\"rec\">\n");
    let limit = format!(
        "the English limit {:.4} = (1 + {}) × the base's {:.4}",
        rec.en_limit, rec.tolerance, rec.base_en_loss
    );
    match &rec.recommended {
        Some(s) => {
            let _ = writeln!(
                html,
                "<p class=\"big\">Recommended: <b>ALMR {:.3}</b>, <b>peak LR {}</b>: fitted zh loss {:.4}, en loss {:.4}, within {limit}.</p>",
                s.almr, sci(s.lr), s.zh_loss, s.en_loss
            );
            interval(html, rec);
        }
        None => {
            let why = rec.reason.as_deref().unwrap_or("");
            let _ = writeln!(
                html,
                "<p class=\"big warn\">No recommendation: {}</p>",
                esc(why)
            );
        }
    }
    let _ = writeln!(
        html,
        "<p>Without the English limit the least zh loss is at {}.</p>",
        esc(&setting(&rec.unconstrained))
    );
    grid_edge(html, rec);
    fit_quality(html, sweep, rec);
    if !rec.commands.is_empty() {
        let _ = writeln!(
            html,
            "<p>The big run:</p>\n<pre>{}</pre>",
            esc(&rec.commands.join("\n"))
        );
    }
    html.push_str("</div>\n");
}

/// The 90 % bootstrap interval of the recommended setting.
fn interval(html: &mut String, rec: &Recommendation) {
    let iv = &rec.recommended_intervals;
    if let [almr, lr] = &iv[..] {
        let _ = writeln!(
            html,
            "<p>90 % bootstrap interval: ALMR [{:.3}, {:.3}], LR [{}, {}] ({} of {} resamples had a feasible optimum).</p>",
            almr.lo, almr.hi, sci(lr.lo), sci(lr.hi), rec.feasible_resamples, rec.fit.resamples
        );
    }
}

/// The warning that the optimum is on an edge of the grid that a wider
/// grid can pass.
fn grid_edge(html: &mut String, rec: &Recommendation) {
    let what = match &rec.recommended {
        Some(_) => "recommended",
        None => "unconstrained",
    };
    let edges = edges(rec);
    if edges.is_empty() {
        return;
    }
    let _ = writeln!(
        html,
        "<p class=\"edge\"><b>Extend the grid.</b> The {what} optimum is on the edge of the swept range, so the true optimum may lie outside it: it is at {}. Sweep again with the grid extended.</p>",
        esc(&edges.join("; "))
    );
}

/// R² and leave-one-out RMSE per language, and the cells left out.
fn fit_quality(html: &mut String, sweep: &SweepReport, rec: &Recommendation) {
    let lang = |name: &str, f: &crate::sweep::fit::Fit| {
        format!(
            "{name}: {} cells, R² {:.4}, leave-one-out RMSE {:.4}",
            f.cells, f.r2, f.loo_rmse
        )
    };
    let _ = write!(
        html,
        "<p>The fit (log loss): {}; {}. {}.",
        lang("zh", &rec.fit.zh.fit),
        lang("en", &rec.fit.en.fit),
        esc(&rec.fit.tokens_note)
    );
    let out: Vec<String> = (rec.excluded.iter())
        .map(|e| {
            format!(
                "line {} (almr {}, lr {}): {}",
                e.line,
                e.almr,
                sci(e.lr),
                e.why
            )
        })
        .collect();
    if !out.is_empty() {
        let _ = write!(html, " Left out of a fit: {}.", esc(&out.join("; ")));
    }
    let _ = writeln!(html, " {} cells in all.</p>", sweep.cells.len());
}

/// The table of cells.
fn cells_table(html: &mut String, sweep: &SweepReport) {
    html.push_str(
        "<h2>Cells</h2>\n<table>\n<tr><th>almr</th><th>lr</th><th>steps</th><th>tokens</th>\
         <th>val zh</th><th>val en</th><th>diverged</th><th>en ≤ limit</th><th>run</th></tr>\n",
    );
    for c in &sweep.cells {
        let _ = writeln!(html, "{}", cell_row(c));
    }
    html.push_str("</table>\n");
}

fn cell_row(c: &CellRow) -> String {
    let class = if c.diverged {
        " class=\"diverged\""
    } else {
        ""
    };
    let (feasible, over) = match c.feasible {
        Some(true) => ("yes", ""),
        Some(false) => ("no", " class=\"over\""),
        None => ("-", ""),
    };
    format!(
        "<tr{class}><td>{:.3}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{over}>{}</td><td>{}</td><td{over}>{feasible}</td><td>{}</td></tr>",
        c.almr,
        sci(c.lr),
        c.steps.map_or_else(|| "-".into(), |s| s.to_string()),
        si(c.tokens),
        loss(c.zh),
        loss(c.en),
        if c.diverged { "yes" } else { "no" },
        esc(&c.run.as_ref().map_or_else(|| "-".into(), |r| r.display().to_string())),
    )
}

/// Every cell's curves: the key of the learning rates, then a row of
/// charts per ALMR.
fn cell_curves(html: &mut String, sweep: &SweepReport) -> Result<()> {
    html.push_str("<h2>The cells' runs</h2>\n");
    if sweep.runs.is_empty() {
        html.push_str("<p>No cell names a run that could be read.</p>\n");
        return Ok(());
    }
    let _ = write!(
        html,
        "<p>{} runs: a row per ALMR; {}, by training tokens seen. A line per learning rate:",
        sweep.runs.len(),
        Metric::ALL.map(Metric::name).join(", ")
    );
    for lr in sweep.distinct(|c| c.lr) {
        let plotters::style::RGBColor(r, g, b) = lr_colour(sweep, lr);
        let _ = write!(
            html,
            "<span class=\"key\" style=\"background:#{r:02x}{g:02x}{b:02x}\"></span>{}",
            lr_name(lr)
        );
    }
    html.push_str("</p>\n<div class=\"curves\">\n");
    for charts in curves::cell_curves(sweep)? {
        for svg in charts {
            html.push_str(&svg);
            html.push('\n');
        }
    }
    html.push_str("</div>\n");
    Ok(())
}

/// The sweep's settings, folded.
fn settings(html: &mut String, sweep: &SweepReport) {
    if let Some(v) = &sweep.settings {
        let text = serde_json::to_string_pretty(v).unwrap_or_default();
        let _ = writeln!(
            html,
            "<details><summary>The sweep's settings (sweep.json)</summary><pre>{}</pre></details>",
            esc(&text)
        );
    }
}
