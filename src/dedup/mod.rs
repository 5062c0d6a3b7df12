//! Deduplication across all sources: [`exact`] (xxh3-128 of the text) and
//! [`near`] (MinHash LSH over character or word n-grams, [`minhash`] and
//! [`lsh`]).

pub mod compact;
pub mod exact;
pub mod lsh;
pub mod minhash;
pub mod near;
