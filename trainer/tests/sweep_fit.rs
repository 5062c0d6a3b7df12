//! `almr-train sweep fit` on planted laws: cells generated from a known law
//! per language must give back its constrained optimum.

use std::fmt::Write as _;
use std::path::Path;

use almr_trainer::sweep::cells::{Cells, Lang};
use almr_trainer::sweep::fit::Law;
use almr_trainer::sweep::recommend::{optimum, Region};
use almr_trainer::sweep::{recommend, Recommendation, SweepError};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TOKENS: f64 = 1e9;

/// zh falls with r; its best LR falls with r.
fn zh_law(a: f64) -> Law {
    Law {
        e: 1.8,
        c: 0.25,
        gamma: 0.5,
        k: 0.06,
        a,
        b: -1.0,
        tokens: None,
    }
}

/// en rises with r (its share 1 − r falls); its best LR moves less.
fn en_law() -> Law {
    Law {
        e: 1.9,
        c: 0.3,
        gamma: 0.6,
        k: 0.05,
        a: (2e-4f64).ln(),
        b: -0.5,
        tokens: None,
    }
}

const BASE_EN: f64 = 2.29;

/// A 5 × 5 grid, r ∈ [0.1, 0.9], η ∈ [1e-5, 1e-3] log-spaced; losses times
/// (1 + noise·N(0, 1)); `diverged` marks the cells at these grid indices.
fn cells_text(zh: &Law, noise: f64, seed: u64, diverged: &[(usize, usize)]) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = format!("{{\"base_en_loss\": {BASE_EN}}}\n\n");
    for i in 0..5 {
        for j in 0..5 {
            let r = 0.1 + 0.2 * i as f64;
            let lr = (1e-5f64.ln() + (1e-3f64 / 1e-5).ln() * j as f64 / 4.0).exp();
            let mut l = |law: &Law, lang| {
                law.predict(lang, r, lr.ln(), TOKENS) * (1.0 + noise * normal(&mut rng))
            };
            let (lz, le) = (l(zh, Lang::Zh), l(&en_law(), Lang::En));
            match diverged.contains(&(i, j)) {
                true => writeln!(out, r#"{{"almr": {r}, "lr": {lr}, "tokens": {TOKENS}, "val_loss": {{"zh": null, "en": null}}, "diverged": true}}"#),
                false => writeln!(out, r#"{{"almr": {r}, "lr": {lr}, "tokens": {TOKENS}, "val_loss": {{"zh": {lz}, "en": {le}}}}}"#),
            }
            .unwrap();
        }
    }
    out
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn fit_text(text: &str) -> Result<Recommendation, SweepError> {
    recommend(&Cells::parse(Path::new("cells.jsonl"), text)?, 0.03)
}

/// The planted law's own constrained optimum over the same region.
fn planted(zh: &Law) -> (f64, f64) {
    let region = Region {
        almr: [0.1, 0.9],
        ln_lr: [1e-5f64.ln(), 1e-3f64.ln()],
        tokens: TOKENS,
    };
    let s = optimum(zh, &en_law(), &region, 1.03 * BASE_EN)
        .recommended
        .expect("feasible");
    (s.almr, s.lr)
}

fn check(noise: f64, seed: u64, r_tol: f64, lr_tol: f64) -> Recommendation {
    let zh = zh_law((3e-4f64).ln());
    let rec = fit_text(&cells_text(&zh, noise, seed, &[])).unwrap();
    let got = rec.recommended.expect("a recommendation");
    let (r, lr) = planted(&zh);
    eprintln!("noise {noise} seed {seed}: planted r* {r:.4} η* {lr:.4e}; fitted r* {:.4} η* {:.4e}; R² zh {:.4} en {:.4}", got.almr, got.lr, rec.fit.zh.fit.r2, rec.fit.en.fit.r2);
    assert!(
        (got.almr - r).abs() <= r_tol,
        "r* {} vs planted {r}",
        got.almr
    );
    assert!(
        (got.lr / lr - 1.0).abs() <= lr_tol,
        "η* {} vs planted {lr}",
        got.lr
    );
    assert!(!rec.on_grid_edge, "the planted optimum is inside the grid");
    rec
}

#[test]
fn sweep_planted_law_without_noise_is_recovered_exactly() {
    let rec = check(0.0, 0, 1e-3, 1e-3);
    assert!(rec.fit.zh.fit.r2 > 0.9999 && rec.fit.en.fit.r2 > 0.9999);
}

#[test]
fn sweep_planted_law_with_1pct_noise_is_recovered() {
    for seed in 1..=10 {
        check(0.01, seed, 0.05, 0.15);
    }
}

#[test]
fn sweep_diverged_cells_are_excluded_and_reported() {
    let zh = zh_law((3e-4f64).ln());
    let rec = fit_text(&cells_text(&zh, 0.0, 0, &[(4, 4), (0, 4)])).unwrap();
    assert_eq!(rec.cells, 25);
    assert_eq!(rec.fit.zh.fit.cells, 23);
    assert_eq!(rec.excluded.len(), 2);
    assert!(rec
        .excluded
        .iter()
        .all(|e| e.why == "diverged" && e.lr > 9e-4));
    let (r, _) = planted(&zh);
    assert!((rec.recommended.unwrap().almr - r).abs() < 0.01);
}

#[test]
fn sweep_an_optimum_on_the_grid_edge_is_flagged() {
    // A loose English limit: zh loss falls with r up to the grid's top edge.
    let text = cells_text(&zh_law((3e-4f64).ln()), 0.0, 0, &[]);
    let rec = fit_text(&text.replacen("\"base_en_loss\": 2.29", "\"base_en_loss\": 5", 1)).unwrap();
    assert!(rec.on_grid_edge);
    assert!((rec.recommended.unwrap().almr - 0.9).abs() < 1e-12);
    // zh's best LR far above the grid: the unconstrained optimum at its top edge.
    let rec = fit_text(&cells_text(&zh_law((1e-1f64).ln()), 0.0, 0, &[])).unwrap();
    assert!(rec.unconstrained.on_grid_edge);
    assert!((rec.unconstrained.lr / 1e-3 - 1.0).abs() < 1e-9);
}

#[test]
fn sweep_too_few_cells_is_a_clean_error() {
    let text: String = cells_text(&zh_law(-8.0), 0.0, 0, &[])
        .lines()
        .take(7)
        .map(|l| format!("{l}\n"))
        .collect();
    let err = fit_text(&text).unwrap_err().to_string();
    assert!(
        err.contains("cannot fit") && err.contains("zh: ") && err.contains("en: "),
        "{err}"
    );
}

#[test]
fn sweep_a_malformed_line_names_file_and_line() {
    let mut text = cells_text(&zh_law(-8.0), 0.0, 0, &[]);
    text.push_str("{\"almr\": 0.5, \"lr\": 1e-4}\n");
    let err = fit_text(&text).unwrap_err().to_string();
    assert!(err.starts_with("cells.jsonl:28: "), "{err}");
    let err = fit_text("{\"base_en_loss\": 2}\nnot json\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("cells.jsonl:2: "), "{err}");
    let err = fit_text("{\"almr\": 1.5, \"lr\": 1e-4, \"tokens\": 1}\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("cells.jsonl:1: almr 1.5"), "{err}");
}

#[test]
fn sweep_no_feasible_point_is_reported() {
    let mut text = cells_text(&zh_law(-8.0), 0.0, 0, &[]);
    text = text.replacen("\"base_en_loss\": 2.29", "\"base_en_loss\": 1.5", 1);
    let rec = fit_text(&text).unwrap();
    assert!(rec.recommended.is_none());
    assert!(rec
        .reason
        .as_deref()
        .unwrap_or("")
        .contains("no (ALMR, LR)"));
    assert!(rec.to_json().contains("\"recommended\": null"));
}

#[test]
fn sweep_same_input_gives_identical_recommendation_json() {
    let text = cells_text(&zh_law((3e-4f64).ln()), 0.01, 5, &[(2, 2)]);
    let dir = tempfile::tempdir().unwrap();
    let a = std::fs::read(fit_text(&text).unwrap().write(dir.path()).unwrap()).unwrap();
    let b = std::fs::read(fit_text(&text).unwrap().write(dir.path()).unwrap()).unwrap();
    assert_eq!(a, b);
    let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
    for key in ["recommended", "unconstrained", "on_grid_edge", "fit"] {
        assert!(v.get(key).is_some(), "{key}");
    }
    assert!(v["recommended"]["almr"].is_f64() && v["unconstrained"]["lr"].is_f64());
}
