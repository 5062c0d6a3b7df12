//! Document-level quality checks: length, Gopher quality (Rae et al. 2021, as
//! in datatrove), character-class ratios and the CJK share.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::step::Rejection;
use crate::text::{is_cjk, Doc};

/// Length limits, in characters.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LengthConfig {
    /// Fewest characters (data-juicer's zh recipe: 10).
    pub min_chars: usize,
    /// Most characters.
    pub max_chars: usize,
}

impl Default for LengthConfig {
    fn default() -> Self {
        LengthConfig {
            min_chars: 10,
            max_chars: 1_000_000,
        }
    }
}

/// Gopher quality rules. Words are counted as in `text::words`: each CJK
/// character is a word, so the limits mean the same for Chinese.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GopherQualityConfig {
    /// Run these rules.
    pub enabled: bool,
    /// Fewest words (Gopher: 50).
    pub min_words: usize,
    /// Most words (Gopher: 100000).
    pub max_words: usize,
    /// Lowest mean length of the non-CJK words (Gopher: 3). Checked only when
    /// at least half the words are non-CJK words outside lines of code and
    /// formulas, and measured over those.
    pub min_mean_word_len: f64,
    /// Highest mean length of the non-CJK words (Gopher: 10).
    pub max_mean_word_len: f64,
    /// Most `#` and ellipses per word (Gopher: 0.1).
    pub max_symbol_word_ratio: f64,
    /// Most lines that start with a bullet (Gopher: 0.9).
    pub max_bullet_lines_ratio: f64,
    /// Most lines that end with an ellipsis (Gopher: 0.3).
    pub max_ellipsis_lines_ratio: f64,
    /// Least share of words with a letter in them (Gopher: 0.8).
    pub min_alpha_words_ratio: f64,
    /// Fewest stop words from `stop_words` (Gopher: 2). Not asked of a
    /// document whose lines of code and formulas hold most of its words.
    pub min_stop_words: usize,
    /// Stop words, matched as whole words (case-insensitive). The default
    /// holds Gopher's English list and common one-character Chinese function
    /// words, since each CJK character is a word.
    pub stop_words: Vec<String>,
}

impl Default for GopherQualityConfig {
    fn default() -> Self {
        GopherQualityConfig {
            enabled: true,
            min_words: 50,
            max_words: 100_000,
            min_mean_word_len: 3.0,
            max_mean_word_len: 10.0,
            max_symbol_word_ratio: 0.1,
            max_bullet_lines_ratio: 0.9,
            max_ellipsis_lines_ratio: 0.3,
            min_alpha_words_ratio: 0.8,
            min_stop_words: 2,
            stop_words: ["the", "be", "to", "of", "and", "that", "have", "with"]
                .into_iter()
                .chain([
                    "的", "了", "是", "在", "和", "有", "也", "就", "不", "这", "我", "为", "与",
                ])
                .map(String::from)
                .collect(),
        }
    }
}

/// Character-class ratios (data-juicer) and the character repetition ratio.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RatiosConfig {
    /// Run these checks.
    pub enabled: bool,
    /// Most special characters (not letters, digits, whitespace or common
    /// punctuation) per non-space character (data-juicer: 0.25).
    pub max_special_char_ratio: f64,
    /// Least letters and digits (CJK included) per character (data-juicer zh: 0.10).
    pub min_alnum_ratio: f64,
}

impl Default for RatiosConfig {
    fn default() -> Self {
        RatiosConfig {
            enabled: true,
            max_special_char_ratio: 0.25,
            min_alnum_ratio: 0.10,
        }
    }
}

/// The CJK share, checked for zh, ja and ko sources only.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CjkConfig {
    /// Least CJK characters per letter (CJK or other).
    pub min_cjk_ratio: f64,
}

impl Default for CjkConfig {
    fn default() -> Self {
        CjkConfig { min_cjk_ratio: 0.3 }
    }
}

fn reject(reason: &str, value: f64, op: &str, limit: f64) -> Rejection {
    Rejection::new(reason, format!("{value:.3} {op} {limit}"))
}

/// Length limits.
pub fn length(doc: &Doc, c: &LengthConfig) -> Result<(), Rejection> {
    if doc.chars < c.min_chars {
        return Err(reject(
            "length.min_chars",
            doc.chars as f64,
            "<",
            c.min_chars as f64,
        ));
    }
    if doc.chars > c.max_chars {
        return Err(reject(
            "length.max_chars",
            doc.chars as f64,
            ">",
            c.max_chars as f64,
        ));
    }
    Ok(())
}

/// Rejects for `reason` when `value` is below `min`.
fn at_least(reason: &str, value: f64, min: f64) -> Result<(), Rejection> {
    match value < min {
        true => Err(reject(reason, value, "<", min)),
        false => Ok(()),
    }
}

/// Rejects for `reason` when `value` is above `max`.
fn at_most(reason: &str, value: f64, max: f64) -> Result<(), Rejection> {
    match value > max {
        true => Err(reject(reason, value, ">", max)),
        false => Ok(()),
    }
}

/// Gopher quality rules.
pub fn gopher_quality(doc: &Doc, c: &GopherQualityConfig) -> Result<(), Rejection> {
    gopher_words(doc, c)?;
    gopher_symbols_and_lines(doc, c)?;
    gopher_content_words(doc, c)
}

/// Word count, and the mean length of the Latin-script words of the prose
/// where they are most of the words.
fn gopher_words(doc: &Doc, c: &GopherQualityConfig) -> Result<(), Rejection> {
    let n = doc.words.len();
    at_least("gopher_quality.min_words", n as f64, c.min_words as f64)?;
    at_most("gopher_quality.max_words", n as f64, c.max_words as f64)?;
    let prose = doc.prose_words();
    let latin: Vec<&str> = prose
        .iter()
        .copied()
        .filter(|w| !w.chars().next().is_some_and(is_cjk))
        .collect();
    if !latin.is_empty() && latin.len() * 2 >= n {
        let mean =
            latin.iter().map(|w| w.chars().count()).sum::<usize>() as f64 / latin.len() as f64;
        at_least("gopher_quality.mean_word_len", mean, c.min_mean_word_len)?;
        at_most("gopher_quality.mean_word_len", mean, c.max_mean_word_len)?;
    }
    Ok(())
}

/// Symbols per word, and the shares of bullet and ellipsis lines. Lines of
/// code and formulas set aside count in the totals, but their symbols and
/// they themselves never count against the document.
fn gopher_symbols_and_lines(doc: &Doc, c: &GopherQualityConfig) -> Result<(), Rejection> {
    let symbols: usize = doc
        .prose_lines()
        .map(|l| l.matches('#').count() + l.matches("...").count() + l.matches('…').count())
        .sum();
    let ratio = symbols as f64 / doc.words.len().max(1) as f64;
    at_most(
        "gopher_quality.symbol_word_ratio",
        ratio,
        c.max_symbol_word_ratio,
    )?;
    let lines = doc.lines.len().max(1) as f64;
    let share =
        |test: &dyn Fn(&str) -> bool| doc.prose_lines().filter(|l| test(l)).count() as f64 / lines;
    let bullets = share(&|l| {
        l.starts_with([
            '•', '●', '○', '■', '□', '▪', '▫', '◦', '-', '*', '–', '·', '➢', '►',
        ])
    });
    at_most(
        "gopher_quality.bullet_lines",
        bullets,
        c.max_bullet_lines_ratio,
    )?;
    let ellipsis = share(&|l| l.ends_with("...") || l.ends_with('…'));
    at_most(
        "gopher_quality.ellipsis_lines",
        ellipsis,
        c.max_ellipsis_lines_ratio,
    )
}

/// The share of words with a letter (the words of lines of code and
/// formulas set aside count as such), and the stop words, which only a
/// document that is mostly prose must have.
fn gopher_content_words(doc: &Doc, c: &GopherQualityConfig) -> Result<(), Rejection> {
    let n = doc.words.len();
    let no_letter = doc
        .prose_words()
        .iter()
        .filter(|w| !w.chars().any(char::is_alphabetic))
        .count();
    at_least(
        "gopher_quality.alpha_words",
        (n - no_letter) as f64 / n as f64,
        c.min_alpha_words_ratio,
    )?;
    if c.min_stop_words > 0 && doc.mostly_prose() {
        let stops = doc
            .words
            .iter()
            .filter(|w| c.stop_words.iter().any(|s| s.eq_ignore_ascii_case(w)))
            .take(c.min_stop_words)
            .count();
        at_least(
            "gopher_quality.stop_words",
            stops as f64,
            c.min_stop_words as f64,
        )?;
    }
    Ok(())
}

/// Punctuation that counts as ordinary text, not as a special character.
fn is_common_punct(c: char) -> bool {
    matches!(
        c,
        '.' | ','
            | ';'
            | ':'
            | '!'
            | '?'
            | '\''
            | '"'
            | '('
            | ')'
            | '-'
            | '/'
            | '%'
            | '&'
            | '['
            | ']'
            | '，'
            | '。'
            | '、'
            | '；'
            | '：'
            | '！'
            | '？'
            | '“'
            | '”'
            | '‘'
            | '’'
            | '（'
            | '）'
            | '《'
            | '》'
            | '〈'
            | '〉'
            | '「'
            | '」'
            | '『'
            | '』'
            | '【'
            | '】'
            | '—'
            | '–'
            | '…'
            | '·'
            | '・'
            | '～'
            | '％'
            | '＋'
            | '－'
            | '／'
    )
}

/// Character-class ratios. The characters of lines of code and formulas
/// set aside count as visible, but never as special.
pub fn ratios(doc: &Doc, c: &RatiosConfig) -> Result<(), Rejection> {
    let (mut alnum, mut visible) = (0usize, 0usize);
    for ch in doc.text.chars().filter(|ch| !ch.is_whitespace()) {
        visible += 1;
        alnum += usize::from(ch.is_alphanumeric());
    }
    let special = doc
        .prose_lines()
        .flat_map(str::chars)
        .filter(|&ch| !ch.is_whitespace() && !ch.is_alphanumeric() && !is_common_punct(ch))
        .count();
    let visible = visible.max(1) as f64;
    let s = special as f64 / visible;
    if s > c.max_special_char_ratio {
        return Err(reject(
            "ratios.special_chars",
            s,
            ">",
            c.max_special_char_ratio,
        ));
    }
    let a = alnum as f64 / doc.chars.max(1) as f64;
    if a < c.min_alnum_ratio {
        return Err(reject("ratios.alnum", a, "<", c.min_alnum_ratio));
    }
    Ok(())
}

/// The CJK share of letters.
pub fn cjk(doc: &Doc, c: &CjkConfig) -> Result<(), Rejection> {
    let (mut cjk, mut letters) = (0usize, 0usize);
    for ch in doc.text.chars() {
        if is_cjk(ch) {
            cjk += 1;
            letters += 1;
        } else if ch.is_alphabetic() {
            letters += 1;
        }
    }
    let r = cjk as f64 / letters.max(1) as f64;
    if r < c.min_cjk_ratio {
        return Err(reject("cjk.min_ratio", r, "<", c.min_cjk_ratio));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Doc<'_> {
        Doc::new(text)
    }

    #[test]
    fn length_limits() {
        assert!(length(&doc("短"), &LengthConfig::default()).is_err());
        assert!(length(&doc("这是一个足够长的中文句子。"), &LengthConfig::default()).is_ok());
    }

    #[test]
    fn gopher_counts_chinese_characters_as_words() {
        let zh = "新华社北京十二月三十一日电，党和国家领导人与首都各界群众一起欣赏了新年音乐会的精彩节目，这是在演出结束后同演出人员合影。";
        assert!(gopher_quality(&doc(zh), &GopherQualityConfig::default()).is_ok());
        let en = "Short English text is too short.";
        let e = gopher_quality(&doc(en), &GopherQualityConfig::default()).unwrap_err();
        assert_eq!(e.reason, "gopher_quality.min_words");
    }

    #[test]
    fn number_tables_fail_alpha_words() {
        let table: String = (0..30)
            .map(|i| format!("{} {}.{} {}\n", 2000 + i, i, i * 7 % 10, i * 13))
            .collect();
        let e = gopher_quality(&doc(&table), &GopherQualityConfig::default()).unwrap_err();
        assert_eq!(e.reason, "gopher_quality.alpha_words");
    }

    #[test]
    fn symbol_spam_fails_special_chars() {
        let e = ratios(
            &doc("★★★ BUY ★★★ $$$ @@@ ### ^^^ ~~~ <<< >>> ★★★"),
            &RatiosConfig::default(),
        )
        .unwrap_err();
        assert_eq!(e.reason, "ratios.special_chars");
    }

    #[test]
    fn formula_lines_are_not_special_characters() {
        let text =
            "The identity below holds for every natural number n and is used in the proof.\n\
                    \\sum_{k=1}^{n} k^{2} = \\frac{n(n+1)(2n+1)}{6}\n\
                    \\sum_{k=1}^{n} k^{3} = \\left(\\frac{n(n+1)}{2}\\right)^{2}";
        let c = RatiosConfig::default();
        let e = ratios(&doc(text), &c).unwrap_err();
        assert_eq!(e.reason, "ratios.special_chars");
        let code = super::super::code::code_lines(text);
        assert_eq!(code, [false, true, true]);
        assert!(ratios(&doc(text).with_code_lines(code), &c).is_ok());
    }

    #[test]
    fn code_needs_no_stop_words() {
        let text: String = (0..30)
            .map(|i| format!("total_{i} = compute(values, scale)\n"))
            .collect::<String>()
            + "Sum the values.";
        let c = GopherQualityConfig::default();
        let e = gopher_quality(&doc(&text), &c).unwrap_err();
        assert_eq!(e.reason, "gopher_quality.stop_words");
        let code = super::super::code::code_lines(&text);
        assert!(gopher_quality(&doc(&text).with_code_lines(code), &c).is_ok());
    }

    #[test]
    fn cjk_share() {
        assert!(cjk(
            &doc("运行 apt-get update 命令可以更新软件包列表。"),
            &CjkConfig::default()
        )
        .is_ok());
        assert!(cjk(
            &doc("Mostly English text with 一 character"),
            &CjkConfig::default()
        )
        .is_err());
    }
}
