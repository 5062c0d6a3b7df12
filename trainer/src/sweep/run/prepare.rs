//! Before the cells: the sweep directory and its plan, a mix per ALMR (made
//! through the almr library, or reused when it is the same mix), and the
//! base checkpoint with its validation losses (`SWEEP/base.json`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use almr::mix::{MixOptions, Size, TooLong};
use almr::mixfile::MixReport;

use super::plan::{mix_name, Base, Plan, PLAN};
use super::{read, train_in, write, Context, RunError, RunResult};
use crate::checkpoint;
use crate::data::MixData;
use crate::device::Precision;
use crate::eval::valid_loss;
use crate::schedule::{Kind, Schedule};
use crate::train::{RunSpec, Start};

/// The file of the base's record.
pub const BASE: &str = "base.json";

/// `SWEEP/base.json`: the base checkpoint and its validation losses on the
/// split every cell is validated on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaseRecord {
    /// The checkpoint every cell starts from.
    pub checkpoint: PathBuf,
    /// Its validation loss per language.
    pub val_loss: BTreeMap<String, f64>,
}

/// Creates `sweep` with `plan` as its `sweep.json`, or checks that the
/// sweep there was started with the same plan.
pub fn start(sweep: &Path, plan: &Plan) -> RunResult<()> {
    plan.check()?;
    let path = sweep.join(PLAN);
    if path.exists() {
        let stored = Plan::load(sweep)?;
        let keys = stored.differences(plan);
        return match keys.is_empty() {
            true => Ok(()),
            false => Err(RunError::Plan(format!(
                "{} was started with other settings ({}): run it with no settings to continue it, or choose another sweep directory",
                sweep.display(),
                keys.join(", ")
            ))),
        };
    }
    std::fs::create_dir_all(sweep).map_err(RunError::io("creating", sweep))?;
    write(&path, &plan.to_json())
}

/// The mix options of the sweep's mix `name` at ALMR `almr` with `steps`
/// steps' samples.
fn mix_options(plan: &Plan, name: String, almr: f64, steps: u64) -> MixOptions {
    MixOptions {
        name,
        almr,
        seq_len: plan.seq_len,
        seed: plan.seed,
        size: Size::Samples(plan.samples(steps)),
        weights: BTreeMap::new(),
        valid_share: plan.valid_share,
        valid_shares: BTreeMap::new(),
        max_epochs: None,
        too_long: TooLong::Drop,
        force: false,
    }
}

/// Makes the mix `opts` over the build, or reuses it when a mix of that
/// name was made with these options over this build (a sweep run again);
/// another mix of that name is an error.
fn make_mix(plan: &Plan, opts: &MixOptions) -> RunResult<MixReport> {
    let path = plan.build.join(almr::mixfile::DIR).join(&opts.name);
    let mix_err = |source| RunError::Mix {
        name: opts.name.clone(),
        source: Box::new(source),
    };
    if !almr::mixfile::mix_file(&path, "json").exists() {
        return almr::mix::mix(&plan.build, opts).map_err(mix_err);
    }
    let report = almr::mixfile::open_checked(&path).map_err(|e| mix_err(e.into()))?;
    let manifest = plan.build.join("manifest.json");
    let bytes = std::fs::read(&manifest).map_err(RunError::io("reading", &manifest))?;
    let same = report.target_almr == opts.almr
        && report.seq_len == opts.seq_len
        && report.seed == opts.seed
        && Size::Samples(report.samples) == opts.size
        && report.manifest_sha256 == almr::fsutil::sha256_hex(&bytes)
        && report
            .sources
            .iter()
            .all(|s| s.valid_share == opts.valid_share);
    match same {
        true => Ok(report),
        false => Err(RunError::Plan(format!(
            "{}: a mix of that name exists, made with other settings or over another build; remove it, or name the sweep directory otherwise",
            path.display()
        ))),
    }
}

/// What a source holds out for validation: the same in every mix of the
/// sweep, or the losses of its cells would not compare.
fn held_out(report: &MixReport) -> Vec<(String, u64, u64, u64)> {
    (report.sources.iter())
        .map(|s| {
            (
                s.name.clone(),
                s.valid_documents,
                s.valid_tokens,
                s.valid_samples,
            )
        })
        .collect()
}

/// Makes (or reuses) the mix of every ALMR of the grid; returns each
/// mix's index digest, by ALMR.
pub fn mixes(plan: &Plan) -> RunResult<Vec<String>> {
    let mut digests = Vec::new();
    let mut first: Option<(String, Vec<_>)> = None;
    for &r in &plan.almr {
        let opts = mix_options(plan, mix_name(&plan.name, r), r, plan.longest());
        let report = make_mix(plan, &opts)?;
        let valid = held_out(&report);
        match &first {
            Some((name, v)) if *v != valid => {
                return Err(RunError::Plan(format!(
                    "the mixes {name} and {} hold out different validation documents",
                    opts.name
                )))
            }
            Some(_) => {}
            None => first = Some((opts.name.clone(), valid)),
        }
        digests.push(report.index.digest.sha256.clone());
    }
    Ok(digests)
}

/// The run that pre-trains the base, on its own mix `NAME-base`.
fn base_spec(plan: &Plan) -> RunResult<RunSpec> {
    let Base::Pretrain {
        config,
        steps,
        lr,
        warmup,
        ..
    } = &plan.base
    else {
        return Err(RunError::Plan("the sweep's base is a checkpoint".into()));
    };
    let (steps, lr, warmup) = (*steps, *lr, *warmup);
    let config = crate::config::LlamaConfig::preset_or_file(config)
        .map_err(RunError::train(Path::new(config)))?;
    let mix = plan
        .build
        .join(almr::mixfile::DIR)
        .join(format!("{}-base", plan.name));
    let sidecar: MixReport = read(&almr::mixfile::mix_file(&mix, "json"))?;
    Ok(RunSpec {
        mix,
        mix_sha256: sidecar.index.digest.sha256,
        start: Start::Scratch {
            config,
            seed: plan.seed,
        },
        steps,
        micro_batch: plan.micro_batch,
        grad_accum: plan.grad_accum,
        schedule: Schedule {
            kind: Kind::Cosine,
            peak: lr,
            min: lr / 10.0,
            warmup,
            total: steps,
            decay_steps: 0,
        },
        adamw: plan.adamw.clone(),
        clip: plan.clip,
        eval_every: 0,
        eval_samples: plan.eval_samples,
        save_every: (steps / 4).max(1),
        compute_dtype: plan.compute_dtype,
        save_dtype: Precision::F32,
        mean_init: Vec::new(),
        mean_left_out: Vec::new(),
    })
}

/// The base checkpoint: `--init`'s, or `SWEEP/base/final` after
/// pre-training it (or continuing to).
fn base_checkpoint(sweep: &Path, plan: &Plan, ctx: &Context) -> RunResult<PathBuf> {
    match &plan.base {
        Base::Init { checkpoint } => Ok(checkpoint.clone()),
        Base::Pretrain { almr, steps, .. } => {
            let run = sweep.join("base");
            let done = run.join("final");
            if !done.join(checkpoint::CONFIG).exists() {
                let opts = mix_options(plan, format!("{}-base", plan.name), *almr, *steps);
                make_mix(plan, &opts)?;
                let spec = base_spec(plan)?;
                eprintln!("sweep: pre-training the base ({steps} steps at ALMR {almr})");
                train_in(&spec, &run, None, None, ctx)?;
            }
            Ok(done)
        }
    }
}

/// The base's record: read from `SWEEP/base.json`, or made (the base
/// trained if the sweep trains it, then validated on the first mix's
/// validation split, which every mix shares) and written there.
pub fn base(sweep: &Path, plan: &Plan, ctx: &Context) -> RunResult<BaseRecord> {
    let path = sweep.join(BASE);
    if path.exists() {
        return read(&path);
    }
    let checkpoint = base_checkpoint(sweep, plan, ctx)?;
    let device = ctx.device.open().map_err(RunError::train(&checkpoint))?;
    let model = checkpoint::load(&checkpoint, &device, plan.compute_dtype.into())
        .map_err(RunError::train(&checkpoint))?;
    let mix = plan.mix_path(plan.almr[0]);
    let data = MixData::open(&mix).map_err(RunError::train(&mix))?;
    let losses = valid_loss(&model, &data, plan.eval_samples, plan.micro_batch)
        .map_err(RunError::train(&checkpoint))?;
    let record = BaseRecord {
        checkpoint,
        val_loss: losses.0.into_iter().map(|(l, v)| (l, v.loss)).collect(),
    };
    let text = serde_json::to_string_pretty(&record).expect("a base record serializes") + "\n";
    write(&path, &text)?;
    Ok(record)
}
