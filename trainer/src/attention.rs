//! Causal attention, `softmax(q·kᵀ·scale, causal)·v`, fused on the CPU:
//! one head at a time, its `t × t` scores in a buffer of the thread that
//! runs it, never in a tensor. The backward pass recomputes them from `q`
//! and `k`, as flash attention does, so autograd keeps `q`, `k`, `v` and the
//! output, and none of the scores. Elsewhere (CUDA, bf16) it is composed of
//! tensor ops, with [`ops::causal_softmax`].

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::error::Result;
use crate::kernels::{self, gemm_into};
use crate::ops;

/// Causal attention of `q` (`[b, heads, t, head_dim]`) over `k` and `v`
/// (`[b, kv_heads, t, head_dim]`, `heads` a multiple of `kv_heads`: query
/// head `h` uses key/value head `h / (heads / kv_heads)`), scores scaled by
/// `scale`. Returns `[b, heads, t, head_dim]`.
pub fn causal(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    let f32_cpu = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32;
    if f32_cpu(q) && f32_cpu(k) && f32_cpu(v) {
        let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
        return Ok(q.apply_op3(&k, &v, CausalAttention { scale })?);
    }
    let rep = q.dim(1)? / k.dim(1)?.max(1);
    let (k, v) = (repeat_kv(k, rep)?, repeat_kv(v, rep)?);
    let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?.to_dtype(DType::F32)?;
    let probs = ops::causal_softmax(&scores)?.to_dtype(v.dtype())?;
    Ok(probs.matmul(&v)?)
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
    t: usize,
    d: usize,
}

impl Head<'_> {
    /// The probabilities of rows `i0..i1` over keys `..i1`, into `p`
    /// (`(i1 − i0) × i1`): `causal_softmax(scale · q·kᵀ)`.
    fn probs(&self, (i0, i1): (usize, usize), p: &mut [f32], scale: f32) {
        let (d, rows) = (self.d, i1 - i0);
        let q = &self.q[i0 * d..i1 * d];
        gemm_into(
            p,
            false,
            (rows, i1, d),
            q,
            (d, 1),
            self.k,
            (1, d),
            scale,
            false,
        );
        for (r, row) in p[..rows * i1].chunks_exact_mut(i1).enumerate() {
            kernels::causal_softmax_row(row, i0 + r + 1);
        }
    }

    /// `y = p·v`, one row block at a time.
    fn forward(&self, y: &mut [f32], p: &mut [f32], scale: f32) {
        let d = self.d;
        for (i0, i1) in blocks(self.t) {
            self.probs((i0, i1), p, scale);
            let (rows, y) = (i1 - i0, &mut y[i0 * d..i1 * d]);
            gemm_into(
                y,
                false,
                (rows, d, i1),
                p,
                (i1, 1),
                self.v,
                (d, 1),
                1.0,
                false,
            );
        }
    }

    /// This head's part of the gradients, given `dy`, its output's: `dq`
    /// written, `dk` and `dv` added to. Per row block, the probabilities
    /// again, then `dv += pᵀ·dy`, `dp = dy·vᵀ`, `ds = p ⊙ (dp − Σ p ⊙ dp)`,
    /// `dq = scale · ds·k`, `dk += scale · dsᵀ·q`.
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
            self.probs((i0, i1), p, scale);
            gemm_into(dv, true, (i1, d, rows), p, (1, i1), dy, (d, 1), 1.0, false);
            gemm_into(
                dp,
                false,
                (rows, i1, d),
                dy,
                (d, 1),
                self.v,
                (1, d),
                1.0,
                false,
            );
            let m = rows * i1;
            let pairs = p[..m].chunks_exact(i1).zip(dp[..m].chunks_exact(i1));
            for (r, ((p, dp), ds)) in pairs.zip(ds[..m].chunks_exact_mut(i1)).enumerate() {
                kernels::softmax_grad_row(p, dp, ds, i0 + r + 1);
            }
            let dq = &mut dq[i0 * d..i1 * d];
            gemm_into(
                dq,
                false,
                (rows, d, i1),
                ds,
                (i1, 1),
                self.k,
                (d, 1),
                scale,
                false,
            );
            gemm_into(
                dk,
                true,
                (i1, d, rows),
                ds,
                (1, i1),
                q,
                (d, 1),
                scale,
                false,
            );
        }
    }
}

impl CausalAttention {
    /// The gradients of `q`, `k` and `v` given `dy`, the output's. One task
    /// per key/value head, which runs its query heads in order, so that
    /// its `dk` and `dv` are summed in the same order on any number of
    /// threads.
    fn grads(&self, [q, k, v, dy]: [&[f32]; 4], Dims { rep, t, d }: Dims) -> [Vec<f32>; 3] {
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
        let Dims { rep, t, d } = Dims::of([lq.dims(), lk.dims(), lv.dims()])?;
        let (q, k, v) = (
            kernels::f32s(q, lq, "attention")?,
            kernels::f32s(k, lk, "attention")?,
            kernels::f32s(v, lv, "attention")?,
        );
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
        let dy = grad_res;
        let dims = Dims::of([q.dims(), k.dims(), v.dims()])?;
        if dy.dims() != q.dims() {
            candle_core::bail!("attention: gradient of another shape");
        }
        let [dq, dk, dv] = kernels::with_f32s(&[q, k, v, dy], "attention", |s| {
            Ok(self.grads([s[0], s[1], s[2], s[3]], dims))
        })?;
        Ok((
            Some(Tensor::from_vec(dq, q.shape(), q.device())?),
            Some(Tensor::from_vec(dk, k.shape(), k.device())?),
            Some(Tensor::from_vec(dv, v.shape(), v.device())?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{same, values};
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
        let fused = causal(&q, &k, &v, scale).unwrap();
        let (kr, vr) = (
            repeat_kv(&k, h / kv).unwrap(),
            repeat_kv(&v, h / kv).unwrap(),
        );
        let scores = (q.matmul(&kr.t().unwrap()).unwrap() * scale).unwrap();
        let plain = ops::causal_softmax(&scores).unwrap().matmul(&vr).unwrap();
        same(fused, plain, &[&q, &k, &v], 1e-5);
    }
}
