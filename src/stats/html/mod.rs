//! The self-contained HTML report of `almr stats --html`: tables
//! (`tables`) and inline SVG charts, no scripts, no external files. Each
//! section has an `id`; each figure and validation table names its source,
//! language or mix in a `data-` attribute.

mod tables;

use std::fmt::Write as _;
use std::path::Path;

use super::{charts, GroupStats, Stats};
use crate::error::{Error, Result};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The document head and the page title.
fn head(html: &mut String, stats: &Stats) {
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>almr stats: {out}</title>\n<style>\
         body{{font-family:sans-serif;font-size:15px;margin:24px;color:#222;max-width:1400px}}\
         table{{border-collapse:collapse;margin:8px 0 20px}}\
         th,td{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
         th{{background:#f0f0f0}} td:first-child{{text-align:left}}\
         tr.total td{{font-weight:bold}} .valid td:nth-child(2){{text-align:left}}\
         h3{{margin:8px 0 0;font-size:16px}}\
         .charts{{display:flex;flex-wrap:wrap;gap:12px}} svg{{border:1px solid #ddd}}\
         figure{{margin:0}}\
         </style></head><body>\n<h1>almr stats</h1>\n<p>Build: <code>{out}</code></p>\n",
        out = esc(&stats.out.display().to_string())
    );
}

/// Opens the section `id` under the heading `title`.
fn section(html: &mut String, id: &str, title: &str) {
    let _ = write!(html, "<section id=\"{id}\">\n<h2>{title}</h2>\n");
}

/// A figure holding `svg`, named by `attr="value"`.
fn figure(html: &mut String, attr: &str, value: &str, svg: &str) {
    let _ = writeln!(html, "<figure {attr}=\"{}\">{svg}</figure>", esc(value));
}

/// The mixes: one row each, then each one's validation split.
fn mixes(html: &mut String, stats: &Stats) {
    section(html, "mixes", "Mixes");
    if stats.mixes.is_empty() {
        html.push_str("<p>No mixes yet: make one with <code>almr mix</code>.</p>\n</section>\n");
        return;
    }
    tables::mix_table(html, &stats.mixes);
    html.push_str(
        "</section>\n<section id=\"validation\">\n<h2>Validation splits</h2>\n\
         <p>Documents held out of training whole, per language, and the windows \
         (samples of <code>seq_len + 1</code> tokens) cut from them.</p>\n\
         <div class=\"charts\">\n",
    );
    for m in &stats.mixes {
        tables::valid_table(html, m);
    }
    html.push_str("</div>\n</section>\n");
}

/// Token shares, and each mix's deviation from its target ALMR.
fn shares_and_almr(html: &mut String, stats: &Stats) -> Result<()> {
    section(html, "token-shares", "Token shares");
    html.push_str(&charts::token_shares(stats)?);
    html.push_str("\n</section>\n");
    if stats.mixes.is_empty() {
        return Ok(());
    }
    section(html, "almr", "ALMR along the stream");
    html.push_str(
        "<p>Additional samples, less the target's share of the samples: over the \
         whole stream so far, and over the last window. Zero is on target; until \
         the first window is full, the two are the same.</p>\n",
    );
    for m in &stats.mixes {
        figure(html, "data-mix", &m.name, &charts::almr_deviation(m)?);
    }
    html.push_str("</section>\n");
    Ok(())
}

/// Length histograms per language, then per source, over the same bins.
fn lengths(html: &mut String, stats: &Stats) -> Result<()> {
    section(html, "lengths", "Document lengths");
    let bins = charts::length_bins(stats.sources.iter().chain(&stats.languages));
    let groups: [(&str, &str, &[GroupStats], usize); 2] = [
        (
            "By language",
            "data-language",
            &stats.languages,
            stats.sources.len(),
        ),
        ("By source", "data-source", &stats.sources, 0),
    ];
    for (title, attr, groups, first_colour) in groups {
        let _ = write!(html, "<h3>{title}</h3>\n<div class=\"charts\">\n");
        for (i, g) in groups.iter().enumerate() {
            let svg = charts::length_histogram(g, &bins, first_colour + i)?;
            figure(html, attr, &g.name, &svg);
        }
        html.push_str("</div>\n");
    }
    html.push_str("</section>\n");
    Ok(())
}

/// Records removed: per source by stage, then by reason.
fn rejects(html: &mut String, stats: &Stats) -> Result<()> {
    section(html, "rejects", "Rejected and malformed records");
    let none =
        (stats.sources.iter()).all(|s| s.counts.rejected.total + s.counts.malformed.total == 0);
    if none {
        html.push_str("<p>None: every record read was kept.</p>\n");
    } else {
        html.push_str(&charts::rejects_by_source(stats)?);
        html.push('\n');
        html.push_str(&charts::rejects_by_reason(stats)?);
    }
    html.push_str("\n</section>\n");
    Ok(())
}

/// Renders the report.
pub fn render(stats: &Stats) -> Result<String> {
    let mut html = String::new();
    head(&mut html, stats);
    section(&mut html, "sources", "Sources");
    tables::group_table(&mut html, &stats.sources);
    html.push_str("</section>\n");
    section(&mut html, "languages", "Languages");
    tables::group_table(&mut html, &stats.languages);
    html.push_str(
        "<p>Dedup rates are shares of the records read. Lengths are kept documents \
         in tokens, EOS included.</p>\n</section>\n",
    );
    mixes(&mut html, stats);
    shares_and_almr(&mut html, stats)?;
    lengths(&mut html, stats)?;
    rejects(&mut html, stats)?;
    html.push_str("</body></html>\n");
    Ok(html)
}

/// Renders the report and writes it to `path`.
pub fn write(stats: &Stats, path: &Path) -> Result<()> {
    let page = render(stats)?;
    crate::fsutil::write_atomic(path, page.as_bytes()).map_err(Error::file("writing", path))
}
