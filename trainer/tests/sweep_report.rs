//! `almr-train report SWEEP` on sweep directories built here: cells planted
//! from a known law per language with 1 % noise and one diverged cell,
//! `recommendation.json` from `almr-train sweep fit`, and three cells whose
//! runs are tiny runs trained on the fixture build. The page draws both
//! loss surfaces, the trade-off and every cell run's curves and states the
//! recommendation of `recommendation.json`; the table and `--json` give
//! every cell as planted; a sweep without `recommendation.json`, with too
//! few cells to fit, with none, or with a run missing still reports; a
//! malformed cells file is an error naming its line.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use almr_trainer::report::charts::css_colour;
use almr_trainer::sweep::cells::Lang;
use almr_trainer::sweep::fit::Law;
use almr_trainer::sweep::recommend::sci;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_almr-train");
const TOKENS: f64 = 1e9;
const BASE_EN: f64 = 2.29;
const ALMRS: [f64; 5] = [0.1, 0.3, 0.5, 0.7, 0.9];
/// The cells, by grid index, whose runs are trained: two at one ALMR.
const TRAINED: [(usize, usize); 3] = [(1, 2), (1, 3), (3, 2)];
const STEPS: u64 = 4;

fn almr_train(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running almr-train")
}

/// Runs `almr-train ARGS`, which must succeed; returns its stdout.
fn ok(args: &[&str]) -> String {
    let out = almr_train(args);
    assert!(
        out.status.success(),
        "almr-train {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Learning rate `j` of the grid: 1e-5 to 1e-3, log-spaced.
fn lr(j: usize) -> f64 {
    (1e-5f64.ln() + (1e-3f64 / 1e-5).ln() * j as f64 / 4.0).exp()
}

fn law(e: f64, c: f64, gamma: f64, k: f64, a: f64, b: f64) -> Law {
    Law {
        e,
        c,
        gamma,
        k,
        a,
        b,
        tokens: None,
    }
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The run directory of cell `(i, j)`, relative to the sweep.
fn run_of(i: usize, j: usize) -> String {
    format!("cells/r{i}-lr{j}/steps-{STEPS}")
}

/// A cells file of the planted laws over `cells` (grid indices), with 1 %
/// noise; the cell (4, 4) diverged; the cells `with_runs` name their runs.
fn cells_text(cells: &[(usize, usize)], with_runs: &[(usize, usize)]) -> String {
    let zh = law(1.8, 0.25, 0.5, 0.06, (3e-4f64).ln(), -1.0);
    let en = law(1.9, 0.3, 0.6, 0.05, (2e-4f64).ln(), -0.5);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut out = format!("{{\"base_en_loss\": {BASE_EN}}}\n");
    for &(i, j) in cells {
        let (r, eta) = (ALMRS[i], lr(j));
        let mut l = |law: &Law, lang| {
            law.predict(lang, r, eta.ln(), TOKENS) * (1.0 + 0.01 * normal(&mut rng))
        };
        let (lz, le) = (l(&zh, Lang::Zh), l(&en, Lang::En));
        let losses = match (i, j) {
            (4, 4) => r#"{"zh": null, "en": null}, "diverged": true"#.to_string(),
            _ => format!(r#"{{"zh": {lz}, "en": {le}}}"#),
        };
        let run = match with_runs.contains(&(i, j)) {
            true => format!(r#", "run": "{}""#, run_of(i, j)),
            false => String::new(),
        };
        writeln!(
            out,
            r#"{{"almr": {r}, "lr": {eta}, "tokens": {TOKENS}, "steps": {STEPS}{run}, "val_loss": {losses}}}"#
        )
        .unwrap();
    }
    out
}

fn grid() -> Vec<(usize, usize)> {
    (0..5).flat_map(|i| (0..5).map(move |j| (i, j))).collect()
}

/// A sweep directory of `cells`, with a `sweep.json`.
fn sweep_dir(dir: &Path, cells: &[(usize, usize)], with_runs: &[(usize, usize)]) -> PathBuf {
    let sweep = dir.join("sweep");
    std::fs::create_dir_all(&sweep).unwrap();
    std::fs::write(sweep.join("cells.jsonl"), cells_text(cells, with_runs)).unwrap();
    std::fs::write(sweep.join("sweep.json"), r#"{"grid": "planted"}"#).unwrap();
    sweep
}

/// Trains the tiny preset (two blocks) `STEPS` steps at the learning rate
/// of cell `(i, j)` into its run directory, evaluating every 2 steps.
fn train(dir: &Path, mix: &Path, sweep: &Path, (i, j): (usize, usize)) {
    let config = dir.join("tiny2.json");
    std::fs::write(&config, common::tiny(2).to_json()).unwrap();
    let run = sweep.join(run_of(i, j));
    ok(&[
        "train",
        "--mix",
        mix.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--steps",
        &STEPS.to_string(),
        "--micro-batch",
        "2",
        "--lr",
        &lr(j).to_string(),
        "--eval-every",
        "2",
    ]);
}

/// The SVG of the page whose title is `title`.
fn svg_titled<'a>(page: &'a str, title: &str) -> &'a str {
    let svgs: Vec<&str> = page.split("<svg").skip(1).collect();
    let found: Vec<&&str> = svgs.iter().filter(|s| s.contains(title)).collect();
    assert_eq!(found.len(), 1, "one chart titled {title:?}");
    found[0]
}

/// The number of points of each polyline of `colour` in `svg`.
fn lines_of(svg: &str, colour: &str) -> Vec<usize> {
    let stroke = format!("stroke=\"{}\"", colour.to_uppercase());
    (svg.split("<polyline").skip(1))
        .filter(|l| l.contains(&stroke))
        .map(|l| {
            let points = l.split("points=\"").nth(1).unwrap();
            points.split('"').next().unwrap().split_whitespace().count()
        })
        .collect()
}

/// Each trained cell's run is a line of its learning rate's colour in the
/// charts of its ALMR: every training step, every evaluation.
fn check_curves(page: &str, sweep: &Path, json: &Value) {
    for &(i, j) in &TRAINED {
        // The learning rates of the grid, ascending, take the colours in order.
        let colour = &css_colour(j);
        let metrics =
            std::fs::read_to_string(sweep.join(run_of(i, j)).join("metrics.jsonl")).unwrap();
        let records: Vec<Value> = metrics
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let evals = records
            .iter()
            .filter(|r| r.get("val_loss").is_some())
            .count();
        let r = format!("r {:.2}", ALMRS[i]);
        let train = lines_of(svg_titled(page, &format!("{r}: training loss")), colour);
        assert!(train.contains(&records.len()), "{r} {colour}: {train:?}");
        for lang in ["zh", "en"] {
            let val = lines_of(
                svg_titled(page, &format!("{r}: validation loss {lang}")),
                colour,
            );
            assert!(val.contains(&evals), "{r} {lang} {colour}: {val:?}");
        }
    }
    // Two ALMRs have runs: two rows of three charts.
    assert_eq!(page.matches(": training loss").count(), 2);
    assert!(json["notes"].as_array().unwrap().is_empty(), "{json}");
}

/// The report's cells are the planted ones, in order, with their
/// feasibility under the English limit.
fn check_cells(cells: &[Value], text: &str) {
    let planted: Vec<Value> = (text.lines().skip(1))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(cells.len(), planted.len());
    let limit = 1.03 * BASE_EN;
    for (c, p) in cells.iter().zip(&planted) {
        for key in ["almr", "lr", "tokens", "steps"] {
            assert_eq!(c[key].as_f64(), p[key].as_f64(), "{key}");
        }
        assert_eq!(c["run"], p["run"]);
        assert_eq!(c["zh"], p["val_loss"]["zh"]);
        assert_eq!(c["en"], p["val_loss"]["en"]);
        let diverged = p["diverged"].as_bool().unwrap_or(false);
        assert_eq!(c["diverged"], diverged);
        let feasible = p["val_loss"]["en"].as_f64().map(|e| e <= limit);
        assert_eq!(c["feasible"].as_bool(), feasible.filter(|_| !diverged));
    }
}

#[test]
fn a_sweep_report_draws_the_fit_the_cells_and_every_cell_run() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = sweep_dir(dir.path(), &grid(), &TRAINED);
    let mix = common::fixture_mix(dir.path(), "half", 64, 40);
    for cell in TRAINED {
        train(dir.path(), &mix, &sweep, cell);
    }
    let sweep_s = sweep.to_str().unwrap();
    ok(&["sweep", "fit", &format!("{sweep_s}/cells.jsonl")]);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(sweep.join("recommendation.json")).unwrap())
            .unwrap();
    let rec = &saved["recommended"];
    assert!(rec.is_object(), "{saved}");

    // A run directory beside the sweep reports as a run.
    let other = sweep.join(run_of(1, 2));
    let html = dir.path().join("report.html");
    let out = ok(&[
        "report",
        other.to_str().unwrap(),
        sweep_s,
        "--html",
        html.to_str().unwrap(),
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
    let s = &v["sweeps"][0];
    assert_eq!(
        s["recommendation"], saved,
        "the report's fit is recommendation.json's"
    );
    assert_eq!(s["settings"]["grid"], "planted");
    check_cells(
        s["cells"].as_array().unwrap(),
        &cells_text(&grid(), &TRAINED),
    );

    let page = std::fs::read_to_string(&html).unwrap();
    let (almr, lr) = (rec["almr"].as_f64().unwrap(), rec["lr"].as_f64().unwrap());
    let stated = format!(
        "Recommended: <b>ALMR {almr:.3}</b>, <b>peak LR {}</b>",
        sci(lr)
    );
    assert!(page.contains(&stated), "the page lacks {stated}");
    let fitted = format!(
        "fitted zh loss {:.4}, en loss {:.4}",
        rec["zh_loss"].as_f64().unwrap(),
        rec["en_loss"].as_f64().unwrap()
    );
    assert!(page.contains(&fitted), "the page lacks {fitted}");
    for lang in ["zh", "en"] {
        let surface = svg_titled(
            page.as_str(),
            &format!("{lang} validation loss: the fitted law"),
        );
        assert!(
            surface.contains(&format!("recommended: r {almr:.3}, η {lr:.2e}")),
            "{lang}"
        );
        svg_titled(&page, &format!("Observed {lang} loss by ALMR"));
    }
    assert!(page.contains(saved["commands"][0].as_str().unwrap()));
    for outside in ["<script", "src=", "href=", "<link"] {
        assert!(!page.contains(outside), "the page has {outside}");
    }
    check_curves(&page, &sweep, s);

    // The table: a row per cell, then the recommendation.
    let table = ok(&["report", sweep_s]);
    let rows = table.lines().filter(|l| l.starts_with("0.")).count();
    assert_eq!(rows, 25, "{table}");
    let line = format!("recommended: almr {almr:.3} lr {}", sci(lr));
    assert!(table.contains(&line), "{table}");
}

#[test]
fn a_sweep_without_recommendation_json_still_reports() {
    let dir = tempfile::tempdir().unwrap();
    // Six cells: too few to fit.
    let few: Vec<(usize, usize)> = grid().into_iter().step_by(4).take(6).collect();
    let sweep = sweep_dir(dir.path(), &few, &few[..1]);
    let html = dir.path().join("report.html");
    let (sweep_s, html_s) = (sweep.to_str().unwrap(), html.to_str().unwrap());
    let v: Value =
        serde_json::from_str(&ok(&["report", sweep_s, "--html", html_s, "--json"])).unwrap();
    let s = &v["sweeps"][0];
    assert!(s["recommendation"].is_null());
    assert!(
        s["no_fit"].as_str().unwrap().contains("cannot fit the law"),
        "{s}"
    );
    assert!(
        s["notes"][0]
            .as_str()
            .unwrap()
            .contains("could not be read"),
        "{s}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("No fit:"));
    for lang in ["zh", "en"] {
        let chart = svg_titled(
            &page,
            &format!("{lang} validation loss of the cells (no fit)"),
        );
        // Each cell is labelled with its observed loss.
        for c in s["cells"].as_array().unwrap() {
            if let Some(l) = c[lang].as_f64() {
                assert!(chart.contains(&format!("{l:.3}")), "{lang} {l}");
            }
        }
    }

    // All the cells and still no recommendation.json: the report fits
    // them itself, and says that `sweep fit` writes the file.
    std::fs::write(sweep.join("cells.jsonl"), cells_text(&grid(), &[])).unwrap();
    let v: Value = serde_json::from_str(&ok(&["report", sweep_s, "--json"])).unwrap();
    let s = &v["sweeps"][0];
    assert!(
        s["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("no recommendation.json yet"),
        "{s}"
    );
    let fit: Value = serde_json::from_str(&ok(&[
        "sweep",
        "fit",
        &format!("{sweep_s}/cells.jsonl"),
        "--json",
    ]))
    .unwrap();
    assert_eq!(s["recommendation"], fit);

    // A cell added since: recommendation.json is out of date.
    let mut text = cells_text(&grid(), &[]);
    text.push_str(&format!("{{\"almr\": 0.6, \"lr\": 2e-4, \"tokens\": {TOKENS}, \"val_loss\": {{\"zh\": 2.2, \"en\": 2.4}}}}\n"));
    std::fs::write(sweep.join("cells.jsonl"), text).unwrap();
    let v: Value = serde_json::from_str(&ok(&["report", sweep_s, "--json"])).unwrap();
    let notes = v["sweeps"][0]["notes"].to_string();
    assert!(
        notes.contains("recommendation.json is out of date"),
        "{notes}"
    );
}

#[test]
fn a_sweep_with_no_cells_reports_and_a_malformed_one_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("sweep");
    std::fs::create_dir(&sweep).unwrap();
    std::fs::write(sweep.join("sweep.json"), "{}").unwrap();
    let html = dir.path().join("report.html");
    let (sweep_s, html_s) = (sweep.to_str().unwrap(), html.to_str().unwrap());
    for cells in [None, Some(format!("{{\"base_en_loss\": {BASE_EN}}}\n"))] {
        if let Some(text) = cells {
            std::fs::write(sweep.join("cells.jsonl"), text).unwrap();
        }
        let table = ok(&["report", sweep_s, "--html", html_s]);
        assert!(table.contains("no fit: no finished cells yet"), "{table}");
        assert!(std::fs::read_to_string(&html)
            .unwrap()
            .contains("no finished cells yet"));
    }

    let mut text = cells_text(&grid()[..2], &[]);
    text.push_str("{\"almr\": 0.5, \"lr\": \n");
    std::fs::write(sweep.join("cells.jsonl"), text).unwrap();
    let out = almr_train(&["report", sweep_s]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cells.jsonl:4: "), "{stderr}");
}
