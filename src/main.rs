//! The `almr` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

use almr::driver::{build, BuildOptions};
use almr::mix::{MixOptions, MixReport, Size, Split};
use std::collections::BTreeMap;

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
        #[arg(long, default_value_t = almr::driver::DEFAULT_MEM_BUDGET >> 20)]
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
    /// Build an ALMR-weighted training stream (a mix index) over a build's
    /// shards: OUT/mix/NAME.mix and OUT/mix/NAME.json.
    Mix {
        /// The build's output directory.
        out: PathBuf,
        /// Name of the mix.
        #[arg(long)]
        name: String,
        /// Share of training tokens from additional sources, in [0, 1].
        #[arg(long)]
        almr: f64,
        /// Tokens a sample is trained on; a sample reads seq_len + 1 tokens.
        #[arg(long)]
        seq_len: u64,
        /// Seed of the validation draw and every shuffle.
        #[arg(long, default_value_t = 1234)]
        seed: u64,
        /// Training tokens (rounded up to whole samples); takes suffixes
        /// K, M, B, T (e.g. 2.5B).
        #[arg(long, value_parser = parse_count, required_unless_present = "samples", conflicts_with = "samples")]
        tokens: Option<u64>,
        /// Training samples.
        #[arg(long, value_parser = parse_count)]
        samples: Option<u64>,
        /// Relative weight of a source inside its group, as SRC=W
        /// (repeatable). Give all sources of a group or none; by default each
        /// weighs its training tokens.
        #[arg(long = "weight", value_name = "SRC=W")]
        weights: Vec<String>,
        /// Share of documents held out for validation: F for every source, or
        /// SRC=F for one (repeatable).
        #[arg(long = "valid-share", value_name = "[SRC=]F")]
        valid_shares: Vec<String>,
        /// Refuse if any source would be repeated more than this many epochs.
        #[arg(long)]
        max_epochs: Option<f64>,
        /// Also write the equivalent weights for another trainer.
        #[arg(long, value_enum)]
        export: Option<ExportKind>,
        /// Print the sidecar as JSON instead of a summary table.
        #[arg(long)]
        json: bool,
    },
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
    /// OUT/mix/NAME.json.
    Mix,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportKind {
    /// Megatron-LM `--data-path` weights, in OUT/mix/NAME.megatron.txt (for
    /// `--data-args-path`).
    Megatron,
}

/// Default share of each source's documents held out for validation.
const DEFAULT_VALID_SHARE: f64 = 0.01;

/// Parses `1000`, `2.5B`, `300M`, `1e9`.
fn parse_count(s: &str) -> Result<u64, String> {
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

/// Splits `SRC=VALUE`.
fn parse_pair(flag: &str, s: &str) -> Result<(String, f64)> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("{flag} {s:?}: expected SRC=VALUE"))?;
    let v = value
        .parse::<f64>()
        .map_err(|_| anyhow::anyhow!("{flag} {s:?}: {value:?} is not a number"))?;
    Ok((name.to_string(), v))
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
                print!("{outcome}");
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
        Command::Mix {
            out,
            name,
            almr,
            seq_len,
            seed,
            tokens,
            samples,
            weights,
            valid_shares,
            max_epochs,
            export,
            json,
        } => {
            let mut opts = MixOptions {
                name,
                almr,
                seq_len,
                seed,
                size: match (tokens, samples) {
                    (_, Some(n)) => Size::Samples(n),
                    (Some(t), None) => Size::Tokens(t),
                    (None, None) => unreachable!("clap requires one"),
                },
                weights: BTreeMap::new(),
                valid_share: DEFAULT_VALID_SHARE,
                valid_shares: BTreeMap::new(),
                max_epochs,
            };
            for w in &weights {
                let (k, v) = parse_pair("--weight", w)?;
                opts.weights.insert(k, v);
            }
            for v in &valid_shares {
                if v.contains('=') {
                    let (k, f) = parse_pair("--valid-share", v)?;
                    opts.valid_shares.insert(k, f);
                } else {
                    opts.valid_share = v
                        .parse()
                        .map_err(|_| anyhow::anyhow!("--valid-share {v:?} is not a number"))?;
                }
            }
            let report = almr::mix::mix(&out, &opts)?;
            let exported = match export {
                Some(ExportKind::Megatron) => {
                    Some(almr::mix::export::write_megatron(&report, &out)?)
                }
                None => None,
            };
            if json {
                print!("{}", report.to_json());
            } else {
                print_mix(&out, &report);
                if let Some(p) = exported {
                    println!("Megatron weights: {} (use --data-args-path)", p.display());
                }
            }
        }
        Command::Stats { out, json, html } => {
            let stats = almr::stats::stats(&out)?;
            if let Some(path) = &html {
                let page = almr::stats::html::render(&stats)?;
                std::fs::write(path, page)
                    .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                print_stats(&stats);
                if let Some(path) = html {
                    println!("report: {}", path.display());
                }
            }
        }
        Command::Sample {
            mix,
            n,
            seed,
            valid,
            json,
        } => {
            let split = if valid { Split::Valid } else { Split::Train };
            let samples = almr::sample::sample(&mix, split, n, seed)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&samples)?);
            } else {
                for s in samples {
                    println!("{s}");
                }
            }
        }
        Command::Schema { which } => print!(
            "{}",
            match which {
                SchemaKind::Pipeline => almr::config::generated_schema(),
                SchemaKind::Manifest => almr::manifest::generated_schema(),
                SchemaKind::Mix => almr::mix::report::generated_schema(),
            }
        ),
    }
    Ok(())
}

fn print_mix(out: &std::path::Path, r: &MixReport) {
    println!(
        "mix {}: {} samples of {}+1 tokens = {} training tokens, seed {}",
        r.name, r.samples, r.seq_len, r.tokens, r.seed
    );
    println!(
        "ALMR target {:.4}, achieved {:.4}; worst {}-sample window off by {:.4}",
        r.target_almr, r.achieved_almr, r.window, r.max_window_deviation
    );
    println!(
        "{:<16} {:>4} {:>3} {:>8} {:>8} {:>10} {:>12} {:>7} {:>10} {:>10}",
        "source",
        "lang",
        "add",
        "target",
        "share",
        "samples",
        "tokens_used",
        "epochs",
        "valid_docs",
        "valid_smp"
    );
    for s in &r.sources {
        println!(
            "{:<16} {:>4} {:>3} {:>8.4} {:>8.4} {:>10} {:>12} {:>7.3} {:>10} {:>10}",
            s.name,
            s.language,
            if s.additional { "yes" } else { "no" },
            s.target_share,
            s.achieved_share,
            s.samples,
            s.tokens_used,
            s.epochs,
            s.valid_documents,
            s.valid_samples
        );
    }
    println!(
        "wrote {} and {}",
        out.join(&r.index.path).display(),
        out.join(almr::mix::DIR)
            .join(format!("{}.json", r.name))
            .display()
    );
}

fn print_stats(s: &almr::stats::Stats) {
    println!(
        "{:<16} {:>4} {:>9} {:>9} {:>12} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "source/lang", "lang", "docs", "rejected", "tokens", "share", "exact", "near", "p50", "p99"
    );
    for g in s.sources.iter().chain(&s.languages) {
        println!(
            "{:<16} {:>4} {:>9} {:>9} {:>12} {:>6.2}% {:>6.2}% {:>6.2}% {:>7} {:>7}",
            g.name,
            g.language,
            g.counts.kept,
            g.counts.rejected.total,
            g.counts.tokens,
            100.0 * g.token_share,
            100.0 * g.exact_dedup_rate,
            100.0 * g.near_dedup_rate,
            g.lengths.p50,
            g.lengths.p99
        );
    }
    for m in &s.mixes {
        let epochs: Vec<String> = m
            .sources
            .iter()
            .map(|x| format!("{} {:.2}", x.name, x.epochs))
            .collect();
        println!(
            "mix {}: target ALMR {:.4}, achieved {:.4}, worst window {:.4}; epochs: {}",
            m.name,
            m.target_almr,
            m.achieved_almr,
            m.max_window_deviation,
            epochs.join(", ")
        );
    }
}
