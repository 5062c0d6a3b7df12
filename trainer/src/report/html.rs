//! The self-contained HTML page of `almr-train report --html`: a section
//! per sweep ([`super::sweep::page`]), then a summary table per run and
//! inline SVG charts; no scripts, no external files.

use std::fmt::Write as _;
use std::path::Path;

use super::charts::{self, By};
use super::markup::{chart_row, esc};
use super::sweep::{page, SweepReport};
use super::text::{loss, peaks, si, steps};
use super::{Report, Run};
use crate::error::{IoContext, Result};
use crate::eval::MIN_WINDOWS;

/// The document head and the title, naming the sweeps and runs.
fn head(html: &mut String, sweeps: &[SweepReport], report: &Report) {
    let names: Vec<String> = (sweeps.iter().map(|s| s.name()))
        .chain(report.runs.iter().map(|r| r.summary.name.clone()))
        .map(|n| esc(&n))
        .collect();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>almr-train report: {names}</title>\n<style>\
         body{{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}}\
         table{{border-collapse:collapse;margin:8px 0 20px}}\
         th,td{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
         th{{background:#f0f0f0}} td:first-child,th:first-child{{text-align:left}}\
         td.few{{background:#fde2e1}} p.warn{{color:#a61b1b}}\
         span.key{{display:inline-block;width:22px;height:4px;margin:0 6px 3px 14px}}\
         .charts{{display:flex;flex-wrap:wrap;gap:12px}} svg{{border:1px solid #ddd}}\
         .runs{{display:flex;flex-wrap:wrap;gap:0 40px}}{sweep}\
         </style></head><body>\n<h1>almr-train report</h1>\n",
        names = names.join(", "),
        sweep = page::CSS,
    );
}

/// The key of the runs' colours.
fn run_key(html: &mut String, report: &Report) {
    html.push_str("<p>");
    for (i, r) in report.runs.iter().enumerate() {
        let _ = write!(
            html,
            "<span class=\"key\" style=\"background:{}\"></span>{} ",
            charts::css_colour(i),
            esc(&r.summary.name)
        );
    }
    html.push_str("</p>\n");
}

/// Run `i`'s summary: a two-column table, then its warnings.
fn summary(html: &mut String, i: usize, run: &Run) {
    let s = &run.summary;
    let mut rows: Vec<(String, String)> = vec![
        ("directory".into(), esc(&s.dir.display().to_string())),
        ("mix".into(), esc(&s.mix.display().to_string())),
    ];
    if let Some(a) = s.target_almr {
        rows.push(("target ALMR".into(), format!("{a:.3}")));
    }
    rows.push(("steps done / planned".into(), steps(s)));
    rows.push(("training tokens seen".into(), si(s.tokens as f64)));
    rows.push(("last training loss".into(), loss(s.last_loss)));
    for (lang, l) in &s.last_val_loss {
        let at = s.last_val_step.unwrap_or(0);
        rows.push((
            format!("validation loss {lang} (step {at})"),
            loss(Some(*l)),
        ));
    }
    let speed = s.median_tokens_per_s.map_or_else(|| "-".into(), si);
    rows.push(("median tokens/s".into(), speed));
    rows.push(("peak memory".into(), peaks(s)));
    let _ = write!(
        html,
        "<div><h3><span class=\"key\" style=\"background:{}\"></span>{}</h3>\n<table>\n",
        charts::css_colour(i),
        esc(&s.name)
    );
    for (k, v) in rows {
        let _ = writeln!(html, "<tr><td>{k}</td><td>{v}</td></tr>");
    }
    for (lang, n) in s.valid_windows.iter().flatten() {
        let class = if *n < MIN_WINDOWS {
            " class=\"few\""
        } else {
            ""
        };
        let _ = writeln!(
            html,
            "<tr><td>validation windows {}</td><td{class}>{n}</td></tr>",
            esc(lang)
        );
    }
    html.push_str("</table>\n");
    for w in &s.warnings {
        let _ = writeln!(html, "<p class=\"warn\">Warning: {}</p>", esc(w));
    }
    html.push_str("</div>\n");
}

/// The charts: training loss, validation loss per language (by step and
/// by tokens), then learning rate and speed.
fn chart_sections(html: &mut String, report: &Report) -> Result<()> {
    let both = |f: &dyn Fn(By) -> Result<String>| -> Result<Vec<String>> {
        Ok(vec![f(By::Step)?, f(By::Tokens)?])
    };
    chart_row(
        html,
        "Training loss",
        &both(&|by| charts::training_loss(report, by))?,
    );
    let langs = report.languages();
    if langs.is_empty() {
        html.push_str(
            "<h2>Validation loss</h2>\n<p>No validation points yet: \
             <code>--eval-every</code> sets how often a run measures them.</p>\n",
        );
    }
    for lang in &langs {
        let svgs = both(&|by| charts::validation_loss(report, lang, by))?;
        chart_row(html, &format!("Validation loss: {lang}"), &svgs);
    }
    let rest = [
        charts::learning_rate(report)?,
        charts::tokens_per_s(report)?,
    ];
    chart_row(html, "Learning rate and speed", &rest);
    Ok(())
}

/// Renders the page: each sweep's section, then the runs'.
pub fn render(sweeps: &[SweepReport], report: &Report) -> Result<String> {
    let mut html = String::new();
    head(&mut html, sweeps, report);
    for sweep in sweeps {
        page::section(&mut html, sweep)?;
    }
    if !report.runs.is_empty() {
        run_key(&mut html, report);
        html.push_str("<h2>Runs</h2>\n<div class=\"runs\">\n");
        for (i, run) in report.runs.iter().enumerate() {
            summary(&mut html, i, run);
        }
        html.push_str("</div>\n");
        chart_sections(&mut html, report)?;
    }
    html.push_str("\n</body></html>\n");
    Ok(html)
}

/// Renders the page and writes it to `path`.
pub fn write(sweeps: &[SweepReport], report: &Report, path: &Path) -> Result<()> {
    let page = render(sweeps, report)?;
    almr::fsutil::write_atomic(path, page.as_bytes()).at("writing", path)
}
