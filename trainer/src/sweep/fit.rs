//! The law fitted per language over the cells,
//! `L = E + C·(s+ε)^−γ + k·(ln η − (a + b·r))² [+ B·s^μ / D^β]`,
//! by a Huber loss on log L with L-BFGS (More–Thuente line search) from a
//! fixed grid of starts.

use argmin::core::{CostFunction, Error as ArgminError, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use serde::Serialize;

use super::cells::{Cells, Lang};

/// ε of `(s+ε)^−γ`: keeps the share term finite at s = 0.
pub const EPSILON: f64 = 1e-3;
/// δ of the Huber loss on `log L_pred − log L_obs` (a relative error):
/// quadratic below 2 % (the noise of a cell's validation loss), linear
/// above, so one bad cell cannot pull the fit. At δ = 1e-3 the loss is in
/// effect L1 at 1 % noise, and the planted η* came out up to 17.5 % off.
pub const HUBER_DELTA: f64 = 2e-2;
/// L-BFGS iterations per start.
const MAX_ITERS: u64 = 400;

/// The data-size term `B·s^μ / D^β`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TokensTerm {
    /// B (for D in tokens).
    #[serde(rename = "B")]
    pub b: f64,
    /// μ.
    pub mu: f64,
    /// β.
    pub beta: f64,
}

/// The fitted (or planted) law of one language.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Law {
    /// The irreducible loss E.
    #[serde(rename = "E")]
    pub e: f64,
    /// C, the weight of the share term.
    #[serde(rename = "C")]
    pub c: f64,
    /// γ, the share term's exponent.
    pub gamma: f64,
    /// k, the curvature in ln η.
    pub k: f64,
    /// a of `ln η*(r) = a + b·r`.
    pub a: f64,
    /// b of `ln η*(r) = a + b·r`.
    pub b: f64,
    /// The data-size term, when the cells have several token counts.
    pub tokens: Option<TokensTerm>,
}

impl Law {
    /// The loss of `lang` at ALMR `r`, learning rate `exp(ln_eta)`, `d` tokens.
    pub fn predict(&self, lang: Lang, r: f64, ln_eta: f64, d: f64) -> f64 {
        let s = lang.share(r);
        let q = ln_eta - self.a - self.b * r;
        let data = self
            .tokens
            .map_or(0.0, |t| t.b * s.powf(t.mu) / d.powf(t.beta));
        self.e + self.c * (s + EPSILON).powf(-self.gamma) + self.k * q * q + data
    }

    /// The fitted optimal learning rate at ALMR `r`, `exp(a + b·r)`.
    pub fn lr_opt(&self, r: f64) -> f64 {
        (self.a + self.b * r).exp()
    }

    /// The parameters by name, in a fixed order.
    pub fn named(&self) -> Vec<(&'static str, f64)> {
        let mut v = vec![
            ("E", self.e),
            ("C", self.c),
            ("gamma", self.gamma),
            ("k", self.k),
            ("a", self.a),
            ("b", self.b),
        ];
        if let Some(t) = self.tokens {
            v.extend([("B", t.b), ("mu", t.mu), ("beta", t.beta)]);
        }
        v
    }
}

/// One cell as the fit sees it.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    /// The ALMR.
    pub r: f64,
    /// ln η.
    pub ln_eta: f64,
    /// Tokens over the reference count (the geometric mean of the cells').
    pub d: f64,
    /// ln of the observed loss.
    pub ln_l: f64,
    /// The index of its cell in the table.
    pub cell: usize,
}

/// The usable cells of one language.
#[derive(Clone, Debug)]
pub struct Data {
    /// The language.
    pub lang: Lang,
    /// Its points.
    pub points: Vec<Point>,
    /// The token count D is divided by inside the fit.
    pub d_ref: f64,
    /// Whether the cells have several token counts (the `B` term is fitted).
    pub with_tokens: bool,
}

impl Data {
    /// The usable cells of `lang`, and whether the whole table has several
    /// token counts.
    pub fn new(cells: &Cells, lang: Lang) -> Data {
        let with_tokens = distinct(cells.cells.iter().map(|c| c.tokens)) > 1;
        let used: Vec<_> = (cells.cells.iter().enumerate())
            .filter_map(|(i, c)| Some((i, c, c.loss(lang)?)))
            .collect();
        let n = used.len().max(1) as f64;
        let d_ref = (used.iter().map(|(_, c, _)| c.tokens.ln()).sum::<f64>() / n).exp();
        let points = used
            .iter()
            .map(|&(cell, c, l)| Point {
                r: c.almr,
                ln_eta: c.lr.ln(),
                d: c.tokens / d_ref,
                ln_l: l.ln(),
                cell,
            })
            .collect();
        Data {
            lang,
            points,
            d_ref,
            with_tokens,
        }
    }

    /// The same language and settings over other points.
    pub fn with_points(&self, points: Vec<Point>) -> Data {
        Data {
            points,
            ..self.clone()
        }
    }

    /// The number of free parameters.
    pub fn n_params(&self) -> usize {
        if self.with_tokens {
            9
        } else {
            6
        }
    }

    /// Whether the points can determine the law; why not, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        let (n, p) = (self.points.len(), self.n_params());
        if n <= p {
            return Err(format!(
                "{n} usable cells for {p} parameters: need at least {}",
                p + 1
            ));
        }
        let rs = distinct(self.points.iter().map(|q| q.r));
        let etas = distinct(self.points.iter().map(|q| q.ln_eta));
        if rs < 3 || etas < 3 {
            return Err(format!(
                "{rs} distinct ALMR and {etas} distinct learning rates among the usable cells: need at least 3 of each"
            ));
        }
        Ok(())
    }

    /// The law of unconstrained parameters `theta`, in raw tokens.
    pub fn law(&self, theta: &[f64]) -> Law {
        let t = Theta::new(theta);
        let mut law = t.law();
        if let Some(term) = law.tokens.as_mut() {
            term.b *= self.d_ref.powf(term.beta);
        }
        law
    }
}

/// The number of distinct values (compared exactly).
fn distinct(values: impl Iterator<Item = f64>) -> usize {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v.len()
}

/// The positive parameters through exp, clamped so that nothing overflows.
struct Theta {
    e: f64,
    c: f64,
    gamma: f64,
    k: f64,
    a: f64,
    b: f64,
    tokens: Option<TokensTerm>,
}

fn pos(x: f64, hi: f64) -> f64 {
    x.clamp(-40.0, hi).exp()
}

impl Theta {
    fn new(t: &[f64]) -> Theta {
        Theta {
            e: pos(t[0], 20.0),
            c: pos(t[1], 20.0),
            gamma: pos(t[2], 3.0),
            k: pos(t[3], 20.0),
            a: t[4],
            b: t[5],
            tokens: (t.len() == 9).then(|| TokensTerm {
                b: pos(t[6], 20.0),
                mu: pos(t[7], 3.0),
                beta: pos(t[8], 3.0),
            }),
        }
    }

    fn law(&self) -> Law {
        Law {
            e: self.e,
            c: self.c,
            gamma: self.gamma,
            k: self.k,
            a: self.a,
            b: self.b,
            tokens: self.tokens,
        }
    }

    /// The prediction at `p` and its gradient in the unconstrained parameters.
    fn predict_grad(&self, lang: Lang, p: &Point, grad: &mut [f64]) -> f64 {
        let s = lang.share(p.r);
        let share = self.c * (s + EPSILON).powf(-self.gamma);
        let q = p.ln_eta - self.a - self.b * p.r;
        grad[0] = self.e;
        grad[1] = share;
        grad[2] = -share * (s + EPSILON).ln() * self.gamma;
        grad[3] = self.k * q * q;
        grad[4] = -2.0 * self.k * q;
        grad[5] = -2.0 * self.k * q * p.r;
        let mut data = 0.0;
        if let Some(t) = self.tokens {
            data = t.b * s.powf(t.mu) * p.d.powf(-t.beta);
            grad[6] = data;
            grad[7] = if s > 0.0 { data * s.ln() * t.mu } else { 0.0 };
            grad[8] = -data * p.d.ln() * t.beta;
        }
        self.e + share + self.k * q * q + data
    }
}

/// The Huber objective over `data` and its gradient.
fn objective(data: &Data, theta: &[f64]) -> (f64, Vec<f64>) {
    let t = Theta::new(theta);
    let mut grad = vec![0.0; theta.len()];
    let mut g = vec![0.0; theta.len()];
    let mut cost = 0.0;
    for p in &data.points {
        let pred = t.predict_grad(data.lang, p, &mut g);
        let rho = pred.ln() - p.ln_l;
        cost += huber(rho);
        let w = rho.clamp(-HUBER_DELTA, HUBER_DELTA) / pred;
        grad.iter_mut().zip(&g).for_each(|(o, gi)| *o += w * gi);
    }
    (cost, grad)
}

/// The Huber loss of a residual.
fn huber(rho: f64) -> f64 {
    match rho.abs() <= HUBER_DELTA {
        true => 0.5 * rho * rho,
        false => HUBER_DELTA * (rho.abs() - 0.5 * HUBER_DELTA),
    }
}

struct Problem<'a>(&'a Data);

impl CostFunction for Problem<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Vec<f64>) -> Result<f64, ArgminError> {
        Ok(objective(self.0, p).0)
    }
}

impl Gradient for Problem<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, p: &Vec<f64>) -> Result<Vec<f64>, ArgminError> {
        Ok(objective(self.0, p).1)
    }
}

/// L-BFGS from `start`: the best parameters it reached and their cost (the
/// start itself when the solver fails).
fn minimize(data: &Data, start: &[f64]) -> (Vec<f64>, f64) {
    let fallback = (start.to_vec(), objective(data, start).0);
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 7);
    let Ok(solver) = solver
        .with_tolerance_grad(1e-12)
        .and_then(|s| s.with_tolerance_cost(1e-16))
    else {
        return fallback;
    };
    let run = Executor::new(Problem(data), solver)
        .configure(|s| s.param(start.to_vec()).max_iters(MAX_ITERS))
        .timer(false)
        .run();
    let Ok(res) = run else { return fallback };
    let state = res.state();
    match state.get_best_param() {
        Some(p) if state.get_best_cost().is_finite() && state.get_best_cost() <= fallback.1 => {
            (p.clone(), state.get_best_cost())
        }
        _ => fallback,
    }
}

/// The fixed grid of starts: a, b from a line through the best cell of each
/// ALMR; E, γ, k over a small grid.
fn starts(data: &Data) -> Vec<Vec<f64>> {
    let min_l = data
        .points
        .iter()
        .map(|p| p.ln_l.exp())
        .fold(f64::INFINITY, f64::min);
    let (a, b) = best_lr_line(&data.points);
    let mut out = Vec::new();
    for e_frac in [0.5, 0.9] {
        for gamma in [0.3, 1.0] {
            for k in [0.01, 0.1] {
                let e = e_frac * min_l;
                let c = 0.5 * (min_l - e) + 1e-3;
                let mut t = vec![e.ln(), c.ln(), f64::ln(gamma), f64::ln(k), a, b];
                if data.with_tokens {
                    t.extend([(0.05 * min_l).ln(), 0.5f64.ln(), 0.3f64.ln()]);
                }
                out.push(t);
            }
        }
    }
    out
}

/// The least-squares line `ln η = a + b·r` through the lowest-loss cell of
/// each ALMR.
fn best_lr_line(points: &[Point]) -> (f64, f64) {
    let mut best: Vec<Point> = Vec::new();
    for p in points {
        match best.iter_mut().find(|q| q.r == p.r) {
            Some(q) if p.ln_l < q.ln_l => *q = *p,
            Some(_) => {}
            None => best.push(*p),
        }
    }
    let n = best.len() as f64;
    let mr = best.iter().map(|p| p.r).sum::<f64>() / n;
    let me = best.iter().map(|p| p.ln_eta).sum::<f64>() / n;
    let sxx: f64 = best.iter().map(|p| (p.r - mr).powi(2)).sum();
    let sxy: f64 = best.iter().map(|p| (p.r - mr) * (p.ln_eta - me)).sum();
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (me - b * mr, b)
}

/// The best of the starts (the first, on ties).
pub fn fit_theta(data: &Data) -> Vec<f64> {
    best_of(data, &starts(data))
}

/// The best fit from the given starts.
pub fn best_of(data: &Data, starts: &[Vec<f64>]) -> Vec<f64> {
    let mut best: Option<(Vec<f64>, f64)> = None;
    for s in starts {
        let (t, c) = minimize(data, s);
        if best.as_ref().is_none_or(|(_, bc)| c < *bc) {
            best = Some((t, c));
        }
    }
    best.map(|(t, _)| t).unwrap_or_default()
}

/// The fit of one language, with its quality.
#[derive(Clone, Debug, Serialize)]
pub struct Fit {
    /// The language.
    pub lang: Lang,
    /// The fitted law.
    pub law: Law,
    /// The unconstrained parameters (the start of refits).
    #[serde(skip)]
    pub theta: Vec<f64>,
    /// Cells used.
    pub cells: usize,
    /// R² on log L.
    pub r2: f64,
    /// Leave-one-out RMSE of log L (≈ the relative error of a held-out cell).
    pub loo_rmse: f64,
}

/// Fits `data`, with R² and the leave-one-out error; why not, when the
/// cells cannot determine the law.
pub fn fit(data: &Data) -> Result<Fit, String> {
    data.check()?;
    let theta = fit_theta(data);
    let law = data.law(&theta);
    Ok(Fit {
        lang: data.lang,
        law,
        cells: data.points.len(),
        r2: r_squared(data, &law),
        loo_rmse: loo_rmse(data, &theta),
        theta,
    })
}

/// The residual `ln L_pred − ln L_obs` of `law` at `p`.
fn residual(data: &Data, law: &Law, p: &Point) -> f64 {
    law.predict(data.lang, p.r, p.ln_eta, p.d * data.d_ref).ln() - p.ln_l
}

/// R² of `law` on log L.
fn r_squared(data: &Data, law: &Law) -> f64 {
    let n = data.points.len() as f64;
    let mean = data.points.iter().map(|p| p.ln_l).sum::<f64>() / n;
    let ss_tot: f64 = data.points.iter().map(|p| (p.ln_l - mean).powi(2)).sum();
    let ss_res: f64 = data
        .points
        .iter()
        .map(|p| residual(data, law, p).powi(2))
        .sum();
    match ss_tot > 0.0 {
        true => 1.0 - ss_res / ss_tot,
        false => 0.0,
    }
}

/// The RMSE of log L over cells each predicted by a fit without it (refit
/// from the full fit's parameters).
fn loo_rmse(data: &Data, theta: &[f64]) -> f64 {
    let n = data.points.len();
    let sum: f64 = (0..n)
        .map(|i| {
            let mut rest = data.points.clone();
            let held = rest.remove(i);
            let sub = data.with_points(rest);
            let law = sub.law(&best_of(&sub, &[theta.to_vec()]));
            residual(&sub, &law, &held).powi(2)
        })
        .sum();
    (sum / n as f64).sqrt()
}
