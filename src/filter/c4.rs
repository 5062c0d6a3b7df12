//! C4's line rules (Raffel et al. 2020, as in datatrove's C4 filter), with
//! Chinese punctuation: lines without terminal punctuation, very short lines,
//! "javascript" and cookie/policy notices are bad lines; "lorem ipsum"
//! condemns the whole document, and so do curly brackets (code) when
//! `reject_curly_bracket` is set, as in C4 (off by default, so that code
//! and TeX survive). A line of code or a formula (see `code`) is never a bad
//! line unless `code.set_aside` is off.
//!
//! C4 deletes bad lines. Here that is `remove_lines = true`; by default the
//! text is kept as it is and the document is rejected when bad lines hold more
//! than `max_bad_line_char_frac` of its characters, since deleting lines also
//! deletes Chinese headlines, which have no final punctuation.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

use super::code::code_lines;
use crate::step::{Notes, Rejection};
use crate::text::{char_len, has_words};

/// C4 settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct C4Config {
    /// Run these rules.
    pub enabled: bool,
    /// Fewest words on a good line (C4: 3; a CJK character is a word).
    pub min_words_per_line: usize,
    /// A good line ends with terminal punctuation (C4: yes).
    pub require_terminal_punct: bool,
    /// A hard-wrapped line of prose needs no terminal punctuation: one that
    /// ends with a comma, or whose next line in the paragraph begins with a
    /// lowercase letter (docstrings, TeX sources and plain-text files wrap
    /// their sentences; C4's web text has one paragraph a line).
    pub allow_wrapped_lines: bool,
    /// Delete bad lines, as C4 does, instead of measuring them.
    pub remove_lines: bool,
    /// Without `remove_lines`: most characters in bad lines, per character.
    pub max_bad_line_char_frac: f64,
    /// Reject documents containing "lorem ipsum".
    pub reject_lorem_ipsum: bool,
    /// Reject documents containing `{`, as C4 does to drop code (datatrove's
    /// `filter_curly_bracket`). Off by default: it rejects every C-like
    /// source file, JSON and TeX document.
    pub reject_curly_bracket: bool,
}

impl Default for C4Config {
    fn default() -> Self {
        C4Config {
            enabled: true,
            min_words_per_line: 3,
            require_terminal_punct: true,
            allow_wrapped_lines: true,
            remove_lines: false,
            max_bad_line_char_frac: 0.6,
            reject_lorem_ipsum: true,
            reject_curly_bracket: false,
        }
    }
}

/// Phrases that make a line bad: "javascript" and C4's policy notices.
fn notices() -> &'static AhoCorasick {
    static AC: OnceLock<AhoCorasick> = OnceLock::new();
    AC.get_or_init(|| {
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build([
                "javascript",
                "terms of use",
                "privacy policy",
                "cookie policy",
                "uses cookies",
                "use of cookies",
                "use cookies",
            ])
            .expect("valid patterns")
    })
}

/// "lorem ipsum", in any case.
fn lorem() -> &'static AhoCorasick {
    static AC: OnceLock<AhoCorasick> = OnceLock::new();
    AC.get_or_init(|| {
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(["lorem ipsum"])
            .expect("valid pattern")
    })
}

/// Whether a line ends a sentence: terminal punctuation, possibly followed
/// by closing quotes or by a parenthesized credit, as in Chinese news
/// (`……的目标。（云宣新）`).
fn ends_with_terminal(line: &str) -> bool {
    let mut line = line.trim_end_matches(['"', '\'', '”', '’', '」', '』']);
    if let Some(inner) = line.strip_suffix(['）', ')']) {
        if let Some(open) = inner.rfind(['（', '(']) {
            let before = &inner[..open];
            if before.ends_with(['.', '!', '?', '。', '！', '？', '…', '”', '"']) {
                line = before.trim_end_matches(['"', '”']);
            }
        }
    }
    line.ends_with(['.', '!', '?', '。', '！', '？', '…', '；'])
}

/// A line that is only a parenthesized note, such as a photo credit.
fn is_note(line: &str) -> bool {
    (line.starts_with('（') && line.ends_with('）'))
        || (line.starts_with('(') && line.ends_with(')'))
}

fn is_bad_line(line: &str, wrapped: bool, c: &C4Config) -> bool {
    (c.require_terminal_punct && !wrapped && !ends_with_terminal(line))
        || !has_words(line, c.min_words_per_line)
        || notices().is_match(line)
}

/// Whether `line` is hard-wrapped prose that `next` continues: it ends with
/// a comma, or `next` (in the same paragraph) begins with a lowercase letter.
fn is_wrapped(line: &str, next: &str) -> bool {
    !next.is_empty() && (line.ends_with(',') || next.chars().next().is_some_and(char::is_lowercase))
}

/// Each line of `text` with whether it is a bad line. Blank lines are not;
/// nor, with `set_aside_code`, are lines of code and formulas.
fn judge_lines<'t>(text: &'t str, c: &C4Config, set_aside_code: bool) -> Vec<(&'t str, bool)> {
    let mut code = match set_aside_code {
        true => code_lines(text),
        false => Vec::new(),
    }
    .into_iter();
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .enumerate()
        .map(|(i, &line)| {
            let l = line.trim();
            if l.is_empty() {
                return (line, false);
            }
            let is_code = code.next().unwrap_or(false);
            let next = lines.get(i + 1).map_or("", |n| n.trim());
            let wrapped = c.allow_wrapped_lines && is_wrapped(l, next);
            (line, !is_code && is_bad_line(l, wrapped, c))
        })
        .collect()
}

/// Applies the C4 rules; may delete lines when `remove_lines` is set. With
/// `set_aside_code`, lines of code and formulas are never bad lines.
pub fn c4(
    text: &mut String,
    c: &C4Config,
    set_aside_code: bool,
    notes: &mut Notes,
) -> Result<(), Rejection> {
    if c.reject_lorem_ipsum && lorem().is_match(text.as_str()) {
        return Err(Rejection::new("c4.lorem_ipsum", "contains \"lorem ipsum\""));
    }
    if c.reject_curly_bracket {
        if let Some(at) = text.find('{') {
            let line = text[at..].lines().next().unwrap_or("");
            return Err(Rejection::new(
                "c4.curly_bracket",
                format!("code-like `{{`: {}", crate::text::snippet(line, 40)),
            ));
        }
    }
    let lines = judge_lines(text, c, set_aside_code);
    if c.remove_lines {
        let kept: Vec<&str> = lines
            .iter()
            .filter(|(_, bad)| !bad)
            .map(|(l, _)| *l)
            .collect();
        let removed = lines.len() - kept.len();
        if removed > 0 {
            notes.add("c4_lines_removed", removed as u64);
            let joined = kept.join("\n");
            *text = joined.trim().to_string();
        }
        if text.is_empty() {
            return Err(Rejection::new(
                "c4.no_good_lines",
                "every line is a bad line",
            ));
        }
        return Ok(());
    }
    let (mut bad, mut all) = (0usize, 0usize);
    for (line, is_bad) in lines
        .iter()
        .map(|&(l, is_bad)| (l.trim(), is_bad))
        .filter(|(l, _)| !l.is_empty() && !is_note(l))
    {
        let n = char_len(line);
        all += n;
        if is_bad {
            bad += n;
        }
    }
    let frac = bad as f64 / all.max(1) as f64;
    if frac > c.max_bad_line_char_frac {
        return Err(Rejection::new(
            "c4.bad_lines",
            format!("{frac:.3} > {} of characters in lines without terminal punctuation, too short, or notices", c.max_bad_line_char_frac),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, c: &C4Config) -> Result<String, Rejection> {
        let mut t = text.to_string();
        c4(&mut t, c, true, &mut Notes::default()).map(|()| t)
    }

    #[test]
    fn prose_with_a_headline_passes() {
        let zh = "北京举行新年音乐会\n党和国家领导人与首都各界群众一起欣赏了新年音乐会的精彩节目，这是演出结束后的合影。\n（新华社记者摄）";
        assert!(run(zh, &C4Config::default()).is_ok());
    }

    #[test]
    fn credits_after_a_sentence_end_it() {
        assert!(ends_with_terminal("实现了“稳中有升”的目标。（云宣新）"));
        assert!(ends_with_terminal("He said \"yes.\""));
        assert!(!ends_with_terminal("挂起红灯迎新年（图片）"));
        assert!(is_note("（新华社记者樊如钧摄）"));
    }

    #[test]
    fn menus_are_rejected_and_code_only_on_request() {
        let code = "Here is the text.\nfunction f(x) { return x; }";
        assert!(run(code, &C4Config::default()).is_ok());
        let curly = C4Config {
            reject_curly_bracket: true,
            ..C4Config::default()
        };
        assert_eq!(run(code, &curly).unwrap_err().reason, "c4.curly_bracket");
        let mut t = code.to_string();
        let e = c4(&mut t, &C4Config::default(), false, &mut Notes::default()).unwrap_err();
        assert_eq!(e.reason, "c4.bad_lines");
        let menu =
            "Home\nNews\nSports\nWorld\nBusiness\nContact us\nAbout\nA real sentence is here.";
        assert_eq!(
            run(menu, &C4Config::default()).unwrap_err().reason,
            "c4.bad_lines"
        );
    }

    #[test]
    fn wrapped_prose_needs_no_final_punctuation() {
        let text = "The only supported seed types are None, int, float,\n\
                    str, bytes, and bytearray. If a is an int, all\n\
                    bits are used for the seed of the generator.";
        assert!(run(text, &C4Config::default()).is_ok());
        let strict = C4Config {
            allow_wrapped_lines: false,
            ..C4Config::default()
        };
        assert_eq!(run(text, &strict).unwrap_err().reason, "c4.bad_lines");
    }

    #[test]
    fn remove_lines_deletes_bad_lines() {
        let c = C4Config {
            remove_lines: true,
            ..C4Config::default()
        };
        let t = run(
            "Menu\nThis line is a proper sentence.\nPlease enable JavaScript to continue.",
            &c,
        )
        .unwrap();
        assert_eq!(t, "This line is a proper sentence.");
    }
}
