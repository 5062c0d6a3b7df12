//! Mojibake: UTF-8 text that was decoded with the wrong codec somewhere
//! upstream (Windows-1252/Latin-1 or GBK) and saved again as UTF-8.
//!
//! A repair is *certain* when re-encoding the whole text with the wrong codec
//! gives bytes that are valid UTF-8: genuine Latin or Chinese text almost
//! never does (its bytes break UTF-8's lead/continuation pattern within a few
//! characters). Text that shows mojibake marks but cannot be repaired whole is
//! reported as broken.

use encoding_rs::{Encoding, GBK, WINDOWS_1252};

use crate::text::is_han;

/// The outcome of a mojibake check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mojibake {
    /// No sign of mojibake.
    Clean,
    /// Certainly mojibake, repaired: the fixed text and the codec it had been
    /// misread with.
    Repaired(String, &'static str),
    /// Mojibake marks that cannot be repaired with certainty.
    Broken(String),
}

/// Checks `text` for mojibake and repairs it when that is certain.
pub fn check(text: &str) -> Mojibake {
    if text.is_ascii() {
        return Mojibake::Clean;
    }
    let latin = text
        .chars()
        .filter(|&c| ('\u{80}'..='\u{ff}').contains(&c) || is_cp1252_extra(c))
        .count();
    if latin >= 2 {
        if let Some(fixed) = reencode(text, WINDOWS_1252) {
            return Mojibake::Repaired(fixed, "utf8_read_as_cp1252");
        }
    }
    let han = text.chars().filter(|&c| is_han(c)).count();
    if han >= 4 {
        if let Some(fixed) = reencode(text, GBK) {
            if fixed.chars().filter(|&c| is_han(c)).count() * 2 >= han {
                return Mojibake::Repaired(fixed, "utf8_read_as_gbk");
            }
        }
    }
    let chars = text.chars().count().max(1);
    let replacement = text.matches('\u{fffd}').count();
    let gbk_marks = text.matches("锟斤拷").count() + text.matches("烫烫烫").count();
    let cp1252_pairs = cp1252_pairs(text);
    if gbk_marks > 0 {
        return Mojibake::Broken(format!("{gbk_marks} GBK replacement marks (锟斤拷/烫烫烫)"));
    }
    if replacement >= 3 || replacement * 100 >= chars {
        return Mojibake::Broken(format!("{replacement} U+FFFD replacement characters"));
    }
    if cp1252_pairs >= 3 {
        return Mojibake::Broken(format!(
            "{cp1252_pairs} UTF-8-as-Latin-1 sequences such as \"Ã©\" or \"â€\""
        ));
    }
    Mojibake::Clean
}

/// Encodes `text` with the codec it was wrongly decoded with and decodes the
/// bytes as UTF-8; `Some` only when both steps are lossless and the text
/// changes. The first 64 characters are tried first: genuine text fails
/// there, so most documents cost almost nothing.
fn reencode(text: &str, wrong: &'static Encoding) -> Option<String> {
    let head = text
        .char_indices()
        .nth(64)
        .map_or(text, |(i, _)| &text[..i]);
    let (bytes, _, unmappable) = wrong.encode(head);
    if unmappable {
        return None;
    }
    if let Err(e) = std::str::from_utf8(&bytes) {
        // An error at the very end may only be a sequence cut in two.
        if e.error_len().is_some() {
            return None;
        }
    }
    let (bytes, _, unmappable) = wrong.encode(text);
    if unmappable {
        return None;
    }
    let fixed = String::from_utf8(bytes.into_owned()).ok()?;
    (fixed != text).then_some(fixed)
}

/// Windows-1252 characters outside Latin-1 (bytes 0x80–0x9F).
fn is_cp1252_extra(c: char) -> bool {
    matches!(
        c,
        '€' | '‚'
            | 'ƒ'
            | '„'
            | '…'
            | '†'
            | '‡'
            | 'ˆ'
            | '‰'
            | 'Š'
            | '‹'
            | 'Œ'
            | 'Ž'
            | '‘'
            | '’'
            | '“'
            | '”'
            | '•'
            | '–'
            | '—'
            | '˜'
            | '™'
            | 'š'
            | '›'
            | 'œ'
            | 'ž'
            | 'Ÿ'
    )
}

/// Whether `c` is what a UTF-8 continuation byte (0x80–0xBF) becomes when
/// read as Windows-1252 or Latin-1.
fn is_continuation(c: char) -> bool {
    ('\u{80}'..='\u{bf}').contains(&c) || is_cp1252_extra(c)
}

/// Counts whole UTF-8 sequences read as Latin-1: a 2-byte lead (`Â`…`ß`)
/// followed by one continuation, or a 3-byte lead (`à`…`ï`) followed by two
/// (`Ã©`, `â€™`). Genuine text rarely has them: "æ—ø" is a 3-byte lead with
/// one continuation only.
fn cp1252_pairs(text: &str) -> usize {
    let chars: Vec<char> = text.chars().collect();
    let mut n = 0;
    let mut i = 0;
    while i + 1 < chars.len() {
        let need = match chars[i] {
            '\u{c2}'..='\u{df}' => 1,
            '\u{e0}'..='\u{ef}' => 2,
            _ => 0,
        };
        if need > 0
            && chars[i + 1..]
                .iter()
                .take(need)
                .filter(|&&c| is_continuation(c))
                .count()
                == need
        {
            n += 1;
            i += need + 1;
        } else {
            i += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn misread(text: &str, wrong: &'static Encoding) -> String {
        wrong
            .decode_without_bom_handling(text.as_bytes())
            .0
            .into_owned()
    }

    #[test]
    fn clean_text_is_left_alone() {
        for t in [
            "plain ASCII",
            "café, naïve, Größe",
            "北京举行新年音乐会",
            "中文 mixed with English – and dashes",
        ] {
            assert_eq!(check(t), Mojibake::Clean, "{t}");
        }
    }

    #[test]
    fn utf8_read_as_cp1252_is_repaired() {
        let original = "Les élèves sont allés à l’école — déjà.";
        let broken = misread(original, WINDOWS_1252);
        assert_ne!(broken, original);
        assert_eq!(
            check(&broken),
            Mojibake::Repaired(original.into(), "utf8_read_as_cp1252")
        );
        let zh = "新华社北京电，记者报道。";
        assert_eq!(
            check(&misread(zh, WINDOWS_1252)),
            Mojibake::Repaired(zh.into(), "utf8_read_as_cp1252")
        );
    }

    #[test]
    fn utf8_read_as_gbk_is_repaired() {
        // Even byte counts decode as GBK without loss; odd ones leave U+FFFD.
        let original = "国际关系经济发展今天天气很好";
        let broken = misread(original, GBK);
        assert_eq!(broken, "鍥介檯鍏崇郴缁忔祹鍙戝睍浠婂ぉ澶╂皵寰堝ソ");
        assert_eq!(
            check(&broken),
            Mojibake::Repaired(original.into(), "utf8_read_as_gbk")
        );
        let lossy = misread("中华人民共和国", GBK);
        assert!(matches!(check(&lossy), Mojibake::Broken(_)), "{lossy}");
    }

    #[test]
    fn unrepairable_mojibake_is_broken() {
        let mixed = format!(
            "{} but also “real” quotes ✓",
            misread("café été naïve", WINDOWS_1252)
        );
        assert!(matches!(check(&mixed), Mojibake::Broken(_)), "{mixed}");
        assert!(matches!(
            check("锟斤拷锟斤拷 some text"),
            Mojibake::Broken(_)
        ));
        assert!(matches!(
            check("a\u{fffd}b\u{fffd}c\u{fffd}d"),
            Mojibake::Broken(_)
        ));
    }
}
