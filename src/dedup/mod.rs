//! Deduplication across all sources, pure of files and shards: [`exact`]
//! (xxh3-128 of the text, an ordered step) and [`near`] (MinHash LSH, a
//! corpus step) over [`minhash`] signatures, [`lsh`] band tables and
//! [`cluster`]s.

pub mod cluster;
pub mod exact;
pub mod lsh;
pub mod minhash;
pub mod near;
