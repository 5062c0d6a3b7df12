//! `almr mix`: an ALMR-weighted training stream over a build's shards.
//!
//! A mix is an index, `OUT/mix/NAME.mix`, and its JSON sidecar,
//! `OUT/mix/NAME.json`. The data flow of [`mix`]:
//!
//! the planner checks the options against the build, [`stream::split`]
//! holds out each source's validation documents and [`blend::blend`] orders
//! the training samples by source → [`stream::train_stream`] cuts each
//! source's shuffled epochs into windows → [`crate::mixfile::index::write`] writes the index,
//! [`MixReport`] the sidecar, and [`export`] the equivalent
//! Megatron-LM weights. [`MixIndex`] reads a mix back.
//!
//! The index and sidecar formats, and [`MixIndex`], their reader, live in
//! [`crate::mixfile`] (formats layer; re-exported here).

pub mod blend;
pub mod export;
mod mixer;
mod pack;
mod plan;
pub mod stream;

pub use self::blend::WINDOW;
pub use self::mixer::mix;
pub use self::plan::{MixOptions, Size, TooLong};
pub use crate::mixfile::{MixIndex, MixIndexError, MixReport, Span, Split, DIR};
