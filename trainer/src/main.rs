//! The `almr-train` command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

use almr_trainer::checkpoint;
use almr_trainer::config::LlamaConfig;
use almr_trainer::data::MixData;
use almr_trainer::device::{DeviceSpec, Precision};
use almr_trainer::eval::{shard_loss, valid_loss};
use almr_trainer::model::Llama;
use almr_trainer::optim::AdamWConfig;
use almr_trainer::schedule::{Kind, Schedule};
use almr_trainer::train::{train, RunOptions, RunSpec, Start};

/// Train and evaluate Llama-3 models on almr mixes (candle).
#[derive(Parser)]
#[command(name = "almr-train", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a freshly initialised Hugging Face checkpoint.
    Init {
        /// A preset (tiny, proxy-125m, proxy-1b) or a config.json.
        #[arg(long)]
        config: String,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Initialisation seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// dtype of the saved weights (f32 or bf16).
        #[arg(long, value_enum, default_value_t = Precision::F32, hide_possible_values = true)]
        save_dtype: Precision,
    },
    /// Train on a mix (continual pre-training, or from scratch for proxies).
    Train(Box<TrainArgs>),
    /// Mean next-token loss of a checkpoint over a shard or a mix's
    /// validation split.
    Eval {
        /// The checkpoint directory (config.json + safetensors).
        #[arg(long)]
        checkpoint: PathBuf,
        /// A shard prefix: its documents concatenated in order, cut into
        /// non-overlapping windows of seq_len + 1 tokens.
        #[arg(long, required_unless_present = "mix", conflicts_with = "mix")]
        shard: Option<PathBuf>,
        /// A mix (OUT/mix/NAME): its validation split, per language.
        #[arg(long)]
        mix: Option<PathBuf>,
        /// Tokens predicted per window (shard only; a mix has its own).
        #[arg(long, default_value_t = 2048)]
        seq_len: usize,
        /// Windows per forward pass.
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// Validation samples per language (mix only).
        #[arg(long, default_value_t = usize::MAX)]
        samples: usize,
        /// cpu, or cuda / cuda:N.
        #[arg(long, default_value = "cpu")]
        device: DeviceSpec,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct TrainArgs {
    /// The mix: OUT/mix/NAME.
    #[arg(long)]
    mix: PathBuf,
    /// The run directory.
    #[arg(long)]
    out: PathBuf,
    /// Start from fresh weights for a preset (tiny, proxy-125m, proxy-1b) or
    /// a config.json.
    #[arg(long, required_unless_present = "init", conflicts_with = "init")]
    config: Option<String>,
    /// Initialisation seed (with --config).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Start from a Hugging Face checkpoint directory.
    #[arg(long)]
    init: Option<PathBuf>,
    /// Optimizer steps.
    #[arg(long)]
    steps: u64,
    /// Samples per forward pass.
    #[arg(long, default_value_t = 8)]
    micro_batch: usize,
    /// Micro-batches per optimizer step.
    #[arg(long, default_value_t = 1)]
    grad_accum: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 3e-4)]
    lr: f64,
    /// Floor of the decay.
    #[arg(long, default_value_t = 3e-5)]
    min_lr: f64,
    /// Linear warmup steps.
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    /// cosine, or wsd (warmup-stable-decay).
    #[arg(long, value_enum, default_value_t = Kind::Cosine)]
    schedule: Kind,
    /// wsd: steps of the final linear decay (default: 10% of the steps).
    #[arg(long)]
    decay_steps: Option<u64>,
    /// AdamW weight decay (not on norms or biases).
    #[arg(long, default_value_t = 0.1)]
    weight_decay: f64,
    /// AdamW beta1.
    #[arg(long, default_value_t = 0.9)]
    beta1: f64,
    /// AdamW beta2.
    #[arg(long, default_value_t = 0.95)]
    beta2: f64,
    /// AdamW epsilon.
    #[arg(long, default_value_t = 1e-8)]
    eps: f64,
    /// Clip the global gradient norm to this (0: no clipping).
    #[arg(long, default_value_t = 1.0)]
    clip: f64,
    /// Validation loss every N steps, and at the end.
    #[arg(long, default_value_t = 0)]
    eval_every: u64,
    /// Validation samples per language.
    #[arg(long, default_value_t = 64)]
    eval_samples: usize,
    /// Checkpoint every N steps.
    #[arg(long, default_value_t = 0)]
    save_every: u64,
    /// dtype of the final weights (f32 or bf16).
    #[arg(long, value_enum, default_value_t = Precision::F32, hide_possible_values = true)]
    save_dtype: Precision,
    /// dtype of the forward pass (default: bf16 on CUDA, f32 on CPU).
    #[arg(long, value_enum, hide_possible_values = true)]
    compute_dtype: Option<Precision>,
    /// cpu, or cuda / cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// Continue the run in --out from its latest checkpoint.
    #[arg(long)]
    resume: bool,
    /// Stop after this step (as a job with a time limit would); --resume
    /// continues later.
    #[arg(long)]
    stop_at: Option<u64>,
}

fn main() -> ExitCode {
    almr_trainer::keep_freed_memory();
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
        Command::Init {
            config,
            out,
            seed,
            save_dtype,
        } => {
            let config = LlamaConfig::preset_or_file(&config)?;
            let model = Llama::init(
                &config,
                seed,
                &candle_core::Device::Cpu,
                candle_core::DType::F32,
            )?;
            checkpoint::save(&model, &out, save_dtype, checkpoint::MAX_SHARD_BYTES, &[])?;
            println!(
                "wrote {} ({} parameters)",
                out.display(),
                config.parameters()
            );
        }
        Command::Train(a) => {
            let device = a.device.open()?;
            let compute = a.compute_dtype.unwrap_or(a.device.default_compute());
            let mix_report = MixData::open(&a.mix)?.index().report().clone();
            let start = match (&a.config, &a.init) {
                (Some(c), None) => Start::Scratch {
                    config: LlamaConfig::preset_or_file(c)?,
                    seed: a.seed,
                },
                (None, Some(dir)) => Start::Checkpoint(dir.clone()),
                _ => bail!("give --config or --init"),
            };
            let spec = RunSpec {
                mix: a.mix.clone(),
                mix_sha256: mix_report.index.digest.sha256.clone(),
                start,
                steps: a.steps,
                micro_batch: a.micro_batch,
                grad_accum: a.grad_accum,
                schedule: Schedule {
                    kind: a.schedule,
                    peak: a.lr,
                    min: a.min_lr,
                    warmup: a.warmup,
                    total: a.steps,
                    decay_steps: a.decay_steps.unwrap_or(a.steps / 10),
                },
                adamw: AdamWConfig {
                    beta1: a.beta1,
                    beta2: a.beta2,
                    eps: a.eps,
                    weight_decay: a.weight_decay,
                },
                clip: a.clip,
                eval_every: a.eval_every,
                eval_samples: a.eval_samples,
                save_every: a.save_every,
                compute_dtype: compute,
                save_dtype: a.save_dtype,
            };
            let outcome = train(
                &spec,
                &RunOptions {
                    out: a.out.clone(),
                    device,
                    resume: a.resume,
                    stop_at: a.stop_at,
                    progress: std::io::stderr().is_terminal(),
                },
            )?;
            if let Some(last) = outcome.metrics.last() {
                println!(
                    "step {}/{}: loss {:.4}{}{}",
                    last.step,
                    a.steps,
                    last.loss,
                    last.val_loss
                        .iter()
                        .map(|(l, v)| format!(", val {l} {v:.4}"))
                        .collect::<String>(),
                    if outcome.stopped {
                        " (stopped; --resume continues)"
                    } else {
                        ""
                    }
                );
            }
            println!("metrics: {}", a.out.join("metrics.jsonl").display());
        }
        Command::Eval {
            checkpoint: dir,
            shard,
            mix,
            seq_len,
            batch,
            samples,
            device: dev,
            json,
        } => {
            let model = checkpoint::load(&dir, &dev.open()?, dev.default_compute().into())?;
            let results = match (shard, mix) {
                (Some(prefix), _) => {
                    vec![(
                        "shard".to_string(),
                        shard_loss(&model, &prefix, seq_len, batch)?,
                    )]
                }
                (None, Some(m)) => valid_loss(&model, &MixData::open(&m)?, samples, batch)?,
                (None, None) => bail!("give --shard or --mix"),
            };
            if json {
                let map: serde_json::Map<String, serde_json::Value> = results
                    .iter()
                    .map(|(k, l)| (k.clone(), serde_json::to_value(l).expect("serializes")))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&map)?);
            } else {
                for (k, l) in results {
                    println!(
                        "{k}: loss {:.6} over {} windows ({} tokens)",
                        l.loss, l.windows, l.tokens
                    );
                }
            }
        }
    }
    Ok(())
}
