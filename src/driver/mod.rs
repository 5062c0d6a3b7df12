//! `almr build`: the driver that runs a pipeline's [`Chain`] over its
//! sources and writes shards, provenance, rejects and the manifest.
//!
//! Data flow for each source, in pipeline order (`source`):
//!
//! 1. A reader thread streams the source's files, in order, and cuts the
//!    items into batches (bounded channel: at most a few batches in memory).
//! 2. Each batch goes through the chain on a rayon pool: runs of
//!    per-document steps in parallel, ordered steps in pipeline order, and
//!    the last run fused with tokenizing and the corpus steps' sketches.
//!    Results keep the batch's order, so the output does not depend on the
//!    thread count.
//! 3. Documents go, in order, to the source's current shard (`sink`);
//!    dropped and malformed records go to `rejects/<stage>.parquet`, and
//!    everything is counted.
//!
//! When every source is done, the corpus steps decide, and `late` takes
//! the documents they drop out of the shards. Everything is written into a
//! new generation directory, `OUT/.generations/G/`, which one rename of the
//! `OUT/.current` link publishes (`publish`).
//!
//! The driver knows the steps only by their kind, never by name.
//!
//! `--limit` and `--dry-run` make a build a trial (`trial`).

pub(crate) mod late;
mod limit;
pub(crate) mod publish;
pub(crate) mod sink;
pub(crate) mod source;
mod trial;

use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::chain::{Chain, SourceSteps};
use crate::config::{self, LoadedPipeline, Pipeline};
use crate::error::{Error, Result, TokenizerError};
use crate::fsutil::{self, FileDigest};
use crate::manifest::{
    ChatTemplateInfo, Counts, InputFile, Manifest, OutputFile, PipelineInfo, ShardEntry,
    SourceCounts, TokenizerInfo,
};
use crate::read::{self, Format};
use crate::rejects::RejectTables;
use crate::shard::with_suffix;
use crate::template::{ChatTemplate, TOKENIZER_CONFIG};
use crate::tokenize::chat::ChatEncoder;
use crate::tokenize::DocTokenizer;

use self::late::Ledger;
use self::sink::StagedShard;
use self::source::{Driver, SourceAt};

pub use self::publish::{CURRENT, GENERATIONS, LOCK, MARKER};
pub use self::trial::{DryRun, Example, ReasonTrial, SourceTrial, Tally, Trial};

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
    /// Warn about every malformed record, not only the first ten.
    pub all_warnings: bool,
    /// Bytes of near-dedup band tables held in memory before they spill to
    /// disk.
    pub mem_budget: usize,
    /// `--limit` and `--dry-run`.
    pub trial: Trial,
}

/// The default `--mem-budget`: 4 GiB.
pub const DEFAULT_MEM_BUDGET: usize = 4 << 30;

/// A finished build. Its `Display` is the summary table `almr build` prints.
#[derive(Debug)]
pub struct BuildOutcome {
    /// The output directory.
    pub out: PathBuf,
    /// What was written there as `manifest.json`; for a dry run, what
    /// would have been, less the shards (the outputs it lists were in a
    /// temporary directory, now removed).
    pub manifest: Manifest,
    /// A dry run's report; `None` for a build.
    pub dry_run: Option<DryRun>,
}

/// Runs the pipeline at `pipeline_path`.
pub fn build(pipeline_path: &Path, opts: &BuildOptions) -> Result<BuildOutcome> {
    let loaded = config::load(pipeline_path)?;
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| loaded.pipeline.output.clone());
    with_tools(&loaded, opts.threads, |tools| {
        let output = trial::Output::prepare(&out, &opts.trial)?;
        match build_into(&loaded, tools, output.staging(), opts) {
            Ok(manifest) => {
                let dry_run = output.publish(&manifest)?;
                Ok(BuildOutcome {
                    out,
                    manifest,
                    dry_run,
                })
            }
            Err(e) => {
                output.abandon();
                Err(e)
            }
        }
    })
}

/// Loads the tokenizer and the chat template of `loaded`, makes a pool of
/// `threads` threads (all cores when unset), and calls `f` with them.
pub(crate) fn with_tools<T>(
    loaded: &LoadedPipeline,
    threads: Option<usize>,
    f: impl FnOnce(&Tools) -> Result<T>,
) -> Result<T> {
    let tcfg = &loaded.pipeline.tokenizer;
    let tokenizer =
        DocTokenizer::from_file(&tcfg.path, &tcfg.eos).map_err(|e| at_eos_key(loaded, e))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(self::threads(threads))
        .build()
        .map_err(Error::Threads)?;
    let template = chat_template(&loaded.pipeline)?;
    let chat = match &template {
        Some(t) => Some(ChatEncoder::new(t, &tokenizer)?),
        None => None,
    };
    f(&Tools {
        tokenizer: &tokenizer,
        template: template.as_ref(),
        chat: chat.as_ref(),
        pool: &pool,
    })
}

/// A tokenizer error; when the EOS token is what is wrong, an error of the
/// pipeline's `tokenizer.eos` key, with its line.
fn at_eos_key(loaded: &LoadedPipeline, e: TokenizerError) -> Error {
    match e {
        TokenizerError::UnknownEos { .. } => {
            loaded.error_at("/tokenizer/eos", e.to_string()).into()
        }
        other => other.into(),
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

/// What turns text into tokens, shared by every source.
pub(crate) struct Tools<'a> {
    /// The tokenizer.
    pub tokenizer: &'a DocTokenizer,
    /// The chat template, when the pipeline has chat sources.
    pub template: Option<&'a ChatTemplate>,
    /// Encodes conversations with it.
    pub chat: Option<&'a ChatEncoder<'a>>,
    /// The thread pool.
    pub pool: &'a rayon::ThreadPool,
}

/// The chat template, when the pipeline has chat sources.
fn chat_template(pipeline: &Pipeline) -> Result<Option<ChatTemplate>> {
    if !pipeline.sources.iter().any(|s| s.format == Format::Chat) {
        return Ok(None);
    }
    let t = &pipeline.tokenizer;
    let template = ChatTemplate::resolve(&t.chat_template, &t.path)
        .map_err(crate::error::TokenizerError::from)?;
    Ok(Some(template))
}

/// Runs every source through the chain, then the corpus steps' late drops,
/// and returns the manifest of what is staged.
fn build_into(
    loaded: &LoadedPipeline,
    tools: &Tools,
    staging: &Path,
    opts: &BuildOptions,
) -> Result<Manifest> {
    let (tokenizer, pool) = (tools.tokenizer, tools.pool);
    let pipeline = &loaded.pipeline;
    let mut tok_copy = vec![copy_tokenizer(pipeline, staging)?];
    tok_copy.extend(write_tokenizer_config(pipeline, tools.template, staging)?);
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
    let mut driver = Driver::new(
        tokenizer, tools.chat, pool, staging, opts, &bar, &mut chain, ledger,
    );
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
            opts.trial.dry_run,
        )?;
    }
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }
    bar.finish_and_clear();
    // A dry run's report has what these warnings say, and no rejects tables.
    let warn = opts.verbose && !opts.trial.dry_run;
    if warn && !opts.all_warnings && warned > MAX_WARNINGS {
        eprintln!(
            "warning: {} more malformed records; all are listed in rejects/read.parquet",
            warned - MAX_WARNINGS,
        );
    }
    let mut manifest = assemble(loaded, tools, tok_copy, staging, inputs, built, rejects)?;
    manifest.limit = opts.trial.limit.clone();
    if warn {
        for warning in sources_kept_none(&manifest) {
            eprintln!("warning: {warning}");
        }
    }
    let problems = match opts.trial.dry_run {
        true => manifest.check_counts(),
        false => manifest.check(),
    };
    if !problems.is_empty() {
        return Err(Error::Internal(format!(
            "internal error, the manifest does not add up: {}",
            problems.join("; ")
        )));
    }
    Ok(manifest)
}

/// A warning for each source that kept none of its records, with the
/// reason most of them were dropped for and the table that lists them.
pub(crate) fn sources_kept_none(manifest: &Manifest) -> Vec<String> {
    let empty = manifest.sources.iter().filter(|s| s.counts.kept == 0);
    empty
        .map(|s| {
            let c = &s.counts;
            let malformed = c.malformed.by_reason.iter();
            let mut reasons: Vec<(String, u64)> = c
                .rejected
                .by_reason
                .iter()
                .map(|(r, &n)| (r.clone(), n))
                .chain(malformed.map(|(r, &n)| (format!("{}/{r}", read::STAGE), n)))
                .collect();
            reasons.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
            match reasons.first() {
                None => format!("source {:?} read no records: its files hold none", s.name),
                Some((reason, n)) => {
                    let stage = reason.split('/').next().unwrap_or(reason);
                    format!(
                        "source {:?} kept none of its {} records; the top reason is {reason} \
                         ({n} records), listed in rejects/{stage}.parquet",
                        s.name, c.read
                    )
                }
            }
        })
        .collect()
}

/// Copies the tokenizer into the output as `tokenizer.json`.
pub(crate) fn copy_tokenizer(pipeline: &Pipeline, staging: &Path) -> Result<(PathBuf, FileDigest)> {
    let copy = PathBuf::from("tokenizer.json");
    std::fs::copy(&pipeline.tokenizer.path, staging.join(&copy))
        .map_err(Error::file("copying", &pipeline.tokenizer.path))?;
    let digest = fsutil::digest_file(&staging.join(&copy))?;
    Ok((copy, digest))
}

/// Writes `tokenizer_config.json` beside the tokenizer copy: for a build
/// with chat sources, the tokenizer's own with `chat_template` set to the
/// template used; else the tokenizer's own, copied, if it has one.
pub(crate) fn write_tokenizer_config(
    pipeline: &Pipeline,
    template: Option<&ChatTemplate>,
    staging: &Path,
) -> Result<Option<(PathBuf, FileDigest)>> {
    let copy = PathBuf::from(TOKENIZER_CONFIG);
    let to = staging.join(&copy);
    match template {
        Some(t) => {
            let mut json = serde_json::to_vec_pretty(&t.tokenizer_config())
                .map_err(|e| Error::Internal(format!("tokenizer_config.json: {e}")))?;
            json.push(b'\n');
            std::fs::write(&to, json).map_err(Error::file("writing", &to))?;
        }
        None => {
            let from = pipeline.tokenizer.path.with_file_name(TOKENIZER_CONFIG);
            if !from.is_file() {
                return Ok(None);
            }
            std::fs::copy(&from, &to).map_err(Error::file("copying", &from))?;
        }
    }
    let digest = fsutil::digest_file(&to)?;
    Ok(Some((copy, digest)))
}

fn total_bytes(loaded: &LoadedPipeline) -> u64 {
    let size = |p: &PathBuf| p.metadata().map(|m| m.len()).unwrap_or(0);
    loaded.inputs.iter().flatten().map(size).sum()
}

/// The manifest of the staged build.
pub(crate) fn assemble(
    loaded: &LoadedPipeline,
    tools: &Tools,
    copies: Vec<(PathBuf, FileDigest)>,
    staging: &Path,
    inputs: Vec<InputFile>,
    built: Vec<Vec<StagedShard>>,
    rejects: RejectTables,
) -> Result<Manifest> {
    let pipeline = &loaded.pipeline;
    let relative = |p: &Path| p.strip_prefix(staging).unwrap_or(p).to_path_buf();
    let mut outputs: Vec<OutputFile> = copies
        .iter()
        .map(|(path, digest)| OutputFile {
            path: path.clone(),
            digest: digest.clone(),
        })
        .collect();
    let (tok_copy, tok_digest) = copies[0].clone();
    let mut shards = Vec::new();
    for (source, source_shards) in pipeline.sources.iter().zip(&built) {
        for s in source_shards {
            let prefix = relative(&s.prefix);
            let mut files = vec![
                (".bin", &s.bin),
                (".idx", &s.idx),
                (".docs.parquet", &s.docs),
            ];
            if let Some(m) = &s.mask {
                files.extend([(".mask.bin", &m.bin), (".mask.idx", &m.idx)]);
            }
            for (suffix, digest) in files {
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
                trained_tokens: s.mask.as_ref().map(|m| m.trained),
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
        limit: None,
        pipeline: PipelineInfo {
            path: loaded.path.clone(),
            sha256: fsutil::sha256_hex(loaded.raw.as_bytes()),
            config: pipeline.clone(),
        },
        tokenizer: tokenizer_info(tools, pipeline, tok_copy, tok_digest),
        totals: Counts::sum(sources.iter().map(|s| &s.counts)),
        inputs,
        sources,
        shards,
        outputs,
    })
}

fn tokenizer_info(
    tools: &Tools,
    pipeline: &Pipeline,
    copy: PathBuf,
    digest: FileDigest,
) -> TokenizerInfo {
    let tokenizer = tools.tokenizer;
    TokenizerInfo {
        chat_template: tools.template.map(|t| ChatTemplateInfo {
            origin: t.origin.clone(),
            sha256: fsutil::sha256_hex(t.text.as_bytes()),
            config: PathBuf::from(TOKENIZER_CONFIG),
        }),
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
