//! `almr mix`: an ALMR-weighted training stream over a build's shards.
//!
//! A mix is an index, `OUT/mix/NAME.mix`, and its JSON sidecar,
//! `OUT/mix/NAME.json`. The data flow of [`mix`]:
//!
//! the planner checks the options against the build, [`stream::split`]
//! holds out each source's validation documents and [`blend::blend`] orders
//! the training samples by source → [`stream::train_stream`] cuts each
//! source's shuffled epochs into windows → [`index::write`] writes the index,
//! [`report::MixReport`] the sidecar, and [`export`] the equivalent
//! Megatron-LM weights. [`MixIndex`] reads a mix back.
//!
//! The reading side, [`index`] and [`report`] (and the [`table`] a report
//! prints as), needs nothing but the shard format: it imports no other
//! module of the mixer and builds without the `pipeline` feature, for the
//! trainer. The planner and writer need the pipeline.

#[cfg(feature = "pipeline")]
pub mod blend;
#[cfg(feature = "pipeline")]
pub mod export;
pub mod index;
#[cfg(feature = "pipeline")]
mod mixer;
#[cfg(feature = "pipeline")]
mod plan;
pub mod report;
#[cfg(feature = "pipeline")]
pub mod stream;
pub mod table;

pub use self::index::{MixIndex, MixIndexError, Span, Split, DIR};
#[cfg(feature = "pipeline")]
pub use self::mixer::{mix, WINDOW};
#[cfg(feature = "pipeline")]
pub use self::plan::{MixOptions, Size};
pub use self::report::MixReport;
