//! Word lists from files: banned words reject a document outright; flagged
//! words reject it past a share of its words. Files hold one word or phrase
//! per line (`#` starts a comment). Matching is case-insensitive; Latin words
//! must match whole words, CJK entries match anywhere.

use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::step::Rejection;
use crate::text::{is_cjk, Doc};

/// Word-list settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WordListConfig {
    /// Files of banned words: any occurrence rejects the document.
    pub banned: Vec<PathBuf>,
    /// Files of flagged words.
    pub flagged: Vec<PathBuf>,
    /// Most flagged-word occurrences per word of the document.
    pub max_flagged_ratio: f64,
}

impl Default for WordListConfig {
    fn default() -> Self {
        WordListConfig {
            banned: Vec::new(),
            flagged: Vec::new(),
            max_flagged_ratio: 0.01,
        }
    }
}

/// Compiled word lists.
pub struct WordLists {
    banned: Option<AhoCorasick>,
    flagged: Option<AhoCorasick>,
    max_flagged_ratio: f64,
}

fn load(files: &[PathBuf]) -> Result<Option<AhoCorasick>> {
    let mut words = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(Error::file("reading word list", f))?;
        words.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_lowercase),
        );
    }
    if words.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(&words)?,
    ))
}

fn is_word_char(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() && !is_cjk(c))
}

/// Occurrences in `text`, whole-word for Latin entries, and the first one.
fn count<'t>(ac: &AhoCorasick, text: &'t str) -> (usize, &'t str) {
    let mut n = 0;
    let mut first = "";
    for m in ac.find_iter(text) {
        let found = &text[m.start()..m.end()];
        let before = text[..m.start()].chars().next_back();
        let after = text[m.end()..].chars().next();
        let latin_edge =
            |edge: Option<char>, inner: Option<char>| is_word_char(inner) && is_word_char(edge);
        if latin_edge(before, found.chars().next()) || latin_edge(after, found.chars().next_back())
        {
            continue;
        }
        if n == 0 {
            first = found;
        }
        n += 1;
    }
    (n, first)
}

impl WordLists {
    /// Loads the files named in `c`.
    pub fn new(c: &WordListConfig) -> Result<Self> {
        Ok(WordLists {
            banned: load(&c.banned)?,
            flagged: load(&c.flagged)?,
            max_flagged_ratio: c.max_flagged_ratio,
        })
    }

    /// Whether any list is configured.
    pub fn is_empty(&self) -> bool {
        self.banned.is_none() && self.flagged.is_none()
    }

    /// The word-list checks.
    pub fn check(&self, doc: &Doc) -> Result<(), Rejection> {
        let lower = doc.text.to_lowercase();
        if let Some(ac) = &self.banned {
            let (n, first) = count(ac, &lower);
            if n > 0 {
                return Err(Rejection::new(
                    "words.banned",
                    format!("{n} banned, first {first:?}"),
                ));
            }
        }
        if let Some(ac) = &self.flagged {
            let (n, first) = count(ac, &lower);
            let ratio = n as f64 / doc.words.len().max(1) as f64;
            if ratio > self.max_flagged_ratio {
                return Err(Rejection::new(
                    "words.flagged",
                    format!(
                        "{ratio:.3} > {} ({n} flagged, first {first:?})",
                        self.max_flagged_ratio
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Checks that every word-list file exists; returns the first missing one.
pub fn missing_file(c: &WordListConfig) -> Option<(&'static str, usize, &Path)> {
    for (key, files) in [("banned", &c.banned), ("flagged", &c.flagged)] {
        for (i, f) in files.iter().enumerate() {
            if !f.is_file() {
                return Some((key, i, f));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banned_whole_words_and_cjk_substrings() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("banned.txt");
        std::fs::write(&list, "# comment\ncasino\n赌博\n").unwrap();
        let w = WordLists::new(&WordListConfig {
            banned: vec![list],
            ..Default::default()
        })
        .unwrap();
        assert!(w.check(&Doc::new("Visit the CASINO tonight")).is_err());
        assert!(w.check(&Doc::new("The casinos are closed")).is_ok());
        assert!(w.check(&Doc::new("网上赌博是违法的")).is_err());
        assert!(w.check(&Doc::new("a clean sentence")).is_ok());
    }

    #[test]
    fn flagged_ratio() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("flagged.txt");
        std::fs::write(&list, "spam\n").unwrap();
        let c = WordListConfig {
            flagged: vec![list],
            max_flagged_ratio: 0.2,
            ..Default::default()
        };
        let w = WordLists::new(&c).unwrap();
        assert!(w.check(&Doc::new("spam spam eggs")).is_err());
        assert!(w
            .check(&Doc::new("spam and eggs and ham and toast"))
            .is_ok());
    }
}
