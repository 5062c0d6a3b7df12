//! `language`: identify each document's language, with a score, and reject
//! documents in another language than their source's.
//!
//! Method. Scripts first: over a sample of the text, letters are counted by
//! script. When CJK characters make up at least `cjk_min_share` of the
//! letters, the document is Chinese, Japanese (kana ≥ 15 % of the CJK) or
//! Korean (Hangul over Han), with the CJK share as its score: Chinese has no
//! spaces for word models to work on, and script statistics separate zh, ja
//! and ko reliably. Otherwise the `whatlang` crate's trigram model picks among
//! the alphabetic languages, with its confidence as the score. whatlang is
//! pure Rust, ships its model in the crate (nothing to download), and covers
//! 69 languages; fastText's lid.176 would need a model file we cannot ship.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::step::{DocStep, Notes, Rejection};
use crate::text::is_han;

/// Settings of the `language` step (`[source.language_id]`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LanguageConfig {
    /// Reject a document identified as another language with at least this
    /// score (0–1). Below it the identification is too unsure to act on.
    #[serde(default = "default_min_score")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub min_score: f64,
    /// Share of letters that must be CJK for a document to count as zh/ja/ko.
    #[serde(default = "default_cjk_min_share")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub cjk_min_share: f64,
    /// Characters of each document looked at.
    #[serde(default = "default_sample_chars")]
    #[schemars(range(min = 1))]
    pub sample_chars: usize,
}

fn default_min_score() -> f64 {
    0.5
}

fn default_cjk_min_share() -> f64 {
    0.25
}

fn default_sample_chars() -> usize {
    4000
}

impl Default for LanguageConfig {
    fn default() -> Self {
        LanguageConfig {
            min_score: default_min_score(),
            cjk_min_share: default_cjk_min_share(),
            sample_chars: default_sample_chars(),
        }
    }
}

/// A language identification.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// ISO 639-1 code where there is one (`zh`, `en`, `fr`), else ISO 639-3;
    /// `und` when nothing could be identified.
    pub lang: String,
    /// Confidence, 0–1.
    pub score: f64,
}

/// Identifies the language of `text`, looking at its first `sample` chars.
pub fn detect(text: &str, cjk_min_share: f64, sample: usize) -> Detection {
    let (mut han, mut kana, mut hangul, mut letters) = (0usize, 0usize, 0usize, 0usize);
    let mut end = text.len();
    for (n, (i, c)) in text.char_indices().enumerate() {
        if n >= sample {
            end = i;
            break;
        }
        if is_han(c) {
            han += 1;
        } else if matches!(c, '\u{3040}'..='\u{30ff}') {
            kana += 1;
        } else if matches!(c, '\u{ac00}'..='\u{d7af}' | '\u{1100}'..='\u{11ff}') {
            hangul += 1;
        } else if !c.is_alphabetic() {
            continue;
        }
        letters += 1;
    }
    if letters == 0 {
        return Detection {
            lang: "und".into(),
            score: 0.0,
        };
    }
    let cjk = han + kana + hangul;
    let share = cjk as f64 / letters as f64;
    if share >= cjk_min_share {
        let lang = if kana * 100 >= cjk * 15 {
            "ja"
        } else if hangul > han {
            "ko"
        } else {
            "zh"
        };
        return Detection {
            lang: lang.into(),
            score: share,
        };
    }
    match whatlang::detect(&text[..end]) {
        Some(info) => Detection {
            lang: iso639_1(info.lang()).to_string(),
            score: info.confidence(),
        },
        None => Detection {
            lang: "und".into(),
            score: 0.0,
        },
    }
}

/// Two-letter codes for the languages whatlang knows that have one.
fn iso639_1(lang: whatlang::Lang) -> &'static str {
    use whatlang::Lang::*;
    match lang {
        Eng => "en",
        Cmn => "zh",
        Jpn => "ja",
        Kor => "ko",
        Fra => "fr",
        Deu => "de",
        Spa => "es",
        Por => "pt",
        Ita => "it",
        Nld => "nl",
        Rus => "ru",
        Ukr => "uk",
        Pol => "pl",
        Ces => "cs",
        Swe => "sv",
        Dan => "da",
        Nob => "nb",
        Fin => "fi",
        Tur => "tr",
        Ara => "ar",
        Heb => "he",
        Hin => "hi",
        Vie => "vi",
        Ind => "id",
        Tha => "th",
        Ell => "el",
        Hun => "hu",
        Ron => "ro",
        Lat => "la",
        Epo => "eo",
        other => other.code(),
    }
}

/// Every code [`detect`] can give, sorted: the codes a source's `language`
/// can match.
pub fn known_codes() -> Vec<&'static str> {
    let mut codes: Vec<&'static str> = whatlang::Lang::all().iter().map(|&l| iso639_1(l)).collect();
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// Codes and names that mean a language the step knows by another code:
/// country codes, ISO 639-2/B codes, retired codes and English names that
/// whatlang does not give.
const ALIASES: [(&str, &str); 19] = [
    ("cn", "zh"),
    ("tw", "zh"),
    ("hk", "zh"),
    ("chi", "zh"),
    ("zho", "zh"),
    ("chinese", "zh"),
    ("jp", "ja"),
    ("kr", "ko"),
    ("us", "en"),
    ("gb", "en"),
    ("gr", "el"),
    ("dk", "da"),
    ("se", "sv"),
    ("cz", "cs"),
    ("ua", "uk"),
    ("iw", "he"),
    ("ger", "de"),
    ("fre", "fr"),
    ("dut", "nl"),
];

/// The code the step knows the language of `code` by, when `code` is not
/// one it knows but means one: `cn` → `zh`, `eng` → `en`, `zh-CN` → `zh`,
/// `English` → `en`.
pub fn known_code_for(code: &str) -> Option<&'static str> {
    let lower = code.to_lowercase();
    let base = lower.split(['-', '_']).next().unwrap_or_default();
    let known = known_codes();
    if let Some(&k) = known.iter().find(|&&k| k == base && k != code) {
        return Some(k);
    }
    let alias = ALIASES.iter().find(|(a, _)| *a == base).map(|(_, k)| *k);
    let by_whatlang = whatlang::Lang::all()
        .iter()
        .find(|l| l.code() == base || l.eng_name().eq_ignore_ascii_case(base))
        .map(|&l| iso639_1(l));
    alias.or(by_whatlang).filter(|&k| k != code)
}

/// The `language` step for one source.
pub struct LanguageCheck {
    expected: String,
    config: LanguageConfig,
}

impl LanguageCheck {
    /// Checks documents against `expected` (the source's `language`).
    pub fn new(expected: &str, config: &LanguageConfig) -> Self {
        LanguageCheck {
            expected: expected.to_string(),
            config: config.clone(),
        }
    }
}

impl DocStep for LanguageCheck {
    fn name(&self) -> &'static str {
        "language"
    }

    fn apply(&self, text: &mut String, _notes: &mut Notes) -> Result<(), Rejection> {
        let d = detect(text, self.config.cjk_min_share, self.config.sample_chars);
        if d.lang != self.expected && d.lang != "und" && d.score >= self.config.min_score {
            return Err(Rejection::new(
                "mismatch",
                format!(
                    "identified as {} (score {:.2} ≥ {}), source is {}",
                    d.lang, d.score, self.config.min_score, self.expected
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang(text: &str) -> String {
        detect(text, 0.25, 4000).lang
    }

    #[test]
    fn scripts_and_languages() {
        assert_eq!(
            lang("新华社北京12月31日电，党和国家领导人出席新年音乐会。"),
            "zh"
        );
        assert_eq!(
            lang("東京は日本の首都であり、多くの人々が住んでいます。"),
            "ja"
        );
        assert_eq!(
            lang("서울은 대한민국의 수도이며 많은 사람들이 살고 있습니다."),
            "ko"
        );
        assert_eq!(
            lang("The quick brown fox jumps over the lazy dog while the farmer watches from the field."),
            "en"
        );
        assert_eq!(
            lang("Le renard brun rapide saute par-dessus le chien paresseux pendant que le fermier regarde."),
            "fr"
        );
        assert_eq!(lang("12345 67890 !!!"), "und");
    }

    #[test]
    fn chinese_technical_text_with_commands_is_still_chinese() {
        assert_eq!(
            lang("使用 apt-get install 命令安装软件包，然后运行 systemctl status 查看服务状态。"),
            "zh"
        );
    }

    #[test]
    fn known_codes_and_what_slips_mean() {
        let known = known_codes();
        for code in ["zh", "en", "ja", "ko", "fr", "de"] {
            assert!(known.contains(&code), "{code}");
        }
        assert!(!known.contains(&"cn"));
        assert_eq!(known_code_for("cn"), Some("zh"));
        assert_eq!(known_code_for("zh-CN"), Some("zh"));
        assert_eq!(known_code_for("eng"), Some("en"));
        assert_eq!(known_code_for("English"), Some("en"));
        assert_eq!(known_code_for("jp"), Some("ja"));
        assert_eq!(known_code_for("zh"), None);
        assert_eq!(known_code_for("xx"), None);
    }

    #[test]
    fn mismatch_is_rejected_only_when_sure() {
        let zh = LanguageCheck::new("zh", &LanguageConfig::default());
        let mut notes = Notes::default();
        let mut en =
            "This is an English sentence that has no business in a Chinese news source at all."
                .to_string();
        assert_eq!(
            zh.apply(&mut en, &mut notes).unwrap_err().reason,
            "mismatch"
        );
        let mut ok = "北京举行新年音乐会，江泽民等领导人出席。".to_string();
        assert!(zh.apply(&mut ok, &mut notes).is_ok());
        let mut unsure = "OK".to_string();
        assert!(zh.apply(&mut unsure, &mut notes).is_ok());
    }
}
