//! What every step speaks: the three kinds of step, the [`Rejection`] a step
//! gives for a document it drops, and the [`Notes`] it keeps on what it
//! changed.
//!
//! - A [`DocStep`] looks at one document at a time and runs in parallel
//!   (`normalize`, `language`, `filter`).
//! - An [`OrderedStep`] keeps the first document of each key, in pipeline
//!   order (`exact_dedup`: the key is the hash of the text). A build tells
//!   it of the documents one at a time; a scale-out plan
//!   ([`crate::scale`]) collects the keys and decides across tasks.
//! - A [`CorpusStep`] sees every document before it decides which to drop
//!   (`near_dedup`). It sketches each document in parallel, is told of each
//!   in pipeline order, and names its drops at the end.
//!
//! Steps know nothing of files, shards or manifests: the build runs them
//! ([`crate::chain`] lists them) and turns their verdicts into reject rows
//! and counts, under the name each step gives itself.

use std::io;

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

/// A rejection with the name of the step that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The step's name: its stage in rejects tables and manifest counts.
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

/// A step that changes or drops one document at a time, on any thread.
pub trait DocStep: Send + Sync {
    /// The step's name, as in the pipeline's `steps` list.
    fn name(&self) -> &'static str;
    /// Changes `text` in place, or rejects the document.
    fn apply(&self, text: &mut String, notes: &mut Notes) -> Result<(), Rejection>;

    /// Runs the step over a conversation's turns. This default judges the
    /// whole conversation (its turns joined by blank lines) and changes
    /// nothing; a step that changes text overrides it to change each turn.
    fn apply_turns(&self, turns: &mut [String], notes: &mut Notes) -> Result<(), Rejection> {
        let mut whole = turns.join("\n\n");
        self.apply(&mut whole, notes)
    }
}

/// A document as an ordered step sees it: its text and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// The text after the steps before this one.
    pub text: &'a str,
    /// The record's id.
    pub id: &'a str,
    /// Its source's name.
    pub source: &'a str,
    /// Its input file.
    pub file: &'a str,
    /// Its line or row in that file.
    pub line: u64,
}

impl Seen<'_> {
    /// `ID (SOURCE, FILE:LINE)`, how reject rows name another document.
    pub fn describe(&self) -> String {
        format!("{} ({}, {}:{})", self.id, self.source, self.file, self.line)
    }
}

/// A step that keeps the first document of each key, in pipeline order.
pub trait OrderedStep: Send {
    /// The step's name, as in the pipeline's `steps` list.
    fn name(&self) -> &'static str;
    /// The key of a document's text (any thread).
    fn key(&self, text: &str) -> u128;
    /// The rejection of a document whose key an earlier document, described
    /// by `first` ([`Seen::describe`]), had.
    fn repeat(&self, first: &str) -> Rejection;
    /// Keeps or rejects the next document.
    fn check(&mut self, doc: &Seen<'_>) -> Result<(), Rejection>;
}

/// What a corpus step computes for each document, in parallel, before it is
/// told of the document in order.
pub type Sketch = Vec<u32>;

/// A document a corpus step drops once it has seen every document.
#[derive(Debug, Clone, PartialEq)]
pub struct LateDrop {
    /// The dropped document: the number of documents added before it.
    pub doc: u64,
    /// The document kept in its place, numbered the same way.
    pub kept: u64,
    /// Reason name, e.g. `near_duplicate`.
    pub reason: &'static str,
    /// How the dropped document relates to the kept one, e.g. `near
    /// duplicate of`.
    pub relation: &'static str,
    /// The measured evidence, e.g. `estimated Jaccard 0.93`.
    pub measure: String,
}

/// A step that sees every document before it decides.
pub trait CorpusStep: Send + Sync {
    /// The step's name, as in the pipeline's `steps` list.
    fn name(&self) -> &'static str;
    /// The sketch of one document of a source in `language` (any thread).
    fn sketch(&self, text: &str, language: &str) -> Sketch;
    /// Takes the next document in pipeline order.
    fn add(&mut self, sketch: &Sketch) -> io::Result<()>;
    /// Decides, in document order, which documents to drop.
    fn decide(self: Box<Self>) -> io::Result<Vec<LateDrop>>;
}
