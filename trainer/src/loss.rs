//! The loss head: the output projection fused with cross-entropy, a chunk of
//! tokens at a time, so the whole `[tokens, vocabulary]` logits never exist.
//!
//! For each chunk of `c` hidden states `h` (`[c, H]`) and the head weight `W`
//! (`[V, H]`), with `s` the loss scale (`1 / counted tokens`, times the
//! caller's factor):
//!
//! ```text
//! z   = h · Wᵀ                                  [c, V]   the chunk's logits
//! lse = log Σ_v exp z_v                          per row
//! ℓ   = lse − z_target                           per row, 0 for ignored rows
//! g   = s · (softmax(z) − onehot(target))        [c, V]   ∂loss/∂z, in place of z
//! ∂h  = g · W                                    [c, H]
//! ∂W += gᵀ · h                                   [V, H]
//! ```
//!
//! then `z` and `g` are dropped. The gradients come out of the same pass as
//! the loss (as in Liger-Kernel's fused linear cross-entropy; Apple's "Cut
//! Your Losses" recomputes logits in the backward instead), so memory for
//! the head is `O(c × V)`: one chunk's logits, turned into its gradient in
//! place. The chunk is sized to hold about [`CHUNK_FLOATS`] floats.
//!
//! Targets equal to [`IGNORE`] (−100, as in PyTorch and LLaMA-Factory) add
//! no loss and get no gradient; the mean is over the other tokens.
//!
//! On CPU, the three products run through `gemm` on one reused logits
//! buffer (∂W accumulated in place), and the softmax, the loss and the
//! gradient are one pass per row over it, with a vectorized `exp` compiled
//! for the CPU's widest vectors; on other devices the same arithmetic runs as
//! tensor ops.

use candle_core::{CpuStorage, DType, Device, Storage, Tensor};
use rayon::prelude::*;

use crate::kernels;

use crate::error::{Result, TrainerError};

/// A target that adds no loss: SFT's prompt tokens.
pub const IGNORE: i64 = -100;

/// Floats of logits held at once: 128 Mi (512 MiB in f32), 1,046 rows of
/// Llama-3's vocabulary. The weight gradient sums over a chunk's rows, and
/// gemm runs the three products of a 576-wide head in 9 to 26 % less time
/// with chunks of about a thousand rows than of 261 (`docs/benchmarks.md`,
/// `trainer/examples/bench_head.rs`).
pub const CHUNK_FLOATS: usize = 128 << 20;

/// Rows per chunk for a vocabulary of `vocab` ids: at least 1, at most 4096.
pub fn chunk_rows(vocab: usize) -> usize {
    (CHUNK_FLOATS / vocab.max(1)).clamp(1, 4096)
}

/// The loss and the gradients of the head.
pub struct HeadGrads {
    /// Mean cross-entropy over the counted tokens (unscaled).
    pub loss: f64,
    /// Tokens counted (targets other than [`IGNORE`]).
    pub counted: usize,
    /// `∂(scale · loss)/∂hidden`, `[N, H]`, f32.
    pub hidden: Tensor,
    /// `∂(scale · loss)/∂W`, `[V, H]`, f32.
    pub weight: Tensor,
}

/// The mean cross-entropy of `targets` (`[N]`, i64) under logits
/// `hidden · weightᵀ` (`hidden` `[N, H]`, `weight` `[V, H]`), and the
/// gradients of `scale ×` that mean, `rows` tokens at a time. Neither input
/// is tracked by autograd: the caller carries the gradients on.
pub fn linear_cross_entropy(
    hidden: &Tensor,
    weight: &Tensor,
    targets: &[i64],
    scale: f64,
    rows: usize,
) -> Result<HeadGrads> {
    linear_cross_entropy_in(Vec::new(), hidden, weight, targets, scale, rows)
}

/// The logits buffer of a head over `n` hidden states and a vocabulary of
/// `vocab`, `rows` at a time, on the CPU. Made before the forward pass and
/// handed to [`linear_cross_entropy_in`], it lies below the activations in
/// the heap instead of on top of them, so that each step reuses the same
/// block and the heap does not grow by a buffer's hole (`crate::memory`).
pub fn logits_buffer(n: usize, vocab: usize, rows: usize) -> Vec<f32> {
    vec![0f32; rows.max(1).min(n) * vocab]
}

/// [`linear_cross_entropy`] with `logits`, a buffer to reuse on the CPU
/// ([`logits_buffer`]; grown if too small, unused elsewhere).
pub fn linear_cross_entropy_in(
    logits: Vec<f32>,
    hidden: &Tensor,
    weight: &Tensor,
    targets: &[i64],
    scale: f64,
    rows: usize,
) -> Result<HeadGrads> {
    let head = Head::new(hidden, weight, targets, rows)?;
    let (n, h) = hidden.dims2()?;
    let (v, _) = weight.dims2()?;
    let counted = targets.iter().filter(|&&t| t != IGNORE).count();
    let s = match counted {
        0 => 0.0,
        c => scale / c as f64,
    };
    let (loss_sum, d_hidden, d_weight) = match hidden.device() {
        Device::Cpu => head.cpu(Some(s as f32), logits)?,
        _ => head.ops(s as f32)?,
    };
    // Zeros only where a path gave no gradient, never allocated beforehand.
    let or_zeros = |g: Option<Tensor>, shape: (usize, usize)| match g {
        Some(g) => Ok(g),
        None => Tensor::zeros(shape, DType::F32, hidden.device()),
    };
    Ok(HeadGrads {
        loss: if counted == 0 {
            0.0
        } else {
            loss_sum / counted as f64
        },
        counted,
        hidden: or_zeros(d_hidden, (n, h))?,
        weight: or_zeros(d_weight, (v, h))?,
    })
}

/// The sum of the cross-entropy of `targets` under `hidden · weightᵀ`, and
/// the number of tokens counted, without gradients (evaluation), `rows`
/// tokens at a time.
pub fn linear_cross_entropy_sum(
    hidden: &Tensor,
    weight: &Tensor,
    targets: &[i64],
    rows: usize,
) -> Result<(f64, usize)> {
    let head = Head::new(hidden, weight, targets, rows)?;
    let sum = match hidden.device() {
        Device::Cpu => head.cpu(None, Vec::new())?.0,
        _ => head.ops_sum()?,
    };
    Ok((sum, targets.iter().filter(|&&t| t != IGNORE).count()))
}

/// One head computation: f32 hidden states `[N, H]`, weight `[V, H]`, the
/// targets and the chunk size.
struct Head<'a> {
    hidden: Tensor,
    weight: Tensor,
    targets: &'a [i64],
    rows: usize,
}

impl<'a> Head<'a> {
    /// Checks the targets against the shapes, and casts to f32.
    fn new(hidden: &Tensor, weight: &Tensor, targets: &'a [i64], rows: usize) -> Result<Head<'a>> {
        let (n, _) = hidden.dims2()?;
        let (v, _) = weight.dims2()?;
        check_targets(targets, n, v)?;
        Ok(Head {
            hidden: hidden.to_dtype(DType::F32)?,
            weight: weight.to_dtype(DType::F32)?,
            targets,
            rows: rows.max(1),
        })
    }
}

/// The summed loss, and the gradients of the hidden states and the weight
/// (none without a scale).
type HeadOut = (f64, Option<Tensor>, Option<Tensor>);

impl Head<'_> {
    /// On CPU: gemm on the tensors' own buffers, one logits buffer reused by
    /// every chunk and turned into its gradient in place, `∂h` written in
    /// place and `∂W` accumulated in place. With `s = None`, the loss only.
    fn cpu(&self, s: Option<f32>, mut z: Vec<f32>) -> Result<HeadOut> {
        let (n, h) = self.hidden.dims2()?;
        let (v, _) = self.weight.dims2()?;
        let (hidden, weight) = (CpuSlice::of(&self.hidden)?, CpuSlice::of(&self.weight)?);
        let (hidden, weight) = (hidden.slice()?, weight.slice()?);
        z.resize(z.len().max(self.rows.min(n) * v), 0.0);
        let mut dh = vec![0f32; if s.is_some() { n * h } else { 0 }];
        let mut dw = vec![0f32; if s.is_some() { v * h } else { 0 }];
        let mut loss = 0f64;
        for start in (0..n).step_by(self.rows) {
            let c = self.rows.min(n - start);
            let (z, hc) = (&mut z[..c * v], &hidden[start * h..(start + c) * h]);
            // z = h_c · Wᵀ
            kernels::gemm_into(z, false, (c, v, h), hc, (h, 1), weight, (1, h), 1.0, true);
            let targets = &self.targets[start..start + c];
            loss += rows_softmax_grad(z, v, targets, s.unwrap_or(0.0));
            if s.is_some() {
                // ∂h_c = g · W;  ∂W += gᵀ · h_c
                let dh = &mut dh[start * h..(start + c) * h];
                kernels::gemm_into(dh, false, (c, h, v), z, (v, 1), weight, (h, 1), 1.0, true);
                kernels::gemm_into(&mut dw, true, (v, h, c), z, (1, v), hc, (h, 1), 1.0, true);
            }
        }
        let (dh, dw) = match s {
            Some(_) => (
                Some(Tensor::from_vec(dh, (n, h), &Device::Cpu)?),
                Some(Tensor::from_vec(dw, (v, h), &Device::Cpu)?),
            ),
            None => (None, None),
        };
        Ok((loss, dh, dw))
    }

    /// Elsewhere (CUDA): the same, as tensor ops on one chunk at a time.
    fn ops(&self, s: f32) -> Result<HeadOut> {
        let (n, h) = self.hidden.dims2()?;
        let (v, _) = self.weight.dims2()?;
        let mut loss = 0f64;
        let mut d_hidden = Vec::new();
        let mut d_weight = Tensor::zeros((v, h), DType::F32, self.weight.device())?;
        for start in (0..n).step_by(self.rows) {
            let c = self.rows.min(n - start);
            let hc = self.hidden.narrow(0, start, c)?;
            let z = hc.matmul(&self.weight.t()?)?;
            let (sum, g) = softmax_grad_ops(&z, &self.targets[start..start + c], s)?;
            loss += sum;
            d_hidden.push(g.matmul(&self.weight)?);
            d_weight = (d_weight + g.t()?.matmul(&hc)?)?;
        }
        Ok((loss, Some(Tensor::cat(&d_hidden, 0)?), Some(d_weight)))
    }

    /// Elsewhere (CUDA): the loss only.
    fn ops_sum(&self) -> Result<f64> {
        let (n, _) = self.hidden.dims2()?;
        let mut sum = 0f64;
        for start in (0..n).step_by(self.rows) {
            let c = self.rows.min(n - start);
            let z = self.hidden.narrow(0, start, c)?.matmul(&self.weight.t()?)?;
            sum += softmax_grad_ops(&z, &self.targets[start..start + c], 0.0)?.0;
        }
        Ok(sum)
    }
}

/// A contiguous f32 CPU tensor's elements, borrowed (read-locked).
struct CpuSlice<G> {
    storage: G,
    range: Option<(usize, usize)>,
}

impl CpuSlice<()> {
    fn of(t: &Tensor) -> Result<CpuSlice<impl std::ops::Deref<Target = Storage> + '_>> {
        let (storage, layout) = t.storage_and_layout();
        let range = layout.contiguous_offsets();
        Ok(CpuSlice { storage, range })
    }
}

impl<G: std::ops::Deref<Target = Storage>> CpuSlice<G> {
    fn slice(&self) -> Result<&[f32]> {
        match (&*self.storage, self.range) {
            (Storage::Cpu(CpuStorage::F32(data)), Some((a, b))) => Ok(&data[a..b]),
            _ => Err(TrainerError::Shape(
                "the head needs contiguous f32 tensors".into(),
            )),
        }
    }
}

fn check_targets(targets: &[i64], n: usize, vocab: usize) -> Result<()> {
    if targets.len() != n {
        return Err(TrainerError::Shape(format!(
            "{} targets for {n} hidden states",
            targets.len()
        )));
    }
    match targets
        .iter()
        .find(|&&t| t != IGNORE && !(0..vocab as i64).contains(&t))
    {
        Some(t) => Err(TrainerError::Shape(format!(
            "target {t} is outside the vocabulary of {vocab} ids"
        ))),
        None => Ok(()),
    }
}

/// Turns the logits `z` (rows of `v`) into `s · (softmax − onehot(target))`
/// in place, rows in parallel; returns the summed loss of the counted rows
/// (added up in row order, so it does not depend on the thread count).
fn rows_softmax_grad(z: &mut [f32], v: usize, targets: &[i64], s: f32) -> f64 {
    let losses: Vec<f64> = z
        .par_chunks_mut(v)
        .zip(targets.par_iter())
        .map(|(row, &t)| {
            let target = (t != IGNORE).then_some(t as usize);
            kernels::xent_grad_row(row, target, s)
        })
        .collect();
    losses.iter().sum()
}

/// The arithmetic of [`kernels::xent_grad_row`] on a chunk, as tensor ops (CUDA and others).
fn softmax_grad_ops(z: &Tensor, targets: &[i64], s: f32) -> Result<(f64, Tensor)> {
    let device = z.device();
    let (c, _) = z.dims2()?;
    let keep: Vec<f32> = targets
        .iter()
        .map(|&t| (t != IGNORE) as u8 as f32)
        .collect();
    let keep = Tensor::from_vec(keep, (c, 1), device)?;
    let idx: Vec<u32> = targets.iter().map(|&t| t.max(0) as u32).collect();
    let idx = Tensor::from_vec(idx, (c, 1), device)?;
    let lse = z.log_sum_exp(1)?.unsqueeze(1)?;
    let z_t = z.gather(&idx, 1)?;
    let loss = ((lse.clone() - z_t)? * &keep)?.sum_all()?;
    let p = z.broadcast_sub(&lse)?.exp()?;
    let minus = Tensor::full(-1f32, (c, 1), device)?;
    let g = p
        .scatter_add(&idx, &minus, 1)?
        .broadcast_mul(&(keep * s as f64)?)?;
    let loss = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    Ok((loss, g))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// The plain computation: whole logits, log-softmax, the mean over the
    /// counted tokens, and autograd.
    fn plain(h: &Tensor, w: &Tensor, targets: &[i64], scale: f64) -> (f64, Tensor, Tensor) {
        let (hv, wv) = (Var::from_tensor(h).unwrap(), Var::from_tensor(w).unwrap());
        let logits = hv.as_tensor().matmul(&wv.as_tensor().t().unwrap()).unwrap();
        let logp = candle_nn::ops::log_softmax(&logits, 1).unwrap();
        let n = targets.len();
        let keep: Vec<f32> = targets
            .iter()
            .map(|&t| (t != IGNORE) as u8 as f32)
            .collect();
        let idx: Vec<u32> = targets.iter().map(|&t| t.max(0) as u32).collect();
        let keep = Tensor::from_vec(keep, (n, 1), &Device::Cpu).unwrap();
        let idx = Tensor::from_vec(idx, (n, 1), &Device::Cpu).unwrap();
        let counted = targets.iter().filter(|&&t| t != IGNORE).count() as f64;
        let picked = (logp.gather(&idx, 1).unwrap() * keep).unwrap();
        let loss = (picked.sum_all().unwrap() * (-1.0 / counted)).unwrap();
        let grads = (&loss * scale).unwrap().backward().unwrap();
        let value = loss.to_scalar::<f32>().unwrap() as f64;
        let dh = grads.get(hv.as_tensor()).unwrap().clone();
        let dw = grads.get(wv.as_tensor()).unwrap().clone();
        (value, dh, dw)
    }

    /// `max |a − b| ≤ tol · max |b|`.
    fn close(a: &Tensor, b: &Tensor, tol: f32) {
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let top = b.iter().fold(0f32, |m, x| m.max(x.abs()));
        let worst = a
            .iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(worst <= tol * top, "max diff {worst}, max {top}");
    }

    fn case(n: usize, h: usize, v: usize) -> (Tensor, Tensor, Vec<i64>) {
        let hid = Tensor::from_vec(values(n * h, 1), (n, h), &Device::Cpu).unwrap();
        let w = (Tensor::from_vec(values(v * h, 2), (v, h), &Device::Cpu).unwrap() * 3.0).unwrap();
        let targets = (0..n)
            .map(|i| match i % 5 {
                3 => IGNORE,
                _ => ((i * 7919) % v) as i64,
            })
            .collect();
        (hid, w, targets)
    }

    #[test]
    fn fused_loss_and_gradients_equal_the_plain_computation() {
        let (hid, w, targets) = case(37, 16, 1003);
        let (loss, dh, dw) = plain(&hid, &w, &targets, 0.25);
        for rows in [1, 5, 37, 4096] {
            let g = linear_cross_entropy(&hid, &w, &targets, 0.25, rows).unwrap();
            assert!(
                (g.loss - loss).abs() <= 1e-5 * loss.abs(),
                "{} vs {loss}",
                g.loss
            );
            assert_eq!(g.counted, 30);
            close(&g.hidden, &dh, 1e-5);
            close(&g.weight, &dw, 1e-5);
            let (sum, counted) = linear_cross_entropy_sum(&hid, &w, &targets, rows).unwrap();
            assert!((sum / counted as f64 - loss).abs() <= 1e-5 * loss.abs());
        }
        // Ignored rows get no gradient.
        let rows = g_rows(
            &linear_cross_entropy(&hid, &w, &targets, 1.0, 5)
                .unwrap()
                .hidden,
        );
        assert!(rows[3].iter().all(|&x| x == 0.0) && rows[0].iter().any(|&x| x != 0.0));
    }

    fn g_rows(t: &Tensor) -> Vec<Vec<f32>> {
        t.to_vec2::<f32>().unwrap()
    }

    #[test]
    fn the_tensor_op_path_equals_the_cpu_kernel() {
        let (hid, w, targets) = case(11, 8, 300);
        let head = Head::new(&hid, &w, &targets, 4).unwrap();
        let (a, ha, wa) = head.ops(0.5).unwrap();
        let (b, hb, wb) = head.cpu(Some(0.5), Vec::new()).unwrap();
        assert!((a - b).abs() <= 1e-5 * b.abs(), "{a} vs {b}");
        close(&ha.unwrap(), &hb.unwrap(), 1e-5);
        close(&wa.unwrap(), &wb.unwrap(), 1e-5);
        let sum = head.ops_sum().unwrap();
        assert!((sum - b).abs() <= 1e-5 * b.abs());
    }

    #[test]
    fn targets_outside_the_vocabulary_are_errors() {
        let (hid, w, mut targets) = case(4, 8, 10);
        targets[2] = 10;
        let e = linear_cross_entropy(&hid, &w, &targets, 1.0, 2)
            .err()
            .unwrap();
        assert!(e.to_string().contains("target 10"), "{e}");
        assert!(linear_cross_entropy(&hid, &w, &targets[..3], 1.0, 2).is_err());
    }

    #[test]
    fn chunks_hold_about_128_mi_floats() {
        assert_eq!(chunk_rows(128_256), 1046);
        assert_eq!(chunk_rows(50), 4096);
        assert_eq!(chunk_rows(1 << 30), 1);
    }
}
