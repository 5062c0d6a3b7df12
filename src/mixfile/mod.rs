//! A mix's files, as the trainer and any reader see them: the index
//! `OUT/mix/NAME.mix` ([`index`]: for each sample, its source and where its
//! tokens start, read back by [`MixIndex`] in O(1)), and its JSON sidecar
//! `OUT/mix/NAME.json` ([`report`]: the ALMR asked for and achieved, and each
//! source's share), with the [`table`] a sidecar prints as. A build with
//! chat sources gets a [`packed`] index instead: sequences of whole
//! conversations, read back by [`packed::PackedIndex`].
//!
//! Part of the formats layer: it needs nothing but the shard format and
//! builds without the `pipeline` feature. [`crate::mix`] makes mixes.

pub mod index;
pub mod packed;
pub mod report;
pub mod table;

pub use self::index::{mix_file, MixIndex, MixIndexError, Span, Split, DIR};
pub use self::report::MixReport;

/// Opens the mix at `OUT/mix/NAME` with the reader its kind needs (a
/// [`packed::PackedIndex`] or a [`MixIndex`]), which checks it against its
/// build, and returns its sidecar.
pub fn open_checked(path: &std::path::Path) -> Result<MixReport, MixIndexError> {
    match packed::is_packed(path) {
        true => Ok(packed::PackedIndex::open(path)?.report().clone()),
        false => Ok(MixIndex::open(path)?.report().clone()),
    }
}
