//! Text helpers shared by the steps and the build: character classes,
//! words, lines and paragraphs, hashes of words and n-grams, and snippets for
//! reject rows and error messages.
//!
//! A *word* is a run of letters and digits (with inner `'`, `-`, `_`, `.`),
//! except that every CJK character is a word of its own: Chinese has no
//! spaces, so counting whitespace-separated words would make a whole clause
//! one "word". Punctuation and symbols are not words.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// CJK unified ideographs (basic block and extension A).
pub fn is_han(c: char) -> bool {
    matches!(c, '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}')
}

/// A short, single-line excerpt of `s` for error details (at most `max` chars).
pub fn snippet(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// Whether `c` is a CJK character (Han, kana, Hangul).
pub fn is_cjk(c: char) -> bool {
    is_han(c)
        || matches!(c, '\u{3040}'..='\u{30ff}' | '\u{ac00}'..='\u{d7af}' | '\u{f900}'..='\u{faff}')
        || ('\u{20000}'..='\u{2ffff}').contains(&c)
}

/// Calls `f` with each word of `text`, in order, while it returns true.
fn for_each_word<'a>(text: &'a str, mut f: impl FnMut(&'a str) -> bool) {
    let mut start: Option<usize> = None;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if is_cjk(c) {
            if let Some(s) = start.take() {
                if !f(&text[s..i]) {
                    return;
                }
            }
            if !f(&text[i..i + c.len_utf8()]) {
                return;
            }
        } else if c.is_alphanumeric() {
            start.get_or_insert(i);
        } else if start.is_some()
            && matches!(c, '\'' | '’' | '-' | '_' | '.')
            && iter
                .peek()
                .is_some_and(|&(_, n)| n.is_alphanumeric() && !is_cjk(n))
        {
            // inner punctuation: don't, e-mail, 3.14
        } else if let Some(s) = start.take() {
            if !f(&text[s..i]) {
                return;
            }
        }
    }
    if let Some(s) = start {
        f(&text[s..]);
    }
}

/// The words of `text`, in order.
pub fn words(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for_each_word(text, |w| {
        out.push(w);
        true
    });
    out
}

/// Whether `text` has at least `n` words (stops counting there).
pub fn has_words(text: &str, n: usize) -> bool {
    let mut count = 0;
    for_each_word(text, |_| {
        count += 1;
        count < n
    });
    count >= n
}

/// The non-blank lines of `text`, trimmed.
pub fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// The paragraphs of `text`: blocks separated by blank lines, trimmed.
pub fn paragraphs(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut end = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            if let Some(s) = start.take() {
                out.push(text[s..end].trim());
            }
        } else {
            start.get_or_insert(offset);
            end = offset + line.len();
        }
        offset += line.len();
    }
    if let Some(s) = start {
        out.push(text[s..end].trim());
    }
    out
}

/// Number of characters.
pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Edits that turn `a` into `b`, in characters: insertions, deletions,
/// substitutions and swaps of two neighbours each cost one (the optimal
/// string alignment distance).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // rows[k][j]: distance between a[..i+k-2] and b[..j], for the last three rows.
    let mut rows = [
        vec![0; b.len() + 1],
        vec![0; b.len() + 1],
        (0..=b.len()).collect(),
    ];
    for i in 1..=a.len() {
        rows.rotate_left(1);
        rows[2][0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[1][j] + 1)
                .min(rows[2][j - 1] + 1)
                .min(rows[1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[0][j - 2] + 1);
            }
            rows[2][j] = d;
        }
    }
    rows[2][b.len()]
}

/// The candidate nearest to `word`, for a "did you mean" hint: only when it
/// is close (at most a third of `word`'s characters away, and at least one
/// edit is allowed) and nearer than every other candidate.
pub fn nearest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let limit = (char_len(word) / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    let mut tied = false;
    for c in candidates {
        let d = edit_distance(word, c);
        match best {
            _ if d == 0 || d > limit => {}
            Some((b, _)) if d > b => {}
            Some((b, other)) if d == b => tied |= other != c,
            _ => {
                best = Some((d, c));
                tied = false;
            }
        }
    }
    best.filter(|_| !tied).map(|(_, c)| c)
}

/// A hasher for keys that are already hashes.
#[derive(Default)]
pub struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map keyed by 64-bit hashes.
pub type HashCounts = HashMap<u64, u32, BuildHasherDefault<PreHashed>>;

/// 64-bit hash of a string.
pub fn hash(s: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(s.as_bytes())
}

/// Polynomial hashes of a sequence of unit hashes (words or characters): the
/// hash of any n-gram in O(1).
pub struct Rolling {
    /// `prefix[i]` hashes units `0..i`.
    prefix: Vec<u64>,
    /// `BASE^k`.
    powers: Vec<u64>,
}

const BASE: u64 = 0x100_0000_01b3;

impl Rolling {
    /// Prefix hashes of `word_hashes`.
    pub fn new(word_hashes: &[u64]) -> Self {
        let mut prefix = Vec::with_capacity(word_hashes.len() + 1);
        let mut powers = Vec::with_capacity(word_hashes.len() + 1);
        let (mut h, mut p) = (0u64, 1u64);
        prefix.push(h);
        powers.push(p);
        for &w in word_hashes {
            h = h.wrapping_mul(BASE).wrapping_add(w);
            p = p.wrapping_mul(BASE);
            prefix.push(h);
            powers.push(p);
        }
        Rolling { prefix, powers }
    }

    /// Number of units.
    pub fn words(&self) -> usize {
        self.prefix.len() - 1
    }

    /// Hash of the `n` units starting at `i`, mixed with `n`.
    pub fn ngram(&self, i: usize, n: usize) -> u64 {
        let h = self.prefix[i + n].wrapping_sub(self.prefix[i].wrapping_mul(self.powers[n]));
        (h ^ n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

/// A document with the measurements every filter needs, computed once.
pub struct Doc<'a> {
    /// The text.
    pub text: &'a str,
    /// Its length in characters.
    pub chars: usize,
    /// Its words.
    pub words: Vec<&'a str>,
    /// Its non-blank lines, trimmed.
    pub lines: Vec<&'a str>,
    /// For each of `lines`, whether it is set aside as code or a formula
    /// (empty when none is).
    code: Vec<bool>,
    /// The words of the lines that are not set aside (`None`: `words`).
    prose_words: Option<Vec<&'a str>>,
}

impl<'a> Doc<'a> {
    /// Measures `text`.
    pub fn new(text: &'a str) -> Self {
        Doc {
            text,
            chars: char_len(text),
            words: words(text),
            lines: lines(text),
            code: Vec::new(),
            prose_words: None,
        }
    }

    /// Sets lines aside as code or formulas: `code[i]` for `lines[i]`.
    pub fn with_code_lines(mut self, code: Vec<bool>) -> Self {
        if code.iter().any(|&c| c) {
            let prose = self.lines.iter().zip(&code).filter(|(_, &c)| !c);
            self.prose_words = Some(prose.flat_map(|(l, _)| words(l)).collect());
        }
        self.code = code;
        self
    }

    /// Whether line `i` of `lines` is set aside as code or a formula.
    pub fn is_code(&self, i: usize) -> bool {
        self.code.get(i).copied().unwrap_or(false)
    }

    /// The words of the lines that are not set aside as code or formulas.
    pub fn prose_words(&self) -> &[&'a str] {
        self.prose_words.as_deref().unwrap_or(&self.words)
    }

    /// Whether the words outside lines of code and formulas are at least
    /// half of all the words: the document is prose, not code.
    pub fn mostly_prose(&self) -> bool {
        self.prose_words().len() * 2 >= self.words.len()
    }

    /// The lines that are not set aside as code or formulas.
    pub fn prose_lines(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.lines
            .iter()
            .enumerate()
            .filter(|&(i, _)| !self.is_code(i))
            .map(|(_, l)| *l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_cuts_and_flattens() {
        assert_eq!(snippet("ab\ncd", 10), "ab cd");
        assert_eq!(snippet("中文测试文本", 3), "中文测…");
    }

    #[test]
    fn words_split_latin_runs_and_single_cjk() {
        assert_eq!(
            words("Don't stop-now, 3.14 ok."),
            ["Don't", "stop-now", "3.14", "ok"]
        );
        assert_eq!(
            words("北京 Beijing，中国。"),
            ["北", "京", "Beijing", "中", "国"]
        );
        assert_eq!(words("１９９８年"), ["１９９８", "年"]);
        assert!(words("!!! ... ★★").is_empty());
        assert!(has_words("one two three", 3) && !has_words("one two", 3) && has_words("", 0));
    }

    #[test]
    fn edit_distances_count_swaps_as_one() {
        assert_eq!(edit_distance("text_feild", "text_field"), 1);
        assert_eq!(edit_distance("json", "jsonl"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("中文", "中国"), 1);
    }

    #[test]
    fn nearest_only_when_close_and_unique() {
        let keys = ["text_field", "id_field", "text_unit"];
        assert_eq!(nearest("text_feild", keys), Some("text_field"));
        assert_eq!(nearest("json", ["jsonl", "parquet", "text"]), Some("jsonl"));
        assert_eq!(nearest("colour", keys), None);
        assert_eq!(
            nearest("text_field", keys),
            None,
            "an exact match is no hint"
        );
        assert_eq!(nearest("ab", ["ac", "bb"]), None, "a tie is no hint");
    }

    #[test]
    fn lines_and_paragraphs() {
        assert_eq!(lines(" a \n\n b\n"), ["a", "b"]);
        assert_eq!(paragraphs("a\nb\n\n\nc\n \nd"), ["a\nb", "c", "d"]);
    }
}
