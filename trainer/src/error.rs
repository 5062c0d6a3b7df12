//! The library's errors: one [`TrainerError`] for every module.
//!
//! Messages say what went wrong and, for files, which file; causes (an I/O
//! error, a JSON syntax error, …) are kept as [`std::error::Error::source`],
//! so `{:#}` through `anyhow` prints the whole chain.

use std::path::{Path, PathBuf};

/// Why a trainer operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Reading or writing a file or directory failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done: `reading`, `writing`, `creating`, ….
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file does not parse.
    #[error("parsing {}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A directory given to `almr-train report` is not a training run.
    #[error("{} is not a training run: {why}", dir.display())]
    NotARun {
        /// The directory.
        dir: PathBuf,
        /// What it lacks.
        why: &'static str,
    },
    /// A line of a run's `metrics.jsonl` or `memory.jsonl` does not parse,
    /// and it is not a partial last line.
    #[error("{}:{line}: not a {what} line", path.display())]
    JsonLine {
        /// The file.
        path: PathBuf,
        /// What its lines are: `metrics`, `memory`.
        what: &'static str,
        /// The line number, from 1.
        line: usize,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A chart of the HTML report could not be drawn.
    #[error("drawing a chart")]
    Chart(#[from] plotters::drawing::DrawingAreaErrorKind<std::io::Error>),
    /// A safetensors file could not be read.
    #[error("reading {}", path.display())]
    ReadTensors {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: candle_core::Error,
    },
    /// A safetensors file could not be written.
    #[error("writing {}", path.display())]
    WriteTensors {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// Tensors of the wrong shape or contents were given.
    #[error("{0}")]
    Shape(String),
    /// The mix index could not be read.
    #[error(transparent)]
    Mix(#[from] almr::mixfile::MixIndexError),
    /// A shard could not be read.
    #[error(transparent)]
    Shard(#[from] almr::shard::ShardError),
    /// A model configuration is invalid.
    #[error("{}: {problem}", path.display())]
    Config {
        /// The file it came from (`trainer/configs/NAME.json` for a preset).
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// `--config` names neither a preset nor a file.
    #[error("{name:?} is neither a preset ({presets}) nor a config.json file")]
    UnknownConfig {
        /// What was given.
        name: String,
        /// The presets, comma-separated.
        presets: String,
    },
    /// A checkpoint directory does not hold a model of its config.
    #[error("loading {}", dir.display())]
    Checkpoint {
        /// The checkpoint directory.
        dir: PathBuf,
        /// What is wrong.
        #[source]
        source: Box<TrainerError>,
    },
    /// A tensor the model needs is not in the checkpoint.
    #[error("the checkpoint has no tensor {0}")]
    MissingTensor(String),
    /// A tensor's shape is not the one the config needs.
    #[error("{name}: shape {found:?}, the config needs {expected:?}")]
    TensorShape {
        /// The tensor.
        name: String,
        /// Its shape.
        found: Vec<usize>,
        /// The config's.
        expected: Vec<usize>,
    },
    /// The checkpoint has tensors the model does not use.
    #[error("the checkpoint has {count} tensors this Llama config does not use, e.g. {example}")]
    UnusedTensors {
        /// How many.
        count: usize,
        /// One of them.
        example: String,
    },
    /// A shard index lists a tensor in a file that does not hold it.
    #[error("{}: lists {name} in {file}, which does not hold it", index.display())]
    ShardIndex {
        /// `model.safetensors.index.json`.
        index: PathBuf,
        /// The tensor.
        name: String,
        /// The shard file it names.
        file: String,
    },
    /// The optimizer state lacks a moment.
    #[error("the optimizer state has no {0}")]
    MissingMoment(String),
    /// A moment's shape is not its parameter's.
    #[error("{name}: shape {found:?}")]
    MomentShape {
        /// The moment (`exp_avg.NAME`, `exp_avg_sq.NAME`).
        name: String,
        /// Its shape.
        found: Vec<usize>,
    },
    /// The optimizer state has moments of no parameter.
    #[error("the optimizer state has unknown tensors")]
    UnknownMoments,
    /// A window of tokens has the wrong length.
    #[error("a window of {found} tokens, not {expected}")]
    WindowLength {
        /// Its length.
        found: usize,
        /// `seq_len + 1`.
        expected: usize,
    },
    /// Settings that must be positive are not.
    #[error("{0} must be positive")]
    NotPositive(&'static str),
    /// A hyper-parameter outside the range it takes.
    #[error("{flag} {value}: must be {range}")]
    OutOfRange {
        /// The option, e.g. `--lr`.
        flag: &'static str,
        /// The value given.
        value: f64,
        /// What it must be, e.g. `a finite number ≥ 0`.
        range: &'static str,
    },
    /// The mix has fewer training samples than the steps need.
    #[error(
        "{steps} steps of {global} samples need {needed} samples; the mix has {have}: make a longer mix or train fewer steps"
    )]
    MixTooShort {
        /// Optimizer steps.
        steps: u64,
        /// Samples per step.
        global: usize,
        /// Samples needed.
        needed: usize,
        /// Training samples in the mix.
        have: usize,
    },
    /// The run directory already holds a run and `--resume` was not given.
    #[error("{} already holds a run: pass --resume to continue it, or choose another --out", out.display())]
    RunExists {
        /// The run directory.
        out: PathBuf,
    },
    /// `--resume` for a directory without `run.json`.
    #[error("--resume: {} holds no run to continue (no run.json): start the run without --resume", out.display())]
    NoRunToResume {
        /// The run directory.
        out: PathBuf,
    },
    /// `--resume` for a run that has saved no checkpoint yet.
    #[error(
        "--resume: {} has no checkpoint to continue from (the run {saves}, and stopped before the first): remove the directory and start the run again without --resume",
        out.display()
    )]
    NoCheckpoint {
        /// The run directory.
        out: PathBuf,
        /// When the run saves: `saves every N steps and at --stop-at`.
        saves: String,
    },
    /// A branch from a step the parent run saved no checkpoint after.
    #[error("{}: no checkpoint after step {step} to branch from", parent.display())]
    NoBranchPoint {
        /// The parent run.
        parent: PathBuf,
        /// The step.
        step: u64,
    },
    /// `--resume` with settings other than those in `run.json`.
    #[error("--resume with other settings than the run's: {} differ", keys.join(", "))]
    ResumeMismatch {
        /// The settings that differ.
        keys: Vec<String>,
    },
    /// A training step would need more memory than there is: the
    /// estimate, the limit and the advice, as the memory check words them.
    #[error("{0}")]
    OutOfMemory(String),
    /// A memory size other than a number with an optional K, M, G or T.
    #[error("memory size {0:?}: use a number of bytes with an optional K, M, G or T (powers of 1024), e.g. 2.5G or 800M")]
    BadSize(String),
    /// A device name other than `cpu`, `cuda` or `cuda:N`.
    #[error("device {0:?}: use cpu, cuda or cuda:N")]
    BadDevice(String),
    /// A CUDA device asked of a build without CUDA.
    #[error(
        "this almr-train was built without CUDA: rebuild with --features cuda (see DEVELOPERS.md)"
    )]
    NoCuda,
}

/// A result with a [`TrainerError`].
pub type Result<T, E = TrainerError> = std::result::Result<T, E>;

/// Names the file of an I/O error.
pub(crate) trait IoContext<T> {
    /// The error as [`TrainerError::Io`]: `action` (`reading`, …) `path`.
    fn at(self, action: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T> {
        self.map_err(|source| TrainerError::Io {
            action,
            path: path.to_path_buf(),
            source,
        })
    }
}
