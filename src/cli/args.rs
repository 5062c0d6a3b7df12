//! The arguments of every `almr` command, as clap parses them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use almr::driver::{BuildOptions, Trial};
use almr::manifest::Limit;
use almr::mix::{MixOptions, Size, TooLong};

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Print a shell completion script: `almr completions bash >
    /// /etc/bash_completion.d/almr`, or for zsh or fish.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Read, tokenize and shard every source of a pipeline file.
    Build(BuildArgs),
    /// Plan a build for a cluster: freeze the inputs, cut them into N
    /// tasks balanced by bytes, and write W/plan.json (and, with --emit,
    /// the scripts that run it). docs/scale-out.md.
    Plan {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        /// The work directory: the plan and every task's output.
        #[arg(long)]
        work: PathBuf,
        /// Map and write tasks.
        #[arg(long)]
        tasks: usize,
        /// Exact-dedup tasks (hash ranges); default min(tasks, 16).
        #[arg(long)]
        exact_tasks: Option<usize>,
        /// Near-dedup band tasks (groups of bands); default min(tasks, bands).
        #[arg(long)]
        band_tasks: Option<usize>,
        /// Output directory; overrides the pipeline's `output`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Fail on the first malformed input record.
        #[arg(long)]
        strict: bool,
        /// Also write the scripts that run the plan: Slurm array jobs and
        /// W/slurm/submit.sh, or W/local.sh.
        #[arg(long, value_enum)]
        emit: Option<almr::scale::slurm::Emit>,
        /// Slurm: at most P elements of each array at once (`--array=…%P`).
        #[arg(long, value_name = "P")]
        parallel: Option<usize>,
        /// Slurm: an extra `#SBATCH` line for every stage, e.g.
        /// `--sbatch=--partition=cpu` (repeatable).
        #[arg(long, value_name = "OPTION", allow_hyphen_values = true)]
        sbatch: Vec<String>,
        /// --emit local: processes at once.
        #[arg(short = 'j', long, default_value_t = 1)]
        jobs: usize,
    },
    /// Run a plan's tasks: one task of one stage (as a Slurm array element
    /// does), or, with --local, every stage on this machine.
    Run {
        /// The work directory of `almr plan`.
        work: PathBuf,
        /// The stage of the task to run.
        #[arg(long, value_enum, required_unless_present = "local")]
        stage: Option<almr::scale::Stage>,
        /// The task to run, from 0.
        #[arg(long, required_unless_present = "local")]
        task: Option<usize>,
        /// Run every stage here, each task a process, skipping tasks done.
        #[arg(long, conflicts_with_all = ["stage", "task"])]
        local: bool,
        /// --local: tasks at once.
        #[arg(short = 'j', long, default_value_t = 1)]
        jobs: usize,
        /// Threads of one task (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Per stage of a plan, the tasks done, running and missing, and the
    /// `--array=` list to resubmit.
    Status {
        /// The work directory of `almr plan`.
        work: PathBuf,
        /// Print only the `--array=` list of one stage's missing tasks
        /// (empty when it is done), as `submit.sh` reads it.
        #[arg(long, value_enum, value_name = "STAGE")]
        array: Option<almr::scale::Stage>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show what a shard holds, and decode one document with its provenance.
    Inspect {
        /// Shard prefix (PREFIX.bin/PREFIX.idx; either file name also works).
        prefix: PathBuf,
        /// Decode document N (0-based).
        #[arg(long)]
        doc: Option<usize>,
        /// tokenizer.json to decode with (default: the build's copy, found
        /// through the manifest above the shard).
        #[arg(long)]
        tokenizer: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Say what became of one input record: kept in which shard, or dropped
    /// at which stage and why.
    Explain {
        /// The build's output directory.
        out: PathBuf,
        /// The record: its id (its `id_field` value, or `FILE:LINE`
        /// without one), or its place in the input, `FILE:LINE` (the row
        /// for Parquet), with FILE as the build names it or by its last
        /// components, e.g. `zh/news.jsonl.gz:12`.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build an ALMR-weighted training stream (a mix index) over a build's
    /// shards: OUT/mix/NAME.mix and OUT/mix/NAME.json.
    Mix(MixArgs),
    /// Report what a build and its mixes hold: per source and language,
    /// documents, tokens, rejects, dedup rates, lengths; per mix, the ALMR.
    Stats {
        /// The build's output directory.
        out: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Also write a self-contained HTML report with charts to FILE.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Decode random samples of a mix to text, with the provenance of the
    /// documents each one spans.
    Sample {
        /// The mix: OUT/mix/NAME (or its .json or .mix file).
        mix: PathBuf,
        /// Number of samples.
        #[arg(long, default_value_t = 3)]
        n: usize,
        /// Seed of the draw.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Draw from the validation samples instead of the training stream.
        #[arg(long)]
        valid: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a build and its mixes against what they record: every output
    /// file against the manifest's sizes and SHA-256 values, every shard
    /// read through, every mix against its sidecar and its build. Exits
    /// non-zero when anything is wrong.
    Verify {
        /// The build's output directory.
        out: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of a config or output file.
    Schema {
        /// Which schema.
        #[arg(value_enum)]
        which: SchemaKind,
        /// Print every key of the pipeline file as Markdown tables (its
        /// values, default and meaning) instead: the reference at the end
        /// of docs/cleaning.md.
        #[arg(long)]
        markdown: bool,
    },
}

/// The arguments of `almr build`.
#[derive(Args)]
pub(crate) struct BuildArgs {
    /// The pipeline file (TOML), e.g. pipelines/default.toml.
    pub(crate) pipeline: PathBuf,
    /// Output directory; overrides the pipeline's `output`.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Tokenizer threads (default: all cores). The output is the same for
    /// any thread count.
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Fail, with a non-zero exit, on the first malformed input record.
    #[arg(long)]
    pub(crate) strict: bool,
    /// Print the manifest (with --dry-run, the report) as JSON instead of a
    /// summary table.
    #[arg(long)]
    pub(crate) json: bool,
    /// MiB of near-dedup band tables to hold in memory before spilling
    /// them to disk (12 bytes per document and band).
    #[arg(long, default_value_t = almr::driver::DEFAULT_MEM_BUDGET >> 20)]
    pub(crate) mem_budget: usize,
    /// Read at most N records of each source: its first N, or a sample with
    /// --sample-seed. A record is an item the reader yields, a malformed one
    /// included. Takes suffixes K and M (e.g. 10K). The manifest says the
    /// build was limited: it is not the full corpus.
    #[arg(long, value_name = "N", value_parser = parse_limit)]
    pub(crate) limit: Option<u64>,
    /// With --limit: a seeded sample of N records of each source instead of
    /// its first N, the N with the smallest hash of (seed, file, line). The
    /// same for a seed whatever --threads; each source is read once and the
    /// sample held in memory.
    #[arg(long, value_name = "SEED", requires = "limit")]
    pub(crate) sample_seed: Option<u64>,
    /// Run every step, tokenizing and dedup included, but write nothing
    /// (OUT is not touched): print per source the records read and kept,
    /// the keep rate, and the reasons for the rest with example records.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

impl BuildArgs {
    /// The library's options.
    pub(crate) fn options(&self) -> BuildOptions {
        BuildOptions {
            out: self.out.clone(),
            threads: self.threads,
            strict: self.strict,
            verbose: !self.json,
            all_warnings: false,
            mem_budget: self.mem_budget.saturating_mul(1 << 20),
            trial: Trial {
                limit: self.limit.map(|records| Limit {
                    records,
                    sample_seed: self.sample_seed,
                }),
                dry_run: self.dry_run,
            },
        }
    }
}

/// The arguments of `almr mix`.
#[derive(Args)]
pub(crate) struct MixArgs {
    /// The build's output directory.
    pub(crate) out: PathBuf,
    /// Name of the mix.
    #[arg(long)]
    pub(crate) name: String,
    /// Share of training tokens from additional sources, in [0, 1].
    #[arg(long)]
    pub(crate) almr: f64,
    /// Tokens a sample is trained on; a sample reads seq_len + 1 tokens.
    #[arg(long)]
    pub(crate) seq_len: u64,
    /// Seed of the validation draw and every shuffle.
    #[arg(long, default_value_t = 1234)]
    pub(crate) seed: u64,
    /// Training tokens (rounded up to whole samples); takes suffixes
    /// K, M, B, T (e.g. 2.5B).
    #[arg(long, value_parser = parse_count, required_unless_present = "samples", conflicts_with = "samples")]
    pub(crate) tokens: Option<u64>,
    /// Training samples.
    #[arg(long, value_parser = parse_count)]
    pub(crate) samples: Option<u64>,
    /// Relative weight of a source inside its group, as SRC=W
    /// (repeatable). Give all sources of a group or none; by default each
    /// weighs its training tokens.
    #[arg(long = "weight", value_name = "SRC=W", value_parser = parse_weight)]
    pub(crate) weights: Vec<(String, f64)>,
    /// Share of documents held out for validation: F for every source, or
    /// SRC=F for one (repeatable).
    #[arg(long = "valid-share", value_name = "[SRC=]F", value_parser = parse_valid_share)]
    pub(crate) valid_shares: Vec<ValidShare>,
    /// Refuse if any source would be repeated more than this many epochs.
    #[arg(long)]
    pub(crate) max_epochs: Option<f64>,
    /// SFT mixes (builds with chat sources): what to do with a conversation
    /// longer than --seq-len: drop it, or keep its first seq_len tokens.
    /// Both are counted in the sidecar's `packing`.
    #[arg(long, value_enum, default_value = "drop")]
    pub(crate) too_long: TooLongArg,
    /// Also write the equivalent weights for another trainer.
    #[arg(long, value_enum)]
    pub(crate) export: Option<ExportKind>,
    /// Overwrite a mix of the same name (a training run may be reading it).
    #[arg(long)]
    pub(crate) force: bool,
    /// Print the sidecar as JSON instead of a summary table.
    #[arg(long)]
    pub(crate) json: bool,
}

impl MixArgs {
    /// The library's options.
    pub(crate) fn options(&self) -> MixOptions {
        let mut opts = MixOptions {
            name: self.name.clone(),
            almr: self.almr,
            seq_len: self.seq_len,
            seed: self.seed,
            size: match (self.tokens, self.samples) {
                (_, Some(n)) => Size::Samples(n),
                (Some(t), None) => Size::Tokens(t),
                (None, None) => unreachable!("clap requires one"),
            },
            weights: self.weights.iter().cloned().collect(),
            valid_share: DEFAULT_VALID_SHARE,
            valid_shares: BTreeMap::new(),
            max_epochs: self.max_epochs,
            too_long: match self.too_long {
                TooLongArg::Drop => TooLong::Drop,
                TooLongArg::Truncate => TooLong::Truncate,
            },
            force: self.force,
        };
        for v in &self.valid_shares {
            match v {
                ValidShare::All(f) => opts.valid_share = *f,
                ValidShare::Source(name, f) => {
                    opts.valid_shares.insert(name.clone(), *f);
                }
            }
        }
        opts
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum SchemaKind {
    /// The pipeline file.
    Pipeline,
    /// OUT/manifest.json.
    Manifest,
    /// OUT/mix/NAME.json.
    Mix,
}

impl SchemaKind {
    /// The schema's text.
    pub(crate) fn schema(self) -> String {
        match self {
            SchemaKind::Pipeline => almr::config::generated_schema(),
            SchemaKind::Manifest => almr::manifest::generated_schema(),
            SchemaKind::Mix => almr::mixfile::report::generated_schema(),
        }
    }
}

/// `--too-long`: what an SFT mix does with a conversation past --seq-len.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum TooLongArg {
    /// Leave it out.
    Drop,
    /// Keep its first seq_len tokens, if they hold a trained token.
    Truncate,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ExportKind {
    /// Megatron-LM `--data-path` weights, in OUT/mix/NAME.megatron.txt (for
    /// `--data-args-path`).
    Megatron,
}

/// Default share of each source's documents held out for validation.
pub(crate) const DEFAULT_VALID_SHARE: f64 = 0.01;

/// Parses `1000`, `2.5B`, `300M`, `1e9`.
pub(crate) fn parse_count(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, scale) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1e3),
        Some('M') => (&t[..t.len() - 1], 1e6),
        Some('B') | Some('G') => (&t[..t.len() - 1], 1e9),
        Some('T') => (&t[..t.len() - 1], 1e12),
        _ => (t, 1.0),
    };
    if let Ok(n) = num.parse::<u64>() {
        if scale == 1.0 {
            return Ok(n);
        }
    }
    match num.parse::<f64>() {
        Ok(x) if x >= 0.0 && (x * scale).is_finite() && x * scale < u64::MAX as f64 => {
            Ok((x * scale).round() as u64)
        }
        _ => Err(format!("{s:?} is not a count like 1000, 2.5B or 1e9")),
    }
}

/// Parses `--limit N`: a count of at least 1.
pub(crate) fn parse_limit(s: &str) -> Result<u64, String> {
    match parse_count(s)? {
        0 => Err(
            "the limit must be at least 1 record (leave --limit out to read every record)".into(),
        ),
        n => Ok(n),
    }
}

/// Splits `SRC=VALUE`.
pub(crate) fn parse_pair(s: &str) -> Result<(String, f64), String> {
    let (name, value) = s.split_once('=').ok_or("expected SRC=VALUE")?;
    let v = value
        .parse::<f64>()
        .map_err(|_| format!("{value:?} is not a number"))?;
    Ok((name.to_string(), v))
}

/// Parses `--weight SRC=W`.
pub(crate) fn parse_weight(s: &str) -> Result<(String, f64), String> {
    parse_pair(s)
}

/// A `--valid-share`: for every source, or for one.
#[derive(Clone)]
pub(crate) enum ValidShare {
    /// `F`: the share of every source without its own.
    All(f64),
    /// `SRC=F`: the share of one source.
    Source(String, f64),
}

/// Parses `--valid-share F` or `SRC=F`.
pub(crate) fn parse_valid_share(s: &str) -> Result<ValidShare, String> {
    if s.contains('=') {
        let (name, f) = parse_pair(s)?;
        Ok(ValidShare::Source(name, f))
    } else {
        s.parse()
            .map(ValidShare::All)
            .map_err(|_| format!("{s:?} is not a number"))
    }
}

impl Command {
    /// Whether the command prints JSON (`--json`): then an error is one
    /// JSON object on stderr.
    pub(crate) fn json(&self) -> bool {
        match self {
            Command::Build(a) => a.json,
            Command::Mix(a) => a.json,
            Command::Status { json, .. }
            | Command::Inspect { json, .. }
            | Command::Explain { json, .. }
            | Command::Stats { json, .. }
            | Command::Sample { json, .. }
            | Command::Verify { json, .. } => *json,
            _ => false,
        }
    }
}
