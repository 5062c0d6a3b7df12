//! The map stage: task `t` reads its range of input files through the
//! per-document steps and the tokenizer, as `almr build` does, but leaves
//! the ordered and corpus steps' decisions to the later stages. It writes:
//!
//! - `records.jsonl`: each record's fate ([`super::record`]);
//! - `tokens.{bin,idx}` (and `tokens.mask.*` for conversations): the tokens
//!   of each tokenized record, in order;
//! - `exact.bin`: `(key hi, key lo, record)` of each record that met the
//!   ordered step, sorted;
//! - `bands/BBB.bin`: `(bucket key, record)` of each tokenized record in
//!   band BBB, sorted; `sigs.bin`, their MinHash signatures, and
//!   `kept.bin`, their record numbers, in order;
//! - `inputs.json`: the digest of each input file.
//!
//! Record numbers here are the task's own, from 0.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::record::{changes, Fate, Reach, Rec, RecWriter};
use super::runs::{self, Table};
use super::task::{write_json, Context};
use super::{RunOptions, Stage};
use crate::chain::{Chain, SourceSteps};
use crate::config::LoadedPipeline;
use crate::dedup::near::band_keys;
use crate::driver::sink::{Tokens, MASK};
use crate::driver::source::{Driver, Outcome, SourceAt, SourceRun, SNIPPET_CHARS};
use crate::driver::{self, BuildOptions, Tools};
use crate::error::{Error, Result};
use crate::fsutil::FileDigest;
use crate::read::Format;
use crate::shard::{DType, ShardWriter};
use crate::text::snippet;

/// The token store's prefix in a map task's directory.
pub const TOKENS: &str = "tokens";

/// Every map task's `kept.bin`: where a tokenized record's tokens and
/// signature are, by global record number.
pub struct KeptIndex {
    /// The global number of each map task's first record.
    pub offsets: Vec<u64>,
    kept: Vec<Table<1>>,
}

impl KeptIndex {
    /// Opens the index of every map task.
    pub fn open(ctx: &Context) -> Result<Self> {
        let kept = (0..ctx.plan.map.len())
            .map(|t| Table::open(&ctx.dir_of(Stage::Map, t).join("kept.bin")))
            .collect::<Result<_>>()?;
        Ok(KeptIndex {
            offsets: ctx.record_offsets()?,
            kept,
        })
    }

    /// The map task that read global record `r`.
    pub fn task_of(&self, r: u64) -> usize {
        self.offsets.partition_point(|&o| o <= r).saturating_sub(1)
    }

    /// The map task and store position of tokenized record `r`.
    pub fn locate(&self, r: u64) -> Result<(usize, usize)> {
        let t = self.task_of(r);
        let local = r - self.offsets[t];
        let at = self.kept[t].lower_bound(&[local]);
        match at < self.kept[t].len() && self.kept[t].get(at) == [local] {
            true => Ok((t, at)),
            false => Err(Error::Internal(format!(
                "map task {t} stored nothing for its record {local}"
            ))),
        }
    }
}

/// One input file's digest, as a map task read it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputDigest {
    /// Index of the file in the plan.
    pub file: usize,
    /// Its digest.
    pub digest: FileDigest,
}

/// Runs map task `ctx.task` into `dir`.
pub fn run(ctx: &Context, dir: &Path, opts: &RunOptions) -> Result<serde_json::Value> {
    let loaded = ctx.plan.pipeline()?;
    driver::with_tools(&loaded, opts.threads, |t| {
        map_with(ctx, dir, opts, &loaded, t)
    })
}

fn map_with(
    ctx: &Context,
    dir: &Path,
    opts: &RunOptions,
    loaded: &LoadedPipeline,
    t: &Tools,
) -> Result<serde_json::Value> {
    let pipeline = &loaded.pipeline;
    let scratch = dir.join(".steps");
    let per_source: Vec<SourceSteps> = pipeline.sources.iter().map(|s| s.step_settings()).collect();
    let shared = pipeline.shared_steps(driver::DEFAULT_MEM_BUDGET, &scratch);
    let mut chain = Chain::new(&pipeline.steps(), &per_source, &shared)?;
    let build_opts = BuildOptions {
        out: None,
        threads: opts.threads,
        strict: ctx.plan.strict,
        verbose: false,
        all_warnings: false,
        mem_budget: driver::DEFAULT_MEM_BUDGET,
        trial: Default::default(),
    };
    let rows = pipeline.near_dedup.rows;
    let has_chat = pipeline.sources.iter().any(|s| s.format == Format::Chat);
    let mut out = MapOut::create(dir, t.tokenizer.dtype(), has_chat, rows)?;
    let bar = ProgressBar::hidden();
    let mut d = Driver::new(
        t.tokenizer,
        t.chat,
        t.pool,
        dir,
        &build_opts,
        &bar,
        &mut chain,
        None,
    )
    .deferring();
    let [start, end] = ctx.plan.map[ctx.task];
    let mut digests = Vec::new();
    for (index, source) in pipeline.sources.iter().enumerate() {
        let files: Vec<usize> = (start..end)
            .filter(|&f| ctx.plan.files[f].source == index)
            .collect();
        let Some(&first_file) = files.first() else {
            continue;
        };
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|&f| ctx.plan.files[f].path.clone())
            .collect();
        let run = SourceRun {
            at: SourceAt { index, first_file },
            source,
            labels: paths.iter().map(|p| p.display().to_string()).collect(),
        };
        let got = d.stream_source(&run, &paths, |_, outcome, run| {
            out.push(outcome, run, ctx)?;
            match out.records == 1 {
                true => ctx.half_way(),
                false => Ok(()),
            }
        })?;
        for (k, digest) in got.into_iter().enumerate() {
            check_size(ctx, files[k], &digest)?;
            digests.push(InputDigest {
                file: files[k],
                digest,
            });
        }
    }
    drop(d);
    drop(chain);
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch).map_err(Error::file("removing", &scratch))?;
    }
    write_json(&dir.join("inputs.json"), &digests)?;
    let counts = json!({
        "records": out.records,
        "tokenized": out.tokenized,
        "reached": out.exact.len(),
        "declined": t.tokenizer.declined(),
    });
    out.finish(dir)?;
    Ok(counts)
}

/// A file whose size is not the planned one changed since `almr plan`.
fn check_size(ctx: &Context, file: usize, digest: &FileDigest) -> Result<()> {
    let planned = &ctx.plan.files[file];
    if digest.bytes == planned.bytes {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "{}: {} bytes, {} when planned: the file changed since `almr plan`; plan again",
        planned.path.display(),
        digest.bytes,
        planned.bytes
    )))
}

/// What a map task writes, as it goes.
struct MapOut {
    recs: RecWriter,
    tokens: ShardWriter,
    mask: Option<ShardWriter>,
    sigs: BufWriter<File>,
    sigs_path: PathBuf,
    kept: Vec<[u64; 1]>,
    exact: Vec<[u64; 3]>,
    bands: Vec<Vec<[u64; 2]>>,
    rows: usize,
    records: u64,
    tokenized: u64,
}

impl MapOut {
    fn create(dir: &Path, dtype: DType, chat: bool, rows: usize) -> Result<Self> {
        let prefix = dir.join(TOKENS);
        let mask = match chat {
            true => Some(ShardWriter::create(
                &crate::shard::with_suffix(&prefix, MASK),
                DType::U8,
            )?),
            false => None,
        };
        let sigs_path = dir.join("sigs.bin");
        let sigs = File::create(&sigs_path).map_err(Error::file("creating", &sigs_path))?;
        Ok(MapOut {
            recs: RecWriter::create(dir)?,
            tokens: ShardWriter::create(&prefix, dtype)?,
            mask,
            sigs: BufWriter::new(sigs),
            sigs_path,
            kept: Vec::new(),
            exact: Vec::new(),
            bands: Vec::new(),
            rows,
            records: 0,
            tokenized: 0,
        })
    }

    /// Records one outcome.
    fn push(&mut self, outcome: Outcome, run: &SourceRun, ctx: &Context) -> Result<()> {
        let number = self.records;
        self.records += 1;
        let file = |f: usize| run.at.first_file + f;
        let rec = match outcome {
            Outcome::Bad(f, m) => {
                let at = format!("{}:{}", run.labels[f], m.line);
                if ctx.plan.strict {
                    return Err(Error::Malformed {
                        file: run.labels[f].clone(),
                        line: m.line,
                        reason: m.reason.as_str(),
                        detail: m.detail,
                    });
                }
                Rec {
                    file: file(f),
                    line: m.line,
                    id: m.id.unwrap_or(at),
                    changes: Vec::new(),
                    fate: Fate::Malformed {
                        reason: m.reason.as_str().to_string(),
                        detail: m.detail,
                    },
                    reached: None,
                }
            }
            Outcome::Failed(doc, e) => {
                let at = format!("{}:{}", run.labels[doc.file], doc.record.line);
                return Err(Error::from(e).context(at));
            }
            Outcome::Dropped(doc, dropped) => Rec {
                file: file(doc.file),
                line: doc.record.line,
                changes: changes(&doc.notes),
                fate: Fate::Dropped {
                    stage: dropped.stage.to_string(),
                    reason: dropped.rejection.reason,
                    detail: format!(
                        "{} | {}",
                        dropped.rejection.detail,
                        snippet(&doc.record.text, SNIPPET_CHARS)
                    ),
                },
                reached: self.reach(number, doc.reached),
                id: doc.record.id,
            },
            Outcome::Kept(doc, tokens, sketches) => {
                self.store(number, &tokens, &sketches)?;
                Rec {
                    file: file(doc.file),
                    line: doc.record.line,
                    changes: changes(&doc.notes),
                    fate: Fate::Tokenized {
                        tokens: tokens.ids.len() as u64,
                        text_bytes: doc.record.text.len() as u64,
                        snippet: snippet(&doc.record.text, SNIPPET_CHARS),
                    },
                    reached: self.reach(number, doc.reached),
                    id: doc.record.id,
                }
            }
        };
        self.recs.push(&rec)
    }

    /// Notes the key of a record that met the ordered step.
    fn reach(
        &mut self,
        number: u64,
        reached: Option<crate::driver::source::Reached>,
    ) -> Option<Reach> {
        let r = reached?;
        self.exact
            .push([(r.key >> 64) as u64, r.key as u64, number]);
        Some(Reach {
            changes: changes(&r.notes),
            snippet: r.snippet,
        })
    }

    /// Stores a tokenized record's tokens, mask and sketch.
    fn store(&mut self, number: u64, tokens: &Tokens, sketches: &[Vec<u32>]) -> Result<()> {
        self.tokens.push(&tokens.ids)?;
        if let Some(mask) = &mut self.mask {
            let bits: Vec<u32> = tokens.mask.iter().flatten().map(|&b| b as u32).collect();
            mask.push(&bits)?;
        }
        self.kept.push([number]);
        self.tokenized += 1;
        let Some(sig) = sketches.first() else {
            return Ok(());
        };
        for v in sig {
            self.sigs
                .write_all(&v.to_le_bytes())
                .map_err(Error::file("writing", &self.sigs_path))?;
        }
        let keys = band_keys(sig, self.rows);
        self.bands.resize(keys.len(), Vec::new());
        for (band, key) in self.bands.iter_mut().zip(keys) {
            band.push([key, number]);
        }
        Ok(())
    }

    /// Sorts and writes the runs, and closes the stores.
    fn finish(mut self, dir: &Path) -> Result<()> {
        self.recs.finish()?;
        self.tokens.finish()?;
        if let Some(mask) = self.mask {
            mask.finish()?;
        }
        self.sigs
            .into_inner()
            .map_err(|e| Error::file("writing", &self.sigs_path)(e.into_error()))?
            .sync_all()?;
        runs::write(&dir.join("kept.bin"), &self.kept)?;
        self.exact.sort_unstable();
        runs::write(&dir.join("exact.bin"), &self.exact)?;
        let bands_dir = dir.join("bands");
        std::fs::create_dir_all(&bands_dir)?;
        for (b, entries) in self.bands.iter_mut().enumerate() {
            entries.sort_unstable();
            runs::write(&bands_dir.join(format!("{b:03}.bin")), entries)?;
        }
        Ok(())
    }
}
