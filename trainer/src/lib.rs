//! # almr-trainer
//!
//! A Llama-3 trainer on candle for mixes made by `almr mix`: continual
//! pre-training from a Hugging Face checkpoint or from scratch (for proxy
//! sweeps), validation loss per language, and evaluation.
//!
//! Data flow: [`config`] → [`model`] (weights from [`checkpoint`]; the head
//! fused with the loss in [`loss`]; fused attention softmax in [`ops`]; both
//! on the row kernels of [`kernels`]) → [`data`] (samples through
//! `almr::mixfile::MixIndex`) → [`train`] ([`schedule`], [`optim`]) →
//! [`eval`]; [`generate`] samples replies with a KV cache, [`chat`] holds a conversation; [`report`] reads what runs wrote and draws their curves.
//! [`device`] holds the device and dtype choices, [`memory`] estimates a
//! step's peak memory and checks it before the first, and every fallible
//! function returns a [`TrainerError`].

pub mod attention;
pub mod chat;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod fused;
pub mod generate;
pub mod kernels;
pub mod loss;
pub mod memory;
pub mod model;
pub mod ops;
pub mod optim;
pub mod report;
pub mod schedule;
pub mod sweep;
#[cfg(test)]
mod testing;
pub mod train;

pub use error::{Result, TrainerError};

/// Makes glibc keep freed memory for reuse instead of handing it back to the
/// kernel. candle allocates a new buffer for every tensor operation; at the
/// shapes of a 128k-token vocabulary (hundreds of MB) glibc serves each one
/// from a fresh `mmap`, and the kernel zeroes every page again, which took
/// over half the time of a CPU training step. With large blocks kept in the
/// heap and no trimming, freed buffers are reused: twice the tokens/s of the
/// tiny preset on CPU. Call it once, before any tensor is made.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other
    // threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
