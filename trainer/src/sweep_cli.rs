//! `almr-train sweep run`, `sweep base` and `sweep cell`: the command
//! lines of the sweep runner ([`almr_trainer::sweep::run`]).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use almr_trainer::device::{DeviceSpec, Precision};
use almr_trainer::optim::AdamWConfig;
use almr_trainer::sweep::run::plan::{Base, Plan};
use almr_trainer::sweep::run::{self, jobs, prepare, Context, Options};

/// The settings of a new sweep; with none, `sweep run` continues the
/// sweep in the directory with the settings it started with.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The sweep directory: sweep.json, base.json, cells/, cells.jsonl,
    /// recommendation.json.
    sweep: PathBuf,
    /// The build (almr build's OUT) to mix from; the sweep's mixes are
    /// OUT/mix/SWEEPNAME-rR.
    #[arg(long, value_name = "OUT", help_heading = "The sweep (when it starts)")]
    build: Option<PathBuf>,
    /// The ALMRs, comma-separated.
    #[arg(long, value_delimiter = ',', num_args = 1.., help_heading = "The sweep (when it starts)")]
    almr: Vec<f64>,
    /// The peak learning rates, comma-separated.
    #[arg(long, value_delimiter = ',', num_args = 1.., help_heading = "The sweep (when it starts)")]
    lr: Vec<f64>,
    /// The token budgets in optimizer steps, comma-separated: each cell
    /// trains to the longest, and each shorter one is a decay branch off it.
    #[arg(long, value_delimiter = ',', num_args = 1.., help_heading = "The sweep (when it starts)")]
    steps: Vec<u64>,
    /// The share of each budget's steps that decays (WSD's cooldown).
    #[arg(
        long,
        default_value_t = 0.2,
        help_heading = "The sweep (when it starts)"
    )]
    decay: f64,
    /// Linear warmup steps.
    #[arg(long, default_value_t = 0, help_heading = "The sweep (when it starts)")]
    warmup: u64,
    /// The decay's floor, as a share of the peak learning rate.
    #[arg(
        long,
        default_value_t = 0.0,
        help_heading = "The sweep (when it starts)"
    )]
    min_lr_ratio: f64,
    /// Samples per forward pass.
    #[arg(long, default_value_t = 8, help_heading = "The sweep (when it starts)")]
    micro_batch: usize,
    /// Micro-batches per optimizer step.
    #[arg(long, default_value_t = 1, help_heading = "The sweep (when it starts)")]
    grad_accum: usize,
    /// Tokens a sample is trained on.
    #[arg(
        long,
        default_value_t = 2048,
        help_heading = "The sweep (when it starts)"
    )]
    seq_len: u64,
    /// The mixes' seed (and the pre-trained base's).
    #[arg(long, default_value_t = 0, help_heading = "The sweep (when it starts)")]
    seed: u64,
    /// Share of each source's documents held out for validation (the same
    /// documents in every mix).
    #[arg(
        long,
        default_value_t = 0.05,
        help_heading = "The sweep (when it starts)"
    )]
    valid_share: f64,
    /// Validation samples per language.
    #[arg(
        long,
        default_value_t = 64,
        help_heading = "The sweep (when it starts)"
    )]
    eval_samples: usize,
    /// Validation loss every N steps too (0: at each budget's end only).
    #[arg(long, default_value_t = 0, help_heading = "The sweep (when it starts)")]
    eval_every: u64,
    /// A run diverges when a step's loss passes F × the lowest before it
    /// (or is not finite): it is stopped and marked.
    #[arg(
        long,
        value_name = "F",
        default_value_t = 1.5,
        help_heading = "The sweep (when it starts)"
    )]
    diverge_factor: f64,
    /// AdamW weight decay.
    #[arg(
        long,
        default_value_t = 0.1,
        help_heading = "The sweep (when it starts)"
    )]
    weight_decay: f64,
    /// Clip the global gradient norm to this (0: no clipping).
    #[arg(
        long,
        default_value_t = 1.0,
        help_heading = "The sweep (when it starts)"
    )]
    clip: f64,
    /// dtype of the forward pass (default: bf16 on CUDA, f32 on CPU).
    #[arg(
        long,
        value_enum,
        hide_possible_values = true,
        help_heading = "The sweep (when it starts)"
    )]
    compute_dtype: Option<Precision>,
    /// dtype of each run's final weights.
    #[arg(long, value_enum, default_value_t = Precision::Bf16, hide_possible_values = true, help_heading = "The sweep (when it starts)")]
    save_dtype: Precision,
    /// The base: a Hugging Face checkpoint every cell starts from.
    #[arg(long, conflicts_with = "config", help_heading = "The base")]
    init: Option<PathBuf>,
    /// The base: pre-train this preset or config.json from scratch first.
    #[arg(long, help_heading = "The base")]
    config: Option<String>,
    /// The pre-trained base's optimizer steps.
    #[arg(long, default_value_t = 200, help_heading = "The base")]
    base_steps: u64,
    /// The ALMR of the pre-trained base's mix (English-heavy).
    #[arg(long, default_value_t = 0.05, help_heading = "The base")]
    base_almr: f64,
    /// The pre-trained base's peak learning rate (cosine to a tenth).
    #[arg(long, default_value_t = 1e-3, help_heading = "The base")]
    base_lr: f64,
    /// The pre-trained base's warmup steps.
    #[arg(long, default_value_t = 0, help_heading = "The base")]
    base_warmup: u64,
    /// Cells at once on this machine, each in its own process with a
    /// share of the threads; with --emit, array tasks at once.
    #[arg(short = 'j', long, default_value_t = 1, help_heading = "Running")]
    jobs: usize,
    /// Write a Slurm job array (SWEEP/jobs/submit.sh) instead of running
    /// the cells here.
    #[arg(long, value_enum, help_heading = "Running")]
    emit: Option<Emit>,
    /// An #SBATCH option for every job script (repeatable), e.g.
    /// --sbatch=--partition=gpu.
    #[arg(
        long,
        value_name = "OPTION",
        allow_hyphen_values = true,
        help_heading = "Running"
    )]
    sbatch: Vec<String>,
    /// cpu, or cuda / cuda:N.
    #[arg(long, default_value = "cpu", help_heading = "Running")]
    device: DeviceSpec,
    /// Keep each run's checkpoints once its cell is finished.
    #[arg(long, help_heading = "Running")]
    keep_checkpoints: bool,
    /// The fit: English loss may rise to (1 + T) × the base's.
    #[arg(
        long,
        value_name = "T",
        default_value_t = 0.03,
        help_heading = "Running"
    )]
    tolerance: f64,
}

/// Where the cells run, when not here.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Emit {
    /// A Slurm job array.
    Slurm,
}

/// `sweep base SWEEP`.
#[derive(clap::Args)]
pub struct BaseArgs {
    /// The sweep directory.
    sweep: PathBuf,
    /// cpu, or cuda / cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

/// `sweep cell SWEEP --index K`.
#[derive(clap::Args)]
pub struct CellArgs {
    /// The sweep directory.
    sweep: PathBuf,
    /// The cell's number, ALMR-major from 0 (its job script's).
    #[arg(long)]
    index: usize,
    /// cpu, or cuda / cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// Keep the runs' checkpoints once the cell is finished.
    #[arg(long)]
    keep_checkpoints: bool,
}

/// The file name of `path`, as a mix-name prefix: letters, digits, '.',
/// '_' and '-' (anything else becomes '_').
fn sweep_name(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let name: String = (name.unwrap_or_default().chars())
        .map(|c| match c.is_ascii_alphanumeric() || "._-".contains(c) {
            true => c,
            false => '_',
        })
        .collect();
    match name.trim_start_matches('.') {
        "" => "sweep".to_string(),
        n => n.to_string(),
    }
}

/// An existing path, absolute, so that job scripts find it from anywhere.
fn absolute(path: &Path, what: &str) -> Result<PathBuf> {
    std::fs::canonicalize(path).with_context(|| format!("{what} {}", path.display()))
}

impl RunArgs {
    /// The plan these settings give; `None` when none was given.
    fn plan(&self, sweep: &Path) -> Result<Option<Plan>> {
        let Some(build) = &self.build else {
            if self.almr.is_empty() && self.lr.is_empty() && self.steps.is_empty() {
                return Ok(None);
            }
            bail!("a new sweep needs --build");
        };
        let base = match (&self.init, &self.config) {
            (Some(dir), None) => Base::Init {
                checkpoint: absolute(dir, "--init")?,
            },
            (None, Some(config)) => Base::Pretrain {
                config: config.clone(),
                steps: self.base_steps,
                almr: self.base_almr,
                lr: self.base_lr,
                warmup: self.base_warmup,
            },
            _ => bail!("a new sweep needs its base: --init CHECKPOINT, or --config PRESET to pre-train one"),
        };
        Ok(Some(Plan {
            build: absolute(build, "--build")?,
            name: sweep_name(sweep),
            almr: self.almr.clone(),
            lr: self.lr.clone(),
            steps: self.steps.clone(),
            decay: self.decay,
            warmup: self.warmup,
            min_lr_ratio: self.min_lr_ratio,
            micro_batch: self.micro_batch,
            grad_accum: self.grad_accum,
            seq_len: self.seq_len,
            seed: self.seed,
            valid_share: self.valid_share,
            eval_samples: self.eval_samples,
            eval_every: self.eval_every,
            diverge_factor: self.diverge_factor,
            adamw: AdamWConfig {
                beta1: 0.9,
                beta2: 0.95,
                eps: 1e-8,
                weight_decay: self.weight_decay,
            },
            clip: self.clip,
            compute_dtype: self.compute_dtype.unwrap_or(self.device.default_compute()),
            save_dtype: self.save_dtype,
            base,
        }))
    }
}

/// The sweep directory, created, as an absolute path.
fn sweep_dir(path: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    absolute(path, "the sweep directory")
}

/// `almr-train sweep run`.
pub fn run(a: &RunArgs) -> Result<()> {
    let named = std::path::absolute(&a.sweep)?;
    let plan = match a.plan(&named)? {
        Some(plan) => plan,
        None if a.sweep.join(run::plan::PLAN).exists() => Plan::load(&a.sweep)?,
        None => bail!(
            "{}: no sweep to continue; start one with --build, --almr, --lr, --steps and --init or --config",
            a.sweep.display()
        ),
    };
    plan.check()?;
    let sweep = sweep_dir(&a.sweep)?;
    let ctx = Context {
        device: a.device,
        progress: std::io::stderr().is_terminal(),
    };
    if let Some(Emit::Slurm) = a.emit {
        prepare::start(&sweep, &plan)?;
        prepare::mixes(&plan)?;
        let slurm = jobs::Slurm {
            sweep: &sweep,
            plan: &plan,
            ctx,
            parallel: a.jobs,
            tolerance: a.tolerance,
            options: &a.sbatch,
        };
        let submit = slurm.write()?;
        almr::outln!("wrote {}; run it to submit the sweep", submit.display())?;
        return Ok(());
    }
    let options = Options {
        ctx,
        jobs: a.jobs,
        keep_checkpoints: a.keep_checkpoints,
        tolerance: a.tolerance,
    };
    let (table, fitted) = run::run(&sweep, &plan, &options)?;
    almr::outln!("cells: {}", table.display())?;
    match fitted {
        Ok(rec) => almr::outln!(
            "{rec}wrote {}",
            sweep.join(almr_trainer::sweep::RECOMMENDATION).display()
        )?,
        Err(e) => almr::outln!("no recommendation: {e}")?,
    }
    Ok(())
}

/// `almr-train sweep base`.
pub fn base(a: &BaseArgs) -> Result<()> {
    let plan = Plan::load(&a.sweep)?;
    let ctx = Context {
        device: a.device,
        progress: false,
    };
    prepare::mixes(&plan)?;
    let record = prepare::base(&a.sweep, &plan, &ctx)?;
    almr::outln!(
        "base {}: {:?}",
        record.checkpoint.display(),
        record.val_loss
    )?;
    Ok(())
}

/// `almr-train sweep cell`.
pub fn cell(a: &CellArgs) -> Result<()> {
    let ctx = Context {
        device: a.device,
        progress: false,
    };
    let (cell, record) = jobs::run_one(&a.sweep, a.index, &ctx, a.keep_checkpoints)?;
    almr::outln!("{}", jobs::describe(cell, &record))?;
    Ok(())
}
