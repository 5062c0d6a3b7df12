//! The law fitted per language over the cells,
//! `L = E + C·(s+ε)^−γ + k·(ln η − (a + b·r))² [+ B·s^μ / D^β]`,
//! by a Huber loss on log L: L-BFGS (More–Thuente line search) from a start
//! read off the data and a fixed grid of starts, the best end point refined
//! by Levenberg–Marquardt.

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
/// Levenberg–Marquardt iterations of the final refinement, at most.
const REFINE_ITERS: usize = 100;

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

/// The starts: the one from the data ([`data_start`]) first, then a fixed
/// grid: a, b from a line through the best cell of each ALMR; E, γ, k over
/// a small grid.
fn starts(data: &Data) -> Vec<Vec<f64>> {
    let min_l = min_loss(data);
    let (a, b) = line(&best_cells(&data.points));
    let mut out = vec![data_start(data)];
    for e_frac in [0.5, 0.9] {
        for gamma in [0.3, 1.0] {
            for k in [0.01, 0.1] {
                let e = e_frac * min_l;
                let c = 0.5 * (min_l - e) + 1e-3;
                out.push(with_tokens_start(data, [e, c, gamma, k], a, b));
            }
        }
    }
    out
}

/// The lowest observed loss.
fn min_loss(data: &Data) -> f64 {
    (data.points.iter())
        .map(|p| p.ln_l.exp())
        .fold(f64::INFINITY, f64::min)
}

/// The unconstrained parameters of positive `[E, C, γ, k]` and `a`, `b`,
/// with the tokens term's start (B 5 % of the least loss, μ 0.5, β 0.3)
/// when it is fitted.
fn with_tokens_start(data: &Data, positive: [f64; 4], a: f64, b: f64) -> Vec<f64> {
    let mut t: Vec<f64> = positive.iter().map(|x| x.ln()).collect();
    t.extend([a, b]);
    if data.with_tokens {
        t.extend([(0.05 * min_loss(data)).ln(), 0.5f64.ln(), 0.3f64.ln()]);
    }
    t
}

/// The start read off the data: `ln η* = a + b·r` through the vertices of
/// parabolas in ln η fitted per ALMR (else through the best cell of each
/// ALMR), then E, C, k by linear least squares for each γ of [`GAMMAS`],
/// keeping the best.
fn data_start(data: &Data) -> Vec<f64> {
    let vertices = row_vertices(data);
    let (a, b) = match vertices.is_empty() {
        true => line(&best_cells(&data.points)),
        false => line(&vertices),
    };
    let min_l = min_loss(data);
    let fallback = [0.5 * min_l, 0.25 * min_l, 0.5, 0.05];
    let positive = share_terms(data, a, b).unwrap_or(fallback);
    with_tokens_start(data, positive, a, b)
}

/// The γ tried by [`data_start`].
const GAMMAS: [f64; 12] = [0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.3, 1.7, 2.2, 3.0];

/// `(r, ln η at the vertex, weight)` of the cells' parabolas in ln η, one per
/// ALMR and token count with 3 distinct learning rates or more, where it
/// curves upwards; the vertex kept within one grid span of the cells'
/// learning rates, the weight its curvature.
fn row_vertices(data: &Data) -> Vec<(f64, f64, f64)> {
    let (lo, hi) = span(data.points.iter().map(|p| p.ln_eta));
    let mut keys: Vec<(f64, f64)> = data.points.iter().map(|p| (p.r, p.d)).collect();
    keys.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.total_cmp(&y.1)));
    keys.dedup();
    keys.iter()
        .filter_map(|&(r, d)| {
            let row: Vec<&Point> = (data.points.iter())
                .filter(|p| p.r == r && p.d == d)
                .collect();
            let (v, curv) = parabola_vertex(&row)?;
            Some((r, v.clamp(2.0 * lo - hi, 2.0 * hi - lo), curv))
        })
        .collect()
}

/// The least and greatest of `values`.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// The vertex and curvature of `L ≈ p0 + p1·x + p2·x²` (x = ln η) through
/// `row`, least squares weighted by 1/L² (≈ on log L); none unless it has
/// 3 distinct learning rates and curves upwards.
fn parabola_vertex(row: &[&Point]) -> Option<(f64, f64)> {
    if distinct(row.iter().map(|p| p.ln_eta)) < 3 {
        return None;
    }
    let mid = row.iter().map(|p| p.ln_eta).sum::<f64>() / row.len() as f64;
    let eqs = row.iter().map(|p| {
        let x = p.ln_eta - mid;
        ([1.0, x, x * x], p.ln_l.exp())
    });
    let [_, p1, p2] = weighted_lstsq(eqs)?;
    (p2 > 0.0).then(|| (mid - p1 / (2.0 * p2), p2))
}

/// E, C, k of `L ≈ E + C·(s+ε)^−γ + k·(ln η − a − b·r)²` by least squares
/// weighted by 1/L², for the γ of [`GAMMAS`] that fits best with all three
/// positive; `[E, C, γ, k]`, or none when no γ gives positive ones.
fn share_terms(data: &Data, a: f64, b: f64) -> Option<[f64; 4]> {
    let mut best: Option<(f64, [f64; 4])> = None;
    for gamma in GAMMAS {
        let feature = |p: &Point| {
            let s = data.lang.share(p.r);
            let q = p.ln_eta - a - b * p.r;
            [1.0, (s + EPSILON).powf(-gamma), q * q]
        };
        let eqs = data.points.iter().map(|p| (feature(p), p.ln_l.exp()));
        let Some([e, c, k]) = weighted_lstsq(eqs) else {
            continue;
        };
        if e <= 0.0 || c <= 0.0 || k <= 0.0 {
            continue;
        }
        let sse: f64 = (data.points.iter())
            .map(|p| {
                let [_, f, q2] = feature(p);
                ((e + c * f + k * q2).ln() - p.ln_l).powi(2)
            })
            .sum();
        if best.is_none_or(|(b, _)| sse < b) {
            best = Some((sse, [e, c, gamma, k]));
        }
    }
    best.map(|(_, t)| t)
}

/// The least-squares solution of `x·p = y` over the equations `(x, y)`,
/// each weighted by 1/y²; none when the normal equations are singular.
fn weighted_lstsq(eqs: impl Iterator<Item = ([f64; 3], f64)>) -> Option<[f64; 3]> {
    let mut m = vec![vec![0.0; 4]; 3];
    for (x, y) in eqs {
        let w = 1.0 / (y * y);
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] += w * x[i] * x[j];
            }
            m[i][3] += w * x[i] * y;
        }
    }
    let p = solve(m)?;
    Some([p[0], p[1], p[2]])
}

/// Solves the n × n system of the augmented n × (n + 1) matrix `m` by
/// Gaussian elimination with partial pivoting; none when it is (near)
/// singular.
fn solve(mut m: Vec<Vec<f64>>) -> Option<Vec<f64>> {
    let n = m.len();
    let scale = (0..n).map(|i| m[i][i].abs()).fold(0.0, f64::max);
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))?;
        m.swap(col, piv);
        let pivot = m[col][col].abs();
        if pivot.is_nan() || pivot <= 1e-14 * scale {
            return None;
        }
        let (top, below) = m.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for row in below {
            let f = row[col] / pivot_row[col];
            (row[col..].iter_mut().zip(&pivot_row[col..])).for_each(|(x, p)| *x -= f * p);
        }
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let rest: f64 = (i + 1..n).map(|j| m[i][j] * x[j]).sum();
        x[i] = (m[i][n] - rest) / m[i][i];
    }
    Some(x)
}

/// `(r, ln η, 1)` of the lowest-loss cell of each ALMR.
fn best_cells(points: &[Point]) -> Vec<(f64, f64, f64)> {
    let mut best: Vec<Point> = Vec::new();
    for p in points {
        match best.iter_mut().find(|q| q.r == p.r) {
            Some(q) if p.ln_l < q.ln_l => *q = *p,
            Some(_) => {}
            None => best.push(*p),
        }
    }
    best.iter().map(|p| (p.r, p.ln_eta, 1.0)).collect()
}

/// The weighted least-squares line `y = a + b·x` through `(x, y, weight)`;
/// flat when the x do not vary.
fn line(points: &[(f64, f64, f64)]) -> (f64, f64) {
    let w: f64 = points.iter().map(|p| p.2).sum();
    let mx = points.iter().map(|p| p.2 * p.0).sum::<f64>() / w;
    let my = points.iter().map(|p| p.2 * p.1).sum::<f64>() / w;
    let sxx: f64 = points.iter().map(|p| p.2 * (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| p.2 * (p.0 - mx) * (p.1 - my)).sum();
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (my - b * mx, b)
}

/// The best of the starts (the first, on ties).
pub fn fit_theta(data: &Data) -> Vec<f64> {
    best_of(data, &starts(data))
}

/// The best fit from the given starts (L-BFGS from each, the first on
/// ties), refined by `refine`.
pub fn best_of(data: &Data, starts: &[Vec<f64>]) -> Vec<f64> {
    let mut best: Option<(Vec<f64>, f64)> = None;
    for s in starts {
        let (t, c) = minimize(data, s);
        if best.as_ref().is_none_or(|(_, bc)| c < *bc) {
            best = Some((t, c));
        }
    }
    best.map(|(t, c)| refine(data, t, c)).unwrap_or_default()
}

/// Levenberg–Marquardt steps on the Huber objective (Gauss–Newton with the
/// Huber weights) from `theta` of cost `cost`: the final refinement, which
/// takes the fit to the optimum where L-BFGS stops short of it (the
/// parameters of the share term are nearly degenerate).
fn refine(data: &Data, mut theta: Vec<f64>, mut cost: f64) -> Vec<f64> {
    let mut lambda = 1e-3;
    for _ in 0..REFINE_ITERS {
        let Some(step) = lm_step(data, &theta, lambda) else {
            break;
        };
        let trial: Vec<f64> = theta.iter().zip(&step).map(|(t, s)| t + s).collect();
        let c = objective(data, &trial).0;
        if c < cost {
            let converged = cost - c <= 1e-12 * cost;
            (theta, cost, lambda) = (trial, c, (lambda / 3.0).max(1e-12));
            if converged {
                break;
            }
        } else if lambda > 1e8 {
            break;
        } else {
            lambda *= 4.0;
        }
    }
    theta
}

/// The Levenberg–Marquardt step at `theta` with damping `lambda`:
/// `(H + λ·diag H)·step = −g`, H and g summed over the cells with the
/// Jacobian of ln L and the Huber weights.
fn lm_step(data: &Data, theta: &[f64], lambda: f64) -> Option<Vec<f64>> {
    let t = Theta::new(theta);
    let n = theta.len();
    let mut m = vec![vec![0.0; n + 1]; n];
    let mut jac = vec![0.0; n];
    for p in &data.points {
        let pred = t.predict_grad(data.lang, p, &mut jac);
        jac.iter_mut().for_each(|j| *j /= pred);
        let rho = pred.ln() - p.ln_l;
        let w = (HUBER_DELTA / rho.abs()).min(1.0);
        for i in 0..n {
            for j in 0..n {
                m[i][j] += w * jac[i] * jac[j];
            }
            m[i][n] -= w * rho * jac[i];
        }
    }
    (0..n).for_each(|i| m[i][i] *= 1.0 + lambda);
    solve(m)
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
