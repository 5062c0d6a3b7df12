//! The plain-text table `almr stats` prints: per source and per language,
//! then one line per mix.

use std::fmt;

use super::{GroupStats, MixStats, Stats};

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<16} {:>4} {:>9} {:>9} {:>12} {:>7} {:>7} {:>7} {:>7} {:>7}",
            "source/lang",
            "lang",
            "docs",
            "rejected",
            "tokens",
            "share",
            "exact",
            "near",
            "p50",
            "p99"
        )?;
        for g in self.sources.iter().chain(&self.languages) {
            group_row(f, g)?;
        }
        for m in &self.mixes {
            mix_line(f, m)?;
        }
        Ok(())
    }
}

/// One source's or language's row.
fn group_row(f: &mut fmt::Formatter<'_>, g: &GroupStats) -> fmt::Result {
    writeln!(
        f,
        "{:<16} {:>4} {:>9} {:>9} {:>12} {:>6.2}% {:>6.2}% {:>6.2}% {:>7} {:>7}",
        g.name,
        g.language,
        g.counts.kept,
        g.counts.rejected.total,
        g.counts.tokens,
        100.0 * g.token_share,
        100.0 * g.exact_dedup_rate,
        100.0 * g.near_dedup_rate,
        g.lengths.p50,
        g.lengths.p99
    )
}

/// One mix's ALMR and epochs.
fn mix_line(f: &mut fmt::Formatter<'_>, m: &MixStats) -> fmt::Result {
    let epochs: Vec<String> = m
        .sources
        .iter()
        .map(|x| format!("{} {:.2}", x.name, x.epochs))
        .collect();
    writeln!(
        f,
        "mix {}: target ALMR {:.4}, achieved {:.4}, worst window {:.4}; epochs: {}",
        m.name,
        m.target_almr,
        m.achieved_almr,
        m.max_window_deviation,
        epochs.join(", ")
    )
}
