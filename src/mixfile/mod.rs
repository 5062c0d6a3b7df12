//! A mix's files, as the trainer and any reader see them: the index
//! `OUT/mix/NAME.mix` ([`index`]: for each sample, its source and where its
//! tokens start, read back by [`MixIndex`] in O(1)), and its JSON sidecar
//! `OUT/mix/NAME.json` ([`report`]: the ALMR asked for and achieved, and each
//! source's share), with the [`table`] a sidecar prints as.
//!
//! Part of the formats layer: it needs nothing but the shard format and
//! builds without the `pipeline` feature. [`crate::mix`] makes mixes.

pub mod index;
pub mod report;
pub mod table;

pub use self::index::{MixIndex, MixIndexError, Span, Split, DIR};
pub use self::report::MixReport;
