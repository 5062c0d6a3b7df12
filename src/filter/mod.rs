//! `filter`: quality filters that reject documents, then PII redaction.
//!
//! The checks run in this order and the first failure names the reason: C4
//! line rules (first, since with `remove_lines` they change the text), length,
//! Gopher quality, Gopher repetition (+ character repetition), character
//! ratios, CJK share (zh/ja/ko sources only), boilerplate, word lists. Every check has its own table under
//! `[source.filter]`, with the reference values from datatrove and
//! data-juicer as defaults. Counting is Chinese-aware throughout: each CJK
//! character is a word, never a whitespace-separated run. Lines of code and
//! formulas are set aside from the rules that judge prose (`code`).

mod boilerplate;
mod c4;
mod code;
pub mod pii;
mod quality;
mod repetition;
mod wordlist;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use self::boilerplate::Boilerplate;
pub use self::boilerplate::BoilerplateConfig;
pub use self::c4::C4Config;
pub use self::code::CodeConfig;
pub use self::pii::PiiConfig;
pub use self::quality::{CjkConfig, GopherQualityConfig, LengthConfig, RatiosConfig};
pub use self::repetition::RepetitionConfig;
pub use self::wordlist::{missing_file, WordListConfig};

use self::wordlist::WordLists;
use crate::step::{DocStep, Notes, Rejection};
use crate::text::Doc;

/// Settings of the `filter` step (`[source.filter]`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    /// Length in characters.
    pub length: LengthConfig,
    /// Gopher quality rules.
    pub gopher_quality: GopherQualityConfig,
    /// Gopher repetition rules and character repetition.
    pub gopher_repetition: RepetitionConfig,
    /// C4 line rules.
    pub c4: C4Config,
    /// Special-character and alphanumeric ratios.
    pub ratios: RatiosConfig,
    /// CJK share (zh, ja and ko sources only).
    pub cjk: CjkConfig,
    /// Navigation menus, footers and notices.
    pub boilerplate: BoilerplateConfig,
    /// Banned and flagged word lists.
    pub words: WordListConfig,
    /// Lines of code and formulas.
    pub code: CodeConfig,
    /// PII redaction, applied to documents that pass every check.
    pub pii: PiiConfig,
}

/// The `filter` step for one source.
pub struct Filter {
    config: FilterConfig,
    cjk_source: bool,
    boilerplate: Boilerplate,
    words: WordLists,
}

impl Filter {
    /// Builds the step for a source in `language`; word-list files were
    /// checked when the pipeline loaded.
    pub fn new(config: &FilterConfig, language: &str) -> crate::error::Result<Self> {
        Ok(Filter {
            config: config.clone(),
            cjk_source: matches!(language, "zh" | "ja" | "ko"),
            boilerplate: Boilerplate::new(&config.boilerplate),
            words: WordLists::new(&config.words)?,
        })
    }

    /// Measures `text`, with its lines of code and formulas set aside when
    /// `code.set_aside` is on.
    fn doc<'t>(&self, text: &'t str) -> Doc<'t> {
        match self.config.code.set_aside {
            true => Doc::new(text).with_code_lines(code::code_lines(text)),
            false => Doc::new(text),
        }
    }

    fn check(&self, doc: &Doc) -> Result<(), Rejection> {
        let c = &self.config;
        quality::length(doc, &c.length)?;
        if c.gopher_quality.enabled {
            quality::gopher_quality(doc, &c.gopher_quality)?;
        }
        if c.gopher_repetition.enabled {
            repetition::repetition(doc, &c.gopher_repetition)?;
        }
        if c.ratios.enabled {
            quality::ratios(doc, &c.ratios)?;
        }
        if self.cjk_source {
            quality::cjk(doc, &c.cjk)?;
        }
        if self.boilerplate.enabled() {
            self.boilerplate.check(doc)?;
        }
        if !self.words.is_empty() {
            self.words.check(doc)?;
        }
        Ok(())
    }
}

impl DocStep for Filter {
    fn name(&self) -> &'static str {
        "filter"
    }

    fn apply(&self, text: &mut String, notes: &mut Notes) -> Result<(), Rejection> {
        if self.config.c4.enabled {
            c4::c4(text, &self.config.c4, self.config.code.set_aside, notes)?;
        }
        self.check(&self.doc(text))?;
        pii::redact(text, &self.config.pii, notes);
        Ok(())
    }

    /// A conversation is judged as a whole, and PII is redacted in each turn.
    /// The C4 rules are not applied: they cut lines without end punctuation,
    /// which is most of a chat turn.
    fn apply_turns(&self, turns: &mut [String], notes: &mut Notes) -> Result<(), Rejection> {
        self.check(&self.doc(&turns.join("\n\n")))?;
        for t in turns {
            pii::redact(t, &self.config.pii, notes);
        }
        Ok(())
    }
}
