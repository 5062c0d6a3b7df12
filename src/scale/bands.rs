//! The bands stage: task `g` takes a group of LSH bands. For each band, in
//! order, it merges every map task's sorted `(bucket key, record)` run,
//! skips exact duplicates, and for each bucket of two or more records
//! compares the first one's signature with each other's, as `almr build`
//! does. Writes `edges.bin`: `(first, other, similarity bits)` for every
//! pair at or above `min_jaccard`, in (band, key, record) order, for the
//! cluster stage to replay. Memory: the exact duplicates (8 bytes each),
//! one bucket, and the signature files, mapped.

use std::fs::File;
use std::path::Path;

use serde_json::json;

use super::exact::all_drops;
use super::map::KeptIndex;
use super::runs::{self, Table};
use super::task::Context;
use super::Stage;
use crate::dedup::minhash::estimated_jaccard;
use crate::error::{Error, Result};

/// The edges file of a bands task.
pub const EDGES: &str = "edges.bin";

/// Runs bands task `ctx.task` into `dir`.
pub fn run(ctx: &Context, dir: &Path) -> Result<serde_json::Value> {
    let loaded = ctx.plan.pipeline()?;
    let config = &loaded.pipeline.near_dedup;
    let bands = config.bands;
    let (from, to) = (
        ctx.task * bands / ctx.plan.band_tasks,
        (ctx.task + 1) * bands / ctx.plan.band_tasks,
    );
    let dups: Vec<u64> = all_drops(ctx)?.into_iter().map(|[d, _]| d).collect();
    let sigs = Signatures::open(ctx, bands * config.rows)?;
    let mut edges: Vec<[u64; 3]> = Vec::new();
    let mut buckets = 0u64;
    for band in from..to {
        let tables = (0..ctx.plan.map.len())
            .map(|t| band_table(ctx, t, band))
            .collect::<Result<Vec<_>>>()?;
        let streams: Vec<_> = tables
            .iter()
            .zip(&sigs.index.offsets)
            .map(|(table, &offset)| table.iter().map(move |[k, r]| [k, r + offset]))
            .collect();
        let live = runs::merge(streams).filter(|[_, r]| dups.binary_search(r).is_err());
        let mut group: Vec<u64> = Vec::new();
        let mut key = None;
        for [k, r] in live.chain(std::iter::once([0, u64::MAX])) {
            if key != Some(k) || r == u64::MAX {
                if group.len() > 1 {
                    buckets += 1;
                    sigs.verify(&group, config.min_jaccard, &mut edges)?;
                }
                group.clear();
                key = Some(k);
            }
            group.push(r);
        }
        if band == from {
            ctx.half_way()?;
        }
    }
    runs::write(&dir.join(EDGES), &edges)?;
    Ok(json!({ "bands": [from, to], "buckets": buckets, "edges": edges.len() }))
}

/// Band `band`'s run of map task `t`; empty when the task kept no document.
fn band_table(ctx: &Context, t: usize, band: usize) -> Result<Table<2>> {
    let path = ctx
        .dir_of(Stage::Map, t)
        .join("bands")
        .join(format!("{band:03}.bin"));
    match path.exists() {
        true => Table::open(&path),
        false => Ok(Table::empty()),
    }
}

/// Every map task's signatures, found by global record number.
struct Signatures {
    index: KeptIndex,
    maps: Vec<Option<memmap2::Mmap>>,
    k: usize,
}

impl Signatures {
    fn open(ctx: &Context, k: usize) -> Result<Self> {
        let mut maps = Vec::new();
        for t in 0..ctx.plan.map.len() {
            let path = ctx.dir_of(Stage::Map, t).join("sigs.bin");
            let file = File::open(&path).map_err(Error::file("reading", &path))?;
            let len = file.metadata()?.len();
            // SAFETY: a finished map task's file in the work directory,
            // which only almr writes; nothing modifies it while mapped.
            maps.push(match len {
                0 => None,
                _ => Some(
                    unsafe { memmap2::Mmap::map(&file) }.map_err(Error::file("reading", &path))?,
                ),
            });
        }
        Ok(Signatures {
            index: KeptIndex::open(ctx)?,
            maps,
            k,
        })
    }

    /// The signature of global record `r`.
    fn get(&self, r: u64) -> Result<Vec<u32>> {
        let (t, tok) = self.index.locate(r)?;
        let bytes = (self.maps[t].as_ref())
            .and_then(|m| m.get(tok * self.k * 4..(tok + 1) * self.k * 4))
            .ok_or_else(|| Error::Internal(format!("map task {t} has no signature {tok}")))?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect())
    }

    /// The edges of one bucket: its first record against each other.
    fn verify(&self, group: &[u64], min: f64, edges: &mut Vec<[u64; 3]>) -> Result<()> {
        let first = self.get(group[0])?;
        for &d in &group[1..] {
            let j = estimated_jaccard(&first, &self.get(d)?);
            if j >= min {
                edges.push([group[0], d, (j as f32).to_bits() as u64]);
            }
        }
        Ok(())
    }
}
