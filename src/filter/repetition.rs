//! Repetition: Gopher's duplicate lines, paragraphs and n-grams (Rae et al.
//! 2021, Table A1, as in datatrove), and data-juicer's character repetition.
//! A line of code or a formula that is set aside (`}`, `\end{align}`) does
//! not count as a repeated line unless it repeats the line right above it,
//! and its words are never in a repeated n-gram: they count in the totals
//! only. The n-gram rules are for prose: they are skipped when lines of code
//! and formulas hold most of the words.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::step::Rejection;
use crate::text::{char_len, hash, is_cjk, paragraphs, Doc, HashCounts, Rolling};

/// Gopher repetition limits. N-grams are over words, so for Chinese over
/// characters.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RepetitionConfig {
    /// Run these checks.
    pub enabled: bool,
    /// Most lines that repeat an earlier line, per line (Gopher: 0.3).
    pub dup_line_frac: f64,
    /// Most paragraphs that repeat an earlier one, per paragraph (0.3).
    pub dup_para_frac: f64,
    /// Most characters in repeated lines, per character (0.2).
    pub dup_line_char_frac: f64,
    /// Most characters in repeated paragraphs, per character (0.2).
    pub dup_para_char_frac: f64,
    /// `[n, limit]`: most characters covered by the most frequent n-gram
    /// (Gopher: 2 → 0.20, 3 → 0.18, 4 → 0.16).
    pub top_ngram: Vec<(usize, f64)>,
    /// `[n, limit]`: most characters covered by n-grams seen before
    /// (Gopher: 5 → 0.15 down to 10 → 0.10).
    pub dup_ngram: Vec<(usize, f64)>,
    /// Most character-10-gram repetition (data-juicer's character repetition
    /// filter: the top √k n-gram frequencies over all of them; zh recipe 0.6).
    pub max_char_repetition: f64,
    /// In documents that are mostly CJK, each word is one character, while a
    /// Chinese word is about two: n-gram sizes are multiplied by this so that
    /// "5-gram" covers about five words in either language.
    pub cjk_chars_per_word: usize,
}

impl Default for RepetitionConfig {
    fn default() -> Self {
        RepetitionConfig {
            enabled: true,
            dup_line_frac: 0.3,
            dup_para_frac: 0.3,
            dup_line_char_frac: 0.2,
            dup_para_char_frac: 0.2,
            top_ngram: vec![(2, 0.20), (3, 0.18), (4, 0.16)],
            dup_ngram: vec![
                (5, 0.15),
                (6, 0.14),
                (7, 0.13),
                (8, 0.12),
                (9, 0.11),
                (10, 0.10),
            ],
            max_char_repetition: 0.6,
            cjk_chars_per_word: 2,
        }
    }
}

/// (share of items that repeat an earlier one, share of characters in them);
/// an item for which `exempt` holds counts, but never as a repeat.
fn duplicates(items: &[&str], exempt: impl Fn(usize) -> bool) -> (f64, f64) {
    let mut seen = HashCounts::with_capacity_and_hasher(items.len(), Default::default());
    let (mut dup, mut dup_chars, mut chars) = (0usize, 0usize, 0usize);
    for (i, item) in items.iter().enumerate() {
        let n = char_len(item);
        chars += n;
        if exempt(i) {
            continue;
        }
        let count = seen.entry(hash(item)).or_insert(0);
        if *count > 0 {
            dup += 1;
            dup_chars += n;
        }
        *count += 1;
    }
    (
        dup as f64 / items.len().max(1) as f64,
        dup_chars as f64 / chars.max(1) as f64,
    )
}

/// Characters covered by the most frequent n-gram, per character of all words.
fn top_ngram_share(r: &Rolling, lens: &[usize], total: usize, n: usize) -> f64 {
    if r.words() < n {
        return 0.0;
    }
    let mut counts = HashCounts::with_capacity_and_hasher(r.words(), Default::default());
    let mut best = (0u32, 0usize);
    for i in 0..=r.words() - n {
        let c = counts.entry(r.ngram(i, n)).or_insert(0);
        *c += 1;
        if *c > best.0 {
            best = (*c, i);
        }
    }
    if best.0 < 2 {
        return 0.0;
    }
    let gram_chars: usize = lens[best.1..best.1 + n].iter().sum();
    (best.0 as usize * gram_chars) as f64 / total.max(1) as f64
}

/// Characters in n-grams that occurred before, each character counted once.
/// Only positions in `candidates` can start a repeated n-gram.
fn dup_ngram_share(
    r: &Rolling,
    lens: &[usize],
    total: usize,
    n: usize,
    candidates: &[usize],
) -> f64 {
    let mut seen = HashCounts::with_capacity_and_hasher(candidates.len(), Default::default());
    let mut covered_to = 0usize; // words before this index are already counted
    let mut dup_chars = 0usize;
    for &i in candidates {
        if i + n > r.words() {
            break;
        }
        let count = seen.entry(r.ngram(i, n)).or_insert(0);
        if *count > 0 {
            let from = covered_to.max(i);
            dup_chars += lens[from..i + n].iter().sum::<usize>();
            covered_to = i + n;
        }
        *count += 1;
    }
    dup_chars as f64 / total.max(1) as f64
}

/// Positions whose `n`-gram occurs more than once: an m-gram (m ≥ n) can only
/// repeat where its first n words do.
fn repeated_starts(r: &Rolling, n: usize) -> Vec<usize> {
    if r.words() < n {
        return Vec::new();
    }
    let mut counts = HashCounts::with_capacity_and_hasher(r.words(), Default::default());
    for i in 0..=r.words() - n {
        *counts.entry(r.ngram(i, n)).or_insert(0) += 1;
    }
    (0..=r.words() - n)
        .filter(|&i| counts[&r.ngram(i, n)] > 1)
        .collect()
}

/// data-juicer's character repetition ratio over character `n`-grams.
pub fn char_repetition(text: &str, n: usize) -> f64 {
    let chars: Vec<u64> = text.chars().map(|c| c as u64).collect();
    if chars.len() < n {
        return 0.0;
    }
    let r = Rolling::new(&chars);
    let mut counts = HashCounts::with_capacity_and_hasher(chars.len(), Default::default());
    for i in 0..=chars.len() - n {
        *counts.entry(r.ngram(i, n)).or_insert(0) += 1;
    }
    let mut freqs: Vec<u32> = counts.into_values().collect();
    freqs.sort_unstable_by(|a, b| b.cmp(a));
    let singles = freqs.iter().filter(|&&f| f == 1).count();
    let top = ((freqs.len() as f64).sqrt() as usize).min(freqs.len() - singles);
    let total: u64 = freqs.iter().map(|&f| f as u64).sum();
    freqs[..top].iter().map(|&f| f as u64).sum::<u64>() as f64 / total.max(1) as f64
}

fn reject(reason: String, value: f64, limit: f64) -> Rejection {
    Rejection::new(reason, format!("{value:.3} > {limit}"))
}

/// Gopher's top and duplicated n-gram rules over the words of the prose;
/// the words of lines of code and formulas count in the total only.
fn ngram_repetition(doc: &Doc, c: &RepetitionConfig) -> Result<(), Rejection> {
    let words = doc.prose_words();
    let hashes: Vec<u64> = words.iter().map(|w| hash(w)).collect();
    let rolling = Rolling::new(&hashes);
    let lens: Vec<usize> = words.iter().map(|w| char_len(w)).collect();
    let total: usize = doc.words.iter().map(|w| char_len(w)).sum();
    let cjk_words = words
        .iter()
        .filter(|w| w.chars().next().is_some_and(is_cjk))
        .count();
    let scale = if cjk_words * 2 >= words.len() {
        c.cjk_chars_per_word.max(1)
    } else {
        1
    };
    for &(n, limit) in &c.top_ngram {
        let share = top_ngram_share(&rolling, &lens, total, n * scale);
        if share > limit {
            return Err(reject(
                format!("gopher_repetition.top_{n}gram"),
                share,
                limit,
            ));
        }
    }
    let smallest = c
        .dup_ngram
        .iter()
        .map(|&(n, _)| n * scale)
        .min()
        .unwrap_or(1)
        .max(1);
    let candidates = repeated_starts(&rolling, smallest);
    for &(n, limit) in &c.dup_ngram {
        let share = dup_ngram_share(&rolling, &lens, total, n * scale, &candidates);
        if share > limit {
            return Err(reject(
                format!("gopher_repetition.dup_{n}gram"),
                share,
                limit,
            ));
        }
    }
    Ok(())
}

/// All repetition checks.
pub fn repetition(doc: &Doc, c: &RepetitionConfig) -> Result<(), Rejection> {
    // A line of code or a formula that comes back later (`}`, `else:`, a
    // formula shown again in its source) is not a repeat; one that repeats
    // the line above it is.
    let (lines, line_chars) = duplicates(&doc.lines, |i| {
        doc.is_code(i) && (i == 0 || doc.lines[i - 1] != doc.lines[i])
    });
    if lines > c.dup_line_frac {
        return Err(reject(
            "gopher_repetition.dup_lines".into(),
            lines,
            c.dup_line_frac,
        ));
    }
    let paras = paragraphs(doc.text);
    let (para, para_chars) = duplicates(&paras, |_| false);
    if para > c.dup_para_frac {
        return Err(reject(
            "gopher_repetition.dup_paragraphs".into(),
            para,
            c.dup_para_frac,
        ));
    }
    if line_chars > c.dup_line_char_frac {
        return Err(reject(
            "gopher_repetition.dup_line_chars".into(),
            line_chars,
            c.dup_line_char_frac,
        ));
    }
    if para_chars > c.dup_para_char_frac {
        return Err(reject(
            "gopher_repetition.dup_paragraph_chars".into(),
            para_chars,
            c.dup_para_char_frac,
        ));
    }
    if doc.mostly_prose() {
        ngram_repetition(doc, c)?;
    }
    let rep = char_repetition(doc.text, 10);
    if rep > c.max_char_repetition {
        return Err(reject("char_repetition".into(), rep, c.max_char_repetition));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_lines_are_caught() {
        let text = "Welcome to our site.\n".repeat(10) + "Some other line here.";
        let e = repetition(&Doc::new(&text), &RepetitionConfig::default()).unwrap_err();
        assert_eq!(e.reason, "gopher_repetition.dup_lines");
    }

    #[test]
    fn one_ngram_repeated_is_caught() {
        let text = "buy cheap watches now ".repeat(40);
        let e = repetition(&Doc::new(&text), &RepetitionConfig::default()).unwrap_err();
        assert!(
            e.reason.starts_with("gopher_repetition.top_"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn code_lines_that_come_back_are_not_repeats() {
        let code = "int a = 1;\n}\nint b = 2;\n}\nint c = 3;\n}\nint d = 4;\n}";
        let c = RepetitionConfig::default();
        let e = repetition(&Doc::new(code), &c).unwrap_err();
        assert_eq!(e.reason, "gopher_repetition.dup_lines");
        let doc = Doc::new(code).with_code_lines(super::super::code::code_lines(code));
        assert!(repetition(&doc, &c).is_ok());
        // The same line over and over is repetition, code or not.
        let log = "Warning: mysql_connect() failed in db.php on line 12\n".repeat(8);
        let doc = Doc::new(&log).with_code_lines(super::super::code::code_lines(&log));
        let e = repetition(&doc, &c).unwrap_err();
        assert_eq!(e.reason, "gopher_repetition.dup_lines");
    }

    #[test]
    fn ordinary_prose_passes() {
        let text = "The committee met on Tuesday to discuss the budget. Several members raised \
                    concerns about the cost of the new library, while others argued that the \
                    investment would pay for itself within a decade. A vote is expected next month.";
        assert!(repetition(&Doc::new(text), &RepetitionConfig::default()).is_ok());
    }

    #[test]
    fn dup_ngrams_count_each_character_once() {
        // "a b c d e" twice: the second copy (5 one-char words) is duplicated.
        let h: Vec<u64> = "abcdeabcdex".chars().map(|c| c as u64).collect();
        let r = Rolling::new(&h);
        let lens = vec![1; 11];
        let all: Vec<usize> = (0..11).collect();
        assert!((dup_ngram_share(&r, &lens, 11, 5, &all) - 5.0 / 11.0).abs() < 1e-9);
        let candidates = repeated_starts(&r, 5);
        assert_eq!(candidates, [0, 5]);
        assert!((dup_ngram_share(&r, &lens, 11, 5, &candidates) - 5.0 / 11.0).abs() < 1e-9);
    }

    #[test]
    fn rolling_hashes_agree_with_direct_ones() {
        let h: Vec<u64> = (0..20).map(|i| i * 7919 % 13).collect();
        let r = Rolling::new(&h);
        let direct = Rolling::new(&h[3..8]);
        assert_eq!(r.ngram(3, 5), direct.ngram(0, 5));
        assert_ne!(r.ngram(3, 5), r.ngram(4, 5));
    }

    #[test]
    fn char_repetition_of_a_loop_is_high() {
        assert!(char_repetition(&"哈哈哈哈".repeat(50), 10) > 0.9);
        assert!(char_repetition("北京举行新年音乐会，江泽民等领导人出席。", 10) < 0.1);
    }
}
