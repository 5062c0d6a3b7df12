//! # almr-trainer
//!
//! A Llama-3 trainer on candle for mixes made by `almr mix`: continual
//! pre-training from a Hugging Face checkpoint or from scratch (for proxy
//! sweeps), validation loss per language, and evaluation.
//!
//! Data flow: [`config`] → [`model`] (weights from [`checkpoint`]) → [`data`]
//! (samples through `almr::mix::MixIndex`) → [`train`] ([`schedule`],
//! [`optim`]) → [`eval`].

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod eval;
pub mod model;
pub mod optim;
pub mod schedule;
pub mod train;
