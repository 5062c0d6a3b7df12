//! The table `almr-train report` prints: one row per run, then the
//! warnings.

use std::fmt;

use super::{Report, RunSummary};

/// A loss to 4 decimals, `-` when there is none.
pub(crate) fn loss(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.4}"))
}

/// A count in k, M or G: `81.9k`, `1.05M`.
pub(crate) fn si(x: f64) -> String {
    let (v, unit) = match x.abs() {
        a if a >= 1e9 => (x / 1e9, "G"),
        a if a >= 1e6 => (x / 1e6, "M"),
        a if a >= 1e3 => (x / 1e3, "k"),
        _ => return format!("{x:.0}"),
    };
    let digits = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$}{unit}")
}

/// A `peak_*` record, in the unit its name ends with.
pub(crate) fn peak(key: &str, v: f64) -> String {
    let gib = if key.ends_with("_bytes") {
        v / (1u64 << 30) as f64
    } else if key.ends_with("_kib") {
        v / (1u64 << 20) as f64
    } else if key.ends_with("_mib") || key.ends_with("_mb") {
        v / 1024.0
    } else if key.ends_with("_gib") || key.ends_with("_gb") {
        v
    } else {
        return format!("{key} {v}");
    };
    format!("{gib:.2} GiB")
}

/// The peak records of a run, `-` when there are none.
pub(crate) fn peaks(s: &RunSummary) -> String {
    if s.peak.is_empty() {
        return "-".into();
    }
    let all: Vec<String> = s.peak.iter().map(|(k, &v)| peak(k, v)).collect();
    all.join(", ")
}

/// `done/planned`, marked when the run has not finished.
pub(crate) fn steps(s: &RunSummary) -> String {
    let mark = if s.finished { "" } else { " (not finished)" };
    format!("{}/{}{mark}", s.steps_done, s.steps_planned)
}

/// The cells of a run's row, under [`header`].
fn row(s: &RunSummary, langs: &[String]) -> Vec<String> {
    let mut cells = vec![
        s.name.clone(),
        steps(s),
        si(s.tokens as f64),
        loss(s.last_loss),
    ];
    for l in langs {
        cells.push(loss(s.last_val_loss.get(l).copied()));
    }
    cells.push(s.median_tokens_per_s.map_or_else(|| "-".into(), si));
    cells.push(peaks(s));
    cells
}

/// The column names.
fn header(langs: &[String]) -> Vec<String> {
    let mut cells: Vec<String> = ["run", "steps", "tokens", "loss"].map(String::from).into();
    cells.extend(langs.iter().map(|l| format!("val {l}")));
    cells.push("tokens/s".into());
    cells.push("peak memory".into());
    cells
}

/// Writes rows as columns: the first left-aligned, the others right.
pub(crate) fn columns(f: &mut fmt::Formatter<'_>, rows: &[Vec<String>]) -> fmt::Result {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..n)
        .map(|c| {
            let cell = |r: &Vec<String>| r.get(c).map_or(0, |s| s.chars().count());
            rows.iter().map(cell).max().unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c == 0 {
                line.push_str(&format!("{cell:<w$}", w = width[0]));
            } else {
                line.push_str(&format!("  {cell:>w$}", w = width[c]));
            }
        }
        writeln!(f, "{}", line.trim_end())?;
    }
    Ok(())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let langs = self.languages();
        let mut rows = vec![header(&langs)];
        rows.extend(self.runs.iter().map(|r| row(&r.summary, &langs)));
        columns(f, &rows)?;
        for r in &self.runs {
            for w in &r.summary.warnings {
                writeln!(f, "warning: {}: {w}", r.summary.name)?;
            }
            if r.summary.skipped_partial_line {
                writeln!(
                    f,
                    "{}: skipped a partial last line of metrics.jsonl",
                    r.summary.name
                )?;
            }
        }
        Ok(())
    }
}
