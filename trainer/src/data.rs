//! Batches of a mix: samples read through `almr::mixfile::MixIndex` (mmap), in the
//! index's order, split into model inputs and next-token targets.

use std::path::Path;

use candle_core::{Device, Tensor};

use almr::mixfile::{MixIndex, Split};

use crate::error::{Result, TrainerError};

/// A mix opened for training.
pub struct MixData {
    index: MixIndex,
}

/// Inputs (`[batch, seq_len]` u32, on the device) and targets.
pub struct Batch {
    /// Tokens `0..L` of each sample.
    pub inputs: Tensor,
    /// Tokens `1..=L` of each sample, flattened, as the loss takes them
    /// ([`crate::loss::IGNORE`] where none counts).
    pub targets: Vec<i64>,
    /// Samples in the batch.
    pub len: usize,
}

/// A batch of windows of `seq_len + 1` tokens.
pub fn to_batch(windows: &[Vec<u32>], seq_len: usize, device: &Device) -> Result<Batch> {
    let mut inputs = Vec::with_capacity(windows.len() * seq_len);
    let mut targets = Vec::with_capacity(windows.len() * seq_len);
    for w in windows {
        if w.len() != seq_len + 1 {
            return Err(TrainerError::WindowLength {
                found: w.len(),
                expected: seq_len + 1,
            });
        }
        inputs.extend_from_slice(&w[..seq_len]);
        targets.extend(w[1..].iter().map(|&t| t as i64));
    }
    let shape = (windows.len(), seq_len);
    Ok(Batch {
        inputs: Tensor::from_vec(inputs, shape, device)?,
        targets,
        len: windows.len(),
    })
}

impl MixData {
    /// Opens `OUT/mix/NAME`.
    pub fn open(path: &Path) -> Result<MixData> {
        Ok(MixData {
            index: MixIndex::open(path)?,
        })
    }

    /// The index.
    pub fn index(&self) -> &MixIndex {
        &self.index
    }

    /// Tokens a sample is trained on.
    pub fn seq_len(&self) -> usize {
        self.index.seq_len()
    }

    /// Samples `samples` of `split`, as one batch on `device`.
    pub fn batch(&self, split: Split, samples: &[usize], device: &Device) -> Result<Batch> {
        let mut windows = vec![Vec::new(); samples.len()];
        for (w, &i) in windows.iter_mut().zip(samples) {
            self.index.read(split, i, w)?;
        }
        to_batch(&windows, self.seq_len(), device)
    }

    /// Validation samples grouped by source language, in order of first
    /// appearance, at most `limit` per language.
    pub fn valid_by_language(&self, limit: usize) -> Result<Vec<(String, Vec<usize>)>> {
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        if limit == 0 {
            return Ok(groups);
        }
        for i in 0..self.index.len(Split::Valid) {
            let lang =
                &self.index.report().sources[self.index.source_of(Split::Valid, i)?].language;
            match groups.iter_mut().find(|(l, _)| l == lang) {
                Some((_, v)) if v.len() < limit => v.push(i),
                Some(_) => {}
                None => groups.push((lang.clone(), vec![i])),
            }
        }
        Ok(groups)
    }
}
