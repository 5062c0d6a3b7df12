//! The processing steps between reading and tokenizing, and the chain that
//! runs them for one source.
//!
//! Per-document steps (`normalize`, `language`, `filter`) implement [`DocStep`]
//! and run in parallel, one document at a time. `exact_dedup` must see the
//! documents in order, so the chain splits around it: the steps listed before
//! it run in parallel, then dedup runs in pipeline order on one thread, then
//! the steps after it run in parallel with tokenization.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Source;
use crate::filter::Filter;
use crate::language::LanguageCheck;
use crate::normalize::Normalize;

/// A processing step, as named in the pipeline's `steps` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Mojibake repair, control characters, whitespace, optional NFKC and t2s.
    Normalize,
    /// Language identification against the source's `language`.
    Language,
    /// Quality, repetition, C4, ratio, CJK, boilerplate and word-list filters,
    /// then PII redaction.
    Filter,
    /// Exact duplicates (xxh3-128 of the text) across all sources; the first
    /// occurrence in pipeline order is kept.
    ExactDedup,
    /// Near duplicates (MinHash LSH) across all sources; the first document
    /// of each cluster in pipeline order is kept. Must come last.
    NearDedup,
}

impl Step {
    /// Every step, in the order they run when `steps` is left out.
    pub const ALL: [Step; 4] = [
        Step::Normalize,
        Step::Language,
        Step::Filter,
        Step::ExactDedup,
    ];

    /// The step's name, used as the stage in rejects tables.
    pub fn stage(self) -> &'static str {
        match self {
            Step::Normalize => "normalize",
            Step::Language => "language",
            Step::Filter => "filter",
            Step::ExactDedup => "exact_dedup",
            Step::NearDedup => "near_dedup",
        }
    }
}

/// Why a step dropped a document: a machine-readable reason and the measured
/// value or evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Reason name, e.g. `gopher_quality.min_words`.
    pub reason: String,
    /// The measured value, threshold and evidence.
    pub detail: String,
}

impl Rejection {
    /// A rejection for `reason`.
    pub fn new(reason: impl Into<String>, detail: impl Into<String>) -> Self {
        Rejection {
            reason: reason.into(),
            detail: detail.into(),
        }
    }
}

/// A rejection with the stage that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The step's name.
    pub stage: &'static str,
    /// What it found.
    pub rejection: Rejection,
}

/// Changes the steps made to a document (`mojibake_repaired`, `pii_email`,
/// …), counted into the manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes(Vec<(&'static str, u64)>);

impl Notes {
    /// Adds `n` to counter `name`.
    pub fn add(&mut self, name: &'static str, n: u64) {
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some((_, v)) => *v += n,
            None => self.0.push((name, n)),
        }
    }

    /// The value of counter `name` (0 when absent).
    pub fn get(&self, name: &str) -> u64 {
        self.0
            .iter()
            .find(|(k, _)| *k == name)
            .map_or(0, |(_, v)| *v)
    }

    /// Every counter.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.0.iter().copied()
    }
}

/// A per-document step.
pub trait DocStep: Send + Sync {
    /// The stage name written to the rejects table.
    fn stage(&self) -> &'static str;
    /// Changes `text` in place, or rejects the document.
    fn apply(&self, text: &mut String, notes: &mut Notes) -> Result<(), Rejection>;
}

/// The steps of one source, split around `exact_dedup`.
pub struct Chain {
    before: Vec<Box<dyn DocStep>>,
    dedup: bool,
    after: Vec<Box<dyn DocStep>>,
}

impl Chain {
    /// Builds the chain for `source` from the pipeline's step list.
    pub fn new(steps: &[Step], source: &Source) -> anyhow::Result<Chain> {
        let mut chain = Chain {
            before: Vec::new(),
            dedup: false,
            after: Vec::new(),
        };
        for step in steps {
            let doc_step: Box<dyn DocStep> = match step {
                Step::ExactDedup => {
                    chain.dedup = true;
                    continue;
                }
                // Runs over the final text, in the build (crate::dedup::near).
                Step::NearDedup => continue,
                Step::Normalize => Box::new(Normalize::new(source.normalize.clone())),
                Step::Language => {
                    Box::new(LanguageCheck::new(&source.language, &source.language_id))
                }
                Step::Filter => Box::new(Filter::new(source)?),
            };
            if chain.dedup {
                chain.after.push(doc_step);
            } else {
                chain.before.push(doc_step);
            }
        }
        Ok(chain)
    }

    /// Whether `exact_dedup` is in the chain.
    pub fn dedups(&self) -> bool {
        self.dedup
    }

    /// Runs the steps listed before `exact_dedup` (all of them without it).
    pub fn run_before(&self, text: &mut String, notes: &mut Notes) -> Result<(), Rejected> {
        run(&self.before, text, notes)
    }

    /// Runs the steps listed after `exact_dedup`.
    pub fn run_after(&self, text: &mut String, notes: &mut Notes) -> Result<(), Rejected> {
        run(&self.after, text, notes)
    }
}

fn run(steps: &[Box<dyn DocStep>], text: &mut String, notes: &mut Notes) -> Result<(), Rejected> {
    for step in steps {
        step.apply(text, notes).map_err(|rejection| Rejected {
            stage: step.stage(),
            rejection,
        })?;
    }
    Ok(())
}
