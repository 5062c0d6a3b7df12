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

pub mod config;
pub mod read;
pub mod tokenize;
pub mod shard;
pub mod provenance;
pub mod rejects;
pub mod manifest;
pub mod build;
pub mod inspect;

mod fsutil;
mod table;

pub use fsutil::FileDigest;
