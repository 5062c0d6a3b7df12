//! Batches of a mix: samples read through `almr::mixfile::MixIndex` (mmap),
//! or `almr::mixfile::packed::PackedIndex` for an SFT mix, in the index's
//! order, split into model inputs and next-token targets.
//!
//! A sample of an SFT mix is packed: whole conversations one after another,
//! then padding. Its batch says where each conversation starts
//! ([`Packing`]): positions restart at 0 there and attention stays inside
//! it; the targets count only the tokens the mask marks, within the same
//! conversation ([`to_packed_batch`]).

use std::path::Path;

use candle_core::{Device, Tensor};

pub use almr::mixfile::packed::PackedSeq;
use almr::mixfile::packed::{self, PackedIndex};
use almr::mixfile::{MixIndex, MixReport, Split};

use crate::error::{Result, TrainerError};
use crate::loss::IGNORE;
use crate::model::Packing;

/// A mix opened for training.
pub struct MixData {
    index: Index,
}

/// The index of a mix, by kind.
enum Index {
    /// Windows of `seq_len + 1` tokens of one stream (CPT).
    Windows(MixIndex),
    /// Packed conversations (SFT).
    Packed(PackedIndex),
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
    /// Tokens of the samples, padding excluded.
    pub tokens: usize,
    /// Where the conversations of packed samples are; `None` for windows of
    /// one token stream.
    pub packing: Option<Packing>,
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
        tokens: targets.len(),
        targets,
        len: windows.len(),
        packing: None,
    })
}

/// The input that fills a packed sample after its last conversation: any
/// id does, since padding is a segment of its own and predicts nothing.
const PAD: u32 = 0;

/// Refuses a packed sample that does not fit `seq_len`, or whose mask or
/// conversation starts do not match its tokens.
fn check_packed(s: &PackedSeq, seq_len: usize) -> Result<()> {
    let increasing = s.starts.windows(2).all(|w| w[0] < w[1]);
    let why = if s.ids.len() > seq_len {
        "more tokens than seq_len"
    } else if s.mask.len() != s.ids.len() {
        "a mask of another length than its tokens"
    } else if s.starts.first() != Some(&0) || !increasing {
        "conversation starts that are not 0 then increasing"
    } else if s.starts.last().is_some_and(|&l| l >= s.ids.len()) {
        "a conversation start past its tokens"
    } else {
        return Ok(());
    };
    Err(TrainerError::Shape(format!(
        "a packed sample of {} tokens (seq_len {seq_len}) with {why}",
        s.ids.len()
    )))
}

/// The segments of a packed sample of `seq_len` tokens: each conversation's
/// `(start, end)`, then the padding's if any.
fn segments(s: &PackedSeq, seq_len: usize) -> Vec<(usize, usize)> {
    let ends = s.starts.iter().skip(1).copied().chain([s.ids.len()]);
    let mut out: Vec<(usize, usize)> = s.starts.iter().copied().zip(ends).collect();
    if s.ids.len() < seq_len {
        out.push((s.ids.len(), seq_len));
    }
    out
}

/// A batch of packed samples, `[len, seq_len]`, padded with `PAD` after
/// the last conversation. Token `j` targets token `j + 1` only where that
/// one is in the same conversation and its mask is 1, else
/// [`IGNORE`]: the last token of each conversation and the padding predict
/// nothing. Positions restart at 0 at each conversation start (and at the
/// padding); segments number the conversations of a sample, the padding
/// last.
pub fn to_packed_batch(seqs: &[PackedSeq], seq_len: usize, device: &Device) -> Result<Batch> {
    let n = seqs.len() * seq_len;
    let (mut inputs, mut targets) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut positions, mut segment_ids) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for s in seqs {
        check_packed(s, seq_len)?;
        for (c, (a, e)) in segments(s, seq_len).into_iter().enumerate() {
            for j in a..e {
                inputs.push(s.ids.get(j).copied().unwrap_or(PAD));
                let next = (j + 1 < e && s.mask.get(j + 1).is_some_and(|&m| m != 0))
                    .then(|| s.ids[j + 1] as i64);
                targets.push(next.unwrap_or(IGNORE));
                positions.push((j - a) as u32);
                segment_ids.push(c as u32);
            }
        }
    }
    Ok(Batch {
        inputs: Tensor::from_vec(inputs, (seqs.len(), seq_len), device)?,
        targets,
        len: seqs.len(),
        tokens: seqs.iter().map(|s| s.ids.len()).sum(),
        packing: Some(Packing {
            positions,
            segments: segment_ids,
        }),
    })
}

impl MixData {
    /// Opens `OUT/mix/NAME`, a mix of windows or a packed (SFT) mix.
    pub fn open(path: &Path) -> Result<MixData> {
        let index = match packed::is_packed(path) {
            true => Index::Packed(PackedIndex::open(path)?),
            false => Index::Windows(MixIndex::open(path)?),
        };
        Ok(MixData { index })
    }

    /// The build's output directory (`OUT` of `OUT/mix/NAME`).
    pub fn out_dir(&self) -> &Path {
        match &self.index {
            Index::Windows(i) => i.out_dir(),
            Index::Packed(i) => i.out_dir(),
        }
    }

    /// Whether it is a packed (SFT) mix.
    pub fn is_packed(&self) -> bool {
        matches!(self.index, Index::Packed(_))
    }

    /// The sidecar.
    pub fn report(&self) -> &MixReport {
        match &self.index {
            Index::Windows(i) => i.report(),
            Index::Packed(i) => i.report(),
        }
    }

    /// Samples in `split`.
    pub fn len(&self, split: Split) -> usize {
        match &self.index {
            Index::Windows(i) => i.len(split),
            Index::Packed(i) => i.len(split),
        }
    }

    /// Whether `split` holds no samples.
    pub fn is_empty(&self, split: Split) -> bool {
        self.len(split) == 0
    }

    /// Tokens a sample is trained on (the most, for packed samples).
    pub fn seq_len(&self) -> usize {
        self.report().seq_len as usize
    }

    /// The source of sample `i` of `split` (of its first conversation, when
    /// packed).
    fn source_of(&self, split: Split, i: usize) -> Result<usize> {
        Ok(match &self.index {
            Index::Windows(x) => x.source_of(split, i)?,
            Index::Packed(x) => x.source_of(split, i)?,
        })
    }

    /// Samples `samples` of `split`, as one batch on `device`.
    pub fn batch(&self, split: Split, samples: &[usize], device: &Device) -> Result<Batch> {
        match &self.index {
            Index::Windows(index) => {
                let mut windows = vec![Vec::new(); samples.len()];
                for (w, &i) in windows.iter_mut().zip(samples) {
                    index.read(split, i, w)?;
                }
                to_batch(&windows, self.seq_len(), device)
            }
            Index::Packed(index) => {
                let seqs = (samples.iter())
                    .map(|&i| index.read(split, i))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                to_packed_batch(&seqs, self.seq_len(), device)
            }
        }
    }

    /// Validation samples grouped by source language, in order of first
    /// appearance, at most `limit` per language. A packed validation sample
    /// holds conversations of one source.
    pub fn valid_by_language(&self, limit: usize) -> Result<Vec<(String, Vec<usize>)>> {
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        if limit == 0 {
            return Ok(groups);
        }
        for i in 0..self.len(Split::Valid) {
            let lang = &self.report().sources[self.source_of(Split::Valid, i)?].language;
            match groups.iter_mut().find(|(l, _)| l == lang) {
                Some((_, v)) if v.len() < limit => v.push(i),
                Some(_) => {}
                None => groups.push((lang.clone(), vec![i])),
            }
        }
        Ok(groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(ids: Vec<u32>, mask: Vec<u8>, starts: Vec<usize>) -> PackedSeq {
        PackedSeq {
            source: 0,
            ids,
            mask,
            starts,
        }
    }

    /// Targets only where the next token is a masked one of the same
    /// conversation; positions restart at each conversation and at the
    /// padding, which is a segment of its own.
    #[test]
    fn a_packed_batch_has_targets_positions_and_segments_per_conversation() {
        let s = seq(
            vec![10, 11, 12, 13, 20, 21, 22],
            vec![0, 0, 1, 1, 0, 1, 1],
            vec![0, 4],
        );
        let b = to_packed_batch(&[s], 9, &Device::Cpu).unwrap();
        let inputs = b.inputs.to_vec2::<u32>().unwrap();
        assert_eq!(inputs, [[10, 11, 12, 13, 20, 21, 22, PAD, PAD]]);
        let x = IGNORE;
        assert_eq!(b.targets, [x, 12, 13, x, 21, 22, x, x, x]);
        let p = b.packing.unwrap();
        assert_eq!(p.positions, [0, 1, 2, 3, 0, 1, 2, 0, 1]);
        assert_eq!(p.segments, [0, 0, 0, 0, 1, 1, 1, 2, 2]);
        assert_eq!((b.len, b.tokens), (1, 7));
    }

    /// A pack that does not fit or does not hold together is an error.
    #[test]
    fn a_malformed_pack_is_an_error() {
        for (s, why) in [
            (seq(vec![1; 5], vec![1; 5], vec![0]), "more tokens"),
            (seq(vec![1; 3], vec![1; 2], vec![0]), "mask"),
            (seq(vec![1; 3], vec![1; 3], vec![]), "starts"),
            (seq(vec![1; 3], vec![1; 3], vec![0, 2, 2]), "starts"),
            (seq(vec![1; 3], vec![1; 3], vec![0, 3]), "past"),
        ] {
            let e = to_packed_batch(&[s], 4, &Device::Cpu).err().unwrap();
            assert!(e.to_string().contains(why), "{e}");
        }
    }
}
