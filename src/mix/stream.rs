//! One source's token streams: its validation documents, and its training
//! documents repeated over shuffled epochs, cut into windows.
//!
//! A source's documents are numbered in shard order across its shards. A
//! seeded draw holds out whole documents for validation; they never enter the
//! training stream. The training stream is the training documents in a fresh
//! seeded order for each epoch, concatenated. Sample `k` is the window of
//! `seq_len + 1` tokens that starts at token `k · seq_len`, so consecutive
//! windows share one token, as in Megatron-LM's GPTDataset. The samples of
//! each epoch are then taken in a seeded random order, so that any prefix of
//! the blended stream uses up a source's first epoch before it repeats one.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::mixfile::index::Start;

/// A random generator for one purpose of one source, derived from the mix
/// seed so that sources and epochs draw independently.
pub(super) fn rng(seed: u64, source: &str, purpose: &str, n: u64) -> ChaCha8Rng {
    let key = format!("{source}\0{purpose}\0{n}");
    ChaCha8Rng::seed_from_u64(xxh3_64_with_seed(key.as_bytes(), seed))
}

/// Splits documents `0..lengths.len()` into (training, validation) lists, both
/// ascending, holding out `round(share · documents)` whole documents (at least
/// one when the share is positive, never all of them).
pub fn split(lengths: &[u32], share: f64, seed: u64, source: &str) -> (Vec<u32>, Vec<u32>) {
    let n = lengths.len();
    let mut held = (share * n as f64).round() as usize;
    if share > 0.0 {
        held = held.max(1);
    }
    held = held.min(n.saturating_sub(1));
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.shuffle(&mut rng(seed, source, "valid", 0));
    let mut valid = order[..held].to_vec();
    valid.sort_unstable();
    let mut is_valid = vec![false; n];
    for &d in &valid {
        is_valid[d as usize] = true;
    }
    let train = (0..n as u32).filter(|&d| !is_valid[d as usize]).collect();
    (train, valid)
}

/// Window starts over `docs` (in that order) for every full window of
/// `seq_len + 1` tokens, at most `limit` of them.
pub fn windows(docs: &[u32], lengths: &[u32], seq_len: u64, limit: u64) -> Vec<Start> {
    let mut out = Vec::new();
    let mut doc_start = 0u64; // stream position of docs[pos]
    let mut pos = 0usize;
    let total: u64 = docs.iter().map(|&d| lengths[d as usize] as u64).sum();
    let mut k = 0u64;
    while k < limit && k * seq_len + seq_len < total {
        let t = k * seq_len;
        while doc_start + lengths[docs[pos] as usize] as u64 <= t {
            doc_start += lengths[docs[pos] as usize] as u64;
            pos += 1;
        }
        out.push(Start {
            pos: pos as u64,
            offset: (t - doc_start) as u32,
        });
        k += 1;
    }
    out
}

/// The training stream of one source for `samples` samples.
pub struct TrainStream {
    /// Documents in stream order, epoch after epoch, cut after the last one
    /// a sample reaches.
    pub docs: Vec<u32>,
    /// Window starts in the order the blend takes them.
    pub samples: Vec<Start>,
    /// Epochs begun (the last may be partial).
    pub epochs_started: u64,
}

/// Tokens a stream of `samples` windows reads: `samples · seq_len + 1`.
pub fn tokens_needed(samples: u64, seq_len: u64) -> u64 {
    if samples == 0 {
        0
    } else {
        samples * seq_len + 1
    }
}

/// Builds the training stream of `train` documents for `samples` windows.
/// `train` must hold at least one token when `samples > 0`.
pub fn train_stream(
    train: &[u32],
    lengths: &[u32],
    samples: u64,
    seq_len: u64,
    seed: u64,
    source: &str,
) -> TrainStream {
    let needed = tokens_needed(samples, seq_len);
    let epoch_tokens: u64 = train.iter().map(|&d| lengths[d as usize] as u64).sum();
    let mut docs = Vec::new();
    let mut have = 0u64;
    let mut epochs = 0u64;
    while have < needed {
        let mut order = train.to_vec();
        order.shuffle(&mut rng(seed, source, "epoch", epochs));
        for d in order {
            if have >= needed {
                break;
            }
            docs.push(d);
            have += lengths[d as usize] as u64;
        }
        epochs += 1;
    }
    let mut samples_in_order = windows(&docs, lengths, seq_len, samples);
    // Shuffle the samples that start inside each epoch among themselves.
    let mut begin = 0usize;
    while begin < samples_in_order.len() {
        let epoch = begin as u64 * seq_len / epoch_tokens;
        let mut end = begin;
        while end < samples_in_order.len() && end as u64 * seq_len / epoch_tokens == epoch {
            end += 1;
        }
        samples_in_order[begin..end].shuffle(&mut rng(seed, source, "samples", epoch));
        begin = end;
    }
    TrainStream {
        docs,
        samples: samples_in_order,
        epochs_started: epochs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_holds_out_whole_documents_and_keeps_one() {
        let lengths = vec![5u32; 200];
        let (train, valid) = split(&lengths, 0.05, 7, "zh");
        assert_eq!(valid.len(), 10);
        assert_eq!(train.len() + valid.len(), 200);
        assert!(valid.iter().all(|d| train.binary_search(d).is_err()));
        assert_eq!(
            split(&lengths, 0.05, 7, "zh"),
            (train.clone(), valid.clone())
        );
        assert_ne!(split(&lengths, 0.05, 8, "zh").1, valid);
        assert_eq!(split(&lengths, 0.0001, 7, "zh").1.len(), 1);
        assert_eq!(split(&[3], 0.5, 7, "zh").1.len(), 0);
        assert_eq!(split(&lengths, 0.0, 7, "zh").1.len(), 0);
    }

    #[test]
    fn windows_overlap_by_one_token_and_drop_the_tail() {
        // Documents of 3, 4 and 2 tokens: 9 tokens, windows of 3 at stride 2.
        let lengths = [3u32, 4, 2];
        let w = windows(&[0, 1, 2], &lengths, 2, u64::MAX);
        let expect = [(0, 0), (0, 2), (1, 1), (1, 3)];
        let got: Vec<(u64, u32)> = w.iter().map(|s| (s.pos, s.offset)).collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn stream_repeats_epochs_in_new_orders() {
        let lengths = vec![10u32; 20];
        let train: Vec<u32> = (0..20).collect();
        // 200 tokens an epoch; 50 samples of 9+1 need 451 tokens: 3 epochs.
        let s = train_stream(&train, &lengths, 50, 9, 1, "en");
        assert_eq!(s.epochs_started, 3);
        assert_eq!(s.samples.len(), 50);
        assert_eq!(s.docs.len(), 46);
        let (e0, e1) = (&s.docs[..20], &s.docs[20..40]);
        let mut sorted = e0.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, train);
        assert_ne!(e0, e1);
        // Samples of the first epoch (starts below token 200) come first.
        let first_epoch = 200usize.div_ceil(9);
        assert!(s.samples[..first_epoch].iter().all(|st| st.pos < 20));
    }
}
