//! The `almr-train` command line.

use std::fmt::Display;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

use almr_trainer::chat::{ChatFormat, Session};
use almr_trainer::checkpoint;
use almr_trainer::config::LlamaConfig;
use almr_trainer::data::MixData;
use almr_trainer::device::{DeviceSpec, Precision};
use almr_trainer::eval::{
    chat_shard_loss, is_chat_shard, shard_loss, valid_loss, Losses, ValidWindows,
};
use almr_trainer::generate::{Decoder, Sampler, Sampling};
use almr_trainer::memory::ByteSize;
use almr_trainer::optim::AdamWConfig;
use almr_trainer::report::sweep::{self, SweepReport};
use almr_trainer::report::{self, Report};
use almr_trainer::schedule::{Kind, Schedule};
use almr_trainer::train::{chat_template_tokens, train, ChatTokens, RunOptions, RunSpec, Start};

#[cfg(feature = "sweep")]
mod sweep_cli;

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
    Init(InitArgs),
    /// Train on a mix (continual pre-training, or from scratch for proxies).
    /// A packed SFT mix trains as `sft` does.
    Train(Box<TrainArgs>),
    /// Supervised fine-tuning: `train` on a packed SFT mix (almr mix of
    /// chat sources), which it requires. Each sample packs whole
    /// conversations: positions restart at each one, attention stays
    /// inside it, and the loss counts only the tokens its mask marks
    /// (assistant replies and their end-of-turn token), token-weighted
    /// over the step. Validation loss per language is over the held-out
    /// conversations' mask-1 tokens.
    Sft(Box<TrainArgs>),
    /// Mean next-token loss of a checkpoint over a shard, a chat shard's
    /// trained tokens, or a mix's validation split.
    Eval(EvalArgs),
    /// Chat with a checkpoint: one reply to --prompt, or a conversation on
    /// stdin, a user message a line.
    Chat(ChatArgs),
    /// Curves of training runs: a summary per run, and charts of loss,
    /// validation loss, learning rate and speed in an HTML file. Of an
    /// ALMR × learning-rate sweep: its cells, the fitted loss surfaces, the
    /// recommendation, and every cell's curves.
    Report(ReportArgs),
    /// The ALMR × learning-rate sweep (see docs/sweep.md).
    #[command(subcommand)]
    Sweep(SweepCommand),
}

#[derive(Subcommand)]
enum SweepCommand {
    /// Run the grid of ALMR × peak learning rate as continual pre-training
    /// from one base: a mix per ALMR, a WSD run per cell with a decay
    /// branch per shorter budget, the table (cells.jsonl) and its fit.
    /// Resumable: run it again (with no settings) to continue.
    #[cfg(feature = "sweep")]
    Run(Box<sweep_cli::RunArgs>),
    /// Make the base of a sweep whose mixes `sweep run --emit` made: train
    /// it (when the sweep pre-trains it) and validate it (base.json).
    #[cfg(feature = "sweep")]
    Base(sweep_cli::BaseArgs),
    /// Run one cell of a prepared sweep (what -j's children and the job
    /// scripts run); a finished cell exits at once.
    #[cfg(feature = "sweep")]
    Cell(sweep_cli::CellArgs),
    /// Fit the loss law per language over a table of finished cells and
    /// recommend the (ALMR, LR) of the big run; writes recommendation.json.
    Fit(SweepFitArgs),
}

#[derive(clap::Args)]
struct SweepFitArgs {
    /// The cells file: a JSON object per line (docs/sweep.md); or a sweep
    /// directory, whose cells.jsonl is first rewritten from its finished
    /// cells.
    cells: PathBuf,
    /// English loss may rise to (1 + T) × the base's.
    #[arg(long, value_name = "T", default_value_t = 0.03)]
    tolerance: f64,
    /// Print recommendation.json instead of the table.
    #[arg(long)]
    json: bool,
    /// Where to write recommendation.json (default: the cells file's directory).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct InitArgs {
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
    /// Stop after this step, saving a checkpoint there (as a job with a
    /// time limit would); --resume continues from it.
    #[arg(long)]
    stop_at: Option<u64>,
    /// Memory a training step may use (e.g. 2.5G, 800M; powers of 1024),
    /// instead of what the device has free.
    #[arg(long, value_name = "SIZE")]
    max_memory: Option<ByteSize>,
    /// mean: before the first step, set the embedding (and untied head) rows
    /// of the chat template's special tokens (the added tokens of the
    /// build's tokenizer.json that its tokenizer_config.json chat_template
    /// uses) to the mean of the other rows. For a base model that never
    /// trained them, e.g. Llama-3's <|start_header_id|>, <|end_header_id|>,
    /// <|eot_id|>.
    #[arg(long, value_enum, value_name = "HOW")]
    init_untrained_tokens: Option<UntrainedInit>,
}

/// How `--init-untrained-tokens` sets the rows of untrained tokens.
#[derive(Clone, Copy, clap::ValueEnum)]
enum UntrainedInit {
    /// The mean of the other rows.
    Mean,
}

#[derive(clap::Args)]
struct EvalArgs {
    /// The checkpoint directory (config.json + safetensors).
    #[arg(long)]
    checkpoint: PathBuf,
    /// A shard prefix: its documents concatenated in order, cut into
    /// non-overlapping windows of seq_len + 1 tokens. A chat shard (with
    /// PREFIX.mask.{bin,idx}): each conversation on its own, the loss over
    /// its trained (mask 1) tokens.
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
}

#[derive(clap::Args)]
struct ChatArgs {
    /// The checkpoint directory (config.json, safetensors, tokenizer.json).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Print the reply to this message and exit (else: read messages from
    /// stdin, a line each, until an empty line or EOF).
    #[arg(long)]
    prompt: Option<String>,
    /// A system message to start the conversation with.
    #[arg(long)]
    system: Option<String>,
    /// The most tokens of a reply.
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.7)]
    temperature: f64,
    /// Sample among the most likely tokens whose probabilities reach this.
    #[arg(long, default_value_t = 0.9)]
    top_p: f64,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// llama3 (built in) or a Jinja file (default: the chat_template of the
    /// checkpoint's tokenizer_config.json).
    #[arg(long)]
    chat_template: Option<String>,
    /// cpu, or cuda / cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// Run directories (each the --out of almr-train train) and sweep
    /// directories (with a cells.jsonl or a sweep.json); the sweeps are
    /// reported first.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Write a self-contained HTML page with the charts here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Print the summaries as JSON: `runs`, and `sweeps` (cells and
    /// recommendation) when there are any.
    #[arg(long)]
    json: bool,
}

impl TrainArgs {
    /// The run these arguments define; `sft` requires a packed SFT mix.
    fn run_spec(&self, sft: bool) -> Result<RunSpec> {
        let mix = MixData::open(&self.mix)?;
        if sft && !mix.is_packed() {
            bail!(
                "{}: not an SFT mix (a packed mix of chat sources); `almr-train train` trains on it",
                self.mix.display()
            );
        }
        let start = match (&self.config, &self.init) {
            (Some(c), None) => Start::Scratch {
                config: LlamaConfig::preset_or_file(c)?,
                seed: self.seed,
            },
            (None, Some(dir)) => Start::Checkpoint(dir.clone()),
            _ => bail!("give --config or --init"),
        };
        let mean = self.mean_init(&mix)?;
        Ok(RunSpec {
            mix: self.mix.clone(),
            mix_sha256: mix.report().index.digest.sha256.clone(),
            start,
            steps: self.steps,
            micro_batch: self.micro_batch,
            grad_accum: self.grad_accum,
            schedule: Schedule {
                kind: self.schedule,
                peak: self.lr,
                min: self.min_lr,
                warmup: self.warmup,
                total: self.steps,
                decay_steps: self.decay_steps.unwrap_or(self.steps / 10),
            },
            adamw: AdamWConfig {
                beta1: self.beta1,
                beta2: self.beta2,
                eps: self.eps,
                weight_decay: self.weight_decay,
            },
            clip: self.clip,
            eval_every: self.eval_every,
            eval_samples: self.eval_samples,
            save_every: self.save_every,
            compute_dtype: self.compute_dtype.unwrap_or(self.device.default_compute()),
            save_dtype: self.save_dtype,
            mean_init: mean.used.into_iter().map(|(i, _)| i).collect(),
            mean_left_out: mean.added,
        })
    }

    /// The ids `--init-untrained-tokens mean` sets (printed on stderr), and
    /// those left out of the mean.
    fn mean_init(&self, mix: &MixData) -> Result<ChatTokens> {
        let Some(UntrainedInit::Mean) = self.init_untrained_tokens else {
            return Ok(ChatTokens {
                used: Vec::new(),
                added: Vec::new(),
            });
        };
        let tokens = chat_template_tokens(mix.out_dir())?;
        let list: Vec<String> = tokens
            .used
            .iter()
            .map(|(i, t)| format!("{i} {t}"))
            .collect();
        eprintln!("chat template tokens: {}", list.join(", "));
        Ok(tokens)
    }
}

fn main() -> ExitCode {
    almr_trainer::keep_freed_memory();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`almr-train report … | head`).
        Err(e) if almr::fsutil::is_broken_pipe(e.as_ref()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init(a) => init(&a),
        Command::Train(a) => train_run(&a, false),
        Command::Sft(a) => train_run(&a, true),
        Command::Eval(a) => eval(&a),
        Command::Chat(a) => chat(&a),
        Command::Report(a) => report_runs(&a),
        #[cfg(feature = "sweep")]
        Command::Sweep(SweepCommand::Run(a)) => sweep_cli::run(&a),
        #[cfg(feature = "sweep")]
        Command::Sweep(SweepCommand::Base(a)) => sweep_cli::base(&a),
        #[cfg(feature = "sweep")]
        Command::Sweep(SweepCommand::Cell(a)) => sweep_cli::cell(&a),
        Command::Sweep(SweepCommand::Fit(a)) => sweep_fit(&a),
    }
}

/// Prints `text` and a newline, unless it is empty (an eval with nothing
/// to measure prints nothing).
fn print_lines(text: impl Display) -> std::io::Result<()> {
    let text = text.to_string();
    match text.is_empty() {
        true => Ok(()),
        false => almr::outln!("{text}"),
    }
}

fn init(a: &InitArgs) -> Result<()> {
    let config = LlamaConfig::preset_or_file(&a.config)?;
    let made = checkpoint::init(&config, a.seed, a.save_dtype, &a.out)?;
    almr::outln!("{made}")?;
    Ok(())
}

fn train_run(a: &TrainArgs, sft: bool) -> Result<()> {
    let device = a.device.open()?;
    let spec = a.run_spec(sft)?;
    let options = RunOptions {
        out: a.out.clone(),
        device,
        resume: a.resume,
        stop_at: a.stop_at,
        progress: std::io::stderr().is_terminal(),
        max_memory: a.max_memory.map(|s| s.0),
        diverge_factor: None,
    };
    let outcome = train(&spec, &options)?;
    almr::outln!("{outcome}")?;
    Ok(())
}

fn eval(a: &EvalArgs) -> Result<()> {
    let device = a.device.open()?;
    let model = checkpoint::load(&a.checkpoint, &device, a.device.default_compute().into())?;
    if let Some(prefix) = a.shard.as_ref().filter(|p| is_chat_shard(p)) {
        let loss = chat_shard_loss(&model, prefix, a.batch)?;
        return match a.json {
            true => almr::outln!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "shard": loss }))?
            ),
            false => almr::outln!("shard: {loss}"),
        }
        .map_err(Into::into);
    }
    let losses = match (&a.shard, &a.mix) {
        (Some(prefix), _) => Losses(vec![(
            "shard".to_string(),
            shard_loss(&model, prefix, a.seq_len, a.batch)?,
        )]),
        (None, Some(m)) => {
            let data = MixData::open(m)?;
            for w in ValidWindows::count(&data, a.samples)?.warnings() {
                eprintln!("warning: {w}");
            }
            valid_loss(&model, &data, a.samples, a.batch)?
        }
        (None, None) => bail!("give --shard or --mix"),
    };
    if a.json {
        almr::outln!("{}", serde_json::to_string_pretty(&losses)?)?;
    } else {
        print_lines(losses)?;
    }
    Ok(())
}

fn chat(a: &ChatArgs) -> Result<()> {
    let sampler = Sampler::new(Sampling {
        temperature: a.temperature,
        top_p: a.top_p,
        seed: a.seed,
    })?;
    if a.prompt.as_ref().is_some_and(|p| p.trim().is_empty()) {
        bail!("--prompt is empty");
    }
    let format = ChatFormat::open(&a.checkpoint, a.chat_template.as_deref())?;
    let device = a.device.open()?;
    let compute = a.device.default_compute().into();
    let model = checkpoint::load(&a.checkpoint, &device, compute)?;
    let decoder = Decoder::new(&model, compute)?;
    drop(model);
    let mut session = Session::new(
        format,
        decoder,
        sampler,
        a.system.as_deref(),
        a.max_new_tokens,
    );
    let show = |text: &str| {
        almr::out!("{text}")?;
        std::io::Write::flush(&mut std::io::stdout())
    };
    if let Some(prompt) = &a.prompt {
        session.reply(prompt, show)?;
        return Ok(almr::outln!("")?);
    }
    let interactive = std::io::stdin().is_terminal();
    for line in std::io::stdin().lines() {
        let line = line?;
        if line.trim().is_empty() {
            break;
        }
        let (_, cut) = session.reply(&line, show)?;
        almr::outln!("")?;
        if cut && interactive {
            eprintln!("[cut at --max-new-tokens {}]", a.max_new_tokens);
        }
    }
    Ok(())
}

fn report_runs(a: &ReportArgs) -> Result<()> {
    let (sweep_dirs, run_dirs): (Vec<PathBuf>, Vec<PathBuf>) =
        a.runs.iter().cloned().partition(|d| sweep::is_sweep(d));
    let sweeps = (sweep_dirs.iter())
        .map(|d| SweepReport::load(d))
        .collect::<Result<Vec<_>, _>>()?;
    let runs = Report::load(&run_dirs)?;
    if let Some(path) = &a.html {
        report::html::write(&sweeps, &runs, path)?;
    }
    if a.json {
        let mut v = serde_json::to_value(&runs)?;
        if !sweeps.is_empty() {
            v["sweeps"] = serde_json::to_value(&sweeps)?;
        }
        almr::outln!("{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    for s in &sweeps {
        almr::outln!("{s}")?;
    }
    if !runs.runs.is_empty() {
        almr::out!("{runs}")?;
    }
    if let Some(path) = &a.html {
        almr::outln!("report: {}", path.display())?;
    }
    Ok(())
}

fn sweep_fit(a: &SweepFitArgs) -> Result<()> {
    #[cfg(feature = "sweep")]
    let table = match a.cells.is_dir() {
        true => almr_trainer::sweep::run::table(&a.cells)?,
        false => a.cells.clone(),
    };
    #[cfg(not(feature = "sweep"))]
    let table = a.cells.clone();
    let cells = almr_trainer::sweep::cells::Cells::read(&table)?;
    let rec = almr_trainer::sweep::recommend(&cells, a.tolerance)?;
    let dir = match &a.out {
        Some(d) => d.clone(),
        None => table.parent().map(PathBuf::from).unwrap_or_default(),
    };
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let path = rec.write(&dir)?;
    match a.json {
        true => almr::out!("{}", rec.to_json())?,
        false => almr::outln!("{rec}wrote {}", path.display())?,
    }
    Ok(())
}
