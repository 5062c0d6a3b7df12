//! `almr build`: read → tokenize → shards, provenance, rejects and manifest.
//!
//! Data flow for each source, in pipeline order:
//!
//! 1. A reader thread streams the source's files, in order, and cuts the
//!    items into batches (bounded channel: at most a few batches in memory).
//! 2. Each batch goes through the steps ([`crate::steps::Chain`]) and the
//!    tokenizer on a rayon pool; exact dedup runs between the parallel parts,
//!    in order. Results keep the batch's order, so the output does not depend
//!    on the thread count.
//! 3. Documents go, in order, to the source's current shard; dropped and
//!    malformed records go to `rejects/<stage>.parquet`, and everything is
//!    counted.
//!
//! Everything is written under `OUT/.almr-staging/` first and moved into
//! place at the end, manifest last, so a killed build leaves no file under a
//! final name and a rerun starts clean.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::config::{self, LoadedPipeline, Source};
use crate::dedup::compact::remove_near_duplicates;
use crate::dedup::exact::ExactDedup;
use crate::dedup::near::{DocKey, NearDedup};
use crate::fsutil::{self, FileDigest};
use crate::manifest::{
    Counts, InputFile, Manifest, OutputFile, PipelineInfo, ShardEntry, SourceCounts, TokenizerInfo,
};
use crate::read::{self, Item, Malformed, Record};
use crate::rejects::{RejectRow, RejectTables};
use crate::shard::sink::{ShardSink, StagedShard};
use crate::shard::with_suffix;
use crate::steps::{Chain, Notes, Rejected, Rejection, Step};
use crate::tokenize::DocTokenizer;

/// Name of the staging directory inside the output directory.
pub const STAGING: &str = ".almr-staging";
/// Items per batch handed to the tokenizer pool.
const BATCH_ITEMS: usize = 4096;
/// Text bytes per batch, whichever limit comes first.
const BATCH_BYTES: usize = 8 << 20;
/// Malformed records printed as warnings before the rest are only counted.
const MAX_WARNINGS: u64 = 10;

/// Command-line options of `almr build`.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Output directory; overrides the pipeline's `output`.
    pub out: Option<PathBuf>,
    /// Tokenizer threads; all cores when unset.
    pub threads: Option<usize>,
    /// Fail on the first malformed record.
    pub strict: bool,
    /// Print warnings and show a progress bar (on a terminal).
    pub verbose: bool,
    /// Bytes of near-dedup band tables held in memory before they spill to
    /// disk.
    pub mem_budget: usize,
}

/// The default `--mem-budget`: 4 GiB.
pub const DEFAULT_MEM_BUDGET: usize = 4 << 30;

/// A finished build.
#[derive(Debug)]
pub struct BuildOutcome {
    /// The output directory.
    pub out: PathBuf,
    /// What was written there as `manifest.json`.
    pub manifest: Manifest,
}

/// Runs the pipeline at `pipeline_path`.
pub fn build(pipeline_path: &Path, opts: &BuildOptions) -> Result<BuildOutcome> {
    let loaded = config::load(pipeline_path)?;
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| loaded.pipeline.output.clone());
    let tcfg = &loaded.pipeline.tokenizer;
    let tokenizer = DocTokenizer::from_file(&tcfg.path, &tcfg.eos)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.unwrap_or(0))
        .build()
        .context("starting the tokenizer threads")?;

    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let staging = out.join(STAGING);
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("removing stale {}", staging.display()))?;
    }
    std::fs::create_dir_all(staging.join("rejects"))?;
    let result = build_into(&loaded, &tokenizer, &pool, &staging, opts);
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            // Best effort: the error is what the user needs to see.
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    publish(&staging, &out, &manifest)?;
    Ok(BuildOutcome { out, manifest })
}

fn build_into(
    loaded: &LoadedPipeline,
    tokenizer: &DocTokenizer,
    pool: &rayon::ThreadPool,
    staging: &Path,
    opts: &BuildOptions,
) -> Result<Manifest> {
    let pipeline = &loaded.pipeline;
    let tok_copy = PathBuf::from("tokenizer.json");
    std::fs::copy(&pipeline.tokenizer.path, staging.join(&tok_copy))
        .with_context(|| format!("copying {}", pipeline.tokenizer.path.display()))?;
    let tok_digest = fsutil::digest_file(&staging.join(&tok_copy))?;
    let mut outputs = vec![OutputFile {
        path: tok_copy.clone(),
        digest: tok_digest.clone(),
    }];

    let total_bytes: u64 = loaded
        .inputs
        .iter()
        .flatten()
        .map(|p| p.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    let bar = progress_bar(total_bytes, opts.verbose);
    let progress = Arc::new(AtomicU64::new(0));

    let steps = pipeline.steps();
    let mut stages = vec!["read"];
    stages.extend(steps.iter().map(|s| s.stage()));
    let mut rejects = RejectTables::create(&staging.join("rejects"), &stages)?;
    let mut dedup = ExactDedup::default();
    let mut near = match steps.contains(&Step::NearDedup) {
        true => Some(NearDedup::new(
            &pipeline.near_dedup,
            opts.mem_budget,
            &staging.join(".near_dedup"),
        )?),
        false => None,
    };
    let mut ctx = Builder {
        tokenizer,
        pool,
        staging,
        opts,
        bar: &bar,
        progress: &progress,
        rejects: &mut rejects,
        dedup: &mut dedup,
        near: near.as_mut(),
        warned: 0,
    };
    let mut inputs: Vec<InputFile> = Vec::new();
    let mut built = Vec::new();
    for (index, (source, files)) in pipeline.sources.iter().zip(&loaded.inputs).enumerate() {
        bar.set_message(source.name.clone());
        let chain = Chain::new(&steps, source)?;
        let at = SourceAt {
            index: index as u32,
            first_file: inputs.len() as u32,
        };
        let b = ctx.build_source(source, files, &chain, at)?;
        inputs.extend(b.files);
        built.push(b.shards);
    }
    let warned = ctx.warned;
    if let Some(near) = near {
        bar.set_message("near_dedup");
        let removals = near.finish()?;
        std::fs::remove_dir_all(staging.join(".near_dedup"))?;
        remove_near_duplicates(
            &removals,
            &mut built,
            &mut inputs,
            pipeline,
            tokenizer,
            &mut rejects,
        )?;
    }
    let mut sources = Vec::new();
    let mut shards = Vec::new();
    for (source, source_shards) in pipeline.sources.iter().zip(&built) {
        for s in source_shards {
            let rel = s
                .prefix
                .strip_prefix(staging)
                .unwrap_or(&s.prefix)
                .to_path_buf();
            for (suffix, digest) in [
                (".bin", &s.bin),
                (".idx", &s.idx),
                (".docs.parquet", &s.docs),
            ] {
                outputs.push(OutputFile {
                    path: with_suffix(&rel, suffix),
                    digest: digest.clone(),
                });
            }
            shards.push(ShardEntry {
                prefix: rel,
                source: source.name.clone(),
                documents: s.documents,
                tokens: s.tokens,
            });
        }
        let mut counts = Counts::default();
        let files: Vec<&InputFile> = inputs.iter().filter(|f| f.source == source.name).collect();
        for f in &files {
            counts.merge(&f.counts);
        }
        sources.push(SourceCounts {
            name: source.name.clone(),
            language: source.language.clone(),
            additional: source.additional,
            files: files.len(),
            shards: source_shards.len(),
            counts,
        });
    }
    for (path, digest) in rejects.finish()? {
        let path = path.strip_prefix(staging).unwrap_or(&path).to_path_buf();
        outputs.push(OutputFile { path, digest });
    }
    bar.finish_and_clear();
    if opts.verbose && warned > MAX_WARNINGS {
        eprintln!(
            "warning: {} more malformed records; all are listed in rejects/read.parquet",
            warned - MAX_WARNINGS,
        );
    }
    outputs.sort_by(|a, b| a.path.cmp(&b.path));

    let mut totals = Counts::default();
    for s in &sources {
        totals.merge(&s.counts);
    }
    let manifest = Manifest {
        almr_version: env!("CARGO_PKG_VERSION").to_string(),
        pipeline: PipelineInfo {
            path: loaded.path.clone(),
            sha256: fsutil::sha256_hex(loaded.raw.as_bytes()),
            config: pipeline.clone(),
        },
        tokenizer: TokenizerInfo {
            path: pipeline.tokenizer.path.clone(),
            copy: tok_copy,
            sha256: tok_digest.sha256,
            vocab_size: tokenizer.vocab_size(),
            eos: tokenizer.eos().to_string(),
            eos_id: tokenizer.eos_id(),
            dtype: tokenizer.dtype(),
            encoder: tokenizer.encoder().to_string(),
            encoder_note: tokenizer.fast_path_off().map(str::to_string),
            declined_documents: tokenizer.declined(),
        },
        inputs,
        sources,
        totals,
        shards,
        outputs,
    };
    let problems = manifest.check();
    if !problems.is_empty() {
        bail!(
            "internal error, the manifest does not add up: {}",
            problems.join("; ")
        );
    }
    Ok(manifest)
}

/// Moves the staged files into `out`, replacing an earlier build's, and writes
/// the manifest last.
fn publish(staging: &Path, out: &Path, manifest: &Manifest) -> Result<()> {
    let manifest_path = out.join(crate::manifest::FILE_NAME);
    if manifest_path.exists() {
        std::fs::remove_file(&manifest_path)?;
    }
    for entry in std::fs::read_dir(staging)? {
        let entry = entry?;
        let target = out.join(entry.file_name());
        if target.is_dir() {
            std::fs::remove_dir_all(&target)?;
        } else if target.exists() {
            std::fs::remove_file(&target)?;
        }
        std::fs::rename(entry.path(), &target)
            .with_context(|| format!("moving {} into place", target.display()))?;
    }
    std::fs::remove_dir(staging)?;
    fsutil::write_atomic(&manifest_path, manifest.to_json().as_bytes())
        .with_context(|| format!("writing {}", manifest_path.display()))
}

fn progress_bar(total: u64, verbose: bool) -> ProgressBar {
    if !verbose || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg:12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// What one source produced.
struct BuiltSource {
    files: Vec<InputFile>,
    shards: Vec<StagedShard>,
}

/// State shared by every source of one build.
struct Builder<'a> {
    tokenizer: &'a DocTokenizer,
    pool: &'a rayon::ThreadPool,
    staging: &'a Path,
    opts: &'a BuildOptions,
    bar: &'a ProgressBar,
    progress: &'a Arc<AtomicU64>,
    rejects: &'a mut RejectTables,
    dedup: &'a mut ExactDedup,
    near: Option<&'a mut NearDedup>,
    warned: u64,
}

/// A source's place in the build: its index, and the index of its first input
/// file among all inputs.
#[derive(Clone, Copy)]
struct SourceAt {
    index: u32,
    first_file: u32,
}

/// A document's token ids and, with near-dedup, its MinHash signature.
struct Tokenized {
    ids: Result<Vec<u32>>,
    signature: Option<Vec<u32>>,
}

/// A batch of items from one source: `(file index, item)`.
type Batch = Vec<(usize, Item)>;

/// A record on its way through the steps.
enum Work {
    /// Still a document; token ids and near-dedup signature once tokenized.
    Doc(usize, Record, Notes, Option<Tokenized>),
    /// Dropped by a step.
    Rejected(usize, Record, Notes, Rejected),
    /// Could not be read.
    Bad(usize, Malformed),
}

impl Builder<'_> {
    fn build_source(
        &mut self,
        source: &Source,
        files: &[PathBuf],
        chain: &Chain,
        at: SourceAt,
    ) -> Result<BuiltSource> {
        let mut digests: Vec<Result<FileDigest, String>> = Vec::new();
        let mut counts = vec![Counts::default(); files.len()];
        let mut sink = ShardSink::new(self.staging, source, self.tokenizer.dtype());
        let labels: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();

        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = mpsc::sync_channel::<Batch>(2);
            let progress = Arc::clone(self.progress);
            let reader = scope.spawn(move || read_batches(source, files, progress, tx));
            for batch in rx {
                let work = self.process(batch, source, chain, &labels);
                for w in work {
                    self.account(w, source, at, &labels, &mut counts, &mut sink)?;
                }
                self.bar.set_position(self.progress.load(Ordering::Relaxed));
            }
            digests = reader.join().expect("reader thread does not panic");
            Ok(())
        })?;

        let shards = sink.finish()?;
        let files = files
            .iter()
            .zip(digests)
            .zip(counts)
            .map(|((path, digest), counts)| {
                let digest = digest.map_err(anyhow::Error::msg)?;
                Ok(InputFile {
                    source: source.name.clone(),
                    path: path.clone(),
                    bytes: digest.bytes,
                    sha256: digest.sha256,
                    counts,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(BuiltSource { files, shards })
    }

    /// Runs the steps and the tokenizer over a batch: the per-document steps
    /// in parallel, exact dedup in order, then the rest and tokenizing in
    /// parallel. The order of the batch is kept.
    fn process(
        &mut self,
        batch: Batch,
        source: &Source,
        chain: &Chain,
        labels: &[String],
    ) -> Vec<Work> {
        let mut work: Vec<Work> = self.pool.install(|| {
            batch
                .into_par_iter()
                .map(|(f, item)| match item {
                    Item::Bad(m) => Work::Bad(f, m),
                    Item::Doc(mut r) => {
                        let mut notes = Notes::default();
                        match chain.run_before(&mut r.text, &mut notes) {
                            Ok(()) => Work::Doc(f, r, notes, None),
                            Err(rej) => Work::Rejected(f, r, notes, rej),
                        }
                    }
                })
                .collect()
        });
        if chain.dedups() {
            work = work
                .into_iter()
                .map(|w| match w {
                    Work::Doc(f, r, notes, None) => {
                        let describe =
                            || format!("{} ({}, {}:{})", r.id, source.name, labels[f], r.line);
                        match self.dedup.check(&r.text, describe) {
                            None => Work::Doc(f, r, notes, None),
                            Some(kept) => {
                                let rejection =
                                    Rejection::new("duplicate", format!("duplicate of {kept}"));
                                Work::Rejected(
                                    f,
                                    r,
                                    notes,
                                    Rejected {
                                        stage: "exact_dedup",
                                        rejection,
                                    },
                                )
                            }
                        }
                    }
                    other => other,
                })
                .collect();
        }
        let near = self.near.as_deref();
        let unit = near.map(|n| n.unit_for(&source.language));
        self.pool.install(|| {
            work.into_par_iter()
                .map(|w| match w {
                    Work::Doc(f, mut r, mut notes, None) => {
                        match chain.run_after(&mut r.text, &mut notes) {
                            Ok(()) => {
                                let tokenized = Tokenized {
                                    ids: self.tokenizer.encode(&r.text),
                                    signature: near.zip(unit).map(|(n, u)| n.signature(&r.text, u)),
                                };
                                Work::Doc(f, r, notes, Some(tokenized))
                            }
                            Err(rej) => Work::Rejected(f, r, notes, rej),
                        }
                    }
                    other => other,
                })
                .collect()
        })
    }

    /// Counts one processed record and sends it to its shard or rejects table.
    fn account(
        &mut self,
        w: Work,
        source: &Source,
        at: SourceAt,
        labels: &[String],
        counts: &mut [Counts],
        sink: &mut ShardSink,
    ) -> Result<()> {
        let (f, notes) = match &w {
            Work::Doc(f, _, notes, _) | Work::Rejected(f, _, notes, _) => (*f, Some(notes)),
            Work::Bad(f, _) => (*f, None),
        };
        let c = &mut counts[f];
        c.read += 1;
        for (k, v) in notes.into_iter().flat_map(Notes::iter) {
            if v > 0 {
                *c.changes.entry(k.to_string()).or_default() += v;
            }
        }
        match w {
            Work::Doc(_, r, _, tokenized) => {
                let tokenized = tokenized.expect("every surviving document is tokenized");
                let ids = tokenized
                    .ids
                    .with_context(|| format!("{}:{}", labels[f], r.line))?;
                c.kept += 1;
                c.tokens += ids.len() as u64;
                c.text_bytes += r.text.len() as u64;
                if let (Some(near), Some(sig)) = (self.near.as_deref_mut(), tokenized.signature) {
                    let key = DocKey {
                        source: at.index,
                        file: at.first_file + f as u32,
                        line: r.line,
                    };
                    near.add(key, r.text.len(), &sig)?;
                }
                sink.push(&ids, &labels[f], r.line, r.id)?;
            }
            Work::Rejected(_, r, _, rej) => {
                c.rejected
                    .add(&format!("{}/{}", rej.stage, rej.rejection.reason));
                self.rejects.push(RejectRow {
                    id: r.id,
                    source: source.name.clone(),
                    file: labels[f].clone(),
                    line: r.line,
                    stage: rej.stage.into(),
                    reason: rej.rejection.reason,
                    detail: format!("{} | {}", rej.rejection.detail, read::snippet(&r.text, 80)),
                })?;
            }
            Work::Bad(_, m) => {
                let reason = m.reason.as_str();
                let at = format!("{}:{}", labels[f], m.line);
                if self.opts.strict {
                    bail!("{at}: malformed record ({reason}): {}", m.detail);
                }
                c.malformed.add(reason);
                self.warned += 1;
                if self.opts.verbose && self.warned <= MAX_WARNINGS {
                    self.bar
                        .suspend(|| eprintln!("warning: {at}: {reason}: {}", m.detail));
                }
                self.rejects.push(RejectRow {
                    id: m.id.unwrap_or_else(|| at.clone()),
                    source: source.name.clone(),
                    file: labels[f].clone(),
                    line: m.line,
                    stage: "read".into(),
                    reason: reason.into(),
                    detail: m.detail,
                })?;
            }
        }
        Ok(())
    }
}

/// Reader thread: streams every file of `source` into batches, and returns
/// each file's digest (hashed in a separate pass, before reading it).
fn read_batches(
    source: &Source,
    files: &[PathBuf],
    progress: Arc<AtomicU64>,
    tx: mpsc::SyncSender<Batch>,
) -> Vec<Result<FileDigest, String>> {
    let mut digests = Vec::with_capacity(files.len());
    let mut batch: Batch = Vec::new();
    let mut bytes = 0usize;
    for (f, path) in files.iter().enumerate() {
        digests.push(fsutil::digest_file(path).map_err(|e| e.to_string()));
        for item in read::open(path, source, Arc::clone(&progress)) {
            if let Item::Doc(r) = &item {
                bytes += r.text.len();
            }
            batch.push((f, item));
            if batch.len() >= BATCH_ITEMS || bytes >= BATCH_BYTES {
                if tx.send(std::mem::take(&mut batch)).is_err() {
                    return digests; // the consumer stopped on an error
                }
                bytes = 0;
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch);
    }
    digests
}
