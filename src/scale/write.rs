//! The write stage: task `i` writes the shards whose first record map task
//! `i` read, straight in their final form: the shuffle of `almr build`
//! over the shard's documents, with the near duplicates left out. Their
//! reject rows go to `near_rejects.jsonl` in shard order, as `almr build`
//! writes them. Memory: one shard's list of documents (about 100 bytes a
//! document); tokens stream from the map tasks' stores.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::cluster::{read_near, NearDrop, PlannedShard, NEAR, SHARDS};
use super::exact::all_drops;
use super::map::{KeptIndex, TOKENS};
use super::record::{Fate, Records};
use super::task::{read_json, write_json, Context};
use super::Stage;
use crate::chain::Step;
use crate::config::Pipeline;
use crate::dedup::near::late_drop;
use crate::driver::late::late_detail;
use crate::driver::sink::{shard_prefix, shuffled, MASK};
use crate::error::{Error, Result};
use crate::fsutil::FileDigest;
use crate::provenance::{DocRow, ProvenanceWriter};
use crate::read::Format;
use crate::rejects::RejectRow;
use crate::shard::{with_suffix, DType, ShardReader, ShardWriter};

/// The list of shards a write task wrote.
pub const WRITTEN: &str = "written.json";
/// Its near duplicates' reject rows.
pub const NEAR_REJECTS: &str = "near_rejects.jsonl";

/// A shard as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WrittenShard {
    /// Index of the source in the pipeline.
    pub source: usize,
    /// Its number among the source's shards.
    pub number: usize,
    /// Documents.
    pub documents: u64,
    /// Tokens, EOS included.
    pub tokens: u64,
    /// `PREFIX.bin`.
    pub bin: FileDigest,
    /// `PREFIX.idx`.
    pub idx: FileDigest,
    /// `PREFIX.docs.parquet`.
    pub docs: FileDigest,
    /// A conversation shard's mask: `.mask.bin`, `.mask.idx`, trained tokens.
    pub mask: Option<(FileDigest, FileDigest, u64)>,
}

/// One document of a shard before the near duplicates are taken out.
struct Member {
    record: u64,
    row: DocRow,
    snippet: String,
    near: Option<NearDrop>,
}

/// Runs write task `ctx.task` into `dir`.
pub fn run(ctx: &Context, dir: &Path) -> Result<serde_json::Value> {
    let loaded = ctx.plan.pipeline()?;
    let cluster = ctx.dir_of(Stage::Cluster, 0);
    let planned: Vec<PlannedShard> = read_json(&cluster.join(SHARDS))?;
    let mine: Vec<&PlannedShard> = planned
        .iter()
        .filter(|s| s.write_task == ctx.task)
        .collect();
    let mut near = read_near(&cluster.join(NEAR))?;
    let mut stores = Stores::open(ctx)?;
    let dups: Vec<u64> = all_drops(ctx)?.into_iter().map(|[d, _]| d).collect();
    let mut rejects = BufWriter::new(std::fs::File::create(dir.join(NEAR_REJECTS))?);
    let mut written = Vec::new();
    let first_task = mine
        .first()
        .map_or(ctx.task, |s| stores.index.task_of(s.first));
    let mut records = Records::new(ctx.map_dirs(first_task), stores.index.offsets[first_task]);
    for (k, shard) in mine.iter().enumerate() {
        let members = members(ctx, &loaded.pipeline, shard, &mut records, &dups, &mut near)?;
        let order: Vec<u32> = match loaded.pipeline.sources[shard.source].shuffle_seed {
            Some(seed) => shuffled(seed, shard.number, members.len()),
            None => (0..members.len() as u32).collect(),
        };
        for &i in &order {
            if let Some(row) = near_reject(&members[i as usize]) {
                serde_json::to_writer(&mut rejects, &row)
                    .map_err(|e| Error::Internal(e.to_string()))?;
                rejects.write_all(b"\n")?;
            }
        }
        let name = &loaded.pipeline.sources[shard.source].name;
        let shard_dir = dir.join("shards").join(name);
        let prefix = shard_prefix(&shard_dir, name, shard.number);
        let chat = loaded.pipeline.sources[shard.source].format == Format::Chat;
        if let Some(w) = write_shard(&mut stores, &prefix, shard, &members, &order, chat)? {
            written.push(w);
        }
        if k == 0 {
            ctx.half_way()?;
        }
    }
    rejects
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    write_json(&dir.join(WRITTEN), &written)?;
    Ok(json!({ "shards": written.len(), "planned": mine.len() }))
}

/// The documents of `shard`, in input order.
fn members(
    ctx: &Context,
    pipeline: &Pipeline,
    shard: &PlannedShard,
    records: &mut Records,
    dups: &[u64],
    near: &mut HashMap<u64, NearDrop>,
) -> Result<Vec<Member>> {
    let mut members = Vec::new();
    let name = &pipeline.sources[shard.source].name;
    while let Some((n, rec)) = records.next_rec()? {
        if n < shard.first {
            continue;
        }
        if let Fate::Tokenized {
            tokens, snippet, ..
        } = rec.fate
        {
            if dups.binary_search(&n).is_err() {
                members.push(Member {
                    record: n,
                    row: DocRow {
                        doc_index: 0,
                        source: name.clone(),
                        file: ctx.plan.files[rec.file].path.display().to_string(),
                        line: rec.line,
                        id: rec.id,
                        n_tokens: tokens,
                    },
                    snippet,
                    near: near.remove(&n),
                });
            }
        }
        if n >= shard.last {
            break;
        }
    }
    if members.len() as u64 != shard.documents {
        return Err(Error::Internal(format!(
            "shard {} of {name}: {} documents planned, {} found",
            shard.number,
            shard.documents,
            members.len()
        )));
    }
    Ok(members)
}

/// The reject row of a member that is a near duplicate.
fn near_reject(m: &Member) -> Option<RejectRow> {
    let d = m.near.as_ref()?;
    let drop = late_drop(m.record, d.kept, d.joined);
    Some(RejectRow {
        id: m.row.id.clone(),
        source: m.row.source.clone(),
        file: m.row.file.clone(),
        line: m.row.line,
        stage: Step::NearDedup.to_string(),
        reason: drop.reason.into(),
        detail: late_detail(&drop, &d.kept_as, &m.snippet),
    })
}

/// Writes the shard's surviving members in `order`; `None` when none
/// survives.
fn write_shard(
    stores: &mut Stores,
    prefix: &Path,
    shard: &PlannedShard,
    members: &[Member],
    order: &[u32],
    chat: bool,
) -> Result<Option<WrittenShard>> {
    let live: Vec<usize> = (0..members.len())
        .filter(|&i| members[i].near.is_none())
        .collect();
    if live.is_empty() {
        return Ok(None);
    }
    let mut renumber = vec![u32::MAX; members.len()];
    for (k, &i) in live.iter().enumerate() {
        renumber[i] = k as u32;
    }
    let final_order: Vec<u32> = order
        .iter()
        .map(|&i| renumber[i as usize])
        .filter(|&k| k != u32::MAX)
        .collect();
    std::fs::create_dir_all(prefix.parent().unwrap_or(prefix))?;
    let records: Vec<u64> = live.iter().map(|&i| members[i].record).collect();
    let shuffled = order.iter().enumerate().any(|(k, &i)| k != i as usize);
    let order = shuffled.then_some(&final_order[..]);
    let (summary, mask) = stores.copy(&records, prefix, order, chat)?;
    let mut w = ProvenanceWriter::create(&with_suffix(prefix, ".docs.parquet"))?;
    for (k, &i) in final_order.iter().enumerate() {
        let mut row = members[live[i as usize]].row.clone();
        row.doc_index = k as u64;
        w.push(row)?;
    }
    Ok(Some(WrittenShard {
        source: shard.source,
        number: shard.number,
        documents: summary.documents,
        tokens: summary.tokens,
        bin: summary.bin,
        idx: summary.idx,
        docs: w.finish()?,
        mask,
    }))
}

/// The map tasks' token stores, found by global record number.
struct Stores {
    index: KeptIndex,
    tokens: Vec<ShardReader>,
    masks: Vec<Option<ShardReader>>,
    dtype: DType,
}

impl Stores {
    fn open(ctx: &Context) -> Result<Self> {
        let mut s = Stores {
            index: KeptIndex::open(ctx)?,
            tokens: Vec::new(),
            masks: Vec::new(),
            dtype: DType::I32,
        };
        for t in 0..ctx.plan.map.len() {
            let prefix = ctx.dir_of(Stage::Map, t).join(TOKENS);
            let tokens = ShardReader::open(&prefix)?;
            s.dtype = tokens.dtype();
            s.tokens.push(tokens);
            let mask = with_suffix(&prefix, MASK);
            s.masks.push(match with_suffix(&mask, ".idx").exists() {
                true => Some(ShardReader::open(&mask)?),
                false => None,
            });
        }
        Ok(s)
    }

    /// Writes the tokens (and masks) of `records` as a shard at `prefix`,
    /// permuted by `order` when given.
    #[allow(clippy::type_complexity)]
    fn copy(
        &mut self,
        records: &[u64],
        prefix: &Path,
        order: Option<&[u32]>,
        chat: bool,
    ) -> Result<(
        crate::shard::ShardSummary,
        Option<(FileDigest, FileDigest, u64)>,
    )> {
        let mut tokens = ShardWriter::create(prefix, self.dtype)?;
        let mut mask: Option<(ShardWriter, u64)> = None;
        let mut ids = Vec::new();
        for &r in records {
            let (t, at) = self.index.locate(r)?;
            ids.clear();
            self.tokens[t].read_into(at, &mut ids)?;
            tokens.push(&ids)?;
            if let Some(reader) = self.masks[t].as_ref().filter(|_| chat) {
                ids.clear();
                reader.read_into(at, &mut ids)?;
                if mask.is_none() {
                    mask = Some((
                        ShardWriter::create(&with_suffix(prefix, MASK), DType::U8)?,
                        0,
                    ));
                }
                let (w, trained) = mask.as_mut().expect("made above");
                *trained += ids.iter().map(|&b| b as u64).sum::<u64>();
                w.push(&ids)?;
            }
        }
        let finish = |w: ShardWriter| match order {
            Some(o) => w.finish_permuted(o),
            None => w.finish(),
        };
        let summary = finish(tokens)?;
        let mask = match mask {
            Some((w, trained)) => {
                let m = finish(w)?;
                Some((m.bin, m.idx, trained))
            }
            None => None,
        };
        Ok((summary, mask))
    }
}
