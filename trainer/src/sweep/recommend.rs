//! The recommendation: the (ALMR, LR) of least fitted Chinese loss whose
//! fitted English loss stays within `(1 + T)×` the base's, searched on a
//! fine grid inside the cells' ranges and refined around its optimum; the
//! unconstrained optimum; and whether either lies on the edge of the grid.

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

/// The value of point `i` of `n` over `[lo, hi]` (the ends exactly).
fn axis(range: [f64; 2], i: usize, n: usize) -> f64 {
    match i + 1 == n {
        true => range[1],
        false => range[0] + (range[1] - range[0]) * i as f64 / (n - 1) as f64,
    }
}

/// Points per axis of the refinement around an optimum of the grid.
const FINE: usize = 41;
/// The refinement spans this many steps of the grid either side.
const FINE_SPAN: f64 = 2.0;

/// What a search of a box finds.
struct Found {
    recommended: Option<Setting>,
    unconstrained: Option<Setting>,
    least_en: f64,
}

/// Searches `n` × `n` points over the box `bx` (ALMR × ln η) inside
/// `region`, for the laws `[zh, en]`.
fn search(laws: [&Law; 2], region: &Region, bx: [[f64; 2]; 2], n: usize, en_limit: f64) -> Found {
    let mut best: Option<(f64, Setting)> = None;
    let mut free: Option<(f64, Setting)> = None;
    let mut least_en = f64::INFINITY;
    for i in 0..n {
        let r = axis(bx[0], i, n);
        for j in 0..n {
            let ln_eta = axis(bx[1], j, n);
            let s = Setting {
                almr: r,
                lr: ln_eta.exp(),
                zh_loss: laws[0].predict(Lang::Zh, r, ln_eta, region.tokens),
                en_loss: laws[1].predict(Lang::En, r, ln_eta, region.tokens),
                on_grid_edge: region.almr.contains(&r) || region.ln_lr.contains(&ln_eta),
            };
            keep_least(&mut free, s);
            least_en = least_en.min(s.en_loss);
            if s.en_loss <= en_limit {
                keep_least(&mut best, s);
            }
        }
    }
    Found {
        recommended: best.map(|(_, s)| s),
        unconstrained: free.map(|(_, s)| s),
        least_en,
    }
}

/// The box of `FINE_SPAN` grid steps either side of `s`, within `region`.
fn around(s: &Setting, region: &Region) -> [[f64; 2]; 2] {
    let clip = |range: [f64; 2], x: f64| {
        let h = FINE_SPAN * (range[1] - range[0]) / (GRID - 1) as f64;
        [(x - h).max(range[0]), (x + h).min(range[1])]
    };
    [clip(region.almr, s.almr), clip(region.ln_lr, s.lr.ln())]
}

/// Searches the `GRID` × `GRID` grid over `region` for the optima of the
/// laws `zh` and `en`, then a `FINE` × `FINE` grid around each of them.
pub fn optimum(zh: &Law, en: &Law, region: &Region, en_limit: f64) -> Optimum {
    let laws = [zh, en];
    let coarse = search(laws, region, [region.almr, region.ln_lr], GRID, en_limit);
    let fine = |s: Setting| search(laws, region, around(&s, region), FINE, en_limit);
    let recommended = (coarse.recommended).map(|s| fine(s).recommended.unwrap_or(s));
    let unconstrained = (coarse.unconstrained)
        .map(|s| fine(s).unconstrained.unwrap_or(s))
        .unwrap_or(Setting {
            almr: f64::NAN,
            lr: f64::NAN,
            zh_loss: f64::NAN,
            en_loss: f64::NAN,
            on_grid_edge: false,
        });
    Optimum {
        recommended,
        unconstrained,
        en_limit,
        least_en: coarse.least_en,
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
