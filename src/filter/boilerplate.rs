//! Boilerplate: navigation menus, footers and notices. A line is boilerplate
//! when it is a menu (four or more short items between separators such as
//! `|`, `·`, `»`, `>`), or when it is short and contains a boilerplate phrase
//! ("All rights reserved", "版权所有", "返回首页", …). The document is
//! rejected when boilerplate lines hold too many of its characters. A line of
//! code or a formula that is set aside is never boilerplate (`a \\ b \\ c`
//! and paths are not menus).

use aho_corasick::AhoCorasick;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::step::Rejection;
use crate::text::{char_len, Doc};

/// Boilerplate settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BoilerplateConfig {
    /// Run this check.
    pub enabled: bool,
    /// Most characters in boilerplate lines, per character.
    pub max_char_frac: f64,
    /// Lines longer than this (in characters) are never phrase boilerplate.
    pub max_line_chars: usize,
    /// Phrases (case-insensitive) that mark a short line as boilerplate, in
    /// addition to the built-in English and Chinese ones.
    pub extra_phrases: Vec<String>,
}

impl Default for BoilerplateConfig {
    fn default() -> Self {
        BoilerplateConfig {
            enabled: true,
            max_char_frac: 0.3,
            max_line_chars: 80,
            extra_phrases: Vec::new(),
        }
    }
}

const PHRASES: &[&str] = &[
    "all rights reserved",
    "copyright ©",
    "© copyright",
    "privacy policy",
    "terms of service",
    "terms of use",
    "cookie",
    "click here",
    "sign up",
    "sign in",
    "log in",
    "subscribe",
    "share this",
    "follow us",
    "powered by",
    "skip to content",
    "back to top",
    "read more",
    "contact us",
    "about us",
    "newsletter",
    "版权所有",
    "免责声明",
    "联系我们",
    "关于我们",
    "返回首页",
    "返回顶部",
    "点击这里",
    "点击查看",
    "登录",
    "注册",
    "上一篇",
    "下一篇",
    "扫一扫",
    "关注我们",
    "网站地图",
    "icp备",
    "责任编辑",
    "分享到",
    "更多>>",
];

const SEPARATORS: &[char] = &['|', '｜', '丨', '·', '•', '»', '›', '>', '/', '\\', '┃'];

fn is_menu(line: &str) -> bool {
    let items: Vec<&str> = line
        .split(SEPARATORS)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    items.len() >= 4 && items.iter().all(|i| char_len(i) <= 16)
}

/// The boilerplate check, compiled for one source.
pub struct Boilerplate {
    config: BoilerplateConfig,
    phrases: AhoCorasick,
}

impl Boilerplate {
    /// Compiles the built-in and extra phrases (ASCII case-insensitive).
    pub fn new(config: &BoilerplateConfig) -> Self {
        let phrases = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(
                PHRASES
                    .iter()
                    .copied()
                    .chain(config.extra_phrases.iter().map(String::as_str)),
            )
            .expect("literal phrases compile");
        Boilerplate {
            config: config.clone(),
            phrases,
        }
    }

    /// Whether this check runs.
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// Rejects the document when boilerplate lines hold too many characters.
    pub fn check(&self, doc: &Doc) -> Result<(), Rejection> {
        boilerplate(doc, &self.config, &self.phrases)
    }
}

fn boilerplate(doc: &Doc, c: &BoilerplateConfig, phrases: &AhoCorasick) -> Result<(), Rejection> {
    let (mut bad, mut all) = (0usize, 0usize);
    let mut example = "";
    for (i, line) in doc.lines.iter().enumerate() {
        let n = char_len(line);
        all += n;
        if doc.is_code(i) {
            continue;
        }
        let phrase = n <= c.max_line_chars && phrases.is_match(*line);
        if phrase || is_menu(line) {
            bad += n;
            if example.is_empty() {
                example = line;
            }
        }
    }
    let frac = bad as f64 / all.max(1) as f64;
    if frac > c.max_char_frac {
        return Err(Rejection::new(
            "boilerplate",
            format!(
                "{frac:.3} > {} of characters, e.g. {:?}",
                c.max_char_frac,
                crate::text::snippet(example, 40)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menus_and_footers() {
        let page = "首页 | 新闻 | 体育 | 财经 | 娱乐\n版权所有 © 2024 某某网\n一句正文。";
        let b = Boilerplate::new(&BoilerplateConfig::default());
        assert_eq!(b.check(&Doc::new(page)).unwrap_err().reason, "boilerplate");
        let prose = "The river floods every spring, and the farmers of the valley plant their rice only after \
                     the water recedes. The survey counted forty villages along its banks, most of them \
                     older than the dams upstream.\nContact us for the data.";
        assert!(b.check(&Doc::new(prose)).is_ok());
        let extra = Boilerplate::new(&BoilerplateConfig {
            extra_phrases: vec!["Weekly Digest".into()],
            ..BoilerplateConfig::default()
        });
        assert!(extra.check(&Doc::new("WEEKLY DIGEST\nshort.")).is_err());
    }
}
