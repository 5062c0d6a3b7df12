//! The summary table `almr mix` prints: the ALMR asked for and achieved, and
//! how the mix uses each source.

use std::fmt;
use std::path::Path;

use super::index::DIR;
use super::report::MixReport;

/// A [`MixReport`] shown as a table, ending with the files of the mix in
/// the build `out`. Made by [`MixReport::table`].
pub struct MixTable<'a> {
    report: &'a MixReport,
    out: &'a Path,
}

impl MixReport {
    /// The summary table of this mix, made in the build `out`.
    pub fn table<'a>(&'a self, out: &'a Path) -> MixTable<'a> {
        MixTable { report: self, out }
    }
}

impl fmt::Display for MixTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.report;
        match &r.packing {
            None => writeln!(
                f,
                "mix {}: {} samples of {}+1 tokens = {} training tokens, seed {}",
                r.name, r.samples, r.seq_len, r.tokens, r.seed
            )?,
            Some(p) => {
                writeln!(
                    f,
                    "SFT mix {}: {} conversations packed into {} sequences of at most {} tokens, \
                     {} tokens ({} trained), packing efficiency {:.1}%, seed {}",
                    r.name,
                    p.conversations,
                    r.samples,
                    r.seq_len,
                    p.tokens,
                    p.trained_tokens,
                    100.0 * p.efficiency,
                    r.seed
                )?;
                let dropped: u64 = p.sources.iter().map(|s| s.dropped_too_long).sum();
                let cut: u64 = p.sources.iter().map(|s| s.truncated).sum();
                writeln!(
                    f,
                    "longer than {}: {dropped} dropped, {cut} truncated (--too-long {})",
                    r.seq_len, p.too_long
                )?;
            }
        }
        let unit = if r.packing.is_some() {
            "sequence"
        } else {
            "sample"
        };
        writeln!(
            f,
            "ALMR target {:.4}, achieved {:.4}; worst {}-{unit} window off by {:.4}",
            r.target_almr, r.achieved_almr, r.window, r.max_window_deviation
        )?;
        writeln!(
            f,
            "{:<16} {:>4} {:>3} {:>8} {:>8} {:>10} {:>12} {:>7} {:>10} {:>10}",
            "source",
            "lang",
            "add",
            "target",
            "share",
            "samples",
            "tokens_used",
            "epochs",
            "valid_docs",
            "valid_smp"
        )?;
        for s in &r.sources {
            writeln!(
                f,
                "{:<16} {:>4} {:>3} {:>8.4} {:>8.4} {:>10} {:>12} {:>7.3} {:>10} {:>10}",
                s.name,
                s.language,
                if s.additional { "yes" } else { "no" },
                s.target_share,
                s.achieved_share,
                s.samples,
                s.tokens_used,
                s.epochs,
                s.valid_documents,
                s.valid_samples
            )?;
        }
        writeln!(
            f,
            "wrote {} and {}",
            self.out.join(&r.index.path).display(),
            self.out
                .join(DIR)
                .join(format!("{}.json", r.name))
                .display()
        )
    }
}
