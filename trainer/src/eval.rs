//! Mean next-token loss: over a shard's token stream (`almr-train eval`),
//! over a chat shard's trained tokens, and over a mix's validation split per
//! language.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize, Serializer};

use almr::mixfile::Split;
use almr::shard::{with_suffix, ShardReader};

use crate::data::{to_batch, Batch, MixData};
use crate::error::{IoContext, Result, TrainerError};
use crate::loss::IGNORE;
use crate::model::Llama;

/// A mean loss and what it was measured over. The fields are in
/// alphabetical order, the order in which `almr-train eval --json` has
/// always printed them.
#[derive(Debug, Clone, Serialize)]
pub struct Loss {
    /// Mean cross-entropy per predicted token (nats).
    pub loss: f64,
    /// Predicted tokens (`windows · seq_len`; the mask-1 tokens of packed
    /// SFT samples).
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
}

impl Meter {
    fn new() -> Meter {
        Meter {
            sum: 0.0,
            counted: 0,
            windows: 0,
        }
    }

    fn add(&mut self, model: &Llama, batch: &Batch) -> Result<()> {
        if batch.len == 0 {
            return Ok(());
        }
        let (sum, counted) =
            model.loss_sum(&batch.inputs, batch.packing.as_ref(), &batch.targets)?;
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
            tokens: self.counted,
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
    let mut meter = Meter::new();
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

/// A mean loss over the trained tokens of a chat shard's conversations.
/// The fields are in alphabetical order, as `--json` prints them.
#[derive(Debug, Clone, Serialize)]
pub struct ChatLoss {
    /// Conversations measured.
    pub conversations: usize,
    /// Mean cross-entropy per trained token (nats).
    pub loss: f64,
    /// Trained (mask 1) tokens predicted.
    pub tokens: usize,
}

impl fmt::Display for ChatLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loss {:.6} over {} conversations ({} trained tokens)",
            self.loss, self.conversations, self.tokens
        )
    }
}

/// The mask shard beside a chat shard: `PREFIX.mask`.
pub fn mask_prefix(prefix: &Path) -> std::path::PathBuf {
    with_suffix(prefix, almr::mixfile::packed::MASK)
}

/// Whether `prefix` is a chat shard: `PREFIX.mask.idx` is there.
pub fn is_chat_shard(prefix: &Path) -> bool {
    with_suffix(&mask_prefix(prefix), ".idx").is_file()
}

/// Mean loss over the trained tokens of a chat shard: each conversation on
/// its own, from position 0, `batch` at a time; the target at position `j`
/// is token `j + 1`, counted where its mask is 1 (`PREFIX.mask`, a u8 shard
/// of the same lengths). The mean is over every counted token.
pub fn chat_shard_loss(model: &Llama, prefix: &Path, batch: usize) -> Result<ChatLoss> {
    if batch == 0 {
        return Err(TrainerError::NotPositive("batch"));
    }
    let vocab = u32::try_from(model.config().vocab_size).unwrap_or(u32::MAX);
    let shard = ShardReader::open(prefix)?;
    let dtype = shard.dtype();
    let shard = shard.expect(dtype, vocab)?;
    let mask = ShardReader::open(&mask_prefix(prefix))?;
    if mask.len() != shard.len() {
        return Err(mask_mismatch(
            &mask,
            &format!("{} sequences", mask.len()),
            shard.len(),
        ));
    }
    let mut out = ChatLoss {
        conversations: 0,
        loss: 0.0,
        tokens: 0,
    };
    let (mut ids, mut bits) = (Vec::new(), Vec::new());
    let mut pending = Vec::new();
    for d in 0..shard.len() {
        ids.clear();
        bits.clear();
        shard.read_into(d, &mut ids)?;
        mask.read_into(d, &mut bits)?;
        if bits.len() != ids.len() {
            let what = format!("sequence {d} of {} tokens", bits.len());
            return Err(mask_mismatch(&mask, &what, ids.len()));
        }
        pending.push(conversation_pair(&ids, &bits));
        if pending.len() == batch {
            add_conversations(model, &pending, &mut out)?;
            pending.clear();
        }
    }
    add_conversations(model, &pending, &mut out)?;
    out.loss /= out.tokens as f64;
    Ok(out)
}

/// A mask shard that does not match its token shard.
fn mask_mismatch(mask: &ShardReader, what: &str, tokens: usize) -> TrainerError {
    TrainerError::Shape(format!(
        "{}: {what}, where the token shard has {tokens}",
        mask.prefix().display()
    ))
}

/// A conversation's inputs (every token but the last) and targets (the
/// next token where its mask is 1, else [`IGNORE`]).
fn conversation_pair(ids: &[u32], mask: &[u32]) -> (Vec<u32>, Vec<i64>) {
    let n = ids.len().saturating_sub(1);
    let targets = (1..=n)
        .map(|j| match mask[j] {
            0 => IGNORE,
            _ => i64::from(ids[j]),
        })
        .collect();
    (ids[..n].to_vec(), targets)
}

/// Adds the summed loss and counted tokens of conversations, run as one
/// batch padded at the end (the padding predicts nothing, and causal
/// attention keeps it out of every real token's view).
fn add_conversations(
    model: &Llama,
    convs: &[(Vec<u32>, Vec<i64>)],
    out: &mut ChatLoss,
) -> Result<()> {
    out.conversations += convs.len();
    let t = convs.iter().map(|(i, _)| i.len()).max().unwrap_or(0);
    if t == 0 || convs.iter().all(|(_, g)| g.iter().all(|&x| x == IGNORE)) {
        return Ok(());
    }
    let mut inputs = Vec::with_capacity(convs.len() * t);
    let mut targets = Vec::with_capacity(convs.len() * t);
    for (i, g) in convs {
        inputs.extend(i.iter().copied().chain(std::iter::repeat_n(0, t - i.len())));
        targets.extend(
            g.iter()
                .copied()
                .chain(std::iter::repeat_n(IGNORE, t - g.len())),
        );
    }
    let inputs =
        Tensor::from_vec(inputs, (convs.len(), t), &Device::Cpu)?.to_device(model.device())?;
    let (sum, counted) = model.loss_sum(&inputs, None, &targets)?;
    out.loss += sum;
    out.tokens += counted;
    Ok(())
}

/// Mean validation loss of a mix per language (at most `limit` samples each),
/// `batch` samples at a time.
pub fn valid_loss(model: &Llama, data: &MixData, limit: usize, batch: usize) -> Result<Losses> {
    let mut out = Vec::new();
    for (lang, samples) in data.valid_by_language(limit)? {
        let mut meter = Meter::new();
        for chunk in samples.chunks(batch.max(1)) {
            meter.add(model, &data.batch(Split::Valid, chunk, model.device())?)?;
        }
        out.push((lang, meter.finish()));
    }
    Ok(Losses(out))
}

/// A language whose validation loss is measured over fewer windows than
/// this is noise, and is warned about (as `almr mix` warns).
pub use almr::mixfile::report::MIN_WINDOWS;

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
        let mut windows: BTreeMap<String, usize> = (data.report().sources.iter())
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
