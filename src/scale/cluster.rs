//! The cluster stage (one task): replays the bands stage's edges through a
//! union-find exactly as `almr build` clusters, names each near duplicate
//! and the record kept in its place (`near.jsonl`), then cuts each source's
//! surviving records into shards as `almr build` does, before the near
//! duplicates are taken out (`shards.json`). Memory: 8 bytes per record
//! (union-find and similarity), the exact duplicates, and the descriptions
//! of the kept records.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::bands::EDGES;
use super::exact::all_drops;
use super::record::{Fate, Rec, Records};
use super::runs::Table;
use super::task::{write_json, Context};
use super::Stage;
use crate::config::Pipeline;
use crate::dedup::cluster::UnionFind;
use crate::error::{Error, Result};

/// The near duplicates, one JSON line each, by record.
pub const NEAR: &str = "near.jsonl";
/// The shard plan.
pub const SHARDS: &str = "shards.json";

/// A near duplicate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NearDrop {
    /// Its global record number.
    pub doc: u64,
    /// The record kept in its place.
    pub kept: u64,
    /// The similarity that joined it to its cluster.
    pub joined: f32,
    /// The kept record, as reject rows describe it.
    pub kept_as: String,
}

/// One shard before the near duplicates are taken out: the records from
/// `first` to `last` that survived the per-document and ordered steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedShard {
    /// Index of the source in the pipeline.
    pub source: usize,
    /// Its number among the source's shards.
    pub number: usize,
    /// Global number of its first record.
    pub first: u64,
    /// Global number of its last record.
    pub last: u64,
    /// Its documents before near duplicates are taken out.
    pub documents: u64,
    /// The write task that writes it: the map task of its first record.
    pub write_task: usize,
}

/// Runs the cluster task into `dir`.
pub fn run(ctx: &Context, dir: &Path) -> Result<serde_json::Value> {
    let loaded = ctx.plan.pipeline()?;
    let offsets = ctx.record_offsets()?;
    let total: u64 = ctx
        .markers(Stage::Map)?
        .iter()
        .map(|m| m.counts["records"].as_u64().unwrap_or(0))
        .sum();
    let records = u32::try_from(total)
        .map_err(|_| Error::Invalid(format!("{total} records: near_dedup handles at most 2^32")))?;
    let (roots, joined) = clusters(ctx, records as usize)?;
    ctx.half_way()?;
    let dups: Vec<u64> = all_drops(ctx)?.into_iter().map(|[d, _]| d).collect();
    let (shards, kept_as) = plan_shards(ctx, &loaded.pipeline, &offsets, &dups, &roots)?;
    let mut near = std::io::BufWriter::new(std::fs::File::create(dir.join(NEAR))?);
    for (&doc, &kept) in &roots {
        let drop = NearDrop {
            doc,
            kept,
            joined: joined[doc as usize],
            kept_as: kept_as.get(&kept).cloned().unwrap_or_default(),
        };
        serde_json::to_writer(&mut near, &drop).map_err(|e| Error::Internal(e.to_string()))?;
        near.write_all(b"\n")?;
    }
    near.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    write_json(&dir.join(SHARDS), &shards)?;
    Ok(json!({ "near_duplicates": roots.len(), "shards": shards.len() }))
}

/// Replays every edge through a union-find: each near duplicate's root,
/// in record order, and the similarity that joined each record.
fn clusters(ctx: &Context, records: usize) -> Result<(BTreeMap<u64, u64>, Vec<f32>)> {
    let mut uf = UnionFind::new(records);
    let mut joined = vec![0f32; records];
    for t in 0..ctx.plan.band_tasks {
        let edges = Table::<3>::open(&ctx.dir_of(Stage::Bands, t).join(EDGES))?;
        for [a, d, j] in edges.iter() {
            let (a, d) = (a as u32, d as u32);
            if uf.find(d) == uf.find(a) {
                continue;
            }
            uf.union(a, d);
            joined[d as usize] = f32::from_bits(j as u32);
        }
    }
    let mut roots = BTreeMap::new();
    for d in 0..records as u32 {
        let root = uf.find(d);
        if root != d {
            roots.insert(d as u64, root as u64);
        }
    }
    Ok((roots, joined))
}

/// Cuts each source's surviving records into shards, and describes the
/// records kept in the near duplicates' places.
fn plan_shards(
    ctx: &Context,
    pipeline: &Pipeline,
    offsets: &[u64],
    dups: &[u64],
    roots: &BTreeMap<u64, u64>,
) -> Result<(Vec<PlannedShard>, HashMap<u64, String>)> {
    let wanted: HashSet<u64> = roots.values().copied().collect();
    let mut kept_as = HashMap::new();
    let mut shards: Vec<PlannedShard> = Vec::new();
    let mut open: Option<(PlannedShard, u64)> = None;
    let mut records = Records::new(ctx.map_dirs(0), 0);
    while let Some((n, rec)) = records.next_rec()? {
        let Fate::Tokenized { tokens, .. } = rec.fate else {
            continue;
        };
        if dups.binary_search(&n).is_ok() {
            continue;
        }
        let source = ctx.plan.files[rec.file].source;
        if wanted.contains(&n) {
            kept_as.insert(n, describe(ctx, pipeline, &rec));
        }
        let max = pipeline.sources[source].max_shard_tokens;
        let fits = match &open {
            Some((s, t)) => s.source == source && !(*t > 0 && t + tokens > max),
            None => false,
        };
        if !fits {
            let number = match open.take() {
                Some((s, _)) => {
                    let next = if s.source == source { s.number + 1 } else { 0 };
                    shards.push(s);
                    next
                }
                None => 0,
            };
            let write_task = offsets.partition_point(|&o| o <= n) - 1;
            let shard = PlannedShard {
                source,
                number,
                first: n,
                last: n,
                documents: 0,
                write_task,
            };
            open = Some((shard, 0));
        }
        let (s, t) = open.as_mut().expect("opened above");
        s.last = n;
        s.documents += 1;
        *t += tokens;
    }
    shards.extend(open.map(|(s, _)| s));
    Ok((shards, kept_as))
}

/// Reads the near duplicates, by record.
pub fn read_near(path: &Path) -> Result<HashMap<u64, NearDrop>> {
    let text = std::fs::read_to_string(path).map_err(Error::file("reading", path))?;
    text.lines()
        .map(|l| {
            let d: NearDrop = serde_json::from_str(l).map_err(|source| Error::JsonFile {
                path: path.to_path_buf(),
                source,
            })?;
            Ok((d.doc, d))
        })
        .collect()
}

/// A record as reject rows describe it: `ID (SOURCE, FILE:LINE)`.
pub fn describe(ctx: &Context, pipeline: &Pipeline, rec: &Rec) -> String {
    let file = &ctx.plan.files[rec.file];
    format!(
        "{} ({}, {}:{})",
        rec.id,
        pipeline.sources[file.source].name,
        file.path.display(),
        rec.line
    )
}
