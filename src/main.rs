//! The `almr` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

use almr::build::{build, BuildOptions};
use almr::manifest::Manifest;

/// Turn raw zh/en corpora into Megatron-compatible token shards for Llama-3
/// continual pre-training.
#[derive(Parser)]
#[command(name = "almr", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read, tokenize and shard every source of a pipeline file.
    Build {
        /// The pipeline file (TOML), e.g. pipelines/default.toml.
        pipeline: PathBuf,
        /// Output directory; overrides the pipeline's `output`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Tokenizer threads (default: all cores). The output is the same for
        /// any thread count.
        #[arg(long)]
        threads: Option<usize>,
        /// Fail, with a non-zero exit, on the first malformed input record.
        #[arg(long)]
        strict: bool,
        /// Print the manifest as JSON instead of a summary table.
        #[arg(long)]
        json: bool,
        /// MiB of near-dedup band tables to hold in memory before spilling
        /// them to disk (12 bytes per document and band).
        #[arg(long, default_value_t = almr::build::DEFAULT_MEM_BUDGET >> 20)]
        mem_budget: usize,
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
        /// The record id (its `id_field` value, or `file:line`).
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of a config or output file.
    Schema {
        /// Which schema.
        #[arg(value_enum)]
        which: SchemaKind,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum SchemaKind {
    /// The pipeline file.
    Pipeline,
    /// OUT/manifest.json.
    Manifest,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Build {
            pipeline,
            out,
            threads,
            strict,
            json,
            mem_budget,
        } => {
            let opts = BuildOptions {
                out,
                threads,
                strict,
                verbose: !json,
                mem_budget: mem_budget << 20,
            };
            let outcome = build(&pipeline, &opts)?;
            if json {
                print!("{}", outcome.manifest.to_json());
            } else {
                print_summary(&outcome.out, &outcome.manifest);
            }
        }
        Command::Inspect {
            prefix,
            doc,
            tokenizer,
            json,
        } => {
            let report = almr::inspect::inspect(&prefix, doc, tokenizer.as_deref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
        }
        Command::Explain { out, id, json } => {
            let fates = almr::explain::explain(&out, &id)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&fates)?);
            } else {
                for fate in fates {
                    println!("{fate}");
                }
            }
        }
        Command::Schema { which } => print!(
            "{}",
            match which {
                SchemaKind::Pipeline => almr::config::generated_schema(),
                SchemaKind::Manifest => almr::manifest::generated_schema(),
            }
        ),
    }
    Ok(())
}

fn print_summary(out: &std::path::Path, m: &Manifest) {
    let row = |name: &str, lang: &str, c: &almr::manifest::Counts, shards: usize| {
        println!(
            "{name:<16} {lang:>4} {:>9} {:>9} {:>9} {:>9} {:>12} {shards:>6}",
            c.read, c.kept, c.rejected.total, c.malformed.total, c.tokens
        )
    };
    println!(
        "{:<16} {:>4} {:>9} {:>9} {:>9} {:>9} {:>12} {:>6}",
        "source", "lang", "read", "kept", "rejected", "malformed", "tokens", "shards"
    );
    for s in &m.sources {
        row(&s.name, &s.language, &s.counts, s.shards);
    }
    row("total", "", &m.totals, m.shards.len());
    println!(
        "wrote {} ({} dtype); manifest: {}",
        out.display(),
        m.tokenizer.dtype.numpy_name(),
        out.join(almr::manifest::FILE_NAME).display()
    );
}
