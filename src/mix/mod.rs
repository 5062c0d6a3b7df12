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
//! The reading side, [`index`] and [`report`], needs nothing but the shard
//! format: it imports no other module of the mixer.

pub mod blend;
pub mod export;
pub mod index;
mod mixer;
mod plan;
pub mod report;
pub mod stream;
pub mod table;

pub use self::index::{MixIndex, Span, Split, DIR};
pub use self::mixer::{mix, WINDOW};
pub use self::plan::{MixOptions, Size};
pub use self::report::MixReport;
