//! Fused tensor operations with gradients, for the CPU: one pass where
//! candle's composed ops make several, each with a new buffer.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, InplaceOp2, Layout, Shape, Tensor, D};
use rayon::prelude::*;

use crate::error::Result;
use crate::kernels;

/// The causal softmax of attention scores `[.., t, t]`: row `i` of each
/// `t × t` block is the softmax of its first `i + 1` scores, the rest 0.
/// One fused pass forward and one backward on CPU in f32; the mask and
/// softmax as separate ops elsewhere.
pub fn causal_softmax(scores: &Tensor) -> Result<Tensor> {
    if scores.device().is_cpu() && scores.dtype() == DType::F32 {
        return Ok(scores.contiguous()?.apply_op1(CausalSoftmax)?);
    }
    let t = scores.dim(D::Minus1)?;
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { -1e9 } else { 0.0 }))
        .collect();
    let mask = Tensor::from_vec(mask, (t, t), scores.device())?.to_dtype(scores.dtype())?;
    Ok(candle_nn::ops::softmax(
        &scores.broadcast_add(&mask)?,
        D::Minus1,
    )?)
}

/// Forward: [`kernels::causal_softmax_row`] on every row.
struct CausalSoftmax;

/// Backward: [`kernels::softmax_grad_row`] on every row.
struct CausalSoftmaxGrad;

/// The length `t` of the rows of a `[.., t, t]` layout.
fn row_len(layout: &Layout) -> candle_core::Result<usize> {
    match layout.dims() {
        [.., a, b] if a == b && *b > 0 => Ok(*b),
        dims => candle_core::bail!("causal softmax: scores of shape {dims:?}"),
    }
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let t = row_len(layout)?;
        let mut y = kernels::f32s(storage, layout, "causal softmax")?.to_vec();
        y.par_chunks_mut(t)
            .enumerate()
            .for_each(|(k, row)| kernels::causal_softmax_row(row, k % t + 1));
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let grad = res.apply_op2_no_bwd(&grad_res.contiguous()?, &CausalSoftmaxGrad)?;
        Ok(Some(grad))
    }
}

impl CustomOp2 for CausalSoftmaxGrad {
    fn name(&self) -> &'static str {
        "causal-softmax-grad"
    }

    fn cpu_fwd(
        &self,
        y: &CpuStorage,
        y_layout: &Layout,
        dy: &CpuStorage,
        dy_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let t = row_len(y_layout)?;
        let (y, dy) = (
            kernels::f32s(y, y_layout, "causal softmax")?,
            kernels::f32s(dy, dy_layout, "causal softmax")?,
        );
        if y.len() != dy.len() {
            candle_core::bail!("causal softmax: gradient of another shape");
        }
        let mut dx = vec![0f32; y.len()];
        dx.par_chunks_mut(t)
            .zip(y.par_chunks(t).zip(dy.par_chunks(t)))
            .enumerate()
            .for_each(|(k, (dx, (y, dy)))| kernels::softmax_grad_row(y, dy, dx, k % t + 1));
        Ok((CpuStorage::F32(dx), y_layout.shape().clone()))
    }
}

/// Adds row `k` of `rows` (`[n, d]`) to row `ids[k]` of `dst` (`[v, d]`),
/// for every `k` in order: the embedding's gradient from the gradient of the
/// rows it gave. In place on a contiguous f32 CPU `dst` (which must not share
/// its storage); elsewhere a new tensor (`index_add`). Checks the ids.
pub fn scatter_add_rows(dst: Tensor, ids: &[u32], rows: &Tensor) -> Result<Tensor> {
    let (v, d) = dst.dims2()?;
    let (n, rd) = rows.dims2()?;
    if rd != d || n != ids.len() || ids.iter().any(|&i| i as usize >= v) {
        return Err(crate::error::TrainerError::Shape(format!(
            "scatter of {n} rows of {rd} by {} ids into [{v}, {d}]",
            ids.len()
        )));
    }
    let rows = rows.to_dtype(dst.dtype())?.contiguous()?;
    if dst.device().is_cpu() && dst.dtype() == DType::F32 && dst.is_contiguous() {
        dst.inplace_op2(&rows, &ScatterAddRows { ids })?;
        return Ok(dst);
    }
    let ids = Tensor::from_slice(ids, n, dst.device())?;
    Ok(dst.index_add(&ids, &rows, 0)?)
}

/// [`scatter_add_rows`] in place, on CPU.
struct ScatterAddRows<'a> {
    ids: &'a [u32],
}

impl InplaceOp2 for ScatterAddRows<'_> {
    fn name(&self) -> &'static str {
        "scatter-add-rows"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_layout: &Layout,
        rows: &CpuStorage,
        rows_layout: &Layout,
    ) -> candle_core::Result<()> {
        let d = rows_layout.dims()[1];
        let dst = kernels::f32s_mut(dst, dst_layout, "scatter")?;
        let rows = kernels::f32s(rows, rows_layout, "scatter")?;
        for (&i, row) in self.ids.iter().zip(rows.chunks_exact(d)) {
            let i = i as usize;
            for (a, &b) in dst[i * d..(i + 1) * d].iter_mut().zip(row) {
                *a += b;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::same;
    use candle_core::{Device, Var};

    #[test]
    fn fused_causal_softmax_equals_the_composed_ops_and_their_gradient() {
        let n = 2 * 3 * 7 * 7;
        let data: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 9.0)
            .collect();
        let x = Var::from_vec(data, (2, 3, 7, 7), &Device::Cpu).unwrap();
        let fused = causal_softmax(x.as_tensor()).unwrap();
        // The composed path: a -inf mask, candle's softmax, its autograd.
        let mask: Vec<f32> = (0..7)
            .flat_map(|i| (0..7).map(move |j| if j > i { -1e9 } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (7, 7), &Device::Cpu).unwrap();
        let plain =
            candle_nn::ops::softmax(&x.as_tensor().broadcast_add(&mask).unwrap(), D::Minus1)
                .unwrap();
        same(fused, plain, &[&x], 1e-6);
    }
}
