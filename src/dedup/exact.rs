//! `exact_dedup`: the xxh3-128 hash of each document's text, across every
//! source; the first document seen with a hash is kept.
//!
//! Memory: about 100 bytes per kept document (the 16-byte hash, the map's
//! overhead and a short description of the document for reject rows).

use std::collections::hash_map::{Entry, HashMap};

use xxhash_rust::xxh3::xxh3_128;

use crate::step::{OrderedStep, Rejection, Seen};

/// The hashes seen so far.
#[derive(Default)]
pub struct ExactDedup {
    first: HashMap<u128, String>,
}

impl ExactDedup {
    /// `None` for a first occurrence (now remembered, described by
    /// `describe`), else the description of the document it duplicates.
    pub fn first(&mut self, text: &str, describe: impl FnOnce() -> String) -> Option<String> {
        match self.first.entry(self.key(text)) {
            Entry::Occupied(e) => Some(e.get().clone()),
            Entry::Vacant(e) => {
                e.insert(describe());
                None
            }
        }
    }
}

impl OrderedStep for ExactDedup {
    fn name(&self) -> &'static str {
        "exact_dedup"
    }

    fn key(&self, text: &str) -> u128 {
        xxh3_128(text.as_bytes())
    }

    fn repeat(&self, first: &str) -> Rejection {
        Rejection::new("duplicate", format!("duplicate of {first}"))
    }

    fn check(&mut self, doc: &Seen<'_>) -> Result<(), Rejection> {
        match self.first(doc.text, || doc.describe()) {
            None => Ok(()),
            Some(kept) => Err(self.repeat(&kept)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_occurrence_wins() {
        let mut d = ExactDedup::default();
        assert_eq!(d.first("a", || "first".into()), None);
        assert_eq!(d.first("b", || "other".into()), None);
        assert_eq!(d.first("a", || "second".into()), Some("first".into()));
    }
}
