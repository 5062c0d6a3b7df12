//! Memory of a training step: estimated from the shapes before the first
//! step, checked against what the device has, and measured at the end.
//!
//! # The estimate
//!
//! Notation: `P` parameters, `V` vocabulary, `H` hidden size, `L` layers,
//! `nh` attention heads of width `d`, `Q = nh·d`, `K = kv_heads·d`, `I` the
//! MLP width; `b` the micro-batch, `t` the sequence length, `N = b·t` tokens
//! per forward pass; `e` bytes per element of the compute dtype (4 for f32,
//! 2 for bf16). Every term below is in bytes, and follows what
//! [`crate::model`], [`crate::loss`] and [`crate::optim`] allocate.
//!
//! ## On the CPU in f32: the fused path
//!
//! The blocks' backward pass is written out ([`crate::model`]'s
//! `backprop`): each block keeps what its backward pass reads and drops it
//! once its gradients are out. [`crate::fused`] and [`crate::attention`]
//! keep no attention score, the head reuses one logits buffer and AdamW
//! updates in place. So:
//!
//! - **State**, `16·P` (`20·P` with `--grad-accum` above 1), as below.
//! - **Activations**, per token and layer `4·(4·H + 2·Q + 2·K + 3·I)`: the
//!   block's input, the two norms' outputs and the residual stream after
//!   attention (`4·H`); the rotated queries and attention's output (`2·Q`);
//!   the rotated keys and the values (`2·K`); the MLP's gate, up and SwiGLU
//!   (`3·I`). Plus `5·H·4` per token outside the layers.
//! - **Head**: one logits buffer of `min(rows, N)` rows of `V` floats, the
//!   head's weight gradient `V·H·4` and the hidden states' `N·H·4`, while the
//!   parameters' gradients do not exist yet.
//! - **Backward pass**: the head's weight gradient (`V·H·4`), into which
//!   the embedding's is added in place when the two are tied (untied, the
//!   embedding's gradient is another `V·H·4`), and one layer's gradients in
//!   flight, `4·(3·H + 2·I)` per token. Counted with every activation,
//!   though they are dropped as the pass goes down.
//! - **Retained**: [`RETAINED_FUSED`] of the transient memory, what the
//!   heap keeps beyond the live peak. The logits buffer, the largest block
//!   of a step, is made before the forward pass
//!   ([`loss::logits_buffer`]), so it lies below the activations and each
//!   step reuses its block; made on top of them, its hole was taken by the
//!   next step's activations and the heap grew by up to a buffer more.
//!   **Base** [`BASE`]; no optimizer temporaries.
//!
//! Measured against `VmHWM` on the `tiny` and `proxy-125m` presets (f32,
//! 1 × 512 to 16 × 512 and 2 × 1024 tokens, 10 steps): the estimate is
//! between 6 % below and 15 % above the peak, 9 % below over 14 steps of
//! `proxy-125m` (`docs/training.md`, "Memory").
//!
//! ## Elsewhere (CUDA, or bf16): composed tensor ops
//!
//! - **State**, `16·P`: master weights in f32 (4), their gradients in f32
//!   (4) and AdamW's two moments in f32 (8). With `--grad-accum` above 1 the
//!   running sum of the micro-batches' gradients and the next micro-batch's
//!   gradients live together: `4·P` more.
//! - **Casts**, `e·P` when the compute dtype is not f32: each weight is cast
//!   to it on use, and autograd keeps the cast for the backward pass.
//! - **Activations**: autograd keeps every intermediate tensor of the
//!   forward pass until the backward pass ends. Per token and layer:
//!   - two RMSNorms: the square, the normalised and the scaled values,
//!     `3·4·H` each in f32 (in bf16, also the f32 copy of the input and
//!     the cast back: `16·H`);
//!   - attention projections: the query's projection, its copy into heads,
//!     and RoPE's half negation, concatenation, two products and sum,
//!     `6.5·Q·e`; the same for the key, `6.5·K·e`; the value's projection
//!     and copy, `2·K·e`; with grouped-query attention, keys and values
//!     repeated to all heads, `2·Q·e`; the keys transposed, `Q·e`; the
//!     attention output and its copy back, `2·Q·e`; the output projection
//!     and the residual sum, `2·H·e`;
//!   - the MLP: gate, its SiLU, up, and their product, `4·I·e`; the down
//!     projection and the residual sum, `2·H·e`.
//!
//!   Plus, once per token: the embedding lookup, the final norm, and the
//!   hidden states times their gradient from the head (`≈ 5·H·4`).
//! - **Attention scores**, `b·nh·t·t` per layer, kept six times: the
//!   product `q·kᵀ`, scaled, masked, minus its row maximum, exponentiated,
//!   normalised (`6·4` bytes each in f32; in bf16 the product and scaling
//!   are bf16, the rest f32, and the probabilities are cast back: 26
//!   bytes).
//! - **Head** ([`crate::loss`]), while it runs: one chunk of
//!   [`loss::chunk_rows`]`(V)` rows of `V` logits in f32, turned into their
//!   gradient in place (on CUDA the softmax runs as tensor ops: four
//!   chunks); three `V·H·4` tensors: the running sum of the head's weight
//!   gradient, a chunk's `gᵀ·h`, and their new sum; and the gradient of the
//!   hidden states, `N·H·4`. The parameters' gradients do not exist yet,
//!   so this phase counts the state without them.
//! - **End of the backward pass**: with all the gradients, the head's
//!   weight gradient (`V·H·4`), added to the embedding's into another
//!   `V·H·4`; the gradients of one layer's scores in flight (`3·4` bytes
//!   per score); the hidden states' gradient (`N·H·4`).
//! - **Optimizer step**: AdamW updates one parameter at a time; for the
//!   largest (the `V·H` embedding), the new moments while the old ones
//!   still live and about three temporaries (decayed weight, denominator,
//!   update): `5·V·H·4`. The activations are gone by then.
//! - **Retained**: [`crate::keep_freed_memory`] makes glibc keep freed
//!   blocks in the heap and never give them back, so the resident size is
//!   the heap's high-water mark: the live peak plus the holes that tensors
//!   of other sizes leave. The logits chunk is the largest block of a step;
//!   the hole one step's chunk leaves is taken by smaller tensors in the
//!   next, which then needs a chunk-sized block of its own: counted as two
//!   chunks, plus [`RETAINED`] of the step's transient memory
//!   (activations, scores and the larger of the head and the end of the
//!   backward pass). Both numbers are measured, not derived: see
//!   `docs/training.md`, "Memory".
//! - **Base**, [`BASE`] on the CPU: the program, its libraries, thread
//!   stacks and the pages of the mix read so far. None on CUDA, where the
//!   limit is the device's free memory after its context is made.
//!
//! The peak is the larger of the forward/backward pass (activations and
//! scores, with the larger of the head phase and the end of the backward
//! pass) and the optimizer step, plus the casts, the retained memory and
//! the base.
//!
//! The estimate is checked against the measured peak resident size
//! (`VmHWM`) of CPU runs of the presets (`docs/training.md`); it has not
//! been measured on CUDA, where it is the same arithmetic in the compute
//! dtype.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use candle_core::{Device, DeviceLocation};
use serde::{Deserialize, Serialize};

use crate::config::LlamaConfig;
use crate::device::Precision;
use crate::error::{Result, TrainerError};
use crate::loss;

/// The share of a step's transient memory that glibc's heap holds beyond
/// the live peak, besides two logits chunks, on the composed path (see the
/// module's documentation; measured on the presets).
pub const RETAINED: f64 = 0.2;

/// The same on the fused CPU path (measured on the presets).
pub const RETAINED_FUSED: f64 = 0.15;

/// Resident memory of the program before any tensor: code, libraries,
/// thread stacks (32 MiB; measured: about 25).
pub const BASE: u64 = 32 << 20;

const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;

/// What a training step runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// Samples per forward pass.
    pub micro_batch: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Tokens per sample.
    pub seq_len: usize,
    /// dtype of the forward pass.
    pub compute: Precision,
    /// Whether it runs on a CUDA device (no program base, tensor-op softmax).
    pub cuda: bool,
}

/// The estimated peak of a training step, term by term, in bytes (see the
/// module's documentation for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    /// Weights, gradients, AdamW moments (and the running sum of the
    /// gradients under accumulation).
    pub state: u64,
    /// The parameters' gradients, part of `state`, which do not exist yet
    /// while the head runs.
    pub grads: u64,
    /// Weights cast to the compute dtype.
    pub casts: u64,
    /// Activations kept for the backward pass.
    pub activations: u64,
    /// Attention scores kept for the backward pass.
    pub attention: u64,
    /// The fused loss head, while it runs.
    pub head: u64,
    /// Beside the gradients at the end of the backward pass.
    pub backward: u64,
    /// The optimizer step's temporaries.
    pub optimizer: u64,
    /// What the allocator holds beyond the live peak.
    pub retained: u64,
    /// The program itself.
    pub base: u64,
}

impl Estimate {
    /// The step's transient memory: activations, scores, and the larger of
    /// the head phase and the end of the backward pass.
    fn transient(&self) -> u64 {
        let phase = (self.head + self.state - self.grads).max(self.backward + self.state);
        self.activations + self.attention + phase - self.state
    }

    /// The live peak: the forward/backward pass or the optimizer step,
    /// whichever is larger, with the state and casts.
    pub fn live(&self) -> u64 {
        self.casts + self.state + self.transient().max(self.optimizer)
    }

    /// The estimated peak resident (or device) memory.
    pub fn total(&self) -> u64 {
        self.base + self.live() + self.retained
    }
}

/// Bytes per element of a dtype.
fn bytes(p: Precision) -> u64 {
    match p {
        Precision::F32 => 4,
        Precision::Bf16 => 2,
    }
}

/// Bytes of activations one token keeps in one layer, in compute dtype of
/// `e` bytes (module documentation, "Activations"). Doubled, so that the
/// halves of RoPE's negation stay whole numbers; the caller halves.
fn layer_bytes_per_token_x2(c: &LlamaConfig, e: u64) -> u64 {
    let h = c.hidden_size as u64;
    let q = (c.num_attention_heads * c.head_dim()) as u64;
    let k = (c.kv_heads() * c.head_dim()) as u64;
    let i = c.intermediate_size as u64;
    let norm = if e == 4 { 12 * h } else { 16 * h };
    let repeat = if c.kv_heads() == c.num_attention_heads {
        0
    } else {
        2 * q
    };
    let attention = 13 * q + 13 * k + 2 * (2 * k + repeat + q + 2 * q + 2 * h);
    let mlp = 2 * (4 * i + 2 * h);
    2 * 2 * norm + e * (attention + mlp)
}

/// The estimated peak of a training step of `config` under `w`: the fused
/// CPU path in f32 ([`crate::fused`], [`crate::attention`], the in-place
/// AdamW), the composed tensor ops elsewhere (CUDA, bf16).
pub fn estimate(config: &LlamaConfig, w: &Workload) -> Estimate {
    if !w.cuda && w.compute == Precision::F32 {
        estimate_fused(config, w)
    } else {
        estimate_composed(config, w)
    }
}

/// Bytes of activations one token keeps in one layer on the fused CPU path:
/// in f32, the block's input, the two norms' outputs, the residual stream
/// after attention, the rotated queries and keys, the values, attention's
/// output, and the MLP's gate, up and SwiGLU: `4·H + 2·Q + 2·K + 3·I`
/// floats.
fn fused_layer_bytes_per_token(c: &LlamaConfig) -> u64 {
    let h = c.hidden_size as u64;
    let q = (c.num_attention_heads * c.head_dim()) as u64;
    let k = (c.kv_heads() * c.head_dim()) as u64;
    let i = c.intermediate_size as u64;
    4 * (4 * h + 2 * q + 2 * k + 3 * i)
}

/// The fused CPU path: no attention scores kept, the loss head on one
/// reused logits buffer, AdamW in place (no optimizer temporaries).
fn estimate_fused(config: &LlamaConfig, w: &Workload) -> Estimate {
    let p = config.parameters() as u64;
    let (v, h) = (config.vocab_size as u64, config.hidden_size as u64);
    let n = (w.micro_batch * w.seq_len) as u64;
    let layer = n * fused_layer_bytes_per_token(config);
    let chunk = (loss::chunk_rows(config.vocab_size) as u64).min(n) * v * 4;
    let vh = v * h * 4;
    let mut est = Estimate {
        state: 16 * p + if w.grad_accum > 1 { 4 * p } else { 0 },
        grads: 4 * p,
        casts: 0,
        activations: config.num_hidden_layers as u64 * layer + n * 5 * h * 4,
        attention: 0,
        head: chunk + vh + n * h * 4,
        backward: vh * if config.tie_word_embeddings { 1 } else { 2 }
            + n * 4 * (3 * h + 2 * config.intermediate_size as u64),
        optimizer: 0,
        retained: 0,
        base: BASE,
    };
    est.retained = (est.transient() as f64 * RETAINED_FUSED) as u64;
    est
}

/// The composed tensor ops (CUDA, bf16).
fn estimate_composed(config: &LlamaConfig, w: &Workload) -> Estimate {
    let p = config.parameters() as u64;
    let (v, h) = (config.vocab_size as u64, config.hidden_size as u64);
    let (layers, heads) = (
        config.num_hidden_layers as u64,
        config.num_attention_heads as u64,
    );
    let (b, t) = (w.micro_batch as u64, w.seq_len as u64);
    let n = b * t;
    let e = bytes(w.compute);
    let state = 16 * p + if w.grad_accum > 1 { 4 * p } else { 0 };
    let scores = b * heads * t * t;
    let score_bytes = if e == 4 { 24 } else { 26 };
    let chunks = if w.cuda { 4 } else { 1 };
    let chunk = loss::chunk_rows(config.vocab_size) as u64 * v * 4 * chunks;
    let vh = v * h * 4;
    let mut est = Estimate {
        state,
        grads: 4 * p,
        casts: if e == 4 { 0 } else { e * p },
        activations: n * layers * layer_bytes_per_token_x2(config, e) / 2 + n * 5 * h * 4,
        attention: layers * scores * score_bytes,
        head: chunk + 3 * vh + n * h * 4,
        backward: 2 * vh + 3 * 4 * scores + n * h * 4,
        optimizer: 5 * vh,
        retained: 0,
        base: if w.cuda { 0 } else { BASE },
    };
    est.retained = 2 * chunk + (est.transient() as f64 * RETAINED) as u64;
    est
}

/// A size in bytes, as `--max-memory` takes it: a number with an optional
/// `K`, `M`, `G` or `T` (powers of 1024, optionally followed by `B` or
/// `iB`): `2.5G`, `800M`, `1073741824`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = TrainerError;

    fn from_str(s: &str) -> Result<ByteSize> {
        let bad = || TrainerError::BadSize(s.to_string());
        let t = s.trim();
        let t = t
            .strip_suffix("iB")
            .or_else(|| t.strip_suffix('B'))
            .unwrap_or(t);
        let (number, shift) = match t.char_indices().last() {
            Some((k, c)) if c.is_ascii_alphabetic() => {
                let shift = match c.to_ascii_uppercase() {
                    'K' => 10,
                    'M' => 20,
                    'G' => 30,
                    'T' => 40,
                    _ => return Err(bad()),
                };
                (&t[..k], shift)
            }
            _ => (t, 0),
        };
        let x: f64 = number.trim().parse().map_err(|_| bad())?;
        let value = x * (1u64 << shift) as f64;
        if !(value.is_finite() && value >= 1.0 && value < u64::MAX as f64) {
            return Err(bad());
        }
        Ok(ByteSize(value.round() as u64))
    }
}

impl fmt::Display for ByteSize {
    /// `1.9 GiB` from one GiB up, `812 MiB` below.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        if b >= GIB {
            write!(f, "{:.1} GiB", b / GIB)
        } else {
            write!(f, "{:.0} MiB", b / MIB)
        }
    }
}

/// Where a memory limit comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--max-memory`.
    MaxMemory,
    /// `MemAvailable` of `/proc/meminfo`.
    MemAvailable,
    /// A control group's memory limit (`memory.max`, or cgroup v1's
    /// `memory.limit_in_bytes`), lower than `MemAvailable`: a Slurm job's
    /// `--mem`, a container's limit.
    Cgroup(PathBuf),
    /// The free memory of a CUDA device.
    CudaFree(usize),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::MaxMemory => f.write_str("--max-memory"),
            Source::MemAvailable => f.write_str("MemAvailable"),
            Source::Cgroup(p) => write!(f, "cgroup limit {}", p.display()),
            Source::CudaFree(n) => write!(f, "free on cuda:{n}"),
        }
    }
}

/// The memory a run may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// Bytes.
    pub bytes: u64,
    /// Where the number comes from.
    pub source: Source,
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
pub fn parse_meminfo(text: &str) -> Option<u64> {
    kib_field(text, "MemAvailable:")
}

/// The `kB` value of the line starting with `key` (`/proc` files), in bytes.
fn kib_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// The lowest memory limit of the control groups a process is in, given
/// its `/proc/self/cgroup` text and the cgroup file systems' mount point
/// (`/sys/fs/cgroup`): each group's directory and those above it, with
/// cgroup v2's `memory.max` or v1's `memory.limit_in_bytes`. "No limit"
/// (`max`, or v1's near-`2^63`) counts as none.
pub fn cgroup_limit(proc_cgroup: &str, mount: &Path) -> Option<(u64, PathBuf)> {
    let mut best: Option<(u64, PathBuf)> = None;
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let (root, file) = if controllers.is_empty() {
            (mount.to_path_buf(), "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            (mount.join("memory"), "memory.limit_in_bytes")
        } else {
            continue;
        };
        let mut dir = root.join(path.trim_start_matches('/'));
        loop {
            let f = dir.join(file);
            let limit = std::fs::read_to_string(&f)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok());
            if let Some(n) = limit.filter(|&n| n < 1 << 60) {
                if best.as_ref().is_none_or(|(b, _)| n < *b) {
                    best = Some((n, f));
                }
            }
            if dir == root || !dir.pop() {
                break;
            }
        }
    }
    best
}

/// The memory `device` has for a run: on the CPU, `MemAvailable`, or a
/// lower cgroup limit; on CUDA (with the `cuda` feature), the device's free
/// memory. `None` when it cannot be read.
pub fn available(device: &Device) -> Option<Limit> {
    match device.location() {
        DeviceLocation::Cpu => {
            let text = std::fs::read_to_string("/proc/meminfo").ok()?;
            let mem = Limit {
                bytes: parse_meminfo(&text)?,
                source: Source::MemAvailable,
            };
            let groups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
            match cgroup_limit(&groups, Path::new("/sys/fs/cgroup")) {
                Some((bytes, path)) if bytes < mem.bytes => Some(Limit {
                    bytes,
                    source: Source::Cgroup(path),
                }),
                _ => Some(mem),
            }
        }
        DeviceLocation::Cuda { gpu_id } => cuda_free(device).map(|bytes| Limit {
            bytes,
            source: Source::CudaFree(gpu_id),
        }),
        DeviceLocation::Metal { .. } => None,
    }
}

/// The free memory of a CUDA device (`cuMemGetInfo` in its context).
#[cfg(feature = "cuda")]
fn cuda_free(device: &Device) -> Option<u64> {
    use candle_core::cuda_backend::cudarc::driver::result::mem_get_info;
    let stream = device.as_cuda_device().ok()?.cuda_stream();
    stream.context().bind_to_thread().ok()?;
    mem_get_info().ok().map(|(free, _total)| free as u64)
}

/// Without the `cuda` feature there is no CUDA device to ask.
#[cfg(not(feature = "cuda"))]
fn cuda_free(_device: &Device) -> Option<u64> {
    None
}

/// The peak resident size of this process so far (`VmHWM` of
/// `/proc/self/status`), in bytes; `None` where there is no `/proc`.
pub fn peak_rss() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    kib_field(&text, "VmHWM:")
}

/// A smaller micro-batch that fits, with the accumulation that keeps the
/// same samples per optimizer step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advice {
    /// `--micro-batch`.
    pub micro_batch: usize,
    /// `--grad-accum`.
    pub grad_accum: usize,
    /// The estimated peak with them.
    pub estimate: u64,
}

/// The largest micro-batch below `w.micro_batch` that divides the global
/// batch (`micro_batch × grad_accum`) and whose estimate fits in `limit`
/// bytes, with the accumulation that keeps the global batch; `None` if not
/// even one sample per forward pass fits.
pub fn advise(config: &LlamaConfig, w: &Workload, limit: u64) -> Option<Advice> {
    let global = w.micro_batch * w.grad_accum;
    (1..w.micro_batch)
        .rev()
        .filter(|m| global.is_multiple_of(*m))
        .map(|m| {
            let smaller = Workload {
                micro_batch: m,
                grad_accum: global / m,
                ..*w
            };
            Advice {
                micro_batch: m,
                grad_accum: global / m,
                estimate: estimate(config, &smaller).total(),
            }
        })
        .find(|a| a.estimate <= limit)
}

/// The check before the first step: the workload, its estimate and the
/// limit. Displays as the line `almr-train` prints on stderr.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What the step runs with.
    pub workload: Workload,
    /// Its estimated peak.
    pub estimate: Estimate,
    /// The memory available, if known.
    pub limit: Option<Limit>,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let peak = ByteSize(self.estimate.total());
        match &self.limit {
            Some(l) if l.source == Source::MaxMemory => write!(
                f,
                "memory: estimated peak {peak} of a {} limit (--max-memory)",
                ByteSize(l.bytes)
            ),
            Some(l) => write!(
                f,
                "memory: estimated peak {peak} of {} available ({})",
                ByteSize(l.bytes),
                l.source
            ),
            None => write!(
                f,
                "memory: estimated peak {peak} (memory available unknown)"
            ),
        }
    }
}

/// A run refused for memory: the check, and a smaller micro-batch if one
/// fits.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The failed check.
    pub check: Check,
    /// What to run instead.
    pub advice: Option<Advice>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.check;
        let w = &c.workload;
        let limit = c.limit.as_ref().expect("a refusal has a limit");
        let (what, set) = match limit.source {
            Source::MaxMemory => ("limit", "raise --max-memory"),
            _ => ("available", "set the limit with --max-memory SIZE"),
        };
        write!(
            f,
            "a training step needs about {} at --micro-batch {} (seq-len {}), more than the {} {what} ({}): ",
            ByteSize(c.estimate.total()),
            w.micro_batch,
            w.seq_len,
            ByteSize(limit.bytes),
            limit.source
        )?;
        match &self.advice {
            Some(a) => write!(
                f,
                "use --micro-batch {} --grad-accum {} (the same {} samples per step, about {})",
                a.micro_batch,
                a.grad_accum,
                w.micro_batch * w.grad_accum,
                ByteSize(a.estimate)
            )?,
            None => f.write_str(
                "not even --micro-batch 1 fits; use a smaller model, a mix of shorter samples (--seq-len) or a larger machine",
            )?,
        }
        write!(f, ", or {set}")
    }
}

/// Estimates a step of `config` under `w` and refuses it, with advice, if
/// the estimate passes `limit`.
pub fn check(config: &LlamaConfig, w: Workload, limit: Option<Limit>) -> Result<Check> {
    let check = Check {
        workload: w,
        estimate: estimate(config, &w),
        limit,
    };
    match &check.limit {
        Some(l) if check.estimate.total() > l.bytes => {
            let advice = advise(config, &w, l.bytes);
            let refusal = Refusal { check, advice };
            Err(TrainerError::OutOfMemory(refusal.to_string()))
        }
        _ => Ok(check),
    }
}

/// One line of `RUN/memory.jsonl`: what one `almr-train train` process
/// estimated and measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The step it started after.
    pub from_step: u64,
    /// The last step it ran.
    pub to_step: u64,
    /// `cpu`, `cuda:N`.
    pub device: String,
    /// Samples per forward pass.
    pub micro_batch: usize,
    /// Micro-batches per step.
    pub grad_accum: usize,
    /// Tokens per sample.
    pub seq_len: usize,
    /// dtype of the forward pass.
    pub compute_dtype: Precision,
    /// The estimated peak, bytes.
    pub estimate_bytes: u64,
    /// The estimate's terms.
    pub estimate: Estimate,
    /// The limit checked against, bytes.
    pub limit_bytes: Option<u64>,
    /// Where the limit came from.
    pub limit_source: Option<String>,
    /// The process's peak resident size (`VmHWM`), bytes: host memory, so
    /// comparable to the estimate on the CPU only.
    pub peak_rss_bytes: Option<u64>,
}

impl Record {
    /// The record of a process that ran `check`'s workload on `device`
    /// from `from_step` to `to_step`, with the peak measured now.
    pub fn measure(check: &Check, device: &Device, from_step: u64, to_step: u64) -> Record {
        let w = &check.workload;
        Record {
            from_step,
            to_step,
            device: match device.location() {
                DeviceLocation::Cpu => "cpu".to_string(),
                DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
                DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
            },
            micro_batch: w.micro_batch,
            grad_accum: w.grad_accum,
            seq_len: w.seq_len,
            compute_dtype: w.compute,
            estimate_bytes: check.estimate.total(),
            estimate: check.estimate,
            limit_bytes: check.limit.as_ref().map(|l| l.bytes),
            limit_source: check.limit.as_ref().map(|l| l.source.to_string()),
            peak_rss_bytes: peak_rss(),
        }
    }
}

impl fmt::Display for Record {
    /// `memory: peak RSS 1.7 GiB, estimated 1.9 GiB`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let estimated = ByteSize(self.estimate_bytes);
        match self.peak_rss_bytes {
            Some(peak) => write!(
                f,
                "memory: peak RSS {}, estimated {estimated}",
                ByteSize(peak)
            ),
            None => write!(f, "memory: peak RSS unknown, estimated {estimated}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> LlamaConfig {
        LlamaConfig::preset_or_file("tiny").unwrap()
    }

    fn workload(micro_batch: usize, grad_accum: usize, seq_len: usize) -> Workload {
        Workload {
            micro_batch,
            grad_accum,
            seq_len,
            compute: Precision::F32,
            cuda: false,
        }
    }

    #[test]
    fn sizes_parse_in_powers_of_1024() {
        for (text, bytes) in [
            ("2.5G", 5u64 << 29),
            ("800M", 800 << 20),
            ("800m", 800 << 20),
            ("1.5GiB", 3 << 29),
            ("2GB", 2 << 30),
            ("512K", 512 << 10),
            ("1T", 1 << 40),
            ("1073741824", 1 << 30),
        ] {
            assert_eq!(text.parse::<ByteSize>().unwrap(), ByteSize(bytes), "{text}");
        }
        for bad in ["", "G", "2.5X", "-1G", "0", "1.5.2M", "NaNG"] {
            let e = bad.parse::<ByteSize>().unwrap_err().to_string();
            assert!(e.contains("e.g. 2.5G or 800M"), "{bad}: {e}");
        }
        assert_eq!(ByteSize(5 << 29).to_string(), "2.5 GiB");
        assert_eq!(ByteSize(800 << 20).to_string(), "800 MiB");
    }

    #[test]
    fn the_state_is_sixteen_bytes_a_parameter() {
        let c = tiny();
        let p = c.parameters() as u64;
        assert_eq!(estimate(&c, &workload(8, 1, 128)).state, 16 * p);
        assert_eq!(estimate(&c, &workload(8, 2, 128)).state, 20 * p);
        let mut bf16 = workload(8, 1, 128);
        bf16.compute = Precision::Bf16;
        assert_eq!(estimate(&c, &bf16).casts, 2 * p);
        assert_eq!(estimate(&c, &workload(8, 1, 128)).casts, 0);
        // Activations grow with the tokens, attention with their square.
        let (a, b) = (
            estimate(&c, &workload(4, 1, 128)),
            estimate(&c, &workload(8, 1, 128)),
        );
        assert!(b.activations > a.activations && b.total() > a.total());
        // Composed ops (CUDA) keep the scores: they grow with the square of
        // the length; the fused CPU path keeps none.
        assert_eq!(a.attention, 0);
        let cuda = |t| Workload {
            cuda: true,
            ..workload(4, 1, t)
        };
        let (short, long) = (estimate(&c, &cuda(128)), estimate(&c, &cuda(256)));
        assert!(long.attention > 3 * short.attention);
    }

    #[test]
    fn the_advice_keeps_the_global_batch_and_fits() {
        let c = tiny();
        let w = workload(8, 2, 512);
        let need = estimate(&c, &w).total();
        let limit = (estimate(&c, &workload(2, 8, 512)).total() + need) / 2;
        let a = advise(&c, &w, limit).expect("a smaller micro-batch fits");
        assert!(a.micro_batch < 8);
        assert_eq!(a.micro_batch * a.grad_accum, 16);
        assert!(a.estimate <= limit);
        // The largest that fits: the next larger divisor of 16 does not.
        let larger = (a.micro_batch + 1..8).find(|m| 16 % m == 0).unwrap_or(8);
        assert!(estimate(&c, &workload(larger, 16 / larger, 512)).total() > limit);
        // Micro-batches that do not divide the global batch are never advised.
        let w = workload(6, 1, 512);
        let a = advise(&c, &w, estimate(&c, &workload(3, 2, 512)).total()).unwrap();
        assert_eq!((a.micro_batch, a.grad_accum), (3, 2));
    }

    #[test]
    fn a_limit_below_the_estimate_refuses_with_advice() {
        let c = tiny();
        let w = workload(8, 1, 512);
        let limit = |bytes| {
            Some(Limit {
                bytes,
                source: Source::MaxMemory,
            })
        };
        let fits = estimate(&c, &workload(2, 4, 512)).total();
        let e = check(&c, w, limit(fits)).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("use --micro-batch 2 --grad-accum 4 (the same 8 samples per step"),
            "{text}"
        );
        assert!(
            text.contains("more than the") && text.contains("(--max-memory)"),
            "{text}"
        );
        assert!(text.ends_with("or raise --max-memory"), "{text}");
        let available = Some(Limit {
            bytes: fits,
            source: Source::MemAvailable,
        });
        let text = check(&c, w, available).unwrap_err().to_string();
        assert!(
            text.ends_with("or set the limit with --max-memory SIZE"),
            "{text}"
        );
        let e = check(&c, w, limit(1 << 20)).unwrap_err().to_string();
        assert!(e.contains("not even --micro-batch 1 fits"), "{e}");
        // At or above the estimate, or with no limit known, it runs.
        let need = estimate(&c, &w).total();
        let ok = check(&c, w, limit(need)).unwrap();
        assert!(
            ok.to_string().starts_with("memory: estimated peak "),
            "{ok}"
        );
        assert!(ok.to_string().ends_with("limit (--max-memory)"), "{ok}");
        let unknown = check(&c, w, None).unwrap().to_string();
        assert!(unknown.ends_with("(memory available unknown)"), "{unknown}");
    }

    #[test]
    fn proc_files_parse() {
        let meminfo = "MemTotal:       24731708 kB\nMemFree:  1 kB\nMemAvailable:   23660620 kB\n";
        assert_eq!(parse_meminfo(meminfo), Some(23660620 * 1024));
        assert_eq!(parse_meminfo("MemTotal: 1 kB\n"), None);
        assert_eq!(kib_field("VmHWM:\t  1024 kB\n", "VmHWM:"), Some(1 << 20));
        assert!(peak_rss().is_none_or(|b| b > 0));
    }

    #[test]
    fn cgroup_limits_are_the_lowest_up_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path();
        // v2: the job's limit, one level above the process's group.
        let job = mount.join("slurm/job_1");
        std::fs::create_dir_all(job.join("step_0")).unwrap();
        std::fs::write(job.join("memory.max"), "8589934592\n").unwrap();
        std::fs::write(job.join("step_0/memory.max"), "max\n").unwrap();
        let (bytes, path) = cgroup_limit("0::/slurm/job_1/step_0\n", mount).unwrap();
        assert_eq!((bytes, path), (8 << 30, job.join("memory.max")));
        // v1: the memory controller's hierarchy; "no limit" is near 2^63.
        let v1 = mount.join("memory/docker/abc");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(v1.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        assert_eq!(cgroup_limit("4:memory:/docker/abc\n1:cpu:/\n", mount), None);
        std::fs::write(v1.join("memory.limit_in_bytes"), "4294967296\n").unwrap();
        let got = cgroup_limit("4:cpuacct,memory:/docker/abc\n", mount).unwrap();
        assert_eq!(got.0, 4 << 30);
        assert_eq!(cgroup_limit("", mount), None);
    }
}
