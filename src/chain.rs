//! The list of steps, and the [`Chain`] a build makes of it.
//!
//! [`Step`] is the one place where steps are listed: its variants are the
//! names a pipeline's `steps` may use, [`Step::ALL`] is the default order,
//! and [`Chain::new`] has the one line that builds each. Adding a step means
//! a new file with the step (a [`DocStep`], [`OrderedStep`] or
//! [`CorpusStep`], and its settings) and its entry here; its settings table,
//! if it has one, is collected by [`crate::config`].

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dedup::exact::ExactDedup;
use crate::dedup::near::{NearDedup, NearDedupConfig};
use crate::error::Result;
use crate::filter::{Filter, FilterConfig};
use crate::language::{LanguageCheck, LanguageConfig};
use crate::normalize::{Normalize, NormalizeConfig};
use crate::step::{CorpusStep, DocStep, OrderedStep};

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
    pub const ALL: [Step; 5] = [
        Step::Normalize,
        Step::Language,
        Step::Filter,
        Step::ExactDedup,
        Step::NearDedup,
    ];

    /// Whether the step must see every document before it decides, so that
    /// it can only come last.
    pub fn sees_the_corpus(self) -> bool {
        matches!(self, Step::NearDedup)
    }
}

impl std::fmt::Display for Step {
    /// The step's name, as a pipeline's `steps` list writes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = serde_json::to_value(self).map_err(|_| std::fmt::Error)?;
        f.write_str(name.as_str().unwrap_or_default())
    }
}

/// The settings per-document steps take from one source.
#[derive(Debug, Clone, Copy)]
pub struct SourceSteps<'a> {
    /// The source's language code.
    pub language: &'a str,
    /// `[source.normalize]`
    pub normalize: &'a NormalizeConfig,
    /// `[source.language_id]`
    pub language_id: &'a LanguageConfig,
    /// `[source.filter]`
    pub filter: &'a FilterConfig,
}

/// The settings of the steps that span every source.
#[derive(Debug, Clone, Copy)]
pub struct SharedSteps<'a> {
    /// `[near_dedup]`
    pub near_dedup: &'a NearDedupConfig,
    /// Bytes of tables a corpus step holds in memory before spilling.
    pub mem_budget: usize,
    /// A directory of the build's own where steps may spill.
    pub scratch: &'a Path,
}

/// One position of the chain.
pub enum Stage {
    /// A per-document step, one instance per source.
    Doc(Vec<Box<dyn DocStep>>),
    /// A step that sees the documents in pipeline order.
    Ordered(Box<dyn OrderedStep>),
}

/// The steps of a build, in order: per-document and ordered stages, then the
/// corpus steps, which see the final text of every kept document.
pub struct Chain {
    /// The stages, in pipeline order.
    pub stages: Vec<Stage>,
    /// The corpus steps, in pipeline order.
    pub corpus: Vec<Box<dyn CorpusStep>>,
}

impl Chain {
    /// Builds `steps` for `sources` (per-document steps get one instance per
    /// source) and for the build as a whole.
    pub fn new(steps: &[Step], sources: &[SourceSteps], shared: &SharedSteps) -> Result<Chain> {
        let mut chain = Chain {
            stages: Vec::new(),
            corpus: Vec::new(),
        };
        for step in steps {
            match step {
                Step::Normalize => chain.per_source(sources, |s| {
                    Ok(Box::new(Normalize::new(s.normalize.clone())))
                })?,
                Step::Language => chain.per_source(sources, |s| {
                    Ok(Box::new(LanguageCheck::new(s.language, s.language_id)))
                })?,
                Step::Filter => chain.per_source(sources, |s| {
                    Ok(Box::new(Filter::new(s.filter, s.language)?))
                })?,
                Step::ExactDedup => chain.ordered(Box::new(ExactDedup::default())),
                Step::NearDedup => chain.corpus.push(Box::new(NearDedup::new(
                    shared.near_dedup,
                    shared.mem_budget,
                    shared.scratch,
                )?)),
            }
        }
        Ok(chain)
    }

    fn per_source(
        &mut self,
        sources: &[SourceSteps],
        make: impl Fn(&SourceSteps) -> Result<Box<dyn DocStep>>,
    ) -> Result<()> {
        let steps = sources.iter().map(make).collect::<Result<_>>()?;
        self.stages.push(Stage::Doc(steps));
        Ok(())
    }

    fn ordered(&mut self, step: Box<dyn OrderedStep>) {
        self.stages.push(Stage::Ordered(step));
    }

    /// The names of every step, in order: the stages of the rejects tables.
    pub fn names(&self) -> Vec<&'static str> {
        let stages = self.stages.iter().filter_map(|s| match s {
            Stage::Doc(per_source) => per_source.first().map(|d| d.name()),
            Stage::Ordered(o) => Some(o.name()),
        });
        stages.chain(self.corpus.iter().map(|c| c.name())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_is_named_as_in_the_pipeline_file() {
        let dir = tempfile::tempdir().unwrap();
        let (normalize, language_id, filter, near_dedup) = Default::default();
        let source = SourceSteps {
            language: "en",
            normalize: &normalize,
            language_id: &language_id,
            filter: &filter,
        };
        let shared = SharedSteps {
            near_dedup: &near_dedup,
            mem_budget: 1 << 20,
            scratch: dir.path(),
        };
        let chain = Chain::new(&Step::ALL, &[source], &shared).unwrap();
        let names: Vec<String> = Step::ALL
            .iter()
            .map(|s| {
                serde_json::to_value(s)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(chain.names(), names);
        let last: Vec<bool> = Step::ALL.iter().map(|s| s.sees_the_corpus()).collect();
        assert_eq!(last, [false, false, false, false, true]);
    }
}
