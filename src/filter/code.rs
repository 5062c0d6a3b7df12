//! Lines of code and formulas. The C4 and Gopher rules were made for web
//! prose: a line of code has no final full stop, `}` and `\end{align}`
//! come back again and again, identifiers are not dictionary words, and
//! `\`, `{` or `$` are not spam. With `set_aside` (the default), such a line
//! counts in every total but never against the document: it is never a bad
//! line (C4), a bullet, ellipsis or repeated line (Gopher; unless it
//! repeats the line right above it), a boilerplate line, or a special
//! character, its words are never words without a letter or in a repeated
//! n-gram, and its `#` are not symbols. The rules that only make sense for
//! prose (stop words, mean word length, the n-gram rules) are skipped when
//! such lines hold most of the words. Length, paragraph and character
//! repetition and the share of letters and digits see the whole text.
//!
//! A line (trimmed) looks like code or a formula when it has one of:
//! `{`, `}`, `=` or a backtick; a final `;`; a backslash before a letter or
//! another backslash (TeX commands, `\\`); `$` before a letter, `\`, `{` or
//! `(` (TeX math, shell variables); `_` or `^` next to a letter or digit;
//! a name followed by `(` (a call); a `>>> ` or `... ` prompt, or a line
//! below one in the same block (doctest output); `# ` or `#!` at the start
//! (comments; `#tag` is not one), a C preprocessor directive (`#include`,
//! `#endif`, …), or a C comment (`/*`, `//` at the start, `*/` at the end);
//! a block keyword (`if`, `else`, `for`,
//! `def`, `class`, …) with a final `:`; or nothing but brackets, quotes
//! and `,;:`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings for lines of code and formulas.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CodeConfig {
    /// Set lines that look like code or a formula aside from the rules that
    /// judge prose. Such a line counts in every total but never against the
    /// document: it is never a bad line (C4), a bullet, ellipsis or repeated
    /// line (Gopher; unless it repeats the line right above it), boilerplate
    /// or a special character, and its words never lack a letter or repeat
    /// an n-gram. Stop words, mean word length and the n-gram rules are not
    /// asked of a document whose code and formula lines hold most of its
    /// words. `false` judges every line as prose, as C4 and Gopher do.
    pub set_aside: bool,
}

impl Default for CodeConfig {
    fn default() -> Self {
        CodeConfig { set_aside: true }
    }
}

/// Keywords that open a block when the line ends with `:` (Python) or that
/// begin a statement in C-like languages.
const BLOCK_KEYWORDS: &[&str] = &[
    "if", "elif", "else", "for", "while", "try", "except", "finally", "with", "def", "class",
    "async", "match", "case", "switch", "do", "lambda",
];

/// C preprocessor directives, after `#`.
const PREPROCESSOR: &[&str] = &[
    "include", "define", "undef", "if", "ifdef", "ifndef", "elif", "else", "endif", "error",
    "pragma", "line",
];

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// Whether one trimmed, non-blank line looks like code or a formula on its
/// own (doctest output is found by [`code_lines`]).
pub fn is_code_line(line: &str) -> bool {
    if line.starts_with(">>> ") || line == ">>>" || line.starts_with("... ") {
        return true;
    }
    if line.starts_with("# ") || line.starts_with("#!") || line == "#" {
        return true;
    }
    if let Some(directive) = line.strip_prefix('#') {
        let word = directive.split(|c: char| !c.is_ascii_alphabetic()).next();
        if word.is_some_and(|w| PREPROCESSOR.contains(&w)) {
            return true;
        }
    }
    if line.starts_with("/*") || line.starts_with("//") || line.ends_with("*/") {
        return true;
    }
    if line.ends_with(';') {
        return true;
    }
    if line.chars().all(|c| {
        matches!(
            c,
            '(' | ')' | '[' | ']' | '{' | '}' | '"' | '\'' | ',' | ';' | ':'
        )
    }) {
        return true;
    }
    if line.ends_with(':') {
        let first = line
            .split(|c: char| !c.is_ascii_alphabetic())
            .next()
            .unwrap_or("");
        if BLOCK_KEYWORDS.contains(&first) {
            return true;
        }
    }
    let mut prev: Option<char> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        let code = match c {
            '{' | '}' | '=' | '`' => true,
            '\\' => next.is_some_and(|n| n.is_ascii_alphabetic() || n == '\\'),
            '$' => next.is_some_and(|n| n.is_ascii_alphabetic() || matches!(n, '\\' | '{' | '(')),
            '_' | '^' => {
                prev.is_some_and(is_word_char) || next.is_some_and(|n| is_word_char(n) || n == '{')
            }
            '(' => prev.is_some_and(|p| is_word_char(p) || p == '_'),
            _ => false,
        };
        if code {
            return true;
        }
        prev = Some(c);
    }
    false
}

/// For each non-blank line of `text` (as `text::lines` gives them), whether
/// it looks like code or a formula. A line in the same block (no blank line
/// between) below a `>>>` prompt is doctest output, and counts as code.
pub fn code_lines(text: &str) -> Vec<bool> {
    let mut out = Vec::new();
    let mut doctest = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            doctest = false;
            continue;
        }
        let prompt = line.starts_with(">>>");
        doctest |= prompt;
        out.push(doctest || is_code_line(line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_and_formulas_are_recognised() {
        for line in [
            "def insort_right(a, x, lo=0, hi=None, *, key=None):",
            "else:",
            "hi = mid",
            "return f(x)",
            "int list_sum(const struct node *head) {",
            "}",
            "total += p->value;",
            "\"\"\"",
            "\\begin{align}",
            "D(t_1,\\dots,t_n)=\\sum_{I\\in\\mathbf{n}}",
            "For $p,q\\in P$ and $n\\in\\omega$ we write",
            "w(n) = 0.42 - 0.5 \\cos(2\\pi n/M)",
            ">>> np.polyval([3, 0, 1], 5)",
            "# Access WeakSet through the weakref module.",
            "#!/usr/bin/env bash",
            "#endif",
            "#ifndef Py_CPYTHON_LISTOBJECT_H",
            "/* Cast argument to PyListObject* type. */",
            "// Macros and static inline functions",
            "x^2 + y^2",
            "Use `numpy.linalg.lstsq` instead.",
        ] {
            assert!(is_code_line(line), "{line}");
        }
    }

    #[test]
    fn prose_menus_and_spam_are_not_code() {
        for line in [
            "The committee met on Tuesday to discuss the budget.",
            "Home | News | Sports | World",
            "Contact us:",
            "★★★ BUY NOW $$$ ★★★",
            "Prices start at $5 a month; cancel any time.",
            "#sale #deal #cheap",
            "首页 > 新闻 > 国内",
            "北京举行新年音乐会（图）",
            "Seats (2) and tables (4) are free.",
            "return lo",
        ] {
            assert!(!is_code_line(line), "{line}");
        }
    }

    #[test]
    fn doctest_output_is_code_until_a_blank_line() {
        let text = "Evaluate it.\n\n>>> p(5)\n76\n[1 2 3]\n\nMore prose here.";
        assert_eq!(code_lines(text), [false, true, true, true, false]);
    }
}
