//! Mean next-token loss: over a shard's token stream (`almr-train eval`), and
//! over a mix's validation split per language.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize, Serializer};

use almr::mixfile::Split;
use almr::shard::ShardReader;

use crate::data::{to_batch, Batch, MixData};
use crate::error::{IoContext, Result, TrainerError};
use crate::model::Llama;

/// A mean loss and what it was measured over. The fields are in
/// alphabetical order, the order in which `almr-train eval --json` has
/// always printed them.
#[derive(Debug, Clone, Serialize)]
pub struct Loss {
    /// Mean cross-entropy per predicted token (nats).
    pub loss: f64,
    /// Predicted tokens (`windows · seq_len`).
    pub tokens: usize,
    /// Windows of `seq_len + 1` tokens.
    pub windows: usize,
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loss {:.6} over {} windows ({} tokens)",
            self.loss, self.windows, self.tokens
        )
    }
}

/// Losses by name (each language of a mix, or `shard`), in the order they
/// were measured. Displays one line per name; serializes as a JSON object,
/// its keys sorted.
#[derive(Debug, Clone, Default)]
pub struct Losses(pub Vec<(String, Loss)>);

impl fmt::Display for Losses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, (name, loss)) in self.0.iter().enumerate() {
            if k > 0 {
                writeln!(f)?;
            }
            write!(f, "{name}: {loss}")?;
        }
        Ok(())
    }
}

impl Serialize for Losses {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let map: BTreeMap<&str, &Loss> = self.0.iter().map(|(k, l)| (k.as_str(), l)).collect();
        map.serialize(s)
    }
}

/// Adds up losses of batches.
struct Meter {
    sum: f64,
    counted: usize,
    windows: usize,
    seq_len: usize,
}

impl Meter {
    fn new(seq_len: usize) -> Meter {
        Meter {
            sum: 0.0,
            counted: 0,
            windows: 0,
            seq_len,
        }
    }

    fn add(&mut self, model: &Llama, batch: &Batch) -> Result<()> {
        if batch.len == 0 {
            return Ok(());
        }
        let (sum, counted) = model.loss_sum(&batch.inputs, &batch.targets)?;
        self.sum += sum;
        self.counted += counted;
        self.windows += batch.len;
        Ok(())
    }

    fn finish(self) -> Loss {
        Loss {
            loss: if self.counted == 0 {
                f64::NAN
            } else {
                self.sum / self.counted as f64
            },
            windows: self.windows,
            tokens: self.windows * self.seq_len,
        }
    }
}

/// Mean loss over a shard's documents concatenated in order, cut into
/// consecutive, non-overlapping windows of `seq_len + 1` tokens (the tail
/// that does not fill a window is dropped), `batch` windows at a time.
pub fn shard_loss(model: &Llama, prefix: &Path, seq_len: usize, batch: usize) -> Result<Loss> {
    if seq_len == 0 || batch == 0 {
        return Err(TrainerError::NotPositive("seq_len and batch"));
    }
    // Ids past the model's vocabulary are an error naming the shard, not an
    // embedding lookup out of bounds.
    let shard = ShardReader::open(prefix)?;
    let vocab = u32::try_from(model.config().vocab_size).unwrap_or(u32::MAX);
    let dtype = shard.dtype();
    let shard = shard.expect(dtype, vocab)?;
    let mut meter = Meter::new(seq_len);
    let mut stream = Vec::new();
    let mut pending: Vec<Vec<u32>> = Vec::new();
    for d in 0..shard.len() {
        shard.read_into(d, &mut stream)?;
        while stream.len() > seq_len {
            pending.push(stream.drain(..seq_len + 1).collect());
            if pending.len() == batch {
                meter.add(model, &to_batch(&pending, seq_len, model.device())?)?;
                pending.clear();
            }
        }
    }
    meter.add(model, &to_batch(&pending, seq_len, model.device())?)?;
    Ok(meter.finish())
}

/// Mean validation loss of a mix per language (at most `limit` samples each),
/// `batch` samples at a time.
pub fn valid_loss(model: &Llama, data: &MixData, limit: usize, batch: usize) -> Result<Losses> {
    let mut out = Vec::new();
    for (lang, samples) in data.valid_by_language(limit)? {
        let mut meter = Meter::new(data.seq_len());
        for chunk in samples.chunks(batch.max(1)) {
            meter.add(model, &data.batch(Split::Valid, chunk, model.device())?)?;
        }
        out.push((lang, meter.finish()));
    }
    Ok(Losses(out))
}

/// A language whose validation loss is measured over fewer windows than
/// this is noise, and is warned about.
pub const MIN_WINDOWS: usize = 8;

/// The validation windows (samples of `seq_len + 1` tokens) an evaluation
/// of a mix measures, per language. A training run records them in
/// `RUN/valid.json` ([`ValidWindows::FILE`]), for `almr-train report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidWindows {
    /// Tokens each window predicts.
    pub seq_len: usize,
    /// Windows per language: every language of the mix's sources, 0 for
    /// one with no validation samples.
    pub windows: BTreeMap<String, usize>,
}

impl ValidWindows {
    /// The file in a run directory.
    pub const FILE: &'static str = "valid.json";

    /// The windows [`valid_loss`] measures with `limit` samples per
    /// language.
    pub fn count(data: &MixData, limit: usize) -> Result<ValidWindows> {
        let mut windows: BTreeMap<String, usize> = (data.index().report().sources.iter())
            .map(|s| (s.language.clone(), 0))
            .collect();
        for (lang, samples) in data.valid_by_language(limit)? {
            windows.insert(lang, samples.len());
        }
        Ok(ValidWindows {
            seq_len: data.seq_len(),
            windows,
        })
    }

    /// The languages with fewer than [`MIN_WINDOWS`] windows, and their
    /// counts.
    pub fn few(&self) -> Vec<(&str, usize)> {
        (self.windows.iter())
            .filter(|(_, &n)| n < MIN_WINDOWS)
            .map(|(l, &n)| (l.as_str(), n))
            .collect()
    }

    /// One warning per language in [`ValidWindows::few`].
    pub fn warnings(&self) -> Vec<String> {
        (self.few().into_iter())
            .map(|(lang, n)| {
                format!(
                    "validation loss of {lang} is over {n} window{} of {} tokens \
                     (fewer than {MIN_WINDOWS}): it is noise; a larger validation split \
                     (almr mix --valid-share) or more samples per language gives more",
                    if n == 1 { "" } else { "s" },
                    self.seq_len
                )
            })
            .collect()
    }

    /// Writes `RUN/valid.json`.
    pub fn write(&self, run: &Path) -> Result<()> {
        let path = run.join(Self::FILE);
        let text = serde_json::to_string_pretty(self).expect("windows serialize") + "\n";
        almr::fsutil::write_atomic(&path, text.as_bytes()).at("writing", &path)
    }

    /// Reads `RUN/valid.json`, if the run has one (runs made before it was
    /// written, or that never evaluate, do not).
    pub fn read(run: &Path) -> Result<Option<ValidWindows>> {
        let path = run.join(Self::FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).at("reading", &path)?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| TrainerError::Json { path, source })
    }
}
