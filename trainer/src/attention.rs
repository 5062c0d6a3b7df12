//! Causal attention, `softmax(q·kᵀ·scale, causal)·v`, fused on the CPU:
//! one head at a time, its `t × t` scores in a buffer of the thread that
//! runs it, never in a tensor. The backward pass recomputes them from `q`
//! and `k`, as flash attention does, so autograd keeps `q`, `k`, `v` and the
//! output, and none of the scores. Elsewhere (CUDA, bf16) it is composed of
//! tensor ops, with [`ops::causal_softmax`].

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Storage, Tensor};
use rayon::prelude::*;

use crate::error::Result;
use crate::kernels::{self, gemm_into};
use crate::ops;

/// Causal attention of `q`, `k`, `v`, each `[b, heads, t, head_dim]` (keys
/// and values already repeated to every query head), scores scaled by
/// `scale`. Returns `[b, heads, t, head_dim]`.
pub fn causal(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    let f32_cpu = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32;
    if f32_cpu(q) && f32_cpu(k) && f32_cpu(v) {
        let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
        return Ok(q.apply_op3(&k, &v, CausalAttention { scale })?);
    }
    let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?.to_dtype(DType::F32)?;
    let probs = ops::causal_softmax(&scores)?.to_dtype(v.dtype())?;
    Ok(probs.matmul(v)?)
}

/// The fused operation; its backward pass is [`CausalAttention::grads`].
struct CausalAttention {
    scale: f64,
}

/// `(heads, t, head_dim)` of a `[b, heads, t, head_dim]` layout, `heads`
/// counting every batch row's.
fn dims(layout: &Layout) -> candle_core::Result<(usize, usize, usize)> {
    match layout.dims() {
        [b, h, t, d] if *t > 0 && *d > 0 => Ok((b * h, *t, *d)),
        dims => candle_core::bail!("attention: q, k, v of shape {dims:?}"),
    }
}

/// The contiguous f32 elements of a CPU storage.
fn f32s<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(data), Some((a, b))) => Ok(&data[a..b]),
        _ => candle_core::bail!("attention: contiguous f32 only"),
    }
}

/// One head's `q`, `k` or `v`: `t × d`, row-major.
struct Head<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    t: usize,
    d: usize,
}

impl Head<'_> {
    /// `p = causal_softmax(scale · q·kᵀ)`, `t × t`.
    fn probs(&self, p: &mut [f32], scale: f32) {
        let (t, d) = (self.t, self.d);
        gemm_into(
            p,
            false,
            (t, t, d),
            self.q,
            (d, 1),
            self.k,
            (1, d),
            scale,
            false,
        );
        for (i, row) in p.chunks_exact_mut(t).enumerate() {
            kernels::causal_softmax_row(row, i + 1);
        }
    }
}

impl CausalAttention {
    /// Checks that `q`, `k` and `v` have one shape; returns it.
    fn shape(l: [&Layout; 3]) -> candle_core::Result<(usize, usize, usize)> {
        let s = dims(l[0])?;
        if dims(l[1])? != s || dims(l[2])? != s {
            candle_core::bail!("attention: q, k and v of different shapes");
        }
        Ok(s)
    }

    /// The gradients of `q`, `k` and `v` given `dy`, the output's, all
    /// `heads × t × d` f32: per head, the probabilities again, then
    /// `dv = pᵀ·dy`, `dp = dy·vᵀ`, `ds = p ⊙ (dp − Σ p ⊙ dp)`,
    /// `dq = scale · ds·k`, `dk = scale · dsᵀ·q`.
    fn grads(&self, [q, k, v, dy]: [&[f32]; 4], (t, d): (usize, usize)) -> [Vec<f32>; 3] {
        let scale = self.scale as f32;
        let mut dq = vec![0f32; q.len()];
        let mut dk = vec![0f32; q.len()];
        let mut dv = vec![0f32; q.len()];
        let n = t * d;
        dq.par_chunks_mut(n)
            .zip(dk.par_chunks_mut(n).zip(dv.par_chunks_mut(n)))
            .enumerate()
            .for_each_init(
                || [vec![0f32; t * t], vec![0f32; t * t], vec![0f32; t * t]],
                |[p, dp, ds], (i, (dq, (dk, dv)))| {
                    let r = i * n..(i + 1) * n;
                    let head = Head {
                        q: &q[r.clone()],
                        k: &k[r.clone()],
                        v: &v[r.clone()],
                        t,
                        d,
                    };
                    let dy = &dy[r];
                    head.probs(p, scale);
                    gemm_into(dv, false, (t, d, t), p, (1, t), dy, (d, 1), 1.0, false);
                    gemm_into(dp, false, (t, t, d), dy, (d, 1), head.v, (1, d), 1.0, false);
                    let rows = p.chunks_exact(t).zip(dp.chunks_exact(t));
                    for (j, ((p, dp), ds)) in rows.zip(ds.chunks_exact_mut(t)).enumerate() {
                        kernels::softmax_grad_row(p, dp, ds, j + 1);
                    }
                    gemm_into(
                        dq,
                        false,
                        (t, d, t),
                        ds,
                        (t, 1),
                        head.k,
                        (d, 1),
                        scale,
                        false,
                    );
                    gemm_into(
                        dk,
                        false,
                        (t, d, t),
                        ds,
                        (1, t),
                        head.q,
                        (d, 1),
                        scale,
                        false,
                    );
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
        let (_, t, d) = CausalAttention::shape([lq, lk, lv])?;
        let (q, k, v) = (f32s(q, lq)?, f32s(k, lk)?, f32s(v, lv)?);
        let scale = self.scale as f32;
        let n = t * d;
        let mut y = vec![0f32; q.len()];
        y.par_chunks_mut(n).enumerate().for_each_init(
            || vec![0f32; t * t],
            |p, (i, y)| {
                let r = i * n..(i + 1) * n;
                let head = Head {
                    q: &q[r.clone()],
                    k: &k[r.clone()],
                    v: &v[r],
                    t,
                    d,
                };
                head.probs(p, scale);
                gemm_into(y, false, (t, d, t), p, (t, 1), head.v, (d, 1), 1.0, false);
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
        let dy = grad_res.contiguous()?;
        let grads = {
            let guards = [q, k, v, &dy].map(|t| t.storage_and_layout());
            let mut slices = Vec::with_capacity(4);
            for (storage, layout) in &guards {
                match &**storage {
                    Storage::Cpu(s) => slices.push(f32s(s, layout)?),
                    _ => candle_core::bail!("attention: the backward pass runs on the CPU"),
                }
            }
            let shape = CausalAttention::shape([guards[0].1, guards[1].1, guards[2].1])?;
            if dims(guards[3].1)? != shape {
                candle_core::bail!("attention: gradient of another shape");
            }
            let (_, t, d) = shape;
            self.grads([slices[0], slices[1], slices[2], slices[3]], (t, d))
        };
        let [dq, dk, dv] = grads.map(|g| Tensor::from_vec(g, q.shape(), q.device()));
        Ok((Some(dq?), Some(dk?), Some(dv?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Values in [-1, 1) from a simple hash of the index.
    fn values(n: usize, salt: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 2654435761 + salt * 40503) % 1000) as f32 / 500.0) - 1.0)
            .collect()
    }

    /// The fused attention and its gradients equal the composed tensor ops.
    #[test]
    fn fused_attention_equals_the_composed_ops_and_their_gradients() {
        let (b, h, t, d) = (2, 3, 17, 8);
        let n = b * h * t * d;
        let var = |salt| Var::from_vec(values(n, salt), (b, h, t, d), &Device::Cpu).unwrap();
        let (q, k, v) = (var(1), var(2), var(3));
        let w = Tensor::from_vec(values(n, 4), (b, h, t, d), &Device::Cpu).unwrap();
        let scale = 1.0 / (d as f64).sqrt();
        let fused = causal(&q, &k, &v, scale).unwrap();
        let scores = (q.matmul(&k.t().unwrap()).unwrap() * scale).unwrap();
        let plain = ops::causal_softmax(&scores).unwrap().matmul(&v).unwrap();
        let close = |a: &Tensor, b: &Tensor, what: &str| {
            let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let worst = a
                .iter()
                .zip(&b)
                .fold(0f32, |m, (p, q)| m.max((p - q).abs()));
            assert!(worst < 1e-5, "{what}: {worst}");
        };
        close(&fused, &plain, "output");
        let gf = (fused * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gp = (plain * &w).unwrap().sum_all().unwrap().backward().unwrap();
        for (x, what) in [(&q, "dq"), (&k, "dk"), (&v, "dv")] {
            close(gf.get(x).unwrap(), gp.get(x).unwrap(), what);
        }
    }
}
