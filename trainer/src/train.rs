//! The training loop, nanoGPT-style: for each optimizer step, accumulate
//! gradients over micro-batches taken in the mix's order, clip, step AdamW at
//! the scheduled learning rate, log, and now and then evaluate and save.
//!
//! A run lives in one directory:
//!
//! ```text
//! RUN/run.json                  what defines the run (checked on --resume)
//! RUN/metrics.jsonl             one line per step
//! RUN/checkpoint-000100/        config.json, model.safetensors (f32),
//!                               optimizer.safetensors, trainer_state.json
//! RUN/final/                    the last weights, in --save-dtype
//! ```
//!
//! Training draws no random numbers after initialisation: the data order is
//! the index's and there is no dropout. So a checkpoint's weights, optimizer
//! moments and step are the whole state, and a resumed run continues exactly
//! as an uninterrupted one would.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use almr::mix::Split;

use crate::checkpoint;
use crate::config::LlamaConfig;
use crate::data::MixData;
use crate::device::Precision;
use crate::error::{IoContext, Result, TrainerError};
use crate::eval::valid_loss;
use crate::model::Llama;
use crate::optim::{clip_grad_norm, AdamW, AdamWConfig};
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
}

/// How to run it.
pub struct RunOptions {
    /// The run directory.
    pub out: PathBuf,
    /// The device.
    pub device: Device,
    /// Continue from the latest checkpoint in `out`.
    pub resume: bool,
    /// Stop after this step, as a job with a time limit would; resume later.
    pub stop_at: Option<u64>,
    /// Show a progress bar (when stderr is a terminal).
    pub progress: bool,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Optimizer steps done.
    pub step: u64,
    /// Learning rate of this step.
    pub lr: f64,
    /// Mean training loss over the step's micro-batches.
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

/// What a call to [`train`] did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The step it resumed from (0 for a fresh run).
    pub resumed_from: u64,
    /// The last step done.
    pub last_step: u64,
    /// The metrics of the steps this call ran.
    pub metrics: Vec<Metrics>,
    /// Whether it stopped early (`stop_at`).
    pub stopped: bool,
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

/// Keeps the metrics lines of steps `1..=step`, dropping any partial line.
fn truncate_metrics(path: &Path, step: u64) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let text = std::fs::read_to_string(path).at("reading", path)?;
    let mut kept = String::new();
    for line in text.lines() {
        match serde_json::from_str::<Metrics>(line) {
            Ok(m) if m.step <= step => {
                kept.push_str(line);
                kept.push('\n');
            }
            _ => {}
        }
    }
    std::fs::write(path, kept).at("writing", path)
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

/// Runs (or resumes) training.
pub fn train(spec: &RunSpec, opts: &RunOptions) -> Result<Outcome> {
    if spec.micro_batch == 0 || spec.grad_accum == 0 {
        return Err(TrainerError::NotPositive("micro-batch and grad-accum"));
    }
    let compute = spec.compute_dtype.into();
    let data = MixData::open(&spec.mix)?;
    let global = spec.micro_batch * spec.grad_accum;
    let needed = spec.steps as usize * global;
    let have = data.index().len(Split::Train);
    if needed > have {
        return Err(TrainerError::MixTooShort {
            steps: spec.steps,
            global,
            needed,
            have,
        });
    }

    std::fs::create_dir_all(&opts.out).at("creating", &opts.out)?;
    let run_json = opts.out.join("run.json");
    let metrics_path = opts.out.join("metrics.jsonl");
    let mut resumed = None;
    if run_json.exists() {
        if !opts.resume {
            return Err(TrainerError::RunExists {
                out: opts.out.clone(),
            });
        }
        let stored: RunSpec = read_json(&run_json)?;
        let keys = differing_keys(&stored, spec);
        if !keys.is_empty() {
            return Err(TrainerError::ResumeMismatch { keys });
        }
        resumed = latest_checkpoint(&opts.out)?;
    } else {
        let text = serde_json::to_string_pretty(spec).expect("a RunSpec serializes") + "\n";
        std::fs::write(&run_json, text).at("writing", &run_json)?;
    }

    let (model, mut opt, start_step, mut tokens) = match &resumed {
        Some((step, dir)) => {
            let model = checkpoint::load(dir, &opts.device, compute)?;
            let mut opt = AdamW::new(model.params(), spec.adamw.clone())?;
            let state: TrainerState = read_json(&dir.join("trainer_state.json"))?;
            let path = dir.join("optimizer.safetensors");
            let moments = candle_core::safetensors::load(&path, &Device::Cpu)
                .map_err(|source| TrainerError::ReadTensors { path, source })?;
            opt.restore(moments.into_iter().collect(), *step)?;
            (model, opt, state.step, state.tokens)
        }
        None => {
            let model = match &spec.start {
                Start::Scratch { config, seed } => {
                    Llama::init(config, *seed, &opts.device, compute)?
                }
                Start::Checkpoint(dir) => checkpoint::load(dir, &opts.device, compute)?,
            };
            let opt = AdamW::new(model.params(), spec.adamw.clone())?;
            (model, opt, 0, 0)
        }
    };
    truncate_metrics(&metrics_path, start_step)?;
    let mut metrics_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .at("opening", &metrics_path)?;

    let bar = if opts.progress {
        ProgressBar::new(spec.steps)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} steps {msg} [{elapsed} < {eta}]")
            .expect("template"),
    );
    bar.set_position(start_step);

    let seq_len = data.seq_len() as u64;
    let mut out = Outcome {
        resumed_from: start_step,
        last_step: start_step,
        metrics: Vec::new(),
        stopped: false,
    };
    for step in start_step..spec.steps {
        let t0 = Instant::now();
        let lr = spec.schedule.lr(step);
        let mut grads: BTreeMap<String, Tensor> = BTreeMap::new();
        let mut loss_sum = 0f64;
        for k in 0..spec.grad_accum {
            let first = (step as usize * spec.grad_accum + k) * spec.micro_batch;
            let ids: Vec<usize> = (first..first + spec.micro_batch).collect();
            let b = data.batch(Split::Train, &ids, &opts.device)?;
            let loss = model.loss(&b.inputs, &b.targets)?;
            loss_sum += loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            let g = (loss / spec.grad_accum as f64)?.backward()?;
            for (name, var) in model.params() {
                if let Some(gv) = g.get(var.as_tensor()) {
                    let total = match grads.remove(&name) {
                        Some(prev) => (prev + gv)?,
                        None => gv.clone(),
                    };
                    grads.insert(name, total);
                }
            }
        }
        let grad_norm = clip_grad_norm(&mut grads, spec.clip)?;
        opt.step(&grads, lr)?;
        drop(grads);
        let step_tokens = global as u64 * seq_len;
        tokens += step_tokens;
        let done = step + 1;
        let mut m = Metrics {
            step: done,
            lr,
            loss: loss_sum / spec.grad_accum as f64,
            grad_norm,
            tokens,
            tokens_per_s: step_tokens as f64 / t0.elapsed().as_secs_f64(),
            val_loss: BTreeMap::new(),
        };
        let eval_now = spec.eval_samples > 0
            && (done == spec.steps || (spec.eval_every > 0 && done % spec.eval_every == 0));
        if eval_now {
            for (lang, l) in valid_loss(&model, &data, spec.eval_samples, spec.micro_batch)? {
                m.val_loss.insert(lang, l.loss);
            }
        }
        let line = serde_json::to_string(&m).expect("metrics serialize");
        writeln!(metrics_file, "{line}")
            .and_then(|()| metrics_file.flush())
            .at("writing", &metrics_path)?;
        bar.set_message(format!("loss {:.4} lr {:.2e}", m.loss, lr));
        bar.inc(1);
        out.metrics.push(m);
        out.last_step = done;

        if spec.save_every > 0 && done % spec.save_every == 0 && done < spec.steps {
            let state = TrainerState { step: done, tokens };
            let moments = opt.state()?;
            let moments: Vec<(&str, &Tensor)> =
                moments.iter().map(|(n, t)| (n.as_str(), t)).collect();
            let dir = checkpoint_dir(&opts.out, done);
            let optimizer = safetensors::serialize(moments, None).map_err(|source| {
                TrainerError::WriteTensors {
                    path: dir.join("optimizer.safetensors"),
                    source,
                }
            })?;
            let state = serde_json::to_vec_pretty(&state).expect("the state serializes");
            checkpoint::save(
                &model,
                &dir,
                Precision::F32,
                checkpoint::MAX_SHARD_BYTES,
                &[
                    ("optimizer.safetensors", optimizer),
                    ("trainer_state.json", state),
                ],
            )?;
        }
        if opts.stop_at == Some(done) && done < spec.steps {
            out.stopped = true;
            bar.abandon();
            return Ok(out);
        }
    }
    if out.last_step == spec.steps {
        checkpoint::save(
            &model,
            &opts.out.join("final"),
            spec.save_dtype,
            checkpoint::MAX_SHARD_BYTES,
            &[],
        )?;
    }
    bar.finish();
    Ok(out)
}
