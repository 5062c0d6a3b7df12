//! The self-contained HTML report of `almr stats --html`: tables and inline
//! SVG charts, no scripts, no external files.

use std::fmt::Write as _;
use std::path::Path;

use super::{charts, GroupStats, MixStats, Stats};
use crate::error::{Error, Result};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn group_table(html: &mut String, title: &str, groups: &[GroupStats]) {
    let _ = write!(
        html,
        "<h2>{title}</h2>\n<table>\n<tr><th>name</th><th>lang</th><th>additional</th>\
         <th>read</th><th>kept</th><th>rejected</th><th>malformed</th><th>tokens</th>\
         <th>token share</th><th>exact dedup</th><th>near dedup</th>\
         <th>length p10 / p50 / p90 / p99 / max</th></tr>\n"
    );
    for g in groups {
        let c = &g.counts;
        let l = &g.lengths;
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{} / {} / {} / {} / {}</td></tr>",
            esc(&g.name),
            esc(&g.language),
            if g.additional { "yes" } else { "no" },
            c.read,
            c.kept,
            c.rejected.total,
            c.malformed.total,
            c.tokens,
            pct(g.token_share),
            pct(g.exact_dedup_rate),
            pct(g.near_dedup_rate),
            l.p10,
            l.p50,
            l.p90,
            l.p99,
            l.max
        );
    }
    html.push_str("</table>\n");
}

/// The document head and the page title.
fn head(html: &mut String, stats: &Stats) {
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>almr stats: {out}</title>\n<style>\
         body{{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}}\
         table{{border-collapse:collapse;margin:8px 0 20px}}\
         th,td{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
         th{{background:#f0f0f0}} td:first-child{{text-align:left}}\
         span.key{{display:inline-block;width:12px;height:12px;margin:0 4px 0 14px}}\
         .charts{{display:flex;flex-wrap:wrap;gap:12px}} svg{{border:1px solid #ddd}}\
         </style></head><body>\n<h1>almr stats</h1>\n<p>Build: <code>{out}</code></p>\n",
        out = esc(&stats.out.display().to_string())
    );
}

/// The table of mixes, one row each.
fn mix_table(html: &mut String, mixes: &[MixStats]) {
    html.push_str("<h2>Mixes</h2>\n");
    if mixes.is_empty() {
        html.push_str("<p>No mixes yet: make one with <code>almr mix</code>.</p>\n");
        return;
    }
    html.push_str(
        "<table>\n<tr><th>mix</th><th>samples</th><th>seq_len</th><th>tokens</th>\
         <th>target ALMR</th><th>achieved ALMR</th><th>worst window deviation</th>\
         <th>epochs per source</th></tr>\n",
    );
    for m in mixes {
        let epochs: Vec<String> = m
            .sources
            .iter()
            .map(|s| format!("{} {:.2}", esc(&s.name), s.epochs))
            .collect();
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td>\
             <td>{:.4} ({} samples)</td><td>{}</td></tr>",
            esc(&m.name),
            m.samples,
            m.seq_len,
            m.tokens,
            m.target_almr,
            m.achieved_almr,
            m.max_window_deviation,
            m.window,
            epochs.join(", ")
        );
    }
    html.push_str("</table>\n");
}

/// The charts: token shares with their key, the ALMR curves, the length
/// histograms and the reject reasons.
fn chart_sections(html: &mut String, stats: &Stats) -> Result<()> {
    html.push_str("<h2>Token shares</h2>\n<p>");
    for (i, s) in stats.sources.iter().enumerate() {
        let _ = write!(
            html,
            "<span class=\"key\" style=\"background:{}\"></span>{} ({}{}) ",
            charts::css_colour(i),
            esc(&s.name),
            esc(&s.language),
            if s.additional { ", additional" } else { "" }
        );
    }
    html.push_str("</p>\n");
    html.push_str(&charts::token_shares(stats)?);
    if !stats.mixes.is_empty() {
        html.push_str("\n<h2>ALMR along the stream</h2>\n<div class=\"charts\">\n");
        for m in &stats.mixes {
            html.push_str(&charts::almr_curve(m)?);
            html.push('\n');
        }
        html.push_str("</div>\n");
    }
    html.push_str("<h2>Document lengths</h2>\n<div class=\"charts\">\n");
    for (i, l) in stats.languages.iter().enumerate() {
        html.push_str(&charts::length_histogram(l, i)?);
        html.push('\n');
    }
    html.push_str("</div>\n<h2>Rejected and malformed records</h2>\n");
    if stats
        .sources
        .iter()
        .all(|s| s.counts.rejected.total + s.counts.malformed.total == 0)
    {
        html.push_str("<p>None: every record read was kept.</p>\n");
    } else {
        html.push_str(&charts::reject_reasons(stats)?);
    }
    Ok(())
}

/// Renders the report.
pub fn render(stats: &Stats) -> Result<String> {
    let mut html = String::new();
    head(&mut html, stats);
    group_table(&mut html, "Sources", &stats.sources);
    group_table(&mut html, "Languages", &stats.languages);
    html.push_str(
        "<p>Dedup rates are shares of the records read. Lengths are kept documents \
         in tokens, EOS included.</p>\n",
    );
    mix_table(&mut html, &stats.mixes);
    chart_sections(&mut html, stats)?;
    html.push_str("\n</body></html>\n");
    Ok(html)
}

/// Renders the report and writes it to `path`.
pub fn write(stats: &Stats, path: &Path) -> Result<()> {
    let page = render(stats)?;
    crate::fsutil::write_atomic(path, page.as_bytes()).map_err(Error::file("writing", path))
}
