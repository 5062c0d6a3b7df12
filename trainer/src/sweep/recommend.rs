//! The recommendation: the (ALMR, LR) of least fitted Chinese loss whose
//! fitted English loss stays within `(1 + T)×` the base's, searched on a
//! fine grid inside the cells' ranges; the unconstrained optimum; and
//! whether either lies on the edge of the grid.

use serde::Serialize;

use super::cells::Lang;
use super::fit::Law;

/// Grid points per axis (r and ln η).
pub const GRID: usize = 201;

/// The box searched: the cells' ALMR and ln η ranges, and the token count
/// the losses are predicted at.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Region {
    /// Lowest and highest ALMR of the cells.
    pub almr: [f64; 2],
    /// Lowest and highest ln η of the cells.
    pub ln_lr: [f64; 2],
    /// Tokens the losses are predicted at (the most of any cell).
    pub tokens: f64,
}

/// A point of the grid and the fitted losses there.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Setting {
    /// The ALMR.
    pub almr: f64,
    /// The peak learning rate.
    pub lr: f64,
    /// Fitted Chinese validation loss.
    pub zh_loss: f64,
    /// Fitted English validation loss.
    pub en_loss: f64,
    /// Whether r or ln η is at the edge of the cells' range.
    pub on_grid_edge: bool,
}

/// The constrained and unconstrained optima.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Optimum {
    /// Least zh loss with en loss ≤ the limit; `None` when no grid point
    /// meets it.
    pub recommended: Option<Setting>,
    /// Least zh loss.
    pub unconstrained: Setting,
    /// The English loss allowed, `(1 + T) × base_en_loss`.
    pub en_limit: f64,
    /// The least fitted English loss on the grid.
    pub least_en: f64,
}

/// The value of axis `i` of `GRID` points over `[lo, hi]`.
fn axis(range: [f64; 2], i: usize) -> f64 {
    range[0] + (range[1] - range[0]) * i as f64 / (GRID - 1) as f64
}

/// Searches the grid for the optima of the laws `zh` and `en`.
pub fn optimum(zh: &Law, en: &Law, region: &Region, en_limit: f64) -> Optimum {
    let mut best: Option<(f64, Setting)> = None;
    let mut free: Option<(f64, Setting)> = None;
    let mut least_en = f64::INFINITY;
    for i in 0..GRID {
        let r = axis(region.almr, i);
        for j in 0..GRID {
            let ln_eta = axis(region.ln_lr, j);
            let s = Setting {
                almr: r,
                lr: ln_eta.exp(),
                zh_loss: zh.predict(Lang::Zh, r, ln_eta, region.tokens),
                en_loss: en.predict(Lang::En, r, ln_eta, region.tokens),
                on_grid_edge: i == 0 || j == 0 || i == GRID - 1 || j == GRID - 1,
            };
            keep_least(&mut free, s);
            least_en = least_en.min(s.en_loss);
            if s.en_loss <= en_limit {
                keep_least(&mut best, s);
            }
        }
    }
    let unconstrained = free.map(|(_, s)| s).unwrap_or(Setting {
        almr: f64::NAN,
        lr: f64::NAN,
        zh_loss: f64::NAN,
        en_loss: f64::NAN,
        on_grid_edge: false,
    });
    Optimum {
        recommended: best.map(|(_, s)| s),
        unconstrained,
        en_limit,
        least_en,
    }
}

/// Keeps `s` if its zh loss is lower than the kept one's (first on ties).
fn keep_least(kept: &mut Option<(f64, Setting)>, s: Setting) {
    if kept.as_ref().is_none_or(|(l, _)| s.zh_loss < *l) {
        *kept = Some((s.zh_loss, s));
    }
}

/// A point of the fitted optimal-LR curve.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct LrPoint {
    /// The ALMR.
    pub almr: f64,
    /// `η*(r) = exp(a + b·r)`.
    pub lr: f64,
}

/// `η*(r)` of `law` at 5 ALMRs across the region.
pub fn lr_curve(law: &Law, region: &Region) -> Vec<LrPoint> {
    (0..5)
        .map(|i| {
            let almr = region.almr[0] + (region.almr[1] - region.almr[0]) * i as f64 / 4.0;
            LrPoint {
                almr,
                lr: law.lr_opt(almr),
            }
        })
        .collect()
}

/// The command lines of the big run at `s`.
pub fn commands(s: &Setting) -> Vec<String> {
    let name = format!("almr{}", short(s.almr * 100.0));
    let (r, lr) = (short(s.almr), sci(s.lr));
    vec![
        format!("almr mix OUT --name {name} --almr {r} --seq-len 8192 --tokens N"),
        format!("almr-train train --mix OUT/mix/{name} --lr {lr} --init BASE --out RUN --steps S …"),
        format!("Megatron-LM (pretrain_gpt.py): --lr {lr} on the data of OUT/mix/{name} (see docs/megatron.md)"),
    ]
}

/// `x` with at most 3 decimals, trailing zeros cut.
pub fn short(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// `x` in scientific notation with 3 significant digits, e.g. `3.16e-4`.
pub fn sci(x: f64) -> String {
    format!("{x:.2e}")
}
