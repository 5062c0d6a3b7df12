//! # almr
//!
//! Turns raw Chinese and English corpora into training data for continual
//! pre-training of Llama-3: Megatron-compatible token shards with full
//! provenance, and a manifest whose numbers add up.
//!
//! The modules follow the data flow of `almr build`:
//!
//! [`config`] → [`read`] → [`steps`] ([`normalize`] → [`language`] →
//! [`filter`] → exact dedup) → [`tokenize`] → [`shard`] + [`provenance`]
//! (+ [`rejects`]) → [`manifest`], driven by [`build`]. [`inspect`] and
//! [`explain`] read the results back.

pub mod build;
pub mod config;
pub mod dedup;
pub mod explain;
pub mod filter;
pub mod inspect;
pub mod language;
pub mod manifest;
pub mod mix;
pub mod normalize;
pub mod provenance;
pub mod read;
pub mod rejects;
pub mod sample;
pub mod shard;
pub mod stats;
pub mod steps;
pub mod tokenize;

mod fsutil;
mod table;

pub use fsutil::FileDigest;
