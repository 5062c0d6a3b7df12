//! The tables of the report: per source and per language, the mixes, and
//! each mix's validation split.

use std::fmt::Write as _;

use super::esc;
use crate::stats::{GroupStats, MixStats, ValidSplit};

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

/// A table of sources or languages.
pub(super) fn group_table(html: &mut String, groups: &[GroupStats]) {
    html.push_str(
        "<table>\n<tr><th>name</th><th>lang</th><th>additional</th>\
         <th>read</th><th>kept</th><th>rejected</th><th>malformed</th><th>tokens</th>\
         <th>token share</th><th>exact dedup</th><th>near dedup</th>\
         <th>length p10 / p50 / p90 / p99 / max</th></tr>\n",
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

/// The table of mixes, one row each.
pub(super) fn mix_table(html: &mut String, mixes: &[MixStats]) {
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

/// One mix's validation split: per language, the documents held out, their
/// tokens and the windows cut from them, then the totals.
pub(super) fn valid_table(html: &mut String, m: &MixStats) {
    let name = esc(&m.name);
    let _ = write!(
        html,
        "<div class=\"valid\"><h3>{name}</h3>\n<table data-mix=\"{name}\">\n\
         <tr><th>language</th><th>sources</th><th>documents</th><th>tokens</th>\
         <th>windows</th></tr>\n"
    );
    for v in &m.valid {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&v.language),
            esc(&v.sources.join(", ")),
            v.documents,
            v.tokens,
            v.samples
        );
    }
    let sum = |f: fn(&ValidSplit) -> u64| m.valid.iter().map(f).sum::<u64>();
    let _ = writeln!(
        html,
        "<tr class=\"total\"><td>all</td><td></td><td>{}</td><td>{}</td><td>{}</td></tr>\n\
         </table></div>",
        sum(|v| v.documents),
        sum(|v| v.tokens),
        m.valid_samples
    );
}
