//! `almr build --limit N`: which of a source's records a limited build
//! reads. A record is an item its reader yields, a malformed one included
//! (a file that fails its integrity check yields one).
//!
//! - Without a seed, the first N items of the source, in reading order; the
//!   files after the one holding the N-th are not opened.
//! - With `--sample-seed S`, the N items whose key
//!   `xxh3_64(FILE \0 LINE, seed S)` is smallest (FILE as the build names
//!   it, LINE the line or row the record starts on; ties go to the earlier
//!   item). Every item is read once and the sample kept in memory; it goes
//!   on to the steps in reading order when the source is read. The keys
//!   depend on nothing but the seed and each record's place, so the sample
//!   is the same for any thread count and any reading order, and the sample
//!   of N is part of the sample of any larger N with the same seed.

use std::collections::BinaryHeap;
use std::path::Path;

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::manifest::Limit;
use crate::read::Item;

/// Which items of one source go on to the steps.
pub enum Picker {
    /// Every item: the build is not limited.
    All,
    /// The first items: `left` more to take.
    First {
        /// Items still to take.
        left: u64,
    },
    /// A seeded sample, known when the source is read to its end.
    Sample(Sample),
}

/// The items with the smallest keys so far.
pub struct Sample {
    seed: u64,
    size: u64,
    /// Items offered so far: the next one's place in reading order.
    seen: u64,
    /// The number of the file being read, and its name as the build
    /// names it.
    file: (usize, String),
    /// The sample so far, its largest key on top.
    held: BinaryHeap<Held>,
}

/// An item in the sample, ordered by its key and then its place.
struct Held {
    key: u64,
    place: u64,
    file: usize,
    item: Item,
}

impl Picker {
    /// The picker for `limit`; every item without one.
    pub fn new(limit: Option<&Limit>) -> Picker {
        match limit {
            None => Picker::All,
            Some(Limit {
                records,
                sample_seed: None,
            }) => Picker::First { left: *records },
            Some(Limit {
                records,
                sample_seed: Some(seed),
            }) => Picker::Sample(Sample {
                seed: *seed,
                size: *records,
                seen: 0,
                file: (usize::MAX, String::new()),
                held: BinaryHeap::new(),
            }),
        }
    }

    /// Whether the source has given all it may: no later item is needed.
    pub fn full(&self) -> bool {
        matches!(self, Picker::First { left: 0 })
    }

    /// Offers the next item of the source, from its file number `file` at
    /// `path`; gives it back when it goes on to the steps now.
    pub fn offer(&mut self, file: usize, path: &Path, item: Item) -> Option<Item> {
        match self {
            Picker::All => Some(item),
            Picker::First { left: 0 } => None,
            Picker::First { left } => {
                *left -= 1;
                Some(item)
            }
            Picker::Sample(s) => {
                s.offer(file, path, item);
                None
            }
        }
    }

    /// The items held back for the sample, with their file numbers, in
    /// reading order; none for the other pickers.
    pub fn into_held(self) -> Vec<(usize, Item)> {
        let Picker::Sample(s) = self else {
            return Vec::new();
        };
        let mut held = s.held.into_vec();
        held.sort_by_key(|h| h.place);
        held.into_iter().map(|h| (h.file, h.item)).collect()
    }
}

impl Sample {
    fn offer(&mut self, file: usize, path: &Path, item: Item) {
        let place = self.seen;
        self.seen += 1;
        if self.file.0 != file {
            self.file = (file, path.display().to_string());
        }
        let key = key(self.seed, &self.file.1, line(&item));
        let candidate = Held {
            key,
            place,
            file,
            item,
        };
        if (self.held.len() as u64) < self.size {
            self.held.push(candidate);
        } else if self.held.peek().is_some_and(|top| candidate < *top) {
            self.held.pop();
            self.held.push(candidate);
        }
    }
}

/// The sample key of the record of `file` at `line`.
fn key(seed: u64, file: &str, line: u64) -> u64 {
    let mut bytes = Vec::with_capacity(file.len() + 9);
    bytes.extend_from_slice(file.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(&line.to_le_bytes());
    xxh3_64_with_seed(&bytes, seed)
}

/// The line or row an item starts on.
fn line(item: &Item) -> u64 {
    match item {
        Item::Doc(r) => r.line,
        Item::Bad(m) => m.line,
    }
}

impl Held {
    fn rank(&self) -> (u64, u64) {
        (self.key, self.place)
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.rank() == other.rank()
    }
}

impl Eq for Held {}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::Record;

    fn doc(line: u64) -> Item {
        Item::Doc(Record {
            line,
            id: format!("r{line}"),
            text: String::new(),
            turns: None,
        })
    }

    /// The lines `limit` picks out of two files of `n` records each.
    fn pick(limit: Option<Limit>, n: u64) -> Vec<(usize, u64)> {
        let mut p = Picker::new(limit.as_ref());
        let mut out = Vec::new();
        for (f, name) in ["a.jsonl", "b.jsonl"].iter().enumerate() {
            for l in 1..=n {
                if p.full() {
                    return out;
                }
                out.extend(p.offer(f, Path::new(name), doc(l)).map(|i| (f, line(&i))));
            }
        }
        out.extend(p.into_held().into_iter().map(|(f, i)| (f, line(&i))));
        out
    }

    fn limit(records: u64, sample_seed: Option<u64>) -> Option<Limit> {
        Some(Limit {
            records,
            sample_seed,
        })
    }

    #[test]
    fn no_limit_takes_everything_and_first_stops_at_n() {
        assert_eq!(pick(None, 3).len(), 6);
        assert_eq!(pick(limit(4, None), 3), [(0, 1), (0, 2), (0, 3), (1, 1)]);
        assert_eq!(pick(limit(10, None), 3).len(), 6);
    }

    #[test]
    fn a_sample_is_seeded_nested_and_in_reading_order() {
        let a = pick(limit(20, Some(7)), 100);
        assert_eq!(a.len(), 20);
        assert_eq!(a, pick(limit(20, Some(7)), 100));
        assert_ne!(a, pick(limit(20, Some(8)), 100));
        assert_ne!(a, pick(limit(20, None), 100));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(a, sorted);
        // Both files contribute, and a smaller sample is part of a larger.
        assert!(a.iter().any(|&(f, _)| f == 0) && a.iter().any(|&(f, _)| f == 1));
        let small = pick(limit(5, Some(7)), 100);
        assert!(small.iter().all(|x| a.contains(x)));
        assert_eq!(pick(limit(500, Some(7)), 100).len(), 200);
    }
}
