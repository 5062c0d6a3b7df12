//! `almr build`: the driver that runs a pipeline's [`Chain`] over its
//! sources and writes shards, provenance, rejects and the manifest.
//!
//! Data flow for each source, in pipeline order ([`source`]):
//!
//! 1. A reader thread streams the source's files, in order, and cuts the
//!    items into batches (bounded channel: at most a few batches in memory).
//! 2. Each batch goes through the chain on a rayon pool: runs of
//!    per-document steps in parallel, ordered steps in pipeline order, and
//!    the last run fused with tokenizing and the corpus steps' sketches.
//!    Results keep the batch's order, so the output does not depend on the
//!    thread count.
//! 3. Documents go, in order, to the source's current shard ([`sink`]);
//!    dropped and malformed records go to `rejects/<stage>.parquet`, and
//!    everything is counted.
//!
//! When every source is done, the corpus steps decide, and [`late`] takes
//! the documents they drop out of the shards. Everything is written into a
//! new generation directory, `OUT/.generations/G/`, which one rename of the
//! `OUT/.current` link publishes ([`publish`]).
//!
//! The driver knows the steps only by their kind, never by name.

mod late;
mod publish;
mod sink;
mod source;

use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::chain::{Chain, SourceSteps};
use crate::config::{self, LoadedPipeline, Pipeline};
use crate::error::{Error, Result};
use crate::fsutil::{self, FileDigest};
use crate::manifest::{
    Counts, InputFile, Manifest, OutputFile, PipelineInfo, ShardEntry, SourceCounts, TokenizerInfo,
};
use crate::read;
use crate::rejects::RejectTables;
use crate::shard::with_suffix;
use crate::tokenize::DocTokenizer;

use self::late::Ledger;
use self::sink::StagedShard;
use self::source::{Driver, SourceAt};

pub use self::publish::{CURRENT, GENERATIONS, LOCK, MARKER};

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

/// A finished build. Its `Display` is the summary table `almr build` prints.
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
        .num_threads(threads(opts.threads))
        .build()
        .map_err(Error::Threads)?;

    let output = publish::prepare(&out)?;
    match build_into(&loaded, &tokenizer, &pool, output.staging(), opts) {
        Ok(manifest) => {
            output.publish(&manifest)?;
            Ok(BuildOutcome { out, manifest })
        }
        Err(e) => {
            output.abandon();
            Err(e)
        }
    }
}

/// The thread count to use: `--threads`, capped at the machine's
/// parallelism with a warning (more threads only slow the build and load
/// the machine), or all cores (0 for rayon) when unset.
fn threads(asked: Option<usize>) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match asked {
        Some(n) if n > cores => {
            eprintln!(
                "warning: --threads {n}: this machine runs {cores} threads at once; using {cores}"
            );
            cores
        }
        Some(n) => n,
        None => 0,
    }
}

/// Runs every source through the chain, then the corpus steps' late drops,
/// and returns the manifest of what is staged.
fn build_into(
    loaded: &LoadedPipeline,
    tokenizer: &DocTokenizer,
    pool: &rayon::ThreadPool,
    staging: &Path,
    opts: &BuildOptions,
) -> Result<Manifest> {
    let pipeline = &loaded.pipeline;
    let tok_copy = copy_tokenizer(pipeline, staging)?;
    let scratch = staging.join(".steps");
    let per_source: Vec<SourceSteps> = pipeline.sources.iter().map(|s| s.step_settings()).collect();
    let mut chain = Chain::new(
        &pipeline.steps(),
        &per_source,
        &pipeline.shared_steps(opts.mem_budget, &scratch),
    )?;
    let mut stages = vec![read::STAGE];
    stages.extend(chain.names());
    let mut rejects = RejectTables::create(&staging.join("rejects"), &stages)?;
    let ledger = match chain.corpus.is_empty() {
        true => None,
        false => Some(Ledger::new(&scratch)?),
    };
    let bar = progress_bar(total_bytes(loaded), opts.verbose);
    let mut driver = Driver::new(tokenizer, pool, staging, opts, &bar, &mut chain, ledger);
    let mut inputs: Vec<InputFile> = Vec::new();
    let mut built = Vec::new();
    for (index, (source, files)) in pipeline.sources.iter().zip(&loaded.inputs).enumerate() {
        bar.set_message(source.name.clone());
        let at = SourceAt {
            index,
            first_file: inputs.len(),
        };
        let b = driver.build_source(source, files, at, &mut rejects)?;
        inputs.extend(b.files);
        built.push(b.shards);
    }
    let (warned, ledger) = driver.finish();
    if let Some(ledger) = ledger {
        bar.set_message("corpus steps");
        late::drop_late(
            &mut chain,
            ledger,
            pipeline,
            &mut built,
            &mut inputs,
            &mut rejects,
        )?;
    }
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }
    bar.finish_and_clear();
    if opts.verbose && warned > MAX_WARNINGS {
        eprintln!(
            "warning: {} more malformed records; all are listed in rejects/read.parquet",
            warned - MAX_WARNINGS,
        );
    }
    let manifest = assemble(loaded, tokenizer, tok_copy, staging, inputs, built, rejects)?;
    let problems = manifest.check();
    if !problems.is_empty() {
        return Err(Error::Internal(format!(
            "internal error, the manifest does not add up: {}",
            problems.join("; ")
        )));
    }
    Ok(manifest)
}

/// Copies the tokenizer into the output as `tokenizer.json`.
fn copy_tokenizer(pipeline: &Pipeline, staging: &Path) -> Result<(PathBuf, FileDigest)> {
    let copy = PathBuf::from("tokenizer.json");
    std::fs::copy(&pipeline.tokenizer.path, staging.join(&copy))
        .map_err(Error::file("copying", &pipeline.tokenizer.path))?;
    let digest = fsutil::digest_file(&staging.join(&copy))?;
    Ok((copy, digest))
}

fn total_bytes(loaded: &LoadedPipeline) -> u64 {
    let size = |p: &PathBuf| p.metadata().map(|m| m.len()).unwrap_or(0);
    loaded.inputs.iter().flatten().map(size).sum()
}

/// The manifest of the staged build.
fn assemble(
    loaded: &LoadedPipeline,
    tokenizer: &DocTokenizer,
    (tok_copy, tok_digest): (PathBuf, FileDigest),
    staging: &Path,
    inputs: Vec<InputFile>,
    built: Vec<Vec<StagedShard>>,
    rejects: RejectTables,
) -> Result<Manifest> {
    let pipeline = &loaded.pipeline;
    let relative = |p: &Path| p.strip_prefix(staging).unwrap_or(p).to_path_buf();
    let mut outputs = vec![OutputFile {
        path: tok_copy.clone(),
        digest: tok_digest.clone(),
    }];
    let mut shards = Vec::new();
    for (source, source_shards) in pipeline.sources.iter().zip(&built) {
        for s in source_shards {
            let prefix = relative(&s.prefix);
            for (suffix, digest) in [
                (".bin", &s.bin),
                (".idx", &s.idx),
                (".docs.parquet", &s.docs),
            ] {
                let path = with_suffix(&prefix, suffix);
                outputs.push(OutputFile {
                    path,
                    digest: digest.clone(),
                });
            }
            shards.push(ShardEntry {
                prefix,
                source: source.name.clone(),
                documents: s.documents,
                tokens: s.tokens,
            });
        }
    }
    for (path, digest) in rejects.finish()? {
        let path = relative(&path);
        outputs.push(OutputFile { path, digest });
    }
    outputs.sort_by(|a, b| a.path.cmp(&b.path));
    let sources: Vec<SourceCounts> = pipeline
        .sources
        .iter()
        .zip(&built)
        .map(|(s, b)| SourceCounts::tally(s, &inputs, b.len()))
        .collect();
    Ok(Manifest {
        almr_version: env!("CARGO_PKG_VERSION").to_string(),
        pipeline: PipelineInfo {
            path: loaded.path.clone(),
            sha256: fsutil::sha256_hex(loaded.raw.as_bytes()),
            config: pipeline.clone(),
        },
        tokenizer: tokenizer_info(tokenizer, pipeline, tok_copy, tok_digest),
        totals: Counts::sum(sources.iter().map(|s| &s.counts)),
        inputs,
        sources,
        shards,
        outputs,
    })
}

fn tokenizer_info(
    tokenizer: &DocTokenizer,
    pipeline: &Pipeline,
    copy: PathBuf,
    digest: FileDigest,
) -> TokenizerInfo {
    TokenizerInfo {
        path: pipeline.tokenizer.path.clone(),
        copy,
        sha256: digest.sha256,
        vocab_size: tokenizer.vocab_size(),
        eos: tokenizer.eos().to_string(),
        eos_id: tokenizer.eos_id(),
        dtype: tokenizer.dtype(),
        encoder: tokenizer.encoder().to_string(),
        encoder_note: tokenizer.fast_path_off().map(str::to_string),
        declined_documents: tokenizer.declined(),
    }
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

impl fmt::Display for BuildOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.manifest;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, lang: &str, c: &Counts, shards| {
            writeln!(
                f,
                "{name:<16} {lang:>4} {:>9} {:>9} {:>9} {:>9} {:>12} {shards:>6}",
                c.read, c.kept, c.rejected.total, c.malformed.total, c.tokens
            )
        };
        writeln!(
            f,
            "{:<16} {:>4} {:>9} {:>9} {:>9} {:>9} {:>12} {:>6}",
            "source", "lang", "read", "kept", "rejected", "malformed", "tokens", "shards"
        )?;
        for s in &m.sources {
            row(f, &s.name, &s.language, &s.counts, s.shards)?;
        }
        row(f, "total", "", &m.totals, m.shards.len())?;
        let t = &m.tokenizer;
        match &t.encoder_note {
            Some(why) => writeln!(f, "encoder: tokenizers crate, as almr's cannot stand in: {why}")?,
            None => writeln!(
                f,
                "encoder: almr's byte-level BPE; {} documents with added-token text went to the tokenizers crate",
                t.declined_documents
            )?,
        }
        writeln!(
            f,
            "wrote {} ({} dtype); manifest: {}",
            self.out.display(),
            t.dtype.numpy_name(),
            self.out.join(crate::manifest::FILE_NAME).display()
        )
    }
}
