//! # almr
//!
//! Turns raw Chinese and English corpora into training data for continual
//! pre-training of Llama-3: Megatron-compatible token shards with full
//! provenance, and a manifest whose numbers add up.
//!
//! The modules follow the data flow of `almr build`:
//!
//! [`config`] → [`read`] → [`tokenize`] → [`shard`] + [`provenance`] (+ [`rejects`])
//! → [`manifest`], driven by [`build`]. [`inspect`] reads shards back.

pub mod build;
pub mod config;
pub mod inspect;
pub mod manifest;
pub mod provenance;
pub mod read;
pub mod rejects;
pub mod shard;
pub mod tokenize;

mod fsutil;
mod table;

pub use fsutil::FileDigest;
