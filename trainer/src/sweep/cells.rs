//! Reading a sweep's cells file (`cells.jsonl`): one JSON object per line,
//! a cell `{"almr", "lr", "tokens", "val_loss": {"zh", "en"}, "diverged"?}`
//! or the base's English loss `{"base_en_loss": X}`; blank lines are skipped.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::SweepError;

/// The two languages a cell is validated on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Chinese, the added language: its share is the ALMR r.
    Zh,
    /// English, the base language: its share is 1 − r.
    En,
}

impl Lang {
    /// Both languages, zh first.
    pub const ALL: [Lang; 2] = [Lang::Zh, Lang::En];

    /// The share of this language's tokens at ALMR `r`.
    pub fn share(self, r: f64) -> f64 {
        match self {
            Lang::Zh => r,
            Lang::En => 1.0 - r,
        }
    }

    /// `zh` or `en`.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
}

/// Validation losses per language; `null` (or absent) when not measured.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ValLoss {
    /// Chinese validation loss.
    #[serde(default)]
    pub zh: Option<f64>,
    /// English validation loss.
    #[serde(default)]
    pub en: Option<f64>,
}

/// One finished (or diverged) run of the sweep.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Cell {
    /// The ALMR r, in [0, 1].
    pub almr: f64,
    /// The peak learning rate η.
    pub lr: f64,
    /// Training tokens D.
    pub tokens: f64,
    /// Validation losses.
    #[serde(default)]
    pub val_loss: ValLoss,
    /// Whether the run diverged.
    #[serde(default)]
    pub diverged: bool,
    /// The line of the file it came from, from 1.
    #[serde(skip_deserializing, default)]
    pub line: usize,
}

impl Cell {
    /// The loss of `lang`, if the cell is usable for its fit: not diverged,
    /// and the loss measured, finite and positive.
    pub fn loss(&self, lang: Lang) -> Option<f64> {
        let l = match lang {
            Lang::Zh => self.val_loss.zh,
            Lang::En => self.val_loss.en,
        }?;
        (!self.diverged && l.is_finite() && l > 0.0).then_some(l)
    }
}

/// A parsed cells file.
#[derive(Clone, Debug)]
pub struct Cells {
    /// The file.
    pub path: PathBuf,
    /// Every cell, in file order.
    pub cells: Vec<Cell>,
    /// The base checkpoint's English validation loss.
    pub base_en_loss: f64,
}

/// A `{"base_en_loss": X}` line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BaseLine {
    base_en_loss: f64,
}

impl Cells {
    /// Reads and checks `path`.
    pub fn read(path: &Path) -> Result<Cells, SweepError> {
        let text = std::fs::read_to_string(path).map_err(|source| SweepError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Cells::parse(path, &text)
    }

    /// Parses the text of a cells file; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Cells, SweepError> {
        let mut cells = Vec::new();
        let mut base = None;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let bad = |problem: String| SweepError::Line {
                path: path.to_path_buf(),
                line,
                problem,
            };
            if raw.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value =
                serde_json::from_str(raw).map_err(|e| bad(e.to_string()))?;
            if value.get("base_en_loss").is_some() {
                let b: BaseLine = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
                check_base(b.base_en_loss, base.is_some()).map_err(bad)?;
                base = Some(b.base_en_loss);
                continue;
            }
            let mut cell: Cell = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
            check_cell(&cell).map_err(bad)?;
            cell.line = line;
            cells.push(cell);
        }
        let file = |problem: &str| SweepError::File {
            path: path.to_path_buf(),
            problem: problem.to_string(),
        };
        let base_en_loss = base.ok_or_else(|| file("no {\"base_en_loss\": X} line"))?;
        if cells.is_empty() {
            return Err(file("no cells"));
        }
        Ok(Cells {
            path: path.to_path_buf(),
            cells,
            base_en_loss,
        })
    }
}

fn check_base(b: f64, seen: bool) -> Result<(), String> {
    if seen {
        return Err("a second base_en_loss line".into());
    }
    if !(b.is_finite() && b > 0.0) {
        return Err(format!("base_en_loss {b}: must be a finite number > 0"));
    }
    Ok(())
}

fn check_cell(c: &Cell) -> Result<(), String> {
    if !(0.0..=1.0).contains(&c.almr) {
        return Err(format!("almr {}: must be in [0, 1]", c.almr));
    }
    if !(c.lr.is_finite() && c.lr > 0.0) {
        return Err(format!("lr {}: must be a finite number > 0", c.lr));
    }
    if !(c.tokens.is_finite() && c.tokens > 0.0) {
        return Err(format!("tokens {}: must be a finite number > 0", c.tokens));
    }
    Ok(())
}
