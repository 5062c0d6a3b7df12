//! `normalize`: repair or reject mojibake, remove control and invisible
//! characters, fold whitespace, and optionally apply NFKC and convert
//! Traditional Chinese to Simplified (OpenCC `t2s`).

pub mod mojibake;

use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::step::{DocStep, Notes, Rejection};

/// Settings of the `normalize` step (`[source.normalize]`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NormalizeConfig {
    /// Apply Unicode NFKC: full-width letters and digits become ASCII,
    /// compatibility characters are unified.
    #[serde(default)]
    pub nfkc: bool,
    /// Convert Traditional Chinese to Simplified with OpenCC's `t2s` tables.
    /// (data-juicer's default is `s2t`, the wrong direction for Llama-3 → zh.)
    #[serde(default)]
    pub t2s: bool,
    /// What to do with mojibake (UTF-8 that was read as Windows-1252 or GBK).
    #[serde(default)]
    pub mojibake: MojibakeAction,
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        NormalizeConfig {
            nfkc: false,
            t2s: false,
            mojibake: MojibakeAction::Repair,
        }
    }
}

/// What `normalize` does with mojibake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MojibakeAction {
    /// Repair it where that is certain; reject the document otherwise.
    #[default]
    Repair,
    /// Reject every document with mojibake.
    Reject,
    /// Leave it alone.
    Keep,
}

/// The `normalize` step for one source.
pub struct Normalize {
    config: NormalizeConfig,
}

impl Normalize {
    /// Builds the step.
    pub fn new(config: NormalizeConfig) -> Self {
        Normalize { config }
    }
}

fn t2s() -> &'static ferrous_opencc::OpenCC {
    static T2S: OnceLock<ferrous_opencc::OpenCC> = OnceLock::new();
    T2S.get_or_init(|| {
        ferrous_opencc::OpenCC::from_config(ferrous_opencc::config::BuiltinConfig::T2s)
            .expect("the built-in t2s tables load")
    })
}

impl DocStep for Normalize {
    fn name(&self) -> &'static str {
        "normalize"
    }

    fn apply(&self, text: &mut String, notes: &mut Notes) -> Result<(), Rejection> {
        if self.config.mojibake != MojibakeAction::Keep {
            match mojibake::check(text) {
                mojibake::Mojibake::Clean => {}
                mojibake::Mojibake::Repaired(fixed, how) => {
                    if self.config.mojibake == MojibakeAction::Reject {
                        return Err(Rejection::new("mojibake", format!("repairable ({how})")));
                    }
                    *text = fixed;
                    notes.add("mojibake_repaired", 1);
                }
                mojibake::Mojibake::Broken(detail) => {
                    return Err(Rejection::new("mojibake", detail));
                }
            }
        }
        if self.config.nfkc {
            *text = text.nfkc().collect();
        }
        if self.config.t2s {
            let converted = t2s().convert(text);
            if converted != *text {
                notes.add("t2s_converted", 1);
                *text = converted;
            }
        }
        let cleaned = clean_whitespace(text);
        if cleaned != *text {
            notes.add("whitespace_or_controls_changed", 1);
            *text = cleaned;
        }
        Ok(())
    }

    /// Each turn of a conversation is normalized on its own.
    fn apply_turns(&self, turns: &mut [String], notes: &mut Notes) -> Result<(), Rejection> {
        turns.iter_mut().try_for_each(|t| self.apply(t, notes))
    }
}

/// Invisible characters that carry no text: zero-width spaces and joiners
/// used as separators, BOMs, soft hyphens, bidi controls.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}' | '\u{200b}' | '\u{200e}' | '\u{200f}' | '\u{2060}' | '\u{feff}'
            | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// Removes control and invisible characters, turns `\r\n` and `\r` into `\n`,
/// folds each run of other whitespace inside a line into one space, trims
/// lines, and keeps at most one blank line between paragraphs.
pub fn clean_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0usize;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mut folded = String::with_capacity(line.len());
        let mut space = false;
        for c in line.chars() {
            if c.is_whitespace() || c == '\r' {
                space = true;
            } else if c.is_control() || is_invisible(c) {
                continue;
            } else {
                if space && !folded.is_empty() {
                    folded.push(' ');
                }
                space = false;
                folded.push(c);
            }
        }
        if folded.is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_run > 0 { "\n\n" } else { "\n" });
        }
        blank_run = 0;
        out.push_str(&folded);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(config: NormalizeConfig, text: &str) -> (Result<String, Rejection>, Notes) {
        let mut t = text.to_string();
        let mut notes = Notes::default();
        let r = Normalize::new(config).apply(&mut t, &mut notes).map(|()| t);
        (r, notes)
    }

    #[test]
    fn whitespace_and_controls() {
        assert_eq!(
            clean_whitespace("  a \t b\u{3000}c \r\n\r\n\n\nnext\u{200b} line\u{0007}\n"),
            "a b c\n\nnext line"
        );
        assert_eq!(clean_whitespace("one\ntwo"), "one\ntwo");
        assert_eq!(clean_whitespace("\u{feff}x"), "x");
    }

    #[test]
    fn nfkc_and_t2s_are_options() {
        let cfg = NormalizeConfig {
            nfkc: true,
            t2s: true,
            ..NormalizeConfig::default()
        };
        let (r, notes) = run(cfg, "１９９８年　經濟發展與國際關係");
        assert_eq!(r.unwrap(), "1998年 经济发展与国际关系");
        assert_eq!(notes.get("t2s_converted"), 1);
        let (r, _) = run(NormalizeConfig::default(), "１９９８年經濟");
        assert_eq!(r.unwrap(), "１９９８年經濟");
    }

    #[test]
    fn mojibake_is_repaired_or_rejected() {
        let original = "Les élèves sont allés à l’école.";
        let (broken, _, _) = encoding_rs::WINDOWS_1252.decode(original.as_bytes());
        let broken = broken.into_owned();
        assert!(broken.starts_with("Les Ã©lÃ¨ves"), "{broken}");
        let (r, notes) = run(NormalizeConfig::default(), &broken);
        assert_eq!(r.unwrap(), original);
        assert_eq!(notes.get("mojibake_repaired"), 1);
        let reject = NormalizeConfig {
            mojibake: MojibakeAction::Reject,
            ..NormalizeConfig::default()
        };
        assert_eq!(run(reject, &broken).0.unwrap_err().reason, "mojibake");
        let (r, _) = run(NormalizeConfig::default(), "锟斤拷锟斤拷锟斤拷");
        assert_eq!(r.unwrap_err().reason, "mojibake");
    }
}
