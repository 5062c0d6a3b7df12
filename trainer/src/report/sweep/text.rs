//! The table `almr-train report` prints of a sweep: a header line, one row
//! per cell, then the recommendation and the notes.

use std::fmt;

use super::super::text::{columns, loss, si};
use super::{CellRow, SweepReport};
use crate::sweep::recommend::{sci, Setting};
use crate::sweep::Recommendation;

/// `yes`, `no`, or `-` when unknown.
fn yes_no(x: Option<bool>) -> &'static str {
    match x {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    }
}

fn header() -> Vec<String> {
    let names = [
        "almr",
        "lr",
        "steps",
        "tokens",
        "val zh",
        "val en",
        "diverged",
        "en ≤ limit",
        "run",
    ];
    names.map(String::from).into()
}

fn row(c: &CellRow) -> Vec<String> {
    vec![
        format!("{:.3}", c.almr),
        sci(c.lr),
        c.steps.map_or_else(|| "-".into(), |s| s.to_string()),
        si(c.tokens),
        loss(c.zh),
        loss(c.en),
        yes_no(Some(c.diverged)).into(),
        yes_no(c.feasible).into(),
        c.run
            .as_ref()
            .map_or_else(|| "-".into(), |r| r.display().to_string()),
    ]
}

/// `almr 0.500 lr 1.82e-4 (fitted zh 2.1491, en 2.3587)`.
pub(crate) fn setting(s: &Setting) -> String {
    format!(
        "almr {:.3} lr {} (fitted zh {:.4}, en {:.4})",
        s.almr,
        sci(s.lr),
        s.zh_loss,
        s.en_loss
    )
}

/// The edges of the swept range the recommended (else the unconstrained)
/// optimum lies on that a wider grid can pass (not ALMR 0 or 1), and what
/// to sweep there.
pub(crate) fn edges(rec: &Recommendation) -> Vec<String> {
    let s = rec.recommended.unwrap_or(rec.unconstrained);
    if !rec.on_grid_edge {
        return Vec::new();
    }
    let near = |a: f64, b: f64, span: f64| (a - b).abs() <= 1e-9 * span.abs().max(1.0);
    let ([r0, r1], [l0, l1]) = (rec.region.almr, rec.region.ln_lr);
    let (lr0, lr1) = (sci(l0.exp()), sci(l1.exp()));
    let edges = [
        (
            near(s.almr, r0, r1 - r0) && r0 > 0.0,
            format!("the lowest ALMR swept ({r0:.3}): add lower ones"),
        ),
        (
            near(s.almr, r1, r1 - r0) && r1 < 1.0,
            format!("the highest ALMR swept ({r1:.3}): add higher ones"),
        ),
        (
            near(s.lr.ln(), l0, l1 - l0),
            format!("the lowest learning rate swept ({lr0}): add lower ones"),
        ),
        (
            near(s.lr.ln(), l1, l1 - l0),
            format!("the highest learning rate swept ({lr1}): add higher ones"),
        ),
    ];
    edges.into_iter().filter(|e| e.0).map(|e| e.1).collect()
}

/// The recommendation's lines: the optima, the fit's quality, the grid
/// edge, the big run's commands.
fn write_fit(f: &mut fmt::Formatter<'_>, rec: &Recommendation) -> fmt::Result {
    match &rec.recommended {
        Some(s) => writeln!(f, "recommended: {}", setting(s))?,
        None => writeln!(
            f,
            "recommended: none: {}",
            rec.reason.as_deref().unwrap_or("")
        )?,
    }
    writeln!(f, "unconstrained: {}", setting(&rec.unconstrained))?;
    let (zh, en) = (&rec.fit.zh.fit, &rec.fit.en.fit);
    writeln!(
        f,
        "fit: zh R² {:.4}, LOO RMSE {:.4}; en R² {:.4}, LOO RMSE {:.4} (log L)",
        zh.r2, zh.loo_rmse, en.r2, en.loo_rmse
    )?;
    let edges = edges(rec);
    if !edges.is_empty() {
        writeln!(
            f,
            "on the grid's edge, at {}: the optimum may lie outside the swept range; extend the grid and sweep again",
            edges.join("; ")
        )?;
    }
    if !rec.commands.is_empty() {
        writeln!(f, "the big run:")?;
    }
    rec.commands.iter().try_for_each(|c| writeln!(f, "  {c}"))
}

impl SweepReport {
    /// The header line: the cells, the base loss, the English limit.
    pub(crate) fn headline(&self) -> String {
        let diverged = self.cells.iter().filter(|c| c.diverged).count();
        let limit = match (self.base_en_loss, self.en_limit) {
            (Some(b), Some(l)) => format!(
                "base en loss {b:.4}; English limit {l:.4} (tolerance {})",
                self.tolerance
            ),
            _ => "no base en loss".into(),
        };
        format!("{} cells ({diverged} diverged); {limit}", self.cells.len())
    }
}

impl fmt::Display for SweepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "sweep {}: {}", self.name(), self.headline())?;
        if !self.cells.is_empty() {
            let mut rows = vec![header()];
            rows.extend(self.cells.iter().map(row));
            columns(f, &rows)?;
        }
        match (&self.recommendation, &self.no_fit) {
            (Some(rec), _) => write_fit(f, rec)?,
            (None, why) => writeln!(f, "no fit: {}", why.as_deref().unwrap_or(""))?,
        }
        self.notes.iter().try_for_each(|n| writeln!(f, "note: {n}"))
    }
}
