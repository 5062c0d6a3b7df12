//! The finish stage (one task): replays every record's fate, with the
//! exact and near duplicates decided, into the counts and the rejects
//! tables, in the order `almr build` writes them; takes the write tasks'
//! shards (hard links) and near-duplicate rows; and publishes `OUT` with
//! its manifest, atomically, as `almr build` does. Memory: the counts per
//! input file, the exact duplicates and the descriptions of the records
//! they duplicate.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::json;

use super::cluster::{describe, read_near, NearDrop, NEAR};
use super::exact::all_drops;
use super::map::InputDigest;
use super::record::{Fate, Rec, Records};
use super::task::{read_json, Context};
use super::write::{WrittenShard, NEAR_REJECTS, WRITTEN};
use super::{RunOptions, Stage};
use crate::chain::{Chain, SourceSteps, Stage as ChainStage, Step};
use crate::config::LoadedPipeline;
use crate::driver::sink::{shard_prefix, StagedMask, StagedShard};
use crate::driver::{self, publish, Tools};
use crate::error::{Error, Result};
use crate::manifest::{Counts, InputFile};
use crate::read;
use crate::rejects::{RejectRow, RejectTables};
use crate::step::OrderedStep;

/// Runs the finish task into `dir`.
pub fn run(ctx: &Context, dir: &Path, opts: &RunOptions) -> Result<serde_json::Value> {
    let loaded = ctx.plan.pipeline()?;
    driver::with_tools(&loaded, opts.threads, |tools| {
        let output = publish::prepare(&ctx.plan.out)?;
        match finish_into(ctx, dir, &loaded, tools, output.staging(), opts) {
            Ok(manifest) => {
                output.publish(&manifest)?;
                Ok(json!({ "totals": manifest.totals, "shards": manifest.shards.len() }))
            }
            Err(e) => {
                output.abandon();
                Err(e)
            }
        }
    })
}

fn finish_into(
    ctx: &Context,
    dir: &Path,
    loaded: &LoadedPipeline,
    tools: &Tools,
    staging: &Path,
    opts: &RunOptions,
) -> Result<crate::manifest::Manifest> {
    let pipeline = &loaded.pipeline;
    let mut copies = vec![driver::copy_tokenizer(pipeline, staging)?];
    copies.extend(driver::write_tokenizer_config(
        pipeline,
        tools.template,
        staging,
    )?);
    let scratch = dir.join(".steps");
    let per_source: Vec<SourceSteps> = pipeline.sources.iter().map(|s| s.step_settings()).collect();
    let chain = Chain::new(
        &pipeline.steps(),
        &per_source,
        &pipeline.shared_steps(driver::DEFAULT_MEM_BUDGET, &scratch),
    )?;
    let mut stages = vec![read::STAGE];
    stages.extend(chain.names());
    let mut rejects = RejectTables::create(&staging.join("rejects"), &stages)?;
    let ordered = chain.stages.iter().find_map(|s| match s {
        ChainStage::Ordered(o) => Some(o.as_ref()),
        ChainStage::Doc(_) => None,
    });
    let counts = replay(ctx, loaded, ordered, &mut rejects)?;
    drop(chain);
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch).map_err(Error::file("removing", &scratch))?;
    }
    for t in 0..ctx.plan.map.len() {
        let path = ctx.dir_of(Stage::Write, t).join(NEAR_REJECTS);
        let text = std::fs::read_to_string(&path).map_err(Error::file("reading", &path))?;
        for line in text.lines() {
            let row: RejectRow = serde_json::from_str(line).map_err(|source| Error::JsonFile {
                path: path.clone(),
                source,
            })?;
            rejects.push(row)?;
        }
    }
    let built = take_shards(ctx, loaded, staging)?;
    let inputs = inputs(ctx, loaded, counts)?;
    let mut manifest = driver::assemble(loaded, tools, copies, staging, inputs, built, rejects)?;
    let mut declined = 0;
    for m in ctx.markers(Stage::Map)? {
        declined += m.counts["declined"].as_u64().unwrap_or(0);
    }
    manifest.tokenizer.declined_documents = declined;
    if opts.verbose {
        for warning in driver::sources_kept_none(&manifest) {
            eprintln!("warning: {warning}");
        }
    }
    let problems = manifest.check();
    if !problems.is_empty() {
        return Err(Error::Internal(format!(
            "internal error, the manifest does not add up: {}",
            problems.join("; ")
        )));
    }
    Ok(manifest)
}

/// Counts every record into its input file and writes the reject rows of
/// the read, per-document and ordered stages, in record order.
fn replay(
    ctx: &Context,
    loaded: &LoadedPipeline,
    ordered: Option<&dyn OrderedStep>,
    rejects: &mut RejectTables,
) -> Result<Vec<Counts>> {
    let dups: HashMap<u64, u64> = all_drops(ctx)?.into_iter().map(|[d, f]| (d, f)).collect();
    let firsts: HashSet<u64> = dups.values().copied().collect();
    let near = read_near(&ctx.dir_of(Stage::Cluster, 0).join(NEAR))?;
    let mut described: HashMap<u64, String> = HashMap::new();
    let mut counts = vec![Counts::default(); ctx.plan.files.len()];
    let mut records = Records::new(ctx.map_dirs(0), 0);
    while let Some((n, rec)) = records.next_rec()? {
        if firsts.contains(&n) {
            described.insert(n, describe(ctx, &loaded.pipeline, &rec));
        }
        let c = counts
            .get_mut(rec.file)
            .ok_or_else(|| Error::Internal(format!("record {n} names file {}", rec.file)))?;
        c.read += 1;
        let repeat = dups.get(&n).zip(ordered).zip(rec.reached.as_ref());
        if let Some(((first, step), reach)) = repeat {
            let rejection = step.repeat(described.get(first).map_or("", String::as_str));
            add_changes(c, &reach.changes);
            c.rejected
                .add(&format!("{}/{}", step.name(), rejection.reason));
            let detail = format!("{} | {}", rejection.detail, reach.snippet);
            rejects.push(row(
                ctx,
                loaded,
                &rec,
                step.name(),
                &rejection.reason,
                detail,
            ))?;
            continue;
        }
        add_changes(c, &rec.changes);
        fate_into(ctx, loaded, n, &rec, c, &near, rejects)?;
    }
    Ok(counts)
}

/// Counts a record that no ordered step dropped.
fn fate_into(
    ctx: &Context,
    loaded: &LoadedPipeline,
    n: u64,
    rec: &Rec,
    c: &mut Counts,
    near: &HashMap<u64, NearDrop>,
    rejects: &mut RejectTables,
) -> Result<()> {
    match &rec.fate {
        Fate::Malformed { reason, detail } => {
            c.malformed.add(reason);
            rejects.push(row(ctx, loaded, rec, read::STAGE, reason, detail.clone()))
        }
        Fate::Dropped {
            stage,
            reason,
            detail,
        } => {
            c.rejected.add(&format!("{stage}/{reason}"));
            rejects.push(row(ctx, loaded, rec, stage, reason, detail.clone()))
        }
        Fate::Tokenized { .. } if near.contains_key(&n) => {
            c.rejected
                .add(&format!("{}/near_duplicate", Step::NearDedup));
            Ok(())
        }
        Fate::Tokenized {
            tokens, text_bytes, ..
        } => {
            c.kept += 1;
            c.tokens += tokens;
            c.text_bytes += text_bytes;
            Ok(())
        }
    }
}

fn add_changes(c: &mut Counts, changes: &[(String, u64)]) {
    for (k, v) in changes {
        *c.changes.entry(k.clone()).or_default() += v;
    }
}

fn row(
    ctx: &Context,
    loaded: &LoadedPipeline,
    rec: &Rec,
    stage: &str,
    reason: &str,
    detail: String,
) -> RejectRow {
    let file = &ctx.plan.files[rec.file];
    RejectRow {
        id: rec.id.clone(),
        source: loaded.pipeline.sources[file.source].name.clone(),
        file: file.path.display().to_string(),
        line: rec.line,
        stage: stage.into(),
        reason: reason.into(),
        detail,
    }
}

/// Links the write tasks' shards into the staged output, by source and
/// number.
fn take_shards(
    ctx: &Context,
    loaded: &LoadedPipeline,
    staging: &Path,
) -> Result<Vec<Vec<StagedShard>>> {
    let mut built: Vec<Vec<StagedShard>> =
        loaded.pipeline.sources.iter().map(|_| Vec::new()).collect();
    for t in 0..ctx.plan.map.len() {
        let dir = ctx.dir_of(Stage::Write, t);
        let written: Vec<WrittenShard> = read_json(&dir.join(WRITTEN))?;
        for w in written {
            let name = &loaded.pipeline.sources[w.source].name;
            let rel = shard_prefix(&Path::new("shards").join(name), name, w.number);
            link_shard(&dir.join(&rel), &staging.join(&rel), w.mask.is_some())?;
            built[w.source].push(StagedShard {
                prefix: staging.join(&rel),
                documents: w.documents,
                tokens: w.tokens,
                bin: w.bin,
                idx: w.idx,
                docs: w.docs,
                mask: w
                    .mask
                    .map(|(bin, idx, trained)| StagedMask { bin, idx, trained }),
            });
        }
    }
    Ok(built)
}

fn link_shard(from: &Path, to: &Path, mask: bool) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(Error::file("creating", parent))?;
    }
    let mut suffixes = vec![".bin", ".idx", ".docs.parquet"];
    if mask {
        suffixes.extend([".mask.bin", ".mask.idx"]);
    }
    for suffix in suffixes {
        let (a, b): (PathBuf, PathBuf) = (
            crate::shard::with_suffix(from, suffix),
            crate::shard::with_suffix(to, suffix),
        );
        if std::fs::hard_link(&a, &b).is_err() {
            std::fs::copy(&a, &b).map_err(Error::file("copying", &a))?;
        }
    }
    Ok(())
}

/// The input files with their digests and counts.
fn inputs(ctx: &Context, loaded: &LoadedPipeline, counts: Vec<Counts>) -> Result<Vec<InputFile>> {
    let mut digests = HashMap::new();
    for t in 0..ctx.plan.map.len() {
        let list: Vec<InputDigest> = read_json(&ctx.dir_of(Stage::Map, t).join("inputs.json"))?;
        digests.extend(list.into_iter().map(|d| (d.file, d.digest)));
    }
    ctx.plan
        .files
        .iter()
        .zip(counts)
        .enumerate()
        .map(|(i, (f, counts))| {
            let digest = digests
                .remove(&i)
                .ok_or_else(|| Error::Internal(format!("no map task read {}", f.path.display())))?;
            Ok(InputFile {
                source: loaded.pipeline.sources[f.source].name.clone(),
                path: f.path.clone(),
                bytes: digest.bytes,
                sha256: digest.sha256,
                counts,
            })
        })
        .collect()
}
