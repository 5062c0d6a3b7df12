//! Causal attention, `softmax(q·kᵀ·scale, causal)·v`, fused on the CPU:
//! one head at a time, its `t × t` scores in a buffer of the thread that
//! runs it, never in a tensor. The backward pass recomputes them from `q`
//! and `k`, as flash attention does, so autograd keeps `q`, `k`, `v` and the
//! output, and none of the scores. Elsewhere (CUDA, bf16) it is composed of
//! tensor ops, with [`ops::causal_softmax`].
//!
//! Packed samples (several conversations in one row) attend
//! block-diagonally: with [`Segments`], a token sees only the earlier tokens
//! of its own segment. The CPU kernel skips the keys before a row block's
//! first segment start and gives the other keys of a row probability 0;
//! the composed ops add a `[b, 1, t, t]` mask of −10⁹ instead.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp3, DType, Device, Layout, Shape, Tensor, D};
use rayon::prelude::*;

use crate::error::{Result, TrainerError};
use crate::kernels::{self, gemm_into};
use crate::ops;

/// The segments of packed samples: token `i` of a sample attends to the
/// keys `lo(i)..=i`, where `lo(i)` is the first token of its run of equal
/// segment ids. Segments are contiguous runs (conversations one after
/// another), so an id that comes back after another starts a new segment.
#[derive(Debug, Clone)]
pub struct Segments {
    /// For every token of the batch (`b·t`, row-major), `lo(i)`.
    starts: Arc<Vec<u32>>,
    /// Tokens per sample.
    t: usize,
}

impl Segments {
    /// The segments of samples of `t` tokens, from a segment id per token
    /// (`[b·t]`, row-major).
    pub fn new(ids: &[u32], t: usize) -> Result<Segments> {
        if t == 0 || !ids.len().is_multiple_of(t) || u32::try_from(t).is_err() {
            return Err(TrainerError::Shape(format!(
                "segments: {} ids for samples of {t} tokens",
                ids.len()
            )));
        }
        let mut starts = Vec::with_capacity(ids.len());
        for row in ids.chunks_exact(t) {
            let mut lo = 0u32;
            for (i, id) in row.iter().enumerate() {
                if i > 0 && *id != row[i - 1] {
                    lo = i as u32;
                }
                starts.push(lo);
            }
        }
        Ok(Segments {
            starts: Arc::new(starts),
            t,
        })
    }

    /// The `lo(i)` of the `t` tokens of sample `b`.
    fn of(&self, b: usize) -> &[u32] {
        &self.starts[b * self.t..(b + 1) * self.t]
    }

    /// Samples.
    fn samples(&self) -> usize {
        self.starts.len() / self.t
    }

    /// The additive mask of the composed path, `[b, 1, t, t]` f32: 0 where
    /// query `i` may see key `j` (`lo(i) ≤ j ≤ i`), −10⁹ elsewhere.
    fn mask(&self, device: &Device) -> Result<Tensor> {
        let t = self.t;
        let mask: Vec<f32> = (self.starts.iter().enumerate())
            .flat_map(|(r, &lo)| {
                let i = r % t;
                (0..t).map(move |j| {
                    if (lo as usize..=i).contains(&j) {
                        0.0
                    } else {
                        -1e9
                    }
                })
            })
            .collect();
        Ok(Tensor::from_vec(mask, (self.samples(), 1, t, t), device)?)
    }
}

/// Causal attention of `q` (`[b, heads, t, head_dim]`) over `k` and `v`
/// (`[b, kv_heads, t, head_dim]`, `heads` a multiple of `kv_heads`: query
/// head `h` uses key/value head `h / (heads / kv_heads)`), scores scaled by
/// `scale`; block-diagonal within `segments` when given (packed samples).
/// Returns `[b, heads, t, head_dim]`.
pub fn causal(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    segments: Option<&Segments>,
) -> Result<Tensor> {
    let f32_cpu = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32;
    if f32_cpu(q) && f32_cpu(k) && f32_cpu(v) {
        let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
        let op = CausalAttention {
            scale,
            segments: segments.cloned(),
        };
        return Ok(q.apply_op3(&k, &v, op)?);
    }
    composed(q, k, v, scale, segments)
}

/// The gradients of [`causal`] on the CPU in f32 at `q`, `k` and `v` given
/// `dy`, the output's: `(dq, dk, dv)`, recomputing the probabilities.
pub fn causal_grad(
    [q, k, v]: [&Tensor; 3],
    dy: &Tensor,
    scale: f64,
    segments: Option<&Segments>,
) -> Result<(Tensor, Tensor, Tensor)> {
    let op = CausalAttention {
        scale,
        segments: segments.cloned(),
    };
    Ok(op.tensor_grads([q, k, v], dy)?)
}

/// [`causal`] as tensor ops: the scores, the causal softmax (or, with
/// segments, a mask and a softmax), the values.
fn composed(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    segments: Option<&Segments>,
) -> Result<Tensor> {
    let rep = q.dim(1)? / k.dim(1)?.max(1);
    let (k, v) = (repeat_kv(k, rep)?, repeat_kv(v, rep)?);
    let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?.to_dtype(DType::F32)?;
    let probs = match segments {
        None => ops::causal_softmax(&scores)?,
        Some(s) => {
            let masked = scores.broadcast_add(&s.mask(scores.device())?)?;
            candle_nn::ops::softmax(&masked, D::Minus1)?
        }
    };
    Ok(probs.to_dtype(v.dtype())?.matmul(&v)?)
}

/// `[b, kv, t, d]` → `[b, kv·n, t, d]`, each head repeated `n` times.
fn repeat_kv(x: &Tensor, n: usize) -> Result<Tensor> {
    if n == 1 {
        return Ok(x.clone());
    }
    let (b, kv, t, d) = x.dims4()?;
    Ok(x.unsqueeze(2)?
        .broadcast_as((b, kv, n, t, d))?
        .contiguous()?
        .reshape((b, kv * n, t, d))?)
}

/// The fused operation; its backward pass is [`CausalAttention::grads`].
struct CausalAttention {
    scale: f64,
    segments: Option<Segments>,
}

/// Query rows per block: a block of rows `i0..i1` needs the keys `..i1`
/// only, which halves the work of a full `t × t` product.
const BLOCK: usize = 64;

/// The row blocks of `t` rows: `(i0, i1)`.
fn blocks(t: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..t)
        .step_by(BLOCK)
        .map(move |i0| (i0, (i0 + BLOCK).min(t)))
}

/// The shape of the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dims {
    /// Query heads per key/value head.
    rep: usize,
    /// Query heads per sample.
    heads: usize,
    t: usize,
    d: usize,
}

impl Dims {
    /// Checks `q` `[b, h, t, d]` against `k` and `v` `[b, kv, t, d]`.
    fn of(l: [&[usize]; 3]) -> candle_core::Result<Dims> {
        match l {
            [[b, h, t, d], k, v]
                if k == v
                    && k.len() == 4
                    && (k[0], k[2], k[3]) == (*b, *t, *d)
                    && k[1] > 0
                    && h % k[1] == 0
                    && *t > 0
                    && *d > 0 =>
            {
                Ok(Dims {
                    rep: h / k[1],
                    heads: *h,
                    t: *t,
                    d: *d,
                })
            }
            _ => candle_core::bail!("attention: q, k, v of shapes {l:?}"),
        }
    }
}

/// One query head and its key/value head, `t × d` row-major each.
struct Head<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    /// Each row's first key (its segment's start), or none: 0.
    lo: Option<&'a [u32]>,
    t: usize,
    d: usize,
}

impl Head<'_> {
    /// The first key row `i` sees.
    fn lo(&self, i: usize) -> usize {
        self.lo.map_or(0, |lo| lo[i] as usize)
    }

    /// The probabilities of rows `i0..i1` over keys `k0..i1`, into `p`
    /// (`(i1 − i0) × (i1 − k0)`), where `k0` (returned) is row `i0`'s first
    /// key, the earliest of the block's: row `i` is the softmax of
    /// `scale · q·kᵀ` over keys `lo(i)..=i`, 0 elsewhere.
    fn probs(&self, (i0, i1): (usize, usize), p: &mut [f32], scale: f32) -> usize {
        let (d, rows, k0) = (self.d, i1 - i0, self.lo(i0));
        let w = i1 - k0;
        let q = &self.q[i0 * d..i1 * d];
        let k = &self.k[k0 * d..i1 * d];
        gemm_into(p, false, (rows, w, d), q, (d, 1), k, (1, d), scale, false);
        for (r, row) in p[..rows * w].chunks_exact_mut(w).enumerate() {
            let (i, lo) = (i0 + r, self.lo(i0 + r));
            let (before, seen) = row.split_at_mut(lo - k0);
            before.fill(0.0);
            kernels::causal_softmax_row(seen, i + 1 - lo);
        }
        k0
    }

    /// `y = p·v`, one row block at a time.
    fn forward(&self, y: &mut [f32], p: &mut [f32], scale: f32) {
        let d = self.d;
        for (i0, i1) in blocks(self.t) {
            let k0 = self.probs((i0, i1), p, scale);
            let (rows, w, y) = (i1 - i0, i1 - k0, &mut y[i0 * d..i1 * d]);
            let v = &self.v[k0 * d..i1 * d];
            gemm_into(y, false, (rows, d, w), p, (w, 1), v, (d, 1), 1.0, false);
        }
    }

    /// This head's part of the gradients, given `dy`, its output's: `dq`
    /// written, `dk` and `dv` added to. Per row block, the probabilities
    /// again, then `dv += pᵀ·dy`, `dp = dy·vᵀ`, `ds = p ⊙ (dp − Σ p ⊙ dp)`,
    /// `dq = scale · ds·k`, `dk += scale · dsᵀ·q`, over the block's keys.
    fn backward(
        &self,
        dy: &[f32],
        grads: [&mut [f32]; 3],
        buffers: &mut [Vec<f32>; 3],
        scale: f32,
    ) {
        let [dq, dk, dv] = grads;
        let [p, dp, ds] = buffers;
        let d = self.d;
        for (i0, i1) in blocks(self.t) {
            let rows = i1 - i0;
            let (dy, q) = (&dy[i0 * d..i1 * d], &self.q[i0 * d..i1 * d]);
            let k0 = self.probs((i0, i1), p, scale);
            let (w, keys) = (i1 - k0, k0 * d..i1 * d);
            let (k, v) = (&self.k[keys.clone()], &self.v[keys.clone()]);
            let (dk, dv) = (&mut dk[keys.clone()], &mut dv[keys]);
            gemm_into(dv, true, (w, d, rows), p, (1, w), dy, (d, 1), 1.0, false);
            gemm_into(dp, false, (rows, w, d), dy, (d, 1), v, (1, d), 1.0, false);
            let m = rows * w;
            let pairs = p[..m].chunks_exact(w).zip(dp[..m].chunks_exact(w));
            for (r, ((p, dp), ds)) in pairs.zip(ds[..m].chunks_exact_mut(w)).enumerate() {
                let (i, lo) = (i0 + r, self.lo(i0 + r));
                let (before, ds) = ds.split_at_mut(lo - k0);
                before.fill(0.0);
                let (p, dp) = (&p[lo - k0..], &dp[lo - k0..]);
                kernels::softmax_grad_row(p, dp, ds, i + 1 - lo);
            }
            let dq = &mut dq[i0 * d..i1 * d];
            gemm_into(dq, false, (rows, d, w), ds, (w, 1), k, (d, 1), scale, false);
            gemm_into(dk, true, (w, d, rows), ds, (1, w), q, (d, 1), scale, false);
        }
    }
}

impl CausalAttention {
    /// The first keys of the rows of sample `b`, when packed.
    fn lo(&self, b: usize) -> Option<&[u32]> {
        self.segments.as_ref().map(|s| s.of(b))
    }

    /// Refuses segments of another batch shape than `q`'s.
    fn check(&self, dims: Dims, q: &[f32]) -> candle_core::Result<()> {
        match &self.segments {
            Some(s) if s.t != dims.t || s.samples() * dims.heads * dims.t * dims.d != q.len() => {
                candle_core::bail!("attention: segments of {} tokens", s.starts.len())
            }
            _ => Ok(()),
        }
    }

    /// The gradients of `q`, `k` and `v` given `dy`, the output's. One task
    /// per key/value head, which runs its query heads in order, so that
    /// its `dk` and `dv` are summed in the same order on any number of
    /// threads.
    fn grads(&self, [q, k, v, dy]: [&[f32]; 4], dims: Dims) -> [Vec<f32>; 3] {
        let Dims { rep, heads, t, d } = dims;
        let scale = self.scale as f32;
        let n = t * d;
        let mut dq = vec![0f32; q.len()];
        let mut dk = vec![0f32; k.len()];
        let mut dv = vec![0f32; k.len()];
        let buffer = || vec![0f32; BLOCK * t];
        dq.par_chunks_mut(rep * n)
            .zip(dk.par_chunks_mut(n).zip(dv.par_chunks_mut(n)))
            .enumerate()
            .for_each_init(
                || [buffer(), buffer(), buffer()],
                |buffers, (g, (dq, (dk, dv)))| {
                    for (j, dq) in dq.chunks_mut(n).enumerate() {
                        let h = g * rep + j;
                        let head = Head {
                            q: &q[h * n..(h + 1) * n],
                            k: &k[g * n..(g + 1) * n],
                            v: &v[g * n..(g + 1) * n],
                            lo: self.lo(h / heads),
                            t,
                            d,
                        };
                        let dy = &dy[h * n..(h + 1) * n];
                        head.backward(dy, [dq, &mut *dk, &mut *dv], buffers, scale);
                    }
                },
            );
        [dq, dk, dv]
    }
}

impl CustomOp3 for CausalAttention {
    fn name(&self) -> &'static str {
        "causal-attention"
    }

    fn cpu_fwd(
        &self,
        q: &CpuStorage,
        lq: &Layout,
        k: &CpuStorage,
        lk: &Layout,
        v: &CpuStorage,
        lv: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = Dims::of([lq.dims(), lk.dims(), lv.dims()])?;
        let Dims { rep, heads, t, d } = dims;
        let (q, k, v) = (
            kernels::f32s(q, lq, "attention")?,
            kernels::f32s(k, lk, "attention")?,
            kernels::f32s(v, lv, "attention")?,
        );
        self.check(dims, q)?;
        let (scale, n) = (self.scale as f32, t * d);
        let mut y = vec![0f32; q.len()];
        y.par_chunks_mut(n).enumerate().for_each_init(
            || vec![0f32; BLOCK * t],
            |p, (h, y)| {
                let g = h / rep;
                let head = Head {
                    q: &q[h * n..(h + 1) * n],
                    k: &k[g * n..(g + 1) * n],
                    v: &v[g * n..(g + 1) * n],
                    lo: self.lo(h / heads),
                    t,
                    d,
                };
                head.forward(y, p, scale);
            },
        );
        Ok((CpuStorage::F32(y), lq.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dq, dk, dv) = self.tensor_grads([q, k, v], grad_res)?;
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

impl CausalAttention {
    /// [`CausalAttention::grads`] on tensors.
    fn tensor_grads(
        &self,
        [q, k, v]: [&Tensor; 3],
        dy: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let dims = Dims::of([q.dims(), k.dims(), v.dims()])?;
        if dy.dims() != q.dims() {
            candle_core::bail!("attention: gradient of another shape");
        }
        let [dq, dk, dv] = kernels::with_f32s(&[q, k, v, dy], "attention", |s| {
            self.check(dims, s[0])?;
            Ok(self.grads([s[0], s[1], s[2], s[3]], dims))
        })?;
        Ok((
            Tensor::from_vec(dq, q.shape(), q.device())?,
            Tensor::from_vec(dk, k.shape(), k.device())?,
            Tensor::from_vec(dv, v.shape(), v.device())?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{same, values, worst};
    use candle_core::{Device, Var};

    /// The fused attention and its gradients equal the composed tensor ops.
    #[test]
    fn fused_attention_equals_the_composed_ops_and_their_gradients() {
        // Grouped-query heads (6 query heads over 2), and more rows than a
        // block.
        let (b, h, kv, t, d) = (2, 6, 2, BLOCK + 17, 8);
        let var = |heads, salt| {
            let n = b * heads * t * d;
            Var::from_vec(values(n, salt), (b, heads, t, d), &Device::Cpu).unwrap()
        };
        let (q, k, v) = (var(h, 1), var(kv, 2), var(kv, 3));
        let scale = 1.0 / (d as f64).sqrt();
        let fused = causal(&q, &k, &v, scale, None).unwrap();
        let (kr, vr) = (
            repeat_kv(&k, h / kv).unwrap(),
            repeat_kv(&v, h / kv).unwrap(),
        );
        let scores = (q.matmul(&kr.t().unwrap()).unwrap() * scale).unwrap();
        let plain = ops::causal_softmax(&scores).unwrap().matmul(&vr).unwrap();
        same(fused, plain, &[&q, &k, &v], 1e-5);
    }

    /// Segment ids of two samples of `t` tokens: three conversations (30,
    /// 40 and the rest tokens) across the row blocks, and two (70 and the
    /// rest).
    fn two_packs(t: usize) -> Vec<u32> {
        let row = |cuts: &[usize]| -> Vec<u32> {
            (0..t)
                .map(|i| cuts.iter().filter(|&&c| i >= c).count() as u32)
                .collect()
        };
        [row(&[30, 70]), row(&[70])].concat()
    }

    /// With segments, the fused kernel and the masked composed ops agree,
    /// values and gradients.
    #[test]
    fn fused_segments_equal_the_masked_composed_ops_and_their_gradients() {
        let (b, h, kv, t, d) = (2, 4, 2, BLOCK + 17, 8);
        let var = |heads, salt| {
            let n = b * heads * t * d;
            Var::from_vec(values(n, salt), (b, heads, t, d), &Device::Cpu).unwrap()
        };
        let (q, k, v) = (var(h, 4), var(kv, 5), var(kv, 6));
        let segments = Segments::new(&two_packs(t), t).unwrap();
        let scale = 1.0 / (d as f64).sqrt();
        let fused = causal(&q, &k, &v, scale, Some(&segments)).unwrap();
        let plain = composed(&q, &k, &v, scale, Some(&segments)).unwrap();
        same(fused, plain, &[&q, &k, &v], 1e-5);
    }

    /// A token's output does not change when another segment of its sample
    /// changes, on either path.
    #[test]
    fn a_segment_does_not_see_the_others() {
        let (b, h, t, d) = (2, 2, BLOCK + 17, 8);
        let segments = Segments::new(&two_packs(t), t).unwrap();
        let tensor = |salt| {
            Tensor::from_vec(values(b * h * t * d, salt), (b, h, t, d), &Device::Cpu).unwrap()
        };
        // The tokens of sample 0's middle segment (30..70) changed.
        let middle: Vec<f32> = (0..b * h * t)
            .map(|r| (r / (h * t) == 0 && (30..70).contains(&(r % t))) as u8 as f32)
            .collect();
        let middle = Tensor::from_vec(middle, (b, h, t, 1), &Device::Cpu).unwrap();
        let changed = |x: &Tensor| (x + middle.broadcast_mul(&tensor(9)).unwrap()).unwrap();
        let (q, k, v) = (tensor(1), tensor(2), tensor(3));
        let (q2, k2, v2) = (changed(&q), changed(&k), changed(&v));
        let scale = 0.3;
        for path in [causal, composed] {
            let a = path(&q, &k, &v, scale, Some(&segments)).unwrap();
            let c = path(&q2, &k2, &v2, scale, Some(&segments)).unwrap();
            let rows = |x: &Tensor, s: usize, n: usize| {
                x.narrow(0, 0, 1).unwrap().narrow(2, s, n).unwrap()
            };
            for (s, n) in [(0, 30), (70, t - 70)] {
                assert_eq!(worst(&rows(&a, s, n), &rows(&c, s, n)), 0.0, "{s}..");
            }
            assert!(worst(&rows(&a, 30, 40), &rows(&c, 30, 40)) > 1e-3);
            // Sample 1 is untouched.
            assert_eq!(
                worst(&a.narrow(0, 1, 1).unwrap(), &c.narrow(0, 1, 1).unwrap()),
                0.0
            );
        }
    }
}
