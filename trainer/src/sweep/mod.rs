//! `almr-train sweep fit`: fits the ALMR × learning-rate law per language
//! over a sweep's cells ([`cells`], [`fit`]) and recommends the setting of
//! the big run ([`recommend()`]). See `docs/sweep.md`.

pub mod cells;
pub mod fit;
pub mod recommend;
mod report;
#[cfg(feature = "sweep")]
pub mod run;

use std::path::{Path, PathBuf};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use cells::{Cell, Cells, Lang};
use fit::{Data, Fit, Law, Point};
use recommend::{LrPoint, Optimum, Region, Setting};

/// Bootstrap resamples.
pub const RESAMPLES: u64 = 100;
/// The bootstrap's seed.
pub const SEED: u64 = 0;
/// The file `sweep fit` writes.
pub const RECOMMENDATION: &str = "recommendation.json";

/// Why `sweep fit` failed.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The cells file could not be read.
    #[error("reading {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line of the cells file is malformed.
    #[error("{}:{line}: {problem}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// The cells file as a whole is unusable.
    #[error("{}: {problem}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A language's cells cannot determine its law.
    #[error("{}: cannot fit the law: {}", path.display(), problems.join("; "))]
    CannotFit {
        /// The file.
        path: PathBuf,
        /// `LANG: why`, per language that cannot be fitted.
        problems: Vec<String>,
    },
    /// The recommendation could not be written.
    #[error("writing {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A 90 % bootstrap interval of one quantity.
#[derive(Clone, Debug, Serialize)]
pub struct Interval {
    /// The parameter (or `almr`, `lr`).
    pub name: &'static str,
    /// The 5th percentile.
    pub lo: f64,
    /// The 95th percentile.
    pub hi: f64,
}

/// The fit of one language, as reported.
#[derive(Clone, Debug, Serialize)]
pub struct LangFit {
    /// The fit.
    #[serde(flatten)]
    pub fit: Fit,
    /// 90 % bootstrap intervals of the parameters.
    pub intervals: Vec<Interval>,
    /// The factor √(n/(n − p)) the bootstrap intervals are widened by
    /// around the estimates (n cells, p parameters).
    pub interval_widening: f64,
    /// The fitted optimal learning rate `η*(r) = exp(a + b·r)`.
    pub lr_opt: Vec<LrPoint>,
}

/// The fits of both languages and how they were made.
#[derive(Clone, Debug, Serialize)]
pub struct Fits {
    /// ε of `(s+ε)^−γ`.
    pub epsilon: f64,
    /// δ of the Huber loss on log L.
    pub huber_delta: f64,
    /// Whether the `B·s^μ/D^β` term was fitted.
    pub tokens_term: bool,
    /// Why the tokens term was or was not fitted.
    pub tokens_note: String,
    /// Bootstrap resamples.
    pub resamples: u64,
    /// The bootstrap's seed.
    pub seed: u64,
    /// Chinese.
    pub zh: LangFit,
    /// English.
    pub en: LangFit,
}

/// A cell left out of a fit.
#[derive(Clone, Debug, Serialize)]
pub struct Excluded {
    /// Its line in the cells file.
    pub line: usize,
    /// Its ALMR.
    pub almr: f64,
    /// Its learning rate.
    pub lr: f64,
    /// Its tokens.
    pub tokens: f64,
    /// Why: `diverged`, or `no finite zh loss` / `no finite en loss`.
    pub why: String,
}

/// Everything `sweep fit` finds: the content of `recommendation.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Recommendation {
    /// The recommended setting, or `None` when none meets the English limit.
    pub recommended: Option<Setting>,
    /// Why there is no recommendation.
    pub reason: Option<String>,
    /// The least fitted zh loss, without the English limit.
    pub unconstrained: Setting,
    /// Whether the recommended (else the unconstrained) optimum is on the
    /// edge of the cells' range: extend the grid.
    pub on_grid_edge: bool,
    /// 90 % bootstrap intervals of the recommended ALMR and LR.
    pub recommended_intervals: Vec<Interval>,
    /// Resamples with a feasible optimum (of `resamples`).
    pub feasible_resamples: usize,
    /// The fits.
    pub fit: Fits,
    /// The base's English validation loss.
    pub base_en_loss: f64,
    /// The tolerance T.
    pub tolerance: f64,
    /// `(1 + T) × base_en_loss`.
    pub en_limit: f64,
    /// The box searched.
    pub region: Region,
    /// Cells in the file.
    pub cells: usize,
    /// Cells left out of a fit, and why.
    pub excluded: Vec<Excluded>,
    /// Command lines for the big run at the recommended setting.
    pub commands: Vec<String>,
}

impl Recommendation {
    /// `recommendation.json`'s bytes: pretty JSON and a newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Writes `recommendation.json` into `dir` atomically; returns its path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, SweepError> {
        let path = dir.join(RECOMMENDATION);
        almr::fsutil::write_atomic(&path, self.to_json().as_bytes()).map_err(|source| {
            SweepError::Write {
                path: path.clone(),
                source,
            }
        })?;
        Ok(path)
    }
}

/// Fits the cells and recommends, with tolerance `tolerance` on the
/// English loss.
pub fn recommend(cells: &Cells, tolerance: f64) -> Result<Recommendation, SweepError> {
    if !(tolerance.is_finite() && tolerance >= 0.0) {
        return Err(SweepError::File {
            path: cells.path.clone(),
            problem: format!("--tolerance {tolerance}: must be a finite number ≥ 0"),
        });
    }
    let data = Lang::ALL.map(|l| Data::new(cells, l));
    let [zh, en] = fit_both(cells, &data)?;
    let region = region(cells);
    let en_limit = (1.0 + tolerance) * cells.base_en_loss;
    let opt = recommend::optimum(&zh.law, &en.law, &region, en_limit);
    let boot = bootstrap(cells, &data, [&zh.theta, &en.theta], &region, en_limit);
    let widen = [(&zh, &data[0]), (&en, &data[1])].map(|(f, d)| widening(f.cells, d.n_params()));
    let intervals = |i: usize, law: &Law| param_intervals(law, &boot, i, widen[i]);
    let fits = Fits {
        epsilon: fit::EPSILON,
        huber_delta: fit::HUBER_DELTA,
        tokens_term: data[0].with_tokens,
        tokens_note: tokens_note(cells, data[0].with_tokens),
        resamples: RESAMPLES,
        seed: SEED,
        zh: LangFit {
            intervals: intervals(0, &zh.law),
            interval_widening: widen[0],
            lr_opt: recommend::lr_curve(&zh.law, &region),
            fit: zh,
        },
        en: LangFit {
            intervals: intervals(1, &en.law),
            interval_widening: widen[1],
            lr_opt: recommend::lr_curve(&en.law, &region),
            fit: en,
        },
    };
    let widen = widen[0].max(widen[1]);
    Ok(assemble(cells, tolerance, region, opt, &boot, widen, fits))
}

/// Fits both languages, or says why each that cannot be fitted cannot.
fn fit_both(cells: &Cells, data: &[Data; 2]) -> Result<[Fit; 2], SweepError> {
    let fits = data.each_ref().map(fit::fit);
    let problems: Vec<String> = (fits.iter().zip(Lang::ALL))
        .filter_map(|(f, l)| f.as_ref().err().map(|e| format!("{}: {e}", l.name())))
        .collect();
    match fits {
        [Ok(zh), Ok(en)] => Ok([zh, en]),
        _ => Err(SweepError::CannotFit {
            path: cells.path.clone(),
            problems,
        }),
    }
}

/// The cells' ALMR and ln η ranges, and their most tokens.
/// The range the recommendation searches: that of the cells that did not
/// diverge (of every cell, if all did), so that it never recommends a
/// learning rate or ALMR past the ones at which runs diverged.
fn region(cells: &Cells) -> Region {
    let trained: Vec<&Cell> = cells.cells.iter().filter(|c| !c.diverged).collect();
    let pool = match trained.is_empty() {
        true => cells.cells.iter().collect(),
        false => trained,
    };
    let span = |f: fn(&Cell) -> f64| {
        let it = pool.iter().map(|c| f(c));
        [
            it.clone().fold(f64::INFINITY, f64::min),
            it.fold(f64::NEG_INFINITY, f64::max),
        ]
    };
    Region {
        almr: span(|c| c.almr),
        ln_lr: span(|c| c.lr.ln()),
        tokens: span(|c| c.tokens)[1],
    }
}

fn tokens_note(cells: &Cells, with: bool) -> String {
    match with {
        true => "several token counts: B·s^μ/D^β fitted; losses predicted at the most tokens of any cell".into(),
        false => format!(
            "every cell has {} tokens: the B·s^μ/D^β term is left out",
            cells.cells[0].tokens
        ),
    }
}

/// One bootstrap resample's laws and optimum.
struct Resample {
    laws: [Law; 2],
    optimum: Option<Setting>,
}

/// Refits both languages on `RESAMPLES` resamples of the cells (with
/// replacement, a fixed seed each), from the full fits' parameters.
fn bootstrap(
    cells: &Cells,
    data: &[Data; 2],
    theta: [&Vec<f64>; 2],
    region: &Region,
    en_limit: f64,
) -> Vec<Resample> {
    let n = cells.cells.len();
    let by_cell = data.each_ref().map(|d| {
        let mut v: Vec<Option<Point>> = vec![None; n];
        d.points.iter().for_each(|p| v[p.cell] = Some(*p));
        v
    });
    (0..RESAMPLES)
        .into_par_iter()
        .map(|b| {
            let mut rng = ChaCha8Rng::seed_from_u64(SEED.wrapping_add(b));
            let draw: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
            let laws = [0, 1].map(|l| {
                let pts = draw.iter().filter_map(|&i| by_cell[l][i]).collect();
                let sub = data[l].with_points(pts);
                sub.law(&fit::best_of(&sub, &[theta[l].clone()]))
            });
            let optimum = recommend::optimum(&laws[0], &laws[1], region, en_limit).recommended;
            Resample { laws, optimum }
        })
        .collect()
}

/// The 5th and 95th percentiles of `values` (sorted in place).
fn percentiles(name: &'static str, mut values: Vec<f64>) -> Interval {
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = (q * (values.len().max(1) - 1) as f64).round() as usize;
        values.get(i).copied().unwrap_or(f64::NAN)
    };
    Interval {
        name,
        lo: at(0.05),
        hi: at(0.95),
    }
}

/// √(n/(n − p)) for a fit of n cells and p parameters. The case
/// bootstrap's spread is that of the residuals, whose variance falls short
/// of the noise's by (n − p)/n, so the intervals are widened by it around
/// the estimate (as HC1 rescales HC0).
fn widening(cells: usize, params: usize) -> f64 {
    let (n, p) = (cells as f64, params as f64);
    (n / (n - p)).sqrt()
}

/// The 90 % interval of `name`: the 5th and 95th percentiles of the
/// bootstrap `values`, each moved `widen` times as far from the estimate
/// `est` (in ln for a positive quantity, `log`), never inwards.
fn interval(
    name: &'static str,
    est: Option<f64>,
    values: Vec<f64>,
    log: bool,
    widen: f64,
) -> Interval {
    let iv = percentiles(name, values);
    let Some(est) = est else { return iv };
    let stretch = |x: f64| match log {
        true => (est.ln() + widen * (x.ln() - est.ln())).exp(),
        false => est + widen * (x - est),
    };
    Interval {
        name,
        lo: iv.lo.min(stretch(iv.lo)),
        hi: iv.hi.max(stretch(iv.hi)),
    }
}

/// The intervals of `law`'s parameters over the resamples of language `l`,
/// widened by `widen`; all but a and b are positive.
fn param_intervals(law: &Law, boot: &[Resample], l: usize, widen: f64) -> Vec<Interval> {
    let named = law.named();
    (0..named.len())
        .map(|i| {
            let (name, est) = named[i];
            let values = boot.iter().map(|b| b.laws[l].named()[i].1).collect();
            let log = !matches!(name, "a" | "b");
            interval(name, Some(est), values, log, widen)
        })
        .collect()
}

/// The intervals of the recommended ALMR (within [0, 1]) and LR over the
/// feasible resamples, widened by `widen`.
fn recommended_intervals(rec: Option<Setting>, feasible: &[Setting], widen: f64) -> Vec<Interval> {
    let almr = feasible.iter().map(|s| s.almr).collect();
    let mut almr = interval("almr", rec.map(|s| s.almr), almr, false, widen);
    (almr.lo, almr.hi) = (almr.lo.max(0.0), almr.hi.min(1.0));
    let lr = feasible.iter().map(|s| s.lr).collect();
    vec![almr, interval("lr", rec.map(|s| s.lr), lr, true, widen)]
}

fn assemble(
    cells: &Cells,
    tolerance: f64,
    region: Region,
    opt: Optimum,
    boot: &[Resample],
    widen: f64,
    fit: Fits,
) -> Recommendation {
    let feasible: Vec<Setting> = boot.iter().filter_map(|b| b.optimum).collect();
    let reason = opt.recommended.is_none().then(|| {
        format!(
            "no (ALMR, LR) in the cells' range has a fitted English loss ≤ {:.4} ((1 + {tolerance}) × {}): the least is {:.4}; raise --tolerance or sweep lower ALMR",
            opt.en_limit, cells.base_en_loss, opt.least_en
        )
    });
    Recommendation {
        recommended: opt.recommended,
        reason,
        unconstrained: opt.unconstrained,
        on_grid_edge: opt.recommended.unwrap_or(opt.unconstrained).on_grid_edge,
        recommended_intervals: recommended_intervals(opt.recommended, &feasible, widen),
        feasible_resamples: feasible.len(),
        fit,
        base_en_loss: cells.base_en_loss,
        tolerance,
        en_limit: opt.en_limit,
        region,
        cells: cells.cells.len(),
        excluded: excluded(cells),
        commands: opt
            .recommended
            .map(|s| recommend::commands(&s))
            .unwrap_or_default(),
    }
}

/// The cells some fit leaves out, and why.
fn excluded(cells: &Cells) -> Vec<Excluded> {
    let mut out = Vec::new();
    for c in &cells.cells {
        let why = match c.diverged {
            true => vec!["diverged".to_string()],
            false => (Lang::ALL.iter())
                .filter(|&&l| c.loss(l).is_none())
                .map(|l| format!("no finite {} loss", l.name()))
                .collect(),
        };
        if !why.is_empty() {
            out.push(Excluded {
                line: c.line,
                almr: c.almr,
                lr: c.lr,
                tokens: c.tokens,
                why: why.join(", "),
            });
        }
    }
    out
}
