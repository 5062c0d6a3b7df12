//! The terminal table of `sweep fit`.

use std::fmt;

use super::recommend::{sci, Setting};
use super::{LangFit, Recommendation};

impl fmt::Display for Recommendation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "cells: {} ({} left out of a fit); base en loss {}; tolerance {}",
            self.cells,
            self.excluded.len(),
            self.base_en_loss,
            self.tolerance
        )?;
        for e in &self.excluded {
            writeln!(
                f,
                "  line {}: almr {} lr {}: {}",
                e.line,
                e.almr,
                sci(e.lr),
                e.why
            )?;
        }
        writeln!(
            f,
            "law: L = E + C·(s+ε)^−γ + k·(ln η − (a + b·r))² [+ B·s^μ/D^β]"
        )?;
        writeln!(f, "  {}", self.fit.tokens_note)?;
        write_lang(f, "zh", &self.fit.zh)?;
        write_lang(f, "en", &self.fit.en)?;
        self.write_optima(f)
    }
}

impl Recommendation {
    fn write_optima(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "English limit: en loss ≤ {:.4}", self.en_limit)?;
        match (&self.recommended, &self.reason) {
            (Some(s), _) => {
                write_setting(f, "recommended", s)?;
                let iv = &self.recommended_intervals;
                writeln!(
                    f,
                    "  90% bootstrap: almr [{:.3}, {:.3}], lr [{}, {}] ({} of {} resamples feasible)",
                    iv[0].lo,
                    iv[0].hi,
                    sci(iv[1].lo),
                    sci(iv[1].hi),
                    self.feasible_resamples,
                    self.fit.resamples
                )?;
            }
            (None, reason) => {
                writeln!(f, "recommended: none: {}", reason.as_deref().unwrap_or(""))?
            }
        }
        write_setting(f, "unconstrained", &self.unconstrained)?;
        if self.on_grid_edge {
            writeln!(
                f,
                "on the grid's edge: extend the grid past it and sweep again"
            )?;
        }
        if !self.commands.is_empty() {
            writeln!(f, "the big run:")?;
        }
        self.commands.iter().try_for_each(|c| writeln!(f, "  {c}"))
    }
}

fn write_setting(f: &mut fmt::Formatter<'_>, what: &str, s: &Setting) -> fmt::Result {
    writeln!(
        f,
        "{what}: almr {:.3} lr {} (fitted zh {:.4}, en {:.4}){}",
        s.almr,
        sci(s.lr),
        s.zh_loss,
        s.en_loss,
        if s.on_grid_edge { " [grid edge]" } else { "" }
    )
}

fn write_lang(f: &mut fmt::Formatter<'_>, name: &str, l: &LangFit) -> fmt::Result {
    writeln!(
        f,
        "{name}: {} cells, R² {:.4}, LOO RMSE {:.4} (log L)",
        l.fit.cells, l.fit.r2, l.fit.loo_rmse
    )?;
    for (i, (p, v)) in l.fit.law.named().into_iter().enumerate() {
        let (lo, hi) = l
            .intervals
            .get(i)
            .map_or((f64::NAN, f64::NAN), |iv| (iv.lo, iv.hi));
        writeln!(f, "  {p:<6} {v:>12.5}   90% [{lo:.5}, {hi:.5}]")?;
    }
    let curve: Vec<String> = (l.lr_opt.iter())
        .map(|p| format!("{:.2}→{}", p.almr, sci(p.lr)))
        .collect();
    writeln!(f, "  η*(r): {}", curve.join("  "))
}
