//! Training on the fixture shards, on CPU: the loss falls, a resumed run
//! continues exactly as an uninterrupted one (from its --stop-at step),
//! --resume needs a run and a checkpoint, memory is checked and measured,
//! and eval reads a shard.

mod common;

use std::path::Path;

use almr_trainer::device::Precision;
use almr_trainer::optim::AdamWConfig;
use almr_trainer::schedule::{Kind, Schedule};
use almr_trainer::train::{train, Metrics, RunOptions, RunSpec, Start};
use candle_core::{DType, Device};

fn spec(mix: &Path, steps: u64, lr: f64) -> RunSpec {
    RunSpec {
        mix: mix.to_path_buf(),
        mix_sha256: String::new(),
        start: Start::Scratch {
            config: common::tiny(2),
            seed: 1,
        },
        steps,
        micro_batch: 4,
        grad_accum: 2,
        schedule: Schedule {
            kind: Kind::Cosine,
            peak: lr,
            min: lr / 10.0,
            warmup: 2,
            total: steps,
            decay_steps: 0,
        },
        adamw: AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
        },
        clip: 1.0,
        eval_every: 4,
        eval_samples: 4,
        save_every: 3,
        compute_dtype: Precision::F32,
        save_dtype: Precision::F32,
        mean_init: Vec::new(),
        mean_left_out: Vec::new(),
    }
}

fn try_run(
    spec: &RunSpec,
    out: &Path,
    resume: bool,
    stop_at: Option<u64>,
) -> Result<almr_trainer::train::Outcome, almr_trainer::TrainerError> {
    train(
        spec,
        &RunOptions {
            out: out.to_path_buf(),
            device: Device::Cpu,
            resume,
            stop_at,
            progress: false,
            max_memory: None,
            diverge_factor: None,
        },
    )
}

fn run(spec: &RunSpec, out: &Path, resume: bool, stop_at: Option<u64>) -> Vec<Metrics> {
    try_run(spec, out, resume, stop_at).unwrap().metrics
}

fn read_metrics(out: &Path) -> Vec<Metrics> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Metrics without the timing, which differs from run to run.
fn curve(m: &[Metrics]) -> Vec<Metrics> {
    m.iter()
        .map(|x| Metrics {
            tokens_per_s: 0.0,
            ..x.clone()
        })
        .collect()
}

#[test]
fn the_loss_falls_well_below_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let mix = common::fixture_mix(dir.path(), "falls", 32, 400);
    let mut s = spec(&mix, 24, 1e-2);
    s.grad_accum = 1;
    s.save_every = 0;
    s.eval_every = 0;
    let m = run(&s, &dir.path().join("run"), false, None);
    let (first, last) = (m[0].loss, m.last().unwrap().loss);
    assert!(
        first > 11.0,
        "a random model starts near ln(128256) = 11.76, not {first}"
    );
    assert!(last < first - 2.5, "loss went from {first} to {last}");
    let val = &m.last().unwrap().val_loss;
    assert_eq!(val.keys().collect::<Vec<_>>(), ["en", "zh"]);
    assert!(val.values().all(|v| *v < first - 1.5), "{val:?}");
    eprintln!("loss {first} -> {last}; validation {val:?}");
}

#[test]
fn a_resumed_run_continues_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mix = common::fixture_mix(dir.path(), "resume", 16, 200);
    let mut s = spec(&mix, 6, 2e-3);
    s.micro_batch = 2;
    s.save_every = 2;
    s.eval_every = 3;
    s.eval_samples = 2;
    let whole = run(&s, &dir.path().join("whole"), false, None);
    assert_eq!(whole.len(), 6);

    let parts = dir.path().join("parts");
    // Stop after step 3, between the checkpoints of steps 2 and 4: the stop
    // saves one of its own.
    let first = run(&s, &parts, false, Some(3));
    assert_eq!(first.len(), 3);
    assert!(parts.join("checkpoint-000003/trainer_state.json").exists());
    let e = try_run(&s, &parts, false, None).err().unwrap();
    assert!(e.to_string().contains("--resume"), "{e}");
    let mut other = s.clone();
    other.clip = 0.5;
    let e = try_run(&other, &parts, true, None).err().unwrap();
    assert!(e.to_string().contains("clip"), "{e}");

    // The same stop again, as a job script repeats its command line: step 3
    // is passed, and the run goes on to the end.
    let rest = try_run(&s, &parts, true, Some(3)).unwrap();
    assert_eq!(
        rest.resumed_from, 3,
        "resumes from the --stop-at checkpoint"
    );
    assert_eq!(rest.memory.from_step, 3);
    let rest = rest.metrics;
    assert_eq!(rest.first().unwrap().step, 4);
    assert_eq!(curve(&read_metrics(&parts)), curve(&whole));
    assert!(whole.iter().any(|m| !m.val_loss.is_empty()));

    let a = almr_trainer::checkpoint::load_tensors(&dir.path().join("whole/final")).unwrap();
    let b = almr_trainer::checkpoint::load_tensors(&parts.join("final")).unwrap();
    for (name, t) in &a {
        let bits = |t: &candle_core::Tensor| {
            t.flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>()
        };
        assert!(bits(t) == bits(&b[name]), "{name} differs");
    }
}

/// Every f32 of a checkpoint's tensors, by name, as bits.
fn weights(dir: &Path) -> Vec<(String, Vec<u32>)> {
    let t = almr_trainer::checkpoint::load_tensors(dir).unwrap();
    let mut out: Vec<_> = (t.iter())
        .map(|(n, t)| {
            let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (n.clone(), v.iter().map(|x| x.to_bits()).collect())
        })
        .collect();
    out.sort();
    out
}

/// A WSD run of 4 steps (decay 1) branched off the stable phase of a
/// WSD run of 8 steps (decay 2) after step 3 is the 4-step run itself, bit
/// for bit: metrics, validation loss and final weights.
#[test]
fn a_wsd_branch_is_the_shorter_run_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let mix = common::fixture_mix(dir.path(), "branch", 16, 200);
    let wsd = |steps: u64, decay: u64| {
        let mut s = spec(&mix, steps, 2e-3);
        s.micro_batch = 2;
        s.save_every = 0;
        s.eval_every = 2;
        s.eval_samples = 2;
        s.schedule.kind = Kind::Wsd;
        s.schedule.total = steps;
        s.schedule.decay_steps = decay;
        s
    };
    let (long, short) = (wsd(8, 2), wsd(4, 1));
    let parent = dir.path().join("long");
    run(&long, &parent, false, Some(3));
    run(&long, &parent, true, None);
    let whole = dir.path().join("short");
    let want = run(&short, &whole, false, None);

    let fork = dir.path().join("fork");
    almr_trainer::train::branch(&short, &parent, 3, &fork).unwrap();
    let e = almr_trainer::train::branch(&short, &parent, 3, &fork).unwrap_err();
    assert!(e.to_string().contains("already holds a run"), "{e}");
    let e = almr_trainer::train::branch(&short, &parent, 2, &dir.path().join("x")).unwrap_err();
    assert!(e.to_string().contains("no checkpoint after step 2"), "{e}");
    let got = try_run(&short, &fork, true, None).unwrap();
    assert_eq!(got.resumed_from, 3);
    assert_eq!(curve(&read_metrics(&fork)), curve(&want));
    assert!(want.last().unwrap().val_loss.len() == 2);
    assert_eq!(weights(&fork.join("final")), weights(&whole.join("final")));
    // The long run's own last steps decay differently: not the same weights.
    assert_ne!(
        weights(&parent.join("final")),
        weights(&whole.join("final"))
    );
}

/// A learning rate far too high: the run stops at the first step whose loss
/// passes the factor times the lowest before it, says so in diverged.json,
/// and saves no final weights; without a factor it trains on.
#[test]
fn a_diverging_run_stops_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mix = common::fixture_mix(dir.path(), "diverge", 16, 200);
    let mut s = spec(&mix, 12, 3.0);
    s.save_every = 0;
    s.eval_every = 0;
    s.eval_samples = 0;
    s.clip = 0.0;
    s.schedule.warmup = 0;
    let out = dir.path().join("run");
    let options = |out: &Path, factor| RunOptions {
        out: out.to_path_buf(),
        device: Device::Cpu,
        resume: false,
        stop_at: None,
        progress: false,
        max_memory: None,
        diverge_factor: factor,
    };
    let o = train(&s, &options(&out, Some(1.5))).unwrap();
    let d = o.diverged.expect("diverged");
    assert!(d.step < 12, "{d:?}");
    assert_eq!(o.last_step, d.step);
    let lowest = d.lowest.unwrap();
    let loss = d.loss.unwrap_or(f64::INFINITY);
    assert!(loss > 1.5 * lowest, "{d:?}");
    let losses: Vec<f64> = o.metrics.iter().map(|m| m.loss).collect();
    let before = &losses[..losses.len() - 1];
    assert_eq!(lowest, before.iter().cloned().fold(f64::INFINITY, f64::min));
    assert!(before.iter().all(|&l| l <= 1.5 * lowest), "{losses:?}");
    let written: almr_trainer::train::Diverged =
        serde_json::from_str(&std::fs::read_to_string(out.join("diverged.json")).unwrap()).unwrap();
    assert_eq!(written, d);
    assert!(!out.join("final").exists());

    let on = dir.path().join("on");
    let o = train(&s, &options(&on, None)).unwrap();
    assert!(o.diverged.is_none() && o.last_step == 12);
}

#[test]
fn resume_needs_a_run_and_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mix = common::fixture_mix(dir.path(), "needs", 16, 100);
    let mut s = spec(&mix, 6, 2e-3);
    s.micro_batch = 2;
    s.save_every = 4;
    s.eval_samples = 0;

    // No run.json: an error that says how to start, and nothing written.
    let none = dir.path().join("none");
    let e = try_run(&s, &none, true, None).err().unwrap().to_string();
    assert!(
        e.contains("no run.json") && e.contains("without --resume"),
        "{e}"
    );
    assert!(!none.exists(), "a refused --resume made the directory");

    // A run killed before its first checkpoint: run.json and two lines of
    // metrics, no checkpoint. --resume refuses and keeps the metrics.
    let early = dir.path().join("early");
    run(&s, &early, false, Some(2));
    std::fs::remove_dir_all(early.join("checkpoint-000002")).unwrap();
    let metrics = std::fs::read(early.join("metrics.jsonl")).unwrap();
    let e = try_run(&s, &early, true, None).err().unwrap().to_string();
    assert!(
        e.contains("no checkpoint") && e.contains("every 4 steps") && e.contains("remove"),
        "{e}"
    );
    assert_eq!(std::fs::read(early.join("metrics.jsonl")).unwrap(), metrics);
    // Nor does a new run start over it.
    let e = try_run(&s, &early, false, None).err().unwrap().to_string();
    assert!(e.contains("already holds a run"), "{e}");
}

#[test]
fn memory_is_estimated_refused_and_measured() {
    let dir = tempfile::tempdir().unwrap();
    let mix = common::fixture_mix(dir.path(), "memory", 16, 100);
    let mut s = spec(&mix, 2, 2e-3);
    s.eval_samples = 0;
    s.save_every = 0;
    let limited = |out: &Path, max_memory| {
        train(
            &s,
            &RunOptions {
                out: out.to_path_buf(),
                device: Device::Cpu,
                resume: false,
                stop_at: None,
                progress: false,
                max_memory,
                diverge_factor: None,
            },
        )
    };
    // A limit below the estimate: refused with advice, before anything is
    // written, so the advised command line can start the run.
    let out = dir.path().join("small");
    let e = limited(&out, Some(1 << 20)).err().unwrap().to_string();
    assert!(e.contains("a training step needs about"), "{e}");
    assert!(e.contains("limit (--max-memory)"), "{e}");
    assert!(!out.exists(), "a refused run wrote {}", out.display());

    let out = dir.path().join("run");
    let done = limited(&out, Some(64 << 30)).unwrap();
    let m = &done.memory;
    assert_eq!((m.from_step, m.to_step), (0, 2));
    assert_eq!(m.limit_bytes, Some(64 << 30));
    assert_eq!(m.limit_source.as_deref(), Some("--max-memory"));
    assert!(m.estimate_bytes > 16 * common::tiny(2).parameters() as u64);
    if cfg!(target_os = "linux") {
        assert!(m.peak_rss_bytes.unwrap() > 0);
    }
    let line = std::fs::read_to_string(out.join("memory.jsonl")).unwrap();
    let logged: almr_trainer::memory::Record = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(&logged, m);
    // metrics.jsonl keeps its fields.
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let mut keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["grad_norm", "loss", "lr", "step", "tokens", "tokens_per_s"]
    );
}

#[test]
fn eval_reads_a_shard_as_non_overlapping_windows() {
    let dir = tempfile::tempdir().unwrap();
    // Documents of 30, 50 and 24 tokens: 104 tokens make 5 windows of 17 + 1,
    // 6 windows of 16 + 1 and so on; the tail is dropped.
    let prefix = dir.path().join("s");
    let mut w = almr::shard::ShardWriter::create(&prefix, almr::shard::DType::I32).unwrap();
    for (n, base) in [(30u32, 100u32), (50, 90_000), (24, 128_000)] {
        w.push(&(base..base + n).collect::<Vec<_>>()).unwrap();
    }
    w.finish().unwrap();
    let model =
        almr_trainer::model::Llama::init(&common::tiny(1), 3, &Device::Cpu, DType::F32).unwrap();
    for (seq_len, windows) in [(16, 6), (17, 5), (103, 1), (104, 0)] {
        let l = almr_trainer::eval::shard_loss(&model, &prefix, seq_len, 4).unwrap();
        assert_eq!(l.windows, windows, "seq_len {seq_len}");
        assert_eq!(l.tokens, windows * seq_len);
        if windows > 0 {
            assert!((l.loss - (128256f64).ln()).abs() < 0.5, "{}", l.loss);
        }
    }
    // By hand: the mean loss of the six windows of 17 tokens of the stream.
    let stream: Vec<u32> = (100..130)
        .chain(90_000..90_050)
        .chain(128_000..128_024)
        .collect();
    let mut sum = 0f64;
    for k in 0..6 {
        let b = almr_trainer::data::to_batch(
            &[stream[k * 17..(k + 1) * 17].to_vec()],
            16,
            &Device::Cpu,
        )
        .unwrap();
        let (window_sum, counted) = model
            .loss_sum(&b.inputs, b.packing.as_ref(), &b.targets)
            .unwrap();
        sum += window_sum / counted as f64;
    }
    let got = almr_trainer::eval::shard_loss(&model, &prefix, 16, 4).unwrap();
    assert!(
        (got.loss - sum / 6.0).abs() < 1e-5,
        "{} against {}",
        got.loss,
        sum / 6.0
    );
}

#[test]
fn nan_and_out_of_range_hyper_parameters_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mix = common::fixture_mix(dir.path(), "hyper", 16, 100);
    type Change = fn(&mut RunSpec);
    let cases: [(&str, Change); 6] = [
        ("--lr NaN", |s| s.schedule.peak = f64::NAN),
        ("--min-lr", |s| s.schedule.min = 1.0),
        ("--beta1 1", |s| s.adamw.beta1 = 1.0),
        ("--eps 0", |s| s.adamw.eps = 0.0),
        ("--weight-decay -1", |s| s.adamw.weight_decay = -1.0),
        ("--clip inf", |s| s.clip = f64::INFINITY),
    ];
    for (said, change) in cases {
        let mut s = spec(&mix, 2, 1e-3);
        change(&mut s);
        let out = dir.path().join("run");
        let e = try_run(&s, &out, false, None).err().unwrap().to_string();
        assert!(e.starts_with(said), "{said}: {e}");
        assert!(!out.exists(), "{said}: a refused run made its directory");
    }
}
