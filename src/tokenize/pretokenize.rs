//! Pre-tokenizer: splits text into pieces as the Llama-3 and Qwen regexes do.
//!
//! Both tokenizers split text with one regex, run by Oniguruma in
//! `tokenizers`. The patterns differ only in how many digits a piece may
//! hold. A regex engine spends most of its time here on backtracking for
//! `\s+(?!\S)`; [`Scanner`] matches the same alternatives by hand, in one
//! left-to-right pass over the bytes, with the Unicode classes looked up in a
//! table.

use std::sync::OnceLock;

use regex_syntax::hir::{Class, HirKind};

/// The Llama-3 split pattern, exactly as in its `tokenizer.json`.
pub const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The Qwen2/Qwen3 split pattern: the same, with one digit per piece.
pub const QWEN_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Neither a letter, a number nor white space.
const OTHER: u8 = 0;
/// `\p{L}`.
const LETTER: u8 = 1;
/// `\p{N}`.
const NUMBER: u8 = 2;
/// `\s` other than `\r` and `\n`.
const SPACE: u8 = 3;
/// `\r` or `\n`.
const NEWLINE: u8 = 4;

/// The ranges of one Unicode class, from regex-syntax's tables (Unicode 16,
/// as Oniguruma's in `tokenizers`; `tests/tokenize.rs` checks every code
/// point against it).
fn class_ranges(class: &str) -> Vec<(usize, usize)> {
    let hir = regex_syntax::parse(class).expect("a valid class");
    match hir.kind() {
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .map(|r| (r.start() as usize, r.end() as usize))
            .collect(),
        other => unreachable!("{class} parsed to {other:?}"),
    }
}

/// The class of every code point (1.1 MB, built on first use).
fn classes() -> &'static [u8] {
    static TABLE: OnceLock<Vec<u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = vec![OTHER; 0x11_0000];
        for (class, c) in [(r"\p{L}", LETTER), (r"\p{N}", NUMBER), (r"\s", SPACE)] {
            for (a, b) in class_ranges(class) {
                t[a..=b].fill(c);
            }
        }
        t[usize::from(b'\r')] = NEWLINE;
        t[usize::from(b'\n')] = NEWLINE;
        t
    })
}

/// Decodes the char at byte `i` of valid UTF-8: (code point, length).
#[inline(always)]
fn decode(s: &[u8], i: usize) -> (u32, usize) {
    let b0 = u32::from(s[i]);
    let cont = |k: usize| u32::from(s[i + k]) & 0x3F;
    if b0 < 0x80 {
        (b0, 1)
    } else if b0 < 0xE0 {
        (((b0 & 0x1F) << 6) | cont(1), 2)
    } else if b0 < 0xF0 {
        (((b0 & 0x0F) << 12) | (cont(1) << 6) | cont(2), 3)
    } else {
        (
            ((b0 & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3),
            4,
        )
    }
}

/// Simple case folding for the contractions: ASCII, and U+017F LATIN SMALL
/// LETTER LONG S, which Oniguruma folds to `s`.
#[inline]
fn fold(c: u32) -> u32 {
    match c {
        0x41..=0x5A => c + 0x20,
        0x17F => u32::from(b's'),
        _ => c,
    }
}

/// A hand-written matcher for [`LLAMA3_PATTERN`] or [`QWEN_PATTERN`], with
/// Oniguruma's leftmost-first alternation. Every char starts a match, so the
/// pieces cover the text with no gaps.
#[derive(Clone, Copy)]
pub struct Scanner {
    max_digits: usize,
    classes: &'static [u8],
}

impl Scanner {
    /// The scanner for `pattern`, or `None` if it is neither of the two.
    pub fn for_pattern(pattern: &str) -> Option<Scanner> {
        let max_digits = match pattern {
            LLAMA3_PATTERN => 3,
            QWEN_PATTERN => 1,
            _ => return None,
        };
        Some(Scanner {
            max_digits,
            classes: classes(),
        })
    }

    /// Splits `text` into pieces, calling `f` with each in order.
    #[inline]
    pub fn split<'t>(&self, text: &'t str, mut f: impl FnMut(&'t [u8])) {
        let s = text.as_bytes();
        let mut i = 0;
        while i < s.len() {
            let end = self.piece_end(s, i);
            f(&s[i..end]);
            i = end;
        }
    }

    /// (class, code point, length) of the char at `i`.
    #[inline(always)]
    fn at(&self, s: &[u8], i: usize) -> (u8, u32, usize) {
        let (c, len) = decode(s, i);
        (self.classes[c as usize], c, len)
    }

    /// End of the run of letters from `i`.
    #[inline(always)]
    fn letters(&self, s: &[u8], mut i: usize) -> usize {
        while i < s.len() {
            if s[i].is_ascii() {
                if !s[i].is_ascii_alphabetic() {
                    break;
                }
                i += 1;
            } else {
                let (k, _, len) = self.at(s, i);
                if k != LETTER {
                    break;
                }
                i += len;
            }
        }
        i
    }

    /// End of `(?i:'s|'t|'re|'ve|'m|'ll|'d)` at `i` (just past the quote),
    /// if it matches there.
    fn contraction(&self, s: &[u8], i: usize) -> Option<usize> {
        let (_, c1, l1) = self.at(s, i);
        let second = |want: u8| {
            let j = i + l1;
            j < s.len() && fold(self.at(s, j).1) == u32::from(want)
        };
        match u8::try_from(fold(c1)).ok()? {
            b's' | b't' | b'm' | b'd' => Some(i + l1),
            b'r' | b'v' if second(b'e') => Some(i + l1 + 1),
            b'l' if second(b'l') => Some(i + l1 + 1),
            _ => None,
        }
    }

    /// End of the piece that starts at `i < s.len()`.
    fn piece_end(&self, s: &[u8], i: usize) -> usize {
        let n = s.len();
        let (k, c, len) = self.at(s, i);
        let j = i + len;
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if c == u32::from(b'\'') && j < n {
            if let Some(end) = self.contraction(s, j) {
                return end;
            }
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if k == LETTER {
            return self.letters(s, j);
        }
        if (k == OTHER || k == SPACE) && j < n {
            let (k1, _, l1) = self.at(s, j);
            if k1 == LETTER {
                return self.letters(s, j + l1);
            }
        }
        // \p{N}{1,3} (Llama-3) or \p{N} (Qwen)
        if k == NUMBER {
            return self.digits(s, j);
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        let others_from = if k == OTHER {
            Some(j)
        } else if c == u32::from(b' ') && j < n {
            let (k1, _, l1) = self.at(s, j);
            (k1 == OTHER).then_some(j + l1)
        } else {
            None
        };
        match others_from {
            Some(end) => self.symbols(s, end),
            None => self.spaces(s, i, j, k),
        }
    }

    /// End of a run of digits whose first ends at `j`: at most
    /// `max_digits` in all.
    #[inline]
    fn digits(&self, s: &[u8], j: usize) -> usize {
        let mut end = j;
        for _ in 1..self.max_digits {
            if end == s.len() {
                break;
            }
            let (k1, _, l1) = self.at(s, end);
            if k1 != NUMBER {
                break;
            }
            end += l1;
        }
        end
    }

    /// End of a run of other characters from `end` on, with the line breaks
    /// right after it.
    #[inline]
    fn symbols(&self, s: &[u8], mut end: usize) -> usize {
        let n = s.len();
        while end < n {
            let (k1, _, l1) = self.at(s, end);
            if k1 != OTHER {
                break;
            }
            end += l1;
        }
        while end < n && (s[end] == b'\r' || s[end] == b'\n') {
            end += 1;
        }
        end
    }

    /// End of the white-space piece whose first char (of kind `k`, SPACE or
    /// NEWLINE) spans `i..j`. Finds the whole run, the end of its last
    /// newline and the start of its last char.
    #[inline]
    fn spaces(&self, s: &[u8], i: usize, j: usize, k: u8) -> usize {
        let n = s.len();
        let mut end = j;
        let mut after_newline = (k == NEWLINE).then_some(j);
        let mut last_start = i;
        while end < n {
            let (k1, _, l1) = self.at(s, end);
            if k1 == NEWLINE {
                after_newline = Some(end + l1);
            } else if k1 != SPACE {
                break;
            }
            last_start = end;
            end += l1;
        }
        // \s*[\r\n]+ : up to the last newline of the run.
        if let Some(e) = after_newline {
            return e;
        }
        // \s+(?!\S) : the run, less its last char when a non-space follows;
        // \s+ : a single space char before a non-space.
        if end == n || last_start == i {
            end
        } else {
            last_start
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(pattern: &str, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        Scanner::for_pattern(pattern)
            .unwrap()
            .split(text, |p| out.push(String::from_utf8(p.to_vec()).unwrap()));
        out
    }

    #[test]
    fn splits_like_the_llama3_regex() {
        assert_eq!(
            pieces(
                LLAMA3_PATTERN,
                "Hello, world! It's 12345 people\n\n  中文 x  y"
            ),
            [
                "Hello", ",", " world", "!", " It", "'s", " ", "123", "45", " people", "\n\n", " ",
                " 中文", " x", " ", " y"
            ]
        );
    }

    #[test]
    fn qwen_takes_one_digit_at_a_time() {
        assert_eq!(
            pieces(QWEN_PATTERN, "x 2024"),
            ["x", " ", "2", "0", "2", "4"]
        );
    }

    #[test]
    fn contractions_fold_case() {
        assert_eq!(
            pieces(LLAMA3_PATTERN, "'S'LL'ſx're'x"),
            ["'S", "'LL", "'ſ", "x", "'re", "'x"]
        );
    }

    /// Piece boundaries from `tokenizers`' own Split (Oniguruma).
    fn onig_pieces(pattern: &str, text: &str) -> Vec<(usize, usize)> {
        use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
        use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};
        let split = Split::new(
            SplitPattern::Regex(pattern.into()),
            tokenizers::SplitDelimiterBehavior::Isolated,
            false,
        )
        .unwrap();
        let mut p = PreTokenizedString::from(text);
        split.pre_tokenize(&mut p).unwrap();
        p.get_splits(OffsetReferential::Original, OffsetType::Byte)
            .into_iter()
            .map(|(_, offsets, _)| offsets)
            .collect()
    }

    /// Every code point of planes 0–3 and 14–16 (4–13 have never been
    /// assigned), in contexts that tell its class (letter, number, space,
    /// other) and its case fold apart, splits as Oniguruma splits it.
    #[test]
    fn every_code_point_splits_as_oniguruma() {
        let chars: Vec<char> = (0..0x4_0000)
            .chain(0xE_0000..0x11_0000)
            .filter_map(char::from_u32)
            .collect();
        for pattern in [LLAMA3_PATTERN, QWEN_PATTERN] {
            let scanner = Scanner::for_pattern(pattern).unwrap();
            for chunk in chars.chunks(4096) {
                let mut text = String::new();
                for &c in chunk {
                    text.extend([c, 'a', '\'', c, 'a', ' ', c, '1', c, '\n', c, ' ', ' ', c]);
                }
                let mut ours = Vec::new();
                let base = text.as_ptr() as usize;
                scanner.split(&text, |p| {
                    let start = p.as_ptr() as usize - base;
                    ours.push((start, start + p.len()));
                });
                let want = onig_pieces(pattern, &text);
                if ours != want {
                    let at = ours.iter().zip(&want).take_while(|(a, b)| a == b).count();
                    let (from, _) = want[at.min(want.len() - 1)];
                    let context: String = text[from..].chars().take(12).collect();
                    panic!(
                        "U+{:04X}..: piece {at} differs: ours {:?} onig {:?} at {context:?}",
                        u32::from(chunk[0]),
                        ours.get(at),
                        want.get(at)
                    );
                }
            }
        }
    }

    #[test]
    fn other_patterns_are_refused() {
        assert!(Scanner::for_pattern(r"\s+").is_none());
    }
}
