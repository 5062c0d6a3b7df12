//! # almr
//!
//! Turns raw Chinese and English corpora into training data for continual
//! pre-training of Llama-3: Megatron-compatible token shards with full
//! provenance, a manifest whose numbers add up, and ALMR-weighted mixes.
//!
//! The modules follow the data flow of `almr build`, from the bottom layer
//! up (`docs/architecture.md` draws it):
//!
//! - **Formats** (always built; all the trainer needs): [`fsutil`],
//!   [`shard`] (Megatron `MMIDIDX` shards) and the mix index and sidecar in [`mixfile`],
//!   each with its own error type; chat [`template`]s (cargo feature
//!   `templates`, which `pipeline` enables).
//! - **Pipeline** (cargo feature `pipeline`, on by default): [`text`]
//!   helpers, the [`step`] vocabulary and the crate's [`Error`] ([`error`]);
//!   [`read`]; the steps [`normalize`], [`language`], [`filter`], [`dedup`];
//!   [`tokenize`]; [`chain`] (the list of steps); [`config`] (collects every
//!   setting); [`provenance`] and [`rejects`] tables and the [`manifest`];
//!   [`driver`], which runs a build; then [`mix`]ing and the readers
//!   [`inspect`], [`explain`], [`stats`] and [`sample`].
//!
//! A module imports only from the layers below it.

pub mod fsutil;
pub mod mixfile;
pub mod shard;
#[cfg(feature = "templates")]
pub mod template;

#[cfg(feature = "pipeline")]
pub mod chain;
#[cfg(feature = "pipeline")]
pub mod config;
#[cfg(feature = "pipeline")]
pub mod dedup;
#[cfg(feature = "pipeline")]
pub mod driver;
#[cfg(feature = "pipeline")]
pub mod error;
#[cfg(feature = "pipeline")]
pub mod explain;
#[cfg(feature = "pipeline")]
pub mod filter;
#[cfg(feature = "pipeline")]
pub mod inspect;
#[cfg(feature = "pipeline")]
pub mod language;
#[cfg(feature = "pipeline")]
pub mod manifest;
#[cfg(feature = "pipeline")]
pub mod mix;
#[cfg(feature = "pipeline")]
pub mod normalize;
#[cfg(feature = "pipeline")]
pub mod provenance;
#[cfg(feature = "pipeline")]
pub mod read;
#[cfg(feature = "pipeline")]
pub mod rejects;
#[cfg(feature = "pipeline")]
pub mod sample;
#[cfg(feature = "pipeline")]
pub mod scale;
#[cfg(feature = "pipeline")]
pub mod stats;
#[cfg(feature = "pipeline")]
pub mod step;
#[cfg(feature = "pipeline")]
mod table;
#[cfg(feature = "pipeline")]
pub mod text;
#[cfg(feature = "pipeline")]
pub mod tokenize;
#[cfg(feature = "pipeline")]
pub mod verify;

#[cfg(feature = "pipeline")]
pub use error::{Error, Result};
pub use fsutil::FileDigest;
