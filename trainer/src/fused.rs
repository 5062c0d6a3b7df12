//! The element-wise parts of a Llama block fused on the CPU, each one pass
//! forward and one backward, keeping only its output for autograd where
//! candle's composed ops keep every intermediate: RMSNorm, RoPE (with the
//! split into heads), and SwiGLU's `silu(gate) · up`. In f32 on the CPU
//! only; elsewhere the model composes tensor ops (see [`crate::model`]).

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::error::Result;
use crate::kernels;

/// Whether `t` takes the fused path: f32 on the CPU.
pub fn applies(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// Rows per parallel task where a weight's gradient is summed over rows: a
/// fixed number, so that the sum's order does not depend on the threads.
const ROWS_PER_TASK: usize = 64;

// ---------------------------------------------------------------- RMSNorm

/// `w ⊙ x / √(mean(x²) + eps)` over the last dimension of `x`.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    Ok(x.contiguous()?
        .apply_op2(&w.contiguous()?, RmsNorm { eps })?)
}

/// The gradients of [`rms_norm`] at `x` and `w` given `dy`, the output's:
/// `(dx, dw)`, on the CPU in f32.
pub fn rms_norm_grad(x: &Tensor, w: &Tensor, dy: &Tensor, eps: f64) -> Result<(Tensor, Tensor)> {
    Ok((RmsNorm { eps }).grads(x, w, dy)?)
}

struct RmsNorm {
    eps: f64,
}

impl RmsNorm {
    /// `1 / √(mean(row²) + eps)`.
    fn rstd(&self, row: &[f32]) -> f32 {
        let ms = row
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            / row.len() as f64;
        (1.0 / (ms + self.eps).sqrt()) as f32
    }
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        w: &CpuStorage,
        lw: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w) = (
            kernels::f32s(x, lx, "fused op")?,
            kernels::f32s(w, lw, "fused op")?,
        );
        let h = w.len();
        if lx.dims().last() != Some(&h) {
            candle_core::bail!("rms-norm: weight of {h} for rows of {:?}", lx.dims());
        }
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(h).zip(x.par_chunks(h)).for_each(|(y, x)| {
            let r = self.rstd(x);
            for ((y, &x), &w) in y.iter_mut().zip(x).zip(w) {
                *y = w * (x * r);
            }
        });
        Ok((CpuStorage::F32(y), lx.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = self.grads(x, w, dy)?;
        Ok((Some(dx), Some(dw)))
    }
}

impl RmsNorm {
    /// With `n = x·r`, `r = 1/√(mean(x²) + eps)` and `g = dy ⊙ w`:
    /// `dx = r · (g − n · mean(g ⊙ n))`, `dw = Σ_rows dy ⊙ n`.
    fn grads(&self, x: &Tensor, w: &Tensor, dy: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let (dx, dw) = kernels::with_f32s(&[x, w, dy], "rms-norm", |s| {
            let (x, w, dy) = (s[0], s[1], s[2]);
            let h = w.len();
            let mut dx = vec![0f32; x.len()];
            let block = ROWS_PER_TASK * h;
            let partial: Vec<Vec<f32>> = dx
                .par_chunks_mut(block)
                .zip(x.par_chunks(block).zip(dy.par_chunks(block)))
                .map(|(dx, (x, dy))| {
                    let mut dw = vec![0f32; h];
                    for (dx, (x, dy)) in dx.chunks_mut(h).zip(x.chunks(h).zip(dy.chunks(h))) {
                        let r = self.rstd(x);
                        let mut dot = 0f64;
                        for ((&x, &dy), &w) in x.iter().zip(dy).zip(w) {
                            dot += f64::from(dy * w) * f64::from(x * r);
                        }
                        let mean = (dot / h as f64) as f32;
                        for (j, (dx, (&x, &dy))) in dx.iter_mut().zip(x.iter().zip(dy)).enumerate()
                        {
                            let n = x * r;
                            *dx = r * (dy * w[j] - n * mean);
                            dw[j] += dy * n;
                        }
                    }
                    dw
                })
                .collect();
            let mut dw = vec![0f32; h];
            for p in &partial {
                for (a, b) in dw.iter_mut().zip(p) {
                    *a += b;
                }
            }
            Ok((dx, dw))
        })?;
        Ok((
            Tensor::from_vec(dx, x.shape(), x.device())?,
            Tensor::from_vec(dw, w.shape(), w.device())?,
        ))
    }
}

// ---------------------------------------------------------------- RoPE

/// The RoPE angles' cosines and sines, `[t, d]` row-major each (the two
/// halves of a row alike, as Hugging Face's rotate-half expects), or
/// `[b, t, d]`: a position per token of each sample (packed samples).
#[derive(Clone)]
pub struct Angles {
    /// Cosines.
    pub cos: std::sync::Arc<Vec<f32>>,
    /// Sines.
    pub sin: std::sync::Arc<Vec<f32>>,
}

/// Splits `x` of shape `[b, t, heads·d]` (a projection's output) into heads
/// and rotates them: `[b, heads, t, d]`, each `x ⊙ cos + rotate_half(x) ⊙
/// sin`, with `rotate_half([x1, x2]) = [−x2, x1]`.
pub fn rope_heads(x: &Tensor, heads: usize, angles: &Angles) -> Result<Tensor> {
    let op = Rope {
        heads,
        angles: angles.clone(),
    };
    Ok(x.contiguous()?.apply_op1(op)?)
}

/// The gradient of [`rope_heads`] at its input (`[b, t, heads·d]`) given
/// `dy` (`[b, heads, t, d]`), on the CPU in f32.
pub fn rope_heads_grad(dy: &Tensor, heads: usize, angles: &Angles) -> Result<Tensor> {
    let (b, _, t, d) = dy.dims4()?;
    let op = Rope {
        heads,
        angles: angles.clone(),
    };
    Ok(op.grad(&Shape::from((b, t, heads * d)), dy)?)
}

struct Rope {
    heads: usize,
    angles: Angles,
}

impl Rope {
    /// `(b, t, d)` of a `[b, t, heads·d]` layout whose `t × d` (or
    /// `b × t × d`) angles are known.
    fn dims(&self, dims: &[usize]) -> candle_core::Result<(usize, usize, usize)> {
        let [b, t, hd] = dims else {
            candle_core::bail!("rope: input of shape {dims:?}")
        };
        let d = hd / self.heads.max(1);
        let angles = self.angles.cos.len();
        if d == 0
            || !d.is_multiple_of(2)
            || d * self.heads != *hd
            || (angles != t * d && angles != b * t * d)
        {
            candle_core::bail!(
                "rope: {hd} columns for {} heads and {} angles",
                self.heads,
                self.angles.cos.len()
            );
        }
        Ok((*b, *t, d))
    }

    /// Moves every `[b, t, heads, d]` row of `src` to `[b, heads, t, d]` in
    /// `dst` (or back, with `to_heads = false`), applying `f(src_row, cos,
    /// sin, dst_row)`.
    fn map(
        &self,
        (t, d): (usize, usize),
        src: &[f32],
        dst: &mut [f32],
        to_heads: bool,
        f: impl Fn(&[f32], &[f32], &[f32], &mut [f32]) + Sync,
    ) {
        let heads = self.heads;
        let (cos, sin) = (&self.angles.cos, &self.angles.sin);
        let per_sample = cos.len() > t * d;
        // dst row r, in dst's order; its src row.
        dst.par_chunks_mut(d).enumerate().for_each(|(r, out)| {
            let (bi, a, c) = if to_heads {
                (r / (heads * t), (r / t) % heads, r % t) // [b, head, pos]
            } else {
                (r / (t * heads), r % heads, (r / heads) % t) // [b, pos, head]
            };
            let (head, pos) = (a, c);
            let src_row = if to_heads {
                (bi * t + pos) * heads + head
            } else {
                (bi * heads + head) * t + pos
            };
            let at = if per_sample { bi * t + pos } else { pos };
            let a = &cos[at * d..(at + 1) * d];
            let s = &sin[at * d..(at + 1) * d];
            f(&src[src_row * d..(src_row + 1) * d], a, s, out);
        });
    }
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "rope-heads"
    }

    fn cpu_fwd(&self, x: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, t, d) = self.dims(l.dims())?;
        let x = kernels::f32s(x, l, "fused op")?;
        let mut y = vec![0f32; x.len()];
        let h = d / 2;
        self.map((t, d), x, &mut y, true, |x, cos, sin, y| {
            for j in 0..h {
                y[j] = x[j] * cos[j] - x[j + h] * sin[j];
                y[j + h] = x[j + h] * cos[j + h] + x[j] * sin[j + h];
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((b, self.heads, t, d))))
    }

    /// `dx = dy ⊙ cos + rotate_halfᵀ(dy ⊙ sin)`, `rotate_halfᵀ([g1, g2]) =
    /// [g2, −g1]`, moved back to `[b, t, heads·d]`.
    fn bwd(&self, x: &Tensor, _res: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(self.grad(x.shape(), dy)?))
    }
}

impl Rope {
    /// The gradient of an input of `shape` given `dy`, the output's.
    fn grad(&self, shape: &Shape, dy: &Tensor) -> candle_core::Result<Tensor> {
        let (_, t, d) = self.dims(shape.dims())?;
        let h = d / 2;
        let dx = kernels::with_f32s(&[dy], "rope", |s| {
            let mut dx = vec![0f32; s[0].len()];
            self.map((t, d), s[0], &mut dx, false, |dy, cos, sin, dx| {
                for j in 0..h {
                    dx[j] = dy[j] * cos[j] + dy[j + h] * sin[j + h];
                    dx[j + h] = dy[j + h] * cos[j + h] - dy[j] * sin[j];
                }
            });
            Ok(dx)
        })?;
        Tensor::from_vec(dx, shape, dy.device())
    }
}

// ---------------------------------------------------------------- SwiGLU

/// `silu(gate) ⊙ up`.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    Ok(gate.contiguous()?.apply_op2(&up.contiguous()?, SwiGlu)?)
}

/// The gradients of [`swiglu`] at `gate` and `up` given `dy`, the
/// output's: `(dgate, dup)`, on the CPU in f32.
pub fn swiglu_grad(gate: &Tensor, up: &Tensor, dy: &Tensor) -> Result<(Tensor, Tensor)> {
    Ok(SwiGlu.grads(gate, up, dy)?)
}

struct SwiGlu;

/// `1 / (1 + e^−x)`.
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "swiglu"
    }

    fn cpu_fwd(
        &self,
        g: &CpuStorage,
        lg: &Layout,
        u: &CpuStorage,
        lu: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g, u) = (
            kernels::f32s(g, lg, "fused op")?,
            kernels::f32s(u, lu, "fused op")?,
        );
        if g.len() != u.len() {
            candle_core::bail!("swiglu: gate and up of different shapes");
        }
        let mut y = vec![0f32; g.len()];
        y.par_chunks_mut(1 << 14)
            .zip(g.par_chunks(1 << 14).zip(u.par_chunks(1 << 14)))
            .for_each(|(y, (g, u))| {
                for ((y, &g), &u) in y.iter_mut().zip(g).zip(u) {
                    *y = g * sigmoid(g) * u;
                }
            });
        Ok((CpuStorage::F32(y), lg.shape().clone()))
    }

    fn bwd(
        &self,
        g: &Tensor,
        u: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dg, du) = self.grads(g, u, dy)?;
        Ok((Some(dg), Some(du)))
    }
}

impl SwiGlu {
    /// `dgate = dy ⊙ up ⊙ σ(g)·(1 + g·(1 − σ(g)))`, `dup = dy ⊙ silu(g)`.
    fn grads(&self, g: &Tensor, u: &Tensor, dy: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let (dg, du) = kernels::with_f32s(&[g, u, dy], "swiglu", |s| {
            let (g, u, dy) = (s[0], s[1], s[2]);
            let mut dg = vec![0f32; g.len()];
            let mut du = vec![0f32; g.len()];
            let n = 1 << 14;
            dg.par_chunks_mut(n)
                .zip(du.par_chunks_mut(n))
                .zip(g.par_chunks(n).zip(u.par_chunks(n).zip(dy.par_chunks(n))))
                .for_each(|((dg, du), (g, (u, dy)))| {
                    for i in 0..g.len() {
                        let s = sigmoid(g[i]);
                        dg[i] = dy[i] * u[i] * s * (1.0 + g[i] * (1.0 - s));
                        du[i] = dy[i] * g[i] * s;
                    }
                });
            Ok((dg, du))
        })?;
        Ok((
            Tensor::from_vec(dg, g.shape(), g.device())?,
            Tensor::from_vec(du, u.shape(), u.device())?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{same, values};
    use candle_core::{Device, Var, D};

    fn var(shape: &[usize], salt: usize) -> Var {
        let n = shape.iter().product();
        Var::from_vec(values(n, salt), shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn rms_norm_equals_the_composed_ops() {
        let (x, w) = (var(&[3, 70, 48], 1), var(&[48], 2));
        let fused = rms_norm(&x, &w, 1e-5).unwrap();
        let ms = x.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        let plain = x
            .broadcast_div(&(ms + 1e-5).unwrap().sqrt().unwrap())
            .unwrap()
            .broadcast_mul(&w)
            .unwrap();
        same(fused, plain, &[&x, &w], 1e-4);
    }

    #[test]
    fn rope_heads_equals_the_composed_ops() {
        let (b, t, heads, d) = (2, 5, 3, 8);
        let x = var(&[b, t, heads * d], 3);
        let angle = |p: usize, j: usize| (p as f32 + 1.0) * 0.3 / (1 + j % (d / 2)) as f32;
        let table = |f: fn(f32) -> f32| -> Vec<f32> {
            (0..t)
                .flat_map(|p| (0..d).map(move |j| f(angle(p, j))))
                .collect()
        };
        let angles = Angles {
            cos: table(f32::cos).into(),
            sin: table(f32::sin).into(),
        };
        let fused = rope_heads(&x, heads, &angles).unwrap();
        let cos = Tensor::from_vec(angles.cos.to_vec(), (t, d), &Device::Cpu).unwrap();
        let sin = Tensor::from_vec(angles.sin.to_vec(), (t, d), &Device::Cpu).unwrap();
        let h = x
            .reshape((b, t, heads, d))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap();
        let (x1, x2) = (
            h.narrow(D::Minus1, 0, d / 2).unwrap(),
            h.narrow(D::Minus1, d / 2, d / 2).unwrap(),
        );
        let rotated = Tensor::cat(&[&x2.neg().unwrap(), &x1], D::Minus1).unwrap();
        let plain =
            (h.broadcast_mul(&cos).unwrap() + rotated.broadcast_mul(&sin).unwrap()).unwrap();
        same(fused, plain, &[&x], 1e-5);
    }

    #[test]
    fn swiglu_equals_the_composed_ops() {
        let (g, u) = (var(&[4, 33], 4), var(&[4, 33], 5));
        let fused = swiglu(&g, &u).unwrap();
        let plain = (g.silu().unwrap() * u.as_tensor()).unwrap();
        same(fused, plain, &[&g, &u], 1e-5);
    }
}
