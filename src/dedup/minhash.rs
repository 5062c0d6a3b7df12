//! MinHash signatures over character or word n-grams.
//!
//! Text is shingled after a dedup-only normalization (the kept text is not
//! changed): lowercase, full-width ASCII to half-width, every character that
//! is not a letter or digit becomes a separator, separators fold. Character
//! shingles skip the separators entirely (Chinese has no spaces to keep);
//! word shingles are n consecutive words.
//!
//! Each shingle is hashed to 64 bits (xxh3 for words, a polynomial rolling
//! hash over characters), and permutation `i` maps it to the high 32 bits of
//! `a_i·h + b_i mod 2^64` with `a_i` odd (multiply-shift hashing, a
//! 2-universal family: datatrove uses `(a·h + b) mod (2^61 − 1)`, which costs
//! a 128-bit product per permutation). The signature is the minimum of each
//! permutation over the shingles; a spurious equality has probability 2^-32.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::text::{is_cjk, Rolling};

/// What a shingle is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShingleUnit {
    /// Character n-grams for zh, ja and ko sources, word n-grams otherwise.
    Auto,
    /// Character n-grams (separators skipped).
    Char,
    /// Word n-grams.
    Word,
}

/// Lowercases, folds full-width ASCII and turns non-alphanumerics into
/// single separators (`' '`).
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut sep = true;
    for c in text.chars() {
        let c = match c {
            '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            _ => c,
        };
        let keep = if c.is_ascii() {
            c.is_ascii_alphanumeric()
        } else {
            is_cjk(c) || c.is_alphanumeric()
        };
        if keep {
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
            } else if is_cjk(c) {
                out.push(c);
            } else {
                out.extend(c.to_lowercase());
            }
            sep = false;
        } else if !sep {
            out.push(' ');
            sep = true;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Computes MinHash signatures with fixed, seeded permutations.
#[derive(Debug, Clone)]
pub struct MinHasher {
    a: Vec<u64>,
    b: Vec<u64>,
}

impl MinHasher {
    /// `k` permutations drawn from `seed`.
    pub fn new(k: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let a = (0..k).map(|_| rng.random::<u64>() | 1).collect();
        let b = (0..k).map(|_| rng.random::<u64>()).collect();
        MinHasher { a, b }
    }

    /// Number of permutations.
    pub fn len(&self) -> usize {
        self.a.len()
    }

    /// Whether there are no permutations.
    pub fn is_empty(&self) -> bool {
        self.a.is_empty()
    }

    /// The 64-bit hashes of the text's shingles, in text order (repeats
    /// included).
    pub fn shingles(text: &str, unit: ShingleUnit, n: usize) -> Vec<u64> {
        let norm = normalize(text);
        let units: Vec<u64> = match unit {
            ShingleUnit::Word => norm
                .split(' ')
                .filter(|w| !w.is_empty())
                .map(|w| xxhash_rust::xxh3::xxh3_64(w.as_bytes()))
                .collect(),
            _ => norm
                .chars()
                .filter(|&c| c != ' ')
                .map(|c| (c as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .collect(),
        };
        let n = n.max(1);
        let rolling = Rolling::new(&units);
        // Repeated shingles are kept: they cannot change a minimum.
        if units.len() <= n {
            vec![rolling.ngram(0, units.len())]
        } else {
            (0..=units.len() - n).map(|i| rolling.ngram(i, n)).collect()
        }
    }

    /// The signature of a set of shingle hashes.
    pub fn signature(&self, shingles: &[u64]) -> Vec<u32> {
        let mut sig = vec![u32::MAX; self.a.len()];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512dq") {
            // SAFETY: the CPU has the features the function is compiled for.
            unsafe { min_hashes_avx512(&self.a, &self.b, shingles, &mut sig) };
            return sig;
        }
        min_hashes(&self.a, &self.b, shingles, &mut sig);
        sig
    }
}

/// The permutation minima; the same arithmetic on every CPU, so signatures
/// do not depend on which version runs.
#[inline(always)]
fn min_hashes(a: &[u64], b: &[u64], shingles: &[u64], sig: &mut [u32]) {
    for &h in shingles {
        for ((s, &a), &b) in sig.iter_mut().zip(a).zip(b) {
            let v = (a.wrapping_mul(h).wrapping_add(b) >> 32) as u32;
            *s = (*s).min(v);
        }
    }
}

/// [`min_hashes`] compiled with AVX-512 (64-bit lane multiplies), which
/// baseline x86-64 lacks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl")]
unsafe fn min_hashes_avx512(a: &[u64], b: &[u64], shingles: &[u64], sig: &mut [u32]) {
    min_hashes(a, b, shingles, sig)
}

/// Share of equal positions: the estimated Jaccard similarity.
pub fn estimated_jaccard(a: &[u32], b: &[u32]) -> f64 {
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    same as f64 / a.len().max(1) as f64
}

/// The Jaccard similarity at which a pair becomes a candidate with
/// probability ½ is about `(1/bands)^(1/rows)`.
pub fn lsh_threshold(bands: usize, rows: usize) -> f64 {
    (1.0 / bands as f64).powf(1.0 / rows as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jaccard(a: &[u64], b: &[u64]) -> f64 {
        let sa: std::collections::HashSet<_> = a.iter().collect();
        let sb: std::collections::HashSet<_> = b.iter().collect();
        sa.intersection(&sb).count() as f64 / sa.union(&sb).count() as f64
    }

    #[test]
    fn normalization_folds_case_width_and_punctuation() {
        assert_eq!(
            normalize("Ｈｅｌｌｏ，  World!! ２０２４年"),
            "hello world 2024年"
        );
        assert_eq!(
            normalize("新华社北京１月２日电（记者王黎）"),
            "新华社北京1月2日电 记者王黎"
        );
    }

    #[test]
    fn char_and_word_shingles() {
        assert_eq!(
            MinHasher::shingles("中华人民共和国", ShingleUnit::Char, 5).len(),
            3
        );
        assert_eq!(
            MinHasher::shingles("a b c d e f", ShingleUnit::Word, 5).len(),
            2
        );
        assert_eq!(MinHasher::shingles("short", ShingleUnit::Word, 5).len(), 1);
        // Punctuation and case do not change shingles.
        assert_eq!(
            MinHasher::shingles("The cat, the HAT.", ShingleUnit::Word, 2),
            MinHasher::shingles("the cat the hat", ShingleUnit::Word, 2)
        );
    }

    #[test]
    fn estimates_track_true_jaccard() {
        let m = MinHasher::new(256, 1);
        let base: String = (0..400)
            .map(|i| char::from_u32(0x4e00 + (i * 37 % 3000) as u32).unwrap())
            .collect();
        let mut edited: Vec<char> = base.chars().collect();
        for i in (0..edited.len()).step_by(25) {
            edited[i] = '改';
        }
        let edited: String = edited.into_iter().collect();
        let (sa, sb) = (
            MinHasher::shingles(&base, ShingleUnit::Char, 5),
            MinHasher::shingles(&edited, ShingleUnit::Char, 5),
        );
        let truth = jaccard(&sa, &sb);
        let est = estimated_jaccard(&m.signature(&sa), &m.signature(&sb));
        assert!((est - truth).abs() < 0.1, "estimate {est} vs {truth}");
        assert_eq!(m.signature(&sa), m.signature(&sa));
    }

    #[test]
    fn vector_and_scalar_signatures_agree() {
        let m = MinHasher::new(100, 7);
        let shingles: Vec<u64> = (0..1000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let mut scalar = vec![u32::MAX; 100];
        min_hashes(&m.a, &m.b, &shingles, &mut scalar);
        assert_eq!(m.signature(&shingles), scalar);
    }

    #[test]
    fn thresholds() {
        assert!((lsh_threshold(14, 8) - 0.719).abs() < 0.001);
        assert!((lsh_threshold(20, 13) - 0.794).abs() < 0.001);
    }
}
