//! The training loop, nanoGPT-style: for each optimizer step, accumulate
//! gradients over micro-batches taken in the mix's order, clip, step AdamW at
//! the scheduled learning rate, log, and now and then evaluate and save.
//!
//! A run lives in one directory:
//!
//! ```text
//! RUN/run.json                  what defines the run (checked on --resume)
//! RUN/metrics.jsonl             one line per step
//! RUN/memory.jsonl              one line per process: estimated and peak memory
//! RUN/valid.json                validation windows per language
//! RUN/checkpoint-000100/        config.json, model.safetensors (f32),
//!                               optimizer.safetensors, trainer_state.json
//! RUN/final/                    the last weights, in --save-dtype
//! ```
//!
//! A new run needs a directory without a run; `--resume` needs the run's
//! `run.json`, the same settings and a checkpoint, and is an error
//! otherwise, before anything is written. A run stopped by `--stop-at`
//! saves a checkpoint at that step, so `--resume` continues from it.
//!
//! Training draws no random numbers after initialisation: the data order is
//! the index's and there is no dropout. So a checkpoint's weights, optimizer
//! moments and step are the whole state, and a resumed run continues exactly
//! as an uninterrupted one would.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use almr::mixfile::Split;

use crate::checkpoint::{self, Extra};
use crate::config::LlamaConfig;
use crate::data::{Batch, MixData};
use crate::device::Precision;
use crate::error::{IoContext, Result, TrainerError};
use crate::eval::{valid_loss, ValidWindows};
use crate::loss::IGNORE;
use crate::memory::{self, Limit, Source, Workload};
use crate::model::Llama;
use crate::optim::{clip_scale, grad_norm, AdamW, AdamWConfig};
use crate::schedule::Schedule;

/// Where the initial weights come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// Fresh weights for a configuration, drawn from a seed.
    Scratch {
        /// The model.
        config: LlamaConfig,
        /// Initialisation seed.
        seed: u64,
    },
    /// A Hugging Face checkpoint directory (continual pre-training).
    Checkpoint(PathBuf),
}

/// Everything that defines a run's results; saved as `RUN/run.json` and
/// compared on `--resume`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The mix: `OUT/mix/NAME`.
    pub mix: PathBuf,
    /// SHA-256 of the mix index, from its sidecar.
    pub mix_sha256: String,
    /// Initial weights.
    pub start: Start,
    /// Optimizer steps.
    pub steps: u64,
    /// Samples per forward pass.
    pub micro_batch: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Learning rate over the steps.
    pub schedule: Schedule,
    /// AdamW settings.
    pub adamw: AdamWConfig,
    /// Global gradient-norm limit (0: none).
    pub clip: f64,
    /// Evaluate every this many steps, and at the end (0: only at the end).
    pub eval_every: u64,
    /// Validation samples per language at each evaluation (0: none).
    pub eval_samples: usize,
    /// Save a checkpoint every this many steps (0: never).
    pub save_every: u64,
    /// dtype of the forward pass.
    pub compute_dtype: Precision,
    /// dtype of the final weights.
    pub save_dtype: Precision,
    /// Token ids whose embedding rows (and head rows, when untied) are set
    /// to the mean of the trained rows before the first step
    /// (`--init-untrained-tokens mean`, [`chat_template_tokens`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mean_init: Vec<u32>,
    /// Rows left out of that mean besides `mean_init`: every added token of
    /// the tokenizer (Llama-3's ~250 reserved special tokens were never
    /// trained either).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mean_left_out: Vec<u32>,
}

/// How to run it.
pub struct RunOptions {
    /// The run directory.
    pub out: PathBuf,
    /// The device.
    pub device: Device,
    /// Continue from the latest checkpoint in `out`.
    pub resume: bool,
    /// Stop after this step, saving a checkpoint there, as a job with a
    /// time limit would; `resume` continues from it. A step at or before
    /// the one a resumed run starts from is already passed.
    pub stop_at: Option<u64>,
    /// Show a progress bar (when stderr is a terminal).
    pub progress: bool,
    /// The memory a step may use, in bytes, instead of what the device has
    /// ([`memory::available`]).
    pub max_memory: Option<u64>,
    /// Stop as diverged when a step's loss is not finite or passes this
    /// many times the lowest step loss of the run so far (the sweep's
    /// rule; [`Diverged`]). `None`: train to the end whatever the loss.
    pub diverge_factor: Option<f64>,
}

/// Why a run stopped as diverged; written to `RUN/diverged.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diverged {
    /// The step whose loss diverged.
    pub step: u64,
    /// Its training loss (`null` when not finite).
    pub loss: Option<f64>,
    /// The lowest step loss before it (`null` at the first step).
    pub lowest: Option<f64>,
    /// What happened, in words.
    pub reason: String,
}

/// The file a diverged run writes.
pub const DIVERGED: &str = "diverged.json";

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Optimizer steps done.
    pub step: u64,
    /// Learning rate of this step.
    pub lr: f64,
    /// Training loss of the step: the mean over its counted targets
    /// (token-weighted across micro-batches).
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Training tokens seen so far.
    pub tokens: u64,
    /// Training tokens per second over this step.
    pub tokens_per_s: f64,
    /// Validation loss per language, on evaluation steps.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub val_loss: BTreeMap<String, f64>,
}

/// `RUN/checkpoint-N/trainer_state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainerState {
    step: u64,
    tokens: u64,
}

/// What a call to [`train`] did. Displays as the command line's summary: the
/// last step's losses, then where the metrics are.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The step it resumed from (0 for a fresh run).
    pub resumed_from: u64,
    /// The last step done.
    pub last_step: u64,
    /// The run's optimizer steps.
    pub steps: u64,
    /// The metrics of the steps this call ran.
    pub metrics: Vec<Metrics>,
    /// Whether it stopped early (`stop_at`).
    pub stopped: bool,
    /// Why it stopped as diverged, if it did.
    pub diverged: Option<Diverged>,
    /// `RUN/metrics.jsonl`.
    pub metrics_path: PathBuf,
    /// Estimated and measured memory, as written to `RUN/memory.jsonl`.
    pub memory: memory::Record,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(last) = self.metrics.last() {
            write!(
                f,
                "step {}/{}: loss {:.4}",
                last.step, self.steps, last.loss
            )?;
            for (lang, loss) in &last.val_loss {
                write!(f, ", val {lang} {loss:.4}")?;
            }
            if self.stopped {
                f.write_str(" (stopped; --resume continues)")?;
            }
            if let Some(d) = &self.diverged {
                write!(f, " (diverged: {})", d.reason)?;
            }
            writeln!(f)?;
        }
        write!(f, "metrics: {}", self.metrics_path.display())
    }
}

/// Parses the JSON file `path`.
fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).at("reading", path)?;
    serde_json::from_str(&text).map_err(|source| TrainerError::Json {
        path: path.to_path_buf(),
        source,
    })
}

fn checkpoint_dir(out: &Path, step: u64) -> PathBuf {
    out.join(format!("checkpoint-{step:06}"))
}

/// The latest complete checkpoint in `out`: (step, directory).
fn latest_checkpoint(out: &Path) -> Result<Option<(u64, PathBuf)>> {
    let mut best = None;
    for e in std::fs::read_dir(out).at("listing", out)? {
        let path = e.at("listing", out)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(step) = name
            .strip_prefix("checkpoint-")
            .and_then(|s| s.parse::<u64>().ok())
        {
            if path.join("trainer_state.json").exists()
                && best.as_ref().is_none_or(|(s, _)| step > *s)
            {
                best = Some((step, path));
            }
        }
    }
    Ok(best)
}

fn differing_keys(a: &RunSpec, b: &RunSpec) -> Vec<String> {
    let value = |s: &RunSpec| serde_json::to_value(s).expect("a RunSpec serializes");
    let (a, b) = (value(a), value(b));
    let (a, b) = (a.as_object().expect("a map"), b.as_object().expect("a map"));
    a.keys()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// Refuses settings the mix cannot serve.
fn check(spec: &RunSpec, data: &MixData) -> Result<()> {
    let global = spec.micro_batch * spec.grad_accum;
    let needed = spec.steps as usize * global;
    let have = data.len(Split::Train);
    if needed > have {
        return Err(TrainerError::MixTooShort {
            steps: spec.steps,
            global,
            needed,
            have,
        });
    }
    Ok(())
}

/// What the run directory holds, as the options need it.
enum RunDir {
    /// No run yet: a new one starts.
    New,
    /// The run to continue: its latest checkpoint, saved after this step.
    Resume(u64, PathBuf),
}

/// When a run saves checkpoints, for messages.
fn saves(spec: &RunSpec) -> String {
    match spec.save_every {
        0 => "saves a checkpoint only at --stop-at".to_string(),
        n => format!("saves a checkpoint every {n} steps and at --stop-at"),
    }
}

/// Checks the run directory against the options, writing nothing. A new
/// run needs a directory without `run.json` or `metrics.jsonl`; `--resume`
/// needs `run.json` with the same settings as `spec`, and a checkpoint.
fn inspect_run(spec: &RunSpec, opts: &RunOptions) -> Result<RunDir> {
    let out = &opts.out;
    let run_json = out.join("run.json");
    if !opts.resume {
        if run_json.exists() || out.join("metrics.jsonl").exists() {
            return Err(TrainerError::RunExists { out: out.clone() });
        }
        return Ok(RunDir::New);
    }
    if !run_json.exists() {
        return Err(TrainerError::NoRunToResume { out: out.clone() });
    }
    let stored: RunSpec = read_json(&run_json)?;
    let keys = differing_keys(&stored, spec);
    if !keys.is_empty() {
        return Err(TrainerError::ResumeMismatch { keys });
    }
    match latest_checkpoint(out)? {
        Some((step, dir)) => Ok(RunDir::Resume(step, dir)),
        None => Err(TrainerError::NoCheckpoint {
            out: out.clone(),
            saves: saves(spec),
        }),
    }
}

/// Creates the directory of a new run and writes its `run.json`.
fn write_run_json(spec: &RunSpec, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).at("creating", out)?;
    let path = out.join("run.json");
    let text = serde_json::to_string_pretty(spec).expect("a RunSpec serializes") + "\n";
    almr::fsutil::write_atomic(&path, text.as_bytes()).at("writing", &path)
}

/// The model configuration a run starts from.
fn model_config(spec: &RunSpec) -> Result<LlamaConfig> {
    match &spec.start {
        Start::Scratch { config, .. } => Ok(config.clone()),
        Start::Checkpoint(dir) => LlamaConfig::load(&dir.join(checkpoint::CONFIG)),
    }
}

/// Estimates a step's peak memory, prints it on stderr, and refuses the run
/// if it passes `--max-memory` or what the device has.
fn check_memory(spec: &RunSpec, opts: &RunOptions, data: &MixData) -> Result<memory::Check> {
    let workload = Workload {
        micro_batch: spec.micro_batch,
        grad_accum: spec.grad_accum,
        seq_len: data.seq_len(),
        compute: spec.compute_dtype,
        cuda: !opts.device.is_cpu(),
    };
    let limit = match opts.max_memory {
        Some(bytes) => Some(Limit {
            bytes,
            source: Source::MaxMemory,
        }),
        None => memory::available(&opts.device),
    };
    let check = memory::check(&model_config(spec)?, workload, limit)?;
    eprintln!("{check}");
    Ok(check)
}

/// Appends `record` to `RUN/memory.jsonl`.
fn log_memory(out: &Path, record: &memory::Record) -> Result<()> {
    let path = out.join("memory.jsonl");
    let line = serde_json::to_string(record).expect("a memory record serializes");
    File::options()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{line}"))
        .at("writing", &path)
}

/// `RUN/metrics.jsonl`, appended to line by line.
struct MetricsLog {
    path: PathBuf,
    file: File,
    /// The lowest finite step loss logged (+∞ before the first): the
    /// divergence rule's reference, kept across a resume.
    lowest: f64,
}

impl MetricsLog {
    /// Opens the log of a run that starts after `step`, keeping the lines
    /// of steps `1..=step` and dropping any partial line.
    fn open(out: &Path, step: u64) -> Result<MetricsLog> {
        let path = out.join("metrics.jsonl");
        let mut lowest = f64::INFINITY;
        if path.exists() {
            let text = std::fs::read_to_string(&path).at("reading", &path)?;
            let mut kept = String::new();
            for line in text.lines() {
                match serde_json::from_str::<Metrics>(line) {
                    Ok(m) if m.step <= step => {
                        kept.push_str(line);
                        kept.push('\n');
                        lowest = lowest.min(m.loss);
                    }
                    _ => {}
                }
            }
            // Atomic: a kill here must not lose the steps kept.
            almr::fsutil::write_atomic(&path, kept.as_bytes()).at("writing", &path)?;
        }
        let file = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .at("opening", &path)?;
        Ok(MetricsLog { path, file, lowest })
    }

    /// Appends `m`; under a divergence factor, says whether its loss
    /// diverged against the lowest loss before it.
    fn append(&mut self, m: &Metrics, factor: Option<f64>) -> Result<Option<Diverged>> {
        self.write(m)?;
        let diverged = factor.and_then(|f| diverged(m, self.lowest, f));
        if m.loss.is_finite() {
            self.lowest = self.lowest.min(m.loss);
        }
        Ok(diverged)
    }

    fn write(&mut self, m: &Metrics) -> Result<()> {
        let line = serde_json::to_string(m).expect("metrics serialize");
        writeln!(self.file, "{line}")
            .and_then(|()| self.file.flush())
            .at("writing", &self.path)
    }
}

/// Whether step `m` diverged: a loss (training, or validation on an
/// evaluation step) that is not finite, or a training loss above `factor`
/// times `lowest`, the lowest of the steps before.
fn diverged(m: &Metrics, lowest: f64, factor: f64) -> Option<Diverged> {
    let finite = m.loss.is_finite() && m.val_loss.values().all(|v| v.is_finite());
    let reason = if !finite {
        format!("a loss is not finite at step {}", m.step)
    } else if m.loss > factor * lowest {
        format!(
            "loss {:.4} at step {} is above {factor} × the lowest, {lowest:.4}",
            m.loss, m.step
        )
    } else {
        return None;
    };
    Some(Diverged {
        step: m.step,
        loss: m.loss.is_finite().then_some(m.loss),
        lowest: lowest.is_finite().then_some(lowest),
        reason,
    })
}

fn progress_bar(opts: &RunOptions, steps: u64, done: u64) -> ProgressBar {
    let bar = if opts.progress {
        ProgressBar::new(steps)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} steps {msg} [{elapsed} < {eta}]")
            .expect("template"),
    );
    bar.set_position(done);
    bar
}

/// What the micro-batches of a step give.
struct StepGrads {
    /// The summed gradients, by parameter name.
    grads: BTreeMap<String, Tensor>,
    /// The step's loss, token-weighted ([`Trainer::gradients`]).
    loss: f64,
    /// Tokens in the micro-batches, padding excluded.
    tokens: usize,
}

/// A run in progress: the model, its optimizer and how far they are.
struct Trainer<'a> {
    spec: &'a RunSpec,
    data: MixData,
    model: Llama,
    opt: AdamW,
    /// Optimizer steps done.
    step: u64,
    /// Training tokens seen.
    tokens: u64,
}

impl<'a> Trainer<'a> {
    /// Starts the run, or resumes it from its latest checkpoint.
    fn start(
        spec: &'a RunSpec,
        opts: &RunOptions,
        data: MixData,
        run: RunDir,
    ) -> Result<Trainer<'a>> {
        match run {
            RunDir::Resume(step, dir) => Trainer::resume(spec, opts, data, &dir, step),
            RunDir::New => {
                write_run_json(spec, &opts.out)?;
                Trainer::fresh(spec, opts, data)
            }
        }
    }

    /// Step 0: fresh weights from the seed, or the `--init` checkpoint's;
    /// optimizer moments at zero.
    fn fresh(spec: &'a RunSpec, opts: &RunOptions, data: MixData) -> Result<Trainer<'a>> {
        let compute = spec.compute_dtype.into();
        let model = match &spec.start {
            Start::Scratch { config, seed } => Llama::init(config, *seed, &opts.device, compute)?,
            Start::Checkpoint(dir) => checkpoint::load(dir, &opts.device, compute)?,
        };
        if !spec.mean_init.is_empty() {
            model.set_rows_to_mean(&spec.mean_init, &spec.mean_left_out)?;
            eprintln!(
                "--init-untrained-tokens mean: rows {:?} set to the mean of the {} rows that are not added tokens",
                spec.mean_init,
                model.config().vocab_size.saturating_sub(spec.mean_left_out.len())
            );
        }
        let opt = AdamW::new(model.params(), spec.adamw.clone())?;
        Ok(Trainer {
            spec,
            data,
            model,
            opt,
            step: 0,
            tokens: 0,
        })
    }

    /// Weights, optimizer moments and counters of the run's checkpoint
    /// `dir`, saved after optimizer step `step`.
    fn resume(
        spec: &'a RunSpec,
        opts: &RunOptions,
        data: MixData,
        dir: &Path,
        step: u64,
    ) -> Result<Trainer<'a>> {
        let model = checkpoint::load(dir, &opts.device, spec.compute_dtype.into())?;
        let mut opt = AdamW::new(model.params(), spec.adamw.clone())?;
        let state: TrainerState = read_json(&dir.join("trainer_state.json"))?;
        let path = dir.join("optimizer.safetensors");
        let moments = candle_core::safetensors::load(&path, &Device::Cpu)
            .map_err(|source| TrainerError::ReadTensors { path, source })?;
        opt.restore(moments.into_iter().collect(), step)?;
        Ok(Trainer {
            spec,
            data,
            model,
            opt,
            step: state.step,
            tokens: state.tokens,
        })
    }

    /// One optimizer step: gradients summed over the micro-batches, clipped,
    /// applied by AdamW. Returns the step's metrics, without validation loss.
    fn optimizer_step(&mut self) -> Result<Metrics> {
        let spec = self.spec;
        let t0 = Instant::now();
        let lr = spec.schedule.lr(self.step);
        let step = self.gradients()?;
        let grad_norm = grad_norm(&step.grads)?;
        self.opt
            .step(&step.grads, lr, clip_scale(grad_norm, spec.clip))?;
        drop(step.grads);
        self.tokens += step.tokens as u64;
        self.step += 1;
        Ok(Metrics {
            step: self.step,
            lr,
            loss: step.loss,
            grad_norm,
            tokens: self.tokens,
            tokens_per_s: step.tokens as f64 / t0.elapsed().as_secs_f64(),
            val_loss: BTreeMap::new(),
        })
    }

    /// The next step's micro-batches.
    fn micro_batches(&self) -> Result<Vec<Batch>> {
        let spec = self.spec;
        (0..spec.grad_accum)
            .map(|k| {
                let first = (self.step as usize * spec.grad_accum + k) * spec.micro_batch;
                let ids: Vec<usize> = (first..first + spec.micro_batch).collect();
                self.data.batch(Split::Train, &ids, self.model.device())
            })
            .collect()
    }

    /// The gradients of the next step, by parameter name, and its loss.
    ///
    /// Token-weighted over the micro-batches, as Hugging Face's trainer does
    /// with `num_items_in_batch`: the step's loss is the sum of the losses
    /// of every counted target of its micro-batches over their number, so
    /// micro-batch `k`, whose mean is over `n_k` of the step's `N` counted
    /// targets, has its gradient scaled by `n_k / N`. A target in a
    /// micro-batch with few assistant tokens weighs as much as one in a
    /// micro-batch with many. CPT windows count every target, so there
    /// `n_k / N = 1 / grad_accum`: the mean of the micro-batches' means.
    fn gradients(&self) -> Result<StepGrads> {
        let batches = self.micro_batches()?;
        let counts: Vec<usize> = (batches.iter())
            .map(|b| b.targets.iter().filter(|&&t| t != IGNORE).count())
            .collect();
        let total: usize = counts.iter().sum();
        let mut grads: BTreeMap<String, Tensor> = BTreeMap::new();
        let mut loss_sum = 0f64;
        for (b, &n) in batches.iter().zip(&counts) {
            let weight = if total == 0 {
                0.0
            } else {
                n as f64 / total as f64
            };
            let (loss, g) =
                (self.model).backward(&b.inputs, b.packing.as_ref(), &b.targets, weight)?;
            loss_sum += loss * weight;
            for (name, var) in self.model.params() {
                if let Some(gv) = g.get(var.as_tensor()) {
                    let total = match grads.remove(&name) {
                        Some(prev) => (prev + gv)?,
                        None => gv.clone(),
                    };
                    grads.insert(name, total);
                }
            }
        }
        Ok(StepGrads {
            grads,
            loss: loss_sum,
            tokens: batches.iter().map(|b| b.tokens).sum(),
        })
    }

    /// Adds the validation loss per language to `m` on evaluation steps:
    /// every `eval_every` steps and at the end.
    fn evaluate_if_due(&self, m: &mut Metrics) -> Result<()> {
        let spec = self.spec;
        let due = spec.eval_samples > 0
            && (self.step == spec.steps
                || (spec.eval_every > 0 && self.step.is_multiple_of(spec.eval_every)));
        if due {
            let losses = valid_loss(&self.model, &self.data, spec.eval_samples, spec.micro_batch)?;
            for (lang, l) in losses.0 {
                m.val_loss.insert(lang, l.loss);
            }
        }
        Ok(())
    }

    /// Whether a checkpoint is due after this step: every `save_every`
    /// steps except after the last, and at `stop_at`.
    fn save_due(&self, stop_at: Option<u64>) -> bool {
        let spec = self.spec;
        let every = spec.save_every > 0 && self.step.is_multiple_of(spec.save_every);
        (every || stop_at == Some(self.step)) && self.step < spec.steps
    }

    /// Saves `RUN/checkpoint-N`: f32 weights, optimizer moments, counters.
    fn save(&self, out: &Path) -> Result<()> {
        let state = TrainerState {
            step: self.step,
            tokens: self.tokens,
        };
        let state = serde_json::to_vec_pretty(&state).expect("the state serializes");
        let mut extra = vec![
            Extra::Tensors("optimizer.safetensors", self.opt.state()?),
            Extra::Bytes("trainer_state.json", state),
        ];
        extra.extend(checkpoint::build_tokenizer(&self.spec.mix));
        checkpoint::save(
            &self.model,
            &checkpoint_dir(out, self.step),
            Precision::F32,
            checkpoint::MAX_SHARD_BYTES,
            &extra,
        )
    }
}

/// Records the validation windows per language in `RUN/valid.json` and
/// warns on stderr, once per call, of each language with too few: they
/// depend only on the mix and `eval_samples`, so they are known before the
/// first step.
fn note_valid_windows(spec: &RunSpec, data: &MixData, out: &Path) -> Result<()> {
    if spec.eval_samples == 0 {
        return Ok(());
    }
    let windows = ValidWindows::count(data, spec.eval_samples)?;
    windows.write(out)?;
    for w in windows.warnings() {
        eprintln!("warning: {w}");
    }
    Ok(())
}

/// Refuses settings that cannot run, before anything is read.
fn check_options(spec: &RunSpec, opts: &RunOptions) -> Result<()> {
    if spec.micro_batch == 0 || spec.grad_accum == 0 {
        return Err(TrainerError::NotPositive("micro-batch and grad-accum"));
    }
    if opts.stop_at == Some(0) {
        return Err(TrainerError::NotPositive("--stop-at"));
    }
    check_hyper(spec)
}

/// Refuses learning rates and AdamW settings that would train on NaN or
/// diverge by construction: `--lr nan` would otherwise run to the end.
fn check_hyper(spec: &RunSpec) -> Result<()> {
    let (s, a) = (&spec.schedule, &spec.adamw);
    const NON_NEGATIVE: &str = "a finite number ≥ 0";
    const UNIT: &str = "in [0, 1)";
    let checks: [(&'static str, f64, bool, &'static str); 7] = [
        (
            "--lr",
            s.peak,
            s.peak.is_finite() && s.peak >= 0.0,
            NON_NEGATIVE,
        ),
        (
            "--min-lr",
            s.min,
            s.min.is_finite() && (0.0..=s.peak).contains(&s.min),
            "a finite number in [0, --lr]",
        ),
        ("--beta1", a.beta1, (0.0..1.0).contains(&a.beta1), UNIT),
        ("--beta2", a.beta2, (0.0..1.0).contains(&a.beta2), UNIT),
        (
            "--eps",
            a.eps,
            a.eps.is_finite() && a.eps > 0.0,
            "a finite number > 0",
        ),
        (
            "--weight-decay",
            a.weight_decay,
            a.weight_decay.is_finite() && a.weight_decay >= 0.0,
            NON_NEGATIVE,
        ),
        (
            "--clip",
            spec.clip,
            spec.clip.is_finite() && spec.clip >= 0.0,
            "a finite number ≥ 0 (0: no clipping)",
        ),
    ];
    match checks.into_iter().find(|c| !c.2) {
        Some((flag, value, _, range)) => Err(TrainerError::OutOfRange { flag, value, range }),
        None => Ok(()),
    }
}

/// The special tokens a chat template uses, by id: the added tokens of
/// `BUILD/tokenizer.json` whose text appears in the `chat_template` of
/// `BUILD/tokenizer_config.json` (a string, or a list of named templates).
/// Base Llama-3 never trained those of the Llama-3 Instruct template
/// (`<|start_header_id|>`, `<|end_header_id|>`, `<|eot_id|>`). None at all
/// is an error: the template does not use the tokenizer's special tokens.
/// The special tokens of a build's chat template, and every added token.
#[derive(Debug)]
pub struct ChatTokens {
    /// The added tokens the template uses, by id, with their text.
    pub used: Vec<(u32, String)>,
    /// The id of every added token of `tokenizer.json`.
    pub added: Vec<u32>,
}

pub fn chat_template_tokens(build: &Path) -> Result<ChatTokens> {
    #[derive(Deserialize)]
    struct Added {
        id: u32,
        content: String,
    }
    #[derive(Deserialize)]
    struct Tokenizer {
        #[serde(default)]
        added_tokens: Vec<Added>,
    }
    let tokenizer: Tokenizer = read_json(&build.join("tokenizer.json"))?;
    let path = build.join("tokenizer_config.json");
    let config: serde_json::Value = read_json(&path)?;
    let problem = |problem: &str| TrainerError::Config {
        path: path.clone(),
        problem: problem.to_string(),
    };
    let template = match config.get("chat_template") {
        Some(serde_json::Value::String(t)) => t.clone(),
        Some(serde_json::Value::Array(list)) => (list.iter())
            .filter_map(|t| t.get("template")?.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => return Err(problem("no chat_template")),
    };
    let mut added: Vec<u32> = tokenizer.added_tokens.iter().map(|a| a.id).collect();
    added.sort_unstable();
    added.dedup();
    let mut used: Vec<(u32, String)> = (tokenizer.added_tokens.into_iter())
        .filter(|a| !a.content.is_empty() && template.contains(&a.content))
        .map(|a| (a.id, a.content))
        .collect();
    used.sort();
    used.dedup();
    match used.is_empty() {
        true => Err(problem(
            "its chat_template uses none of the added tokens of tokenizer.json",
        )),
        false => Ok(ChatTokens { used, added }),
    }
}

/// Starts run `out`, defined by `spec`, as a branch of run `parent` after
/// its optimizer step `step`: `out` gets `spec` as its `run.json`, the
/// parent's `checkpoint-STEP` (its files hard-linked, or copied across
/// file systems) and the parent's metrics of steps `1..=step`, so that
/// [`train`] with `resume` continues it. When `spec` agrees with the
/// parent's up to that step (a WSD run with a shorter decay branching off
/// a longer one's stable phase), the branch is the run `spec` would have
/// been from the start, bit for bit. `out` must not hold a run.
pub fn branch(spec: &RunSpec, parent: &Path, step: u64, out: &Path) -> Result<()> {
    let from = checkpoint_dir(parent, step);
    if !from.join("trainer_state.json").exists() {
        return Err(TrainerError::NoBranchPoint {
            parent: parent.to_path_buf(),
            step,
        });
    }
    if out.join("run.json").exists() || out.join("metrics.jsonl").exists() {
        return Err(TrainerError::RunExists {
            out: out.to_path_buf(),
        });
    }
    link_dir(&from, &checkpoint_dir(out, step))?;
    let path = parent.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).at("reading", &path)?;
    let kept: String = (text.lines())
        .filter(|l| serde_json::from_str::<Metrics>(l).is_ok_and(|m| m.step <= step))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = out.join("metrics.jsonl");
    almr::fsutil::write_atomic(&path, kept.as_bytes()).at("writing", &path)?;
    write_run_json(spec, out)
}

/// Hard-links (or copies) the files of directory `from` into a new `to`.
fn link_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).at("creating", to)?;
    for e in std::fs::read_dir(from).at("listing", from)? {
        let src = e.at("listing", from)?.path();
        let dst = to.join(src.file_name().expect("a directory entry has a name"));
        if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).at("copying to", &dst)?;
        }
    }
    Ok(())
}

/// Runs (or resumes) training: checks the options, the run directory and
/// the memory a step needs (printing the estimate on stderr) before writing
/// anything, then trains to `spec.steps` or `opts.stop_at`, and appends the
/// estimated and measured memory to `RUN/memory.jsonl`.
pub fn train(spec: &RunSpec, opts: &RunOptions) -> Result<Outcome> {
    check_options(spec, opts)?;
    let data = MixData::open(&spec.mix)?;
    check(spec, &data)?;
    let run = inspect_run(spec, opts)?;
    let mem = check_memory(spec, opts, &data)?;
    let mut trainer = Trainer::start(spec, opts, data, run)?;
    note_valid_windows(spec, &trainer.data, &opts.out)?;
    let mut log = MetricsLog::open(&opts.out, trainer.step)?;
    let bar = progress_bar(opts, spec.steps, trainer.step);
    let from = trainer.step;
    let mut metrics = Vec::new();
    let mut stopped = false;
    let mut diverged = None;
    while trainer.step < spec.steps && !stopped {
        let mut m = trainer.optimizer_step()?;
        trainer.evaluate_if_due(&mut m)?;
        diverged = log.append(&m, opts.diverge_factor)?;
        bar.set_message(format!("loss {:.4} lr {:.2e}", m.loss, m.lr));
        bar.inc(1);
        metrics.push(m);
        if let Some(d) = &diverged {
            write_diverged(&opts.out, d)?;
            break;
        }
        if trainer.save_due(opts.stop_at) {
            trainer.save(&opts.out)?;
        }
        stopped = opts.stop_at == Some(trainer.step) && trainer.step < spec.steps;
    }
    if stopped || diverged.is_some() {
        bar.abandon();
    } else {
        if trainer.step == spec.steps {
            let final_dir = opts.out.join("final");
            checkpoint::save(
                &trainer.model,
                &final_dir,
                spec.save_dtype,
                checkpoint::MAX_SHARD_BYTES,
                &checkpoint::build_tokenizer(&spec.mix),
            )?;
        }
        bar.finish();
    }
    let record = memory::Record::measure(&mem, &opts.device, from, trainer.step);
    eprintln!("{record}");
    log_memory(&opts.out, &record)?;
    Ok(Outcome {
        resumed_from: from,
        last_step: trainer.step,
        steps: spec.steps,
        metrics,
        stopped,
        diverged,
        metrics_path: log.path.clone(),
        memory: record,
    })
}

/// Writes `RUN/diverged.json`.
fn write_diverged(out: &Path, d: &Diverged) -> Result<()> {
    let path = out.join(DIVERGED);
    let text = serde_json::to_string_pretty(d).expect("a Diverged serializes") + "\n";
    almr::fsutil::write_atomic(&path, text.as_bytes()).at("writing", &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The added tokens the template text holds, sorted by id; a template
    /// without any is an error.
    #[test]
    fn chat_template_tokens_are_the_added_tokens_the_template_uses() {
        let dir = tempfile::tempdir().unwrap();
        let added = |id: u32, content: &str| serde_json::json!({ "id": id, "content": content, "special": true });
        let tokenizer = serde_json::json!({
            "added_tokens": [
                added(128000, "<|begin_of_text|>"),
                added(128009, "<|eot_id|>"),
                added(128006, "<|start_header_id|>"),
                added(128007, "<|end_header_id|>"),
                added(128010, "<|reserved_special_token_2|>"),
            ],
            "model": { "type": "BPE" },
        });
        std::fs::write(dir.path().join("tokenizer.json"), tokenizer.to_string()).unwrap();
        let config = |template: &str| {
            let c =
                serde_json::json!({ "chat_template": template, "bos_token": "<|begin_of_text|>" });
            std::fs::write(dir.path().join("tokenizer_config.json"), c.to_string()).unwrap();
        };
        config(
            "{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n\
             {{ m.content }}<|eot_id|>{% endfor %}",
        );
        let got = chat_template_tokens(dir.path()).unwrap();
        let ids: Vec<u32> = got.used.iter().map(|(i, _)| *i).collect();
        assert_eq!(ids, [128006, 128007, 128009]);
        assert_eq!(got.used[2].1, "<|eot_id|>");
        assert_eq!(got.added, [128000, 128006, 128007, 128009, 128010]);
        config("{{ messages }}");
        let e = chat_template_tokens(dir.path()).unwrap_err();
        assert!(e.to_string().contains("none of the added tokens"), "{e}");
    }
}
