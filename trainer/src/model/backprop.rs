//! The blocks' backward pass written out, for f32 on the CPU (where the
//! fused kernels apply), in place of candle's autograd.
//!
//! Autograd gives every intermediate tensor its own gradient buffer, made
//! as zeros and then added to, and keeps every block's activations until
//! the whole pass ends. Here a block's forward pass keeps what its backward
//! pass reads ([`Saved`]), and the backward pass runs the chain rule in
//! reverse order, as nanoGPT's readable blocks would by hand:
//!
//! ```text
//! MLP        ∂act = ∂out·W_down      ∂W_down = ∂outᵀ·act
//!            ∂gate, ∂up from SwiGLU   ∂W_gate = ∂gateᵀ·h₂  ∂W_up = ∂upᵀ·h₂
//!            ∂h₂ = ∂gate·W_gate + ∂up·W_up, then RMSNorm's, plus ∂out
//! attention  ∂y = ∂mid·W_o           ∂W_o = ∂midᵀ·y
//!            ∂q, ∂k, ∂v from the fused attention, RoPE's on ∂q and ∂k
//!            ∂h₁ = ∂q·W_q + ∂k·W_k + ∂v·W_v, then RMSNorm's, plus ∂mid
//! ```
//!
//! Each product runs once through gemm into a buffer of its own, the sums
//! of products accumulate in place, and a block's activations are dropped
//! as soon as its gradients are out. The kernels are the fused ones
//! autograd calls ([`crate::fused`], [`crate::attention`]), so the numbers
//! are the same up to the order of sums; a test holds the two within 1e-5.

use candle_core::Tensor;

use super::{linear, Block, Grads, Param, Positions};
use crate::attention;
use crate::error::Result;
use crate::fused;
use crate::kernels::{self, gemm_into};

/// What a block's forward pass keeps for its backward pass.
pub(super) struct Saved {
    /// The block's input, and its first norm's output.
    x: Tensor,
    h1: Tensor,
    /// Queries and keys after RoPE, and values, `[b, heads, t, d]`.
    q: Tensor,
    k: Tensor,
    v: Tensor,
    /// The attention's output, `[b, t, heads·d]`.
    y: Tensor,
    /// The residual stream after attention, and the second norm's output.
    mid: Tensor,
    h2: Tensor,
    /// The MLP's projections and `silu(gate) ⊙ up`.
    gate: Tensor,
    up: Tensor,
    act: Tensor,
}

/// A parameter's value, untracked.
fn value(p: &Param) -> Tensor {
    p.var.as_tensor().detach()
}

impl Block {
    /// The block on an untracked `x` (`[b, t, hidden]`), and what its
    /// backward pass needs.
    pub(super) fn forward_saved(&self, x: &Tensor, pos: &Positions) -> Result<(Tensor, Saved)> {
        let (b, t, _) = x.dims3()?;
        let attn = &self.self_attn;
        let (nh, nkv, hd) = (attn.n_heads, attn.n_kv_heads, attn.head_dim);
        let h1 = fused::rms_norm(
            x,
            &value(&self.input_layernorm.weight),
            self.input_layernorm.eps,
        )?;
        let q = pos.rope_heads(&linear(&h1, &value(&attn.q_proj.weight))?, nh)?;
        let k = pos.rope_heads(&linear(&h1, &value(&attn.k_proj.weight))?, nkv)?;
        let v = linear(&h1, &value(&attn.v_proj.weight))?
            .reshape((b, t, nkv, hd))?
            .transpose(1, 2)?
            .contiguous()?;
        let scale = 1.0 / (hd as f64).sqrt();
        let y = attention::causal(&q, &k, &v, scale, pos.segments.as_ref())?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, t, nh * hd))?;
        let mid = (x + linear(&y, &value(&attn.o_proj.weight))?)?;
        let norm = &self.post_attention_layernorm;
        let h2 = fused::rms_norm(&mid, &value(&norm.weight), norm.eps)?;
        let gate = linear(&h2, &value(&self.mlp.gate_proj.weight))?;
        let up = linear(&h2, &value(&self.mlp.up_proj.weight))?;
        let act = fused::swiglu(&gate, &up)?;
        let out = (&mid + linear(&act, &value(&self.mlp.down_proj.weight))?)?;
        let saved = Saved {
            x: x.clone(),
            h1,
            q,
            k,
            v,
            y,
            mid,
            h2,
            gate,
            up,
            act,
        };
        Ok((out, saved))
    }

    /// The gradient of the block's input given `dout`, its output's; the
    /// gradients of its weights go into `grads`.
    pub(super) fn backward(
        &self,
        s: Saved,
        pos: &Positions,
        dout: &Tensor,
        grads: &mut Grads,
    ) -> Result<Tensor> {
        let dmid = self.mlp_backward(&s, dout, grads)?;
        self.attention_backward(&s, pos, &dmid, grads)
    }

    /// The MLP and its norm: the gradient of the residual stream after
    /// attention.
    fn mlp_backward(&self, s: &Saved, dout: &Tensor, grads: &mut Grads) -> Result<Tensor> {
        let mlp = &self.mlp;
        let (gate_w, up_w) = (value(&mlp.gate_proj.weight), value(&mlp.up_proj.weight));
        let dact = input_grad(&[(dout, &value(&mlp.down_proj.weight))], s.act.dims())?;
        weight_grad(grads, &mlp.down_proj.weight, dout, &s.act)?;
        let (dgate, dup) = fused::swiglu_grad(&s.gate, &s.up, &dact)?;
        weight_grad(grads, &mlp.gate_proj.weight, &dgate, &s.h2)?;
        weight_grad(grads, &mlp.up_proj.weight, &dup, &s.h2)?;
        let dh2 = input_grad(&[(&dgate, &gate_w), (&dup, &up_w)], s.h2.dims())?;
        let norm = &self.post_attention_layernorm;
        let (dmid, dw) = fused::rms_norm_grad(&s.mid, &value(&norm.weight), &dh2, norm.eps)?;
        grads.insert(norm.weight.var.as_tensor(), dw);
        Ok((dmid + dout)?)
    }

    /// The attention and its norm: the gradient of the block's input.
    fn attention_backward(
        &self,
        s: &Saved,
        pos: &Positions,
        dmid: &Tensor,
        grads: &mut Grads,
    ) -> Result<Tensor> {
        let attn = &self.self_attn;
        let (b, t, _) = s.x.dims3()?;
        let (nh, nkv, hd) = (attn.n_heads, attn.n_kv_heads, attn.head_dim);
        let dy = input_grad(&[(dmid, &value(&attn.o_proj.weight))], s.y.dims())?;
        weight_grad(grads, &attn.o_proj.weight, dmid, &s.y)?;
        let dy = dy.reshape((b, t, nh, hd))?.transpose(1, 2)?.contiguous()?;
        let scale = 1.0 / (hd as f64).sqrt();
        let qkv = [&s.q, &s.k, &s.v];
        let (dq, dk, dv) = attention::causal_grad(qkv, &dy, scale, pos.segments.as_ref())?;
        let dq = fused::rope_heads_grad(&dq, nh, &pos.angles)?;
        let dk = fused::rope_heads_grad(&dk, nkv, &pos.angles)?;
        let dv = dv
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, t, nkv * hd))?;
        let projections = [
            (&dq, &attn.q_proj),
            (&dk, &attn.k_proj),
            (&dv, &attn.v_proj),
        ];
        let mut pairs = Vec::with_capacity(3);
        for (d, proj) in projections {
            weight_grad(grads, &proj.weight, d, &s.h1)?;
            pairs.push((d, value(&proj.weight)));
        }
        let pairs: Vec<(&Tensor, &Tensor)> = pairs.iter().map(|(d, w)| (*d, w)).collect();
        let dh1 = input_grad(&pairs, s.h1.dims())?;
        let norm = &self.input_layernorm;
        let (dx, dw) = fused::rms_norm_grad(&s.x, &value(&norm.weight), &dh1, norm.eps)?;
        grads.insert(norm.weight.var.as_tensor(), dw);
        Ok((dx + dmid)?)
    }
}

/// `Σ dyᵢ · Wᵢ`, the gradient of the input that linear layers `Wᵢ`
/// (`[outᵢ, in]`) share, given their outputs' gradients `dyᵢ` (`[.., outᵢ]`):
/// a tensor of `dims` (`[.., in]`), the products accumulated in place.
fn input_grad(pairs: &[(&Tensor, &Tensor)], dims: &[usize]) -> Result<Tensor> {
    let cols = dims.last().copied().unwrap_or(0);
    let rows = dims.iter().product::<usize>() / cols.max(1);
    let mut dx = vec![0f32; rows * cols];
    for (k, (dy, w)) in pairs.iter().enumerate() {
        let out = w.dim(0)?;
        kernels::with_f32s(&[dy, w], "linear", |s| {
            let (dy, w) = (s[0], s[1]);
            check(dy.len() == rows * out && w.len() == out * cols)?;
            gemm_into(
                &mut dx,
                k > 0,
                (rows, cols, out),
                dy,
                (out, 1),
                w,
                (cols, 1),
                1.0,
                true,
            );
            Ok(())
        })?;
    }
    Ok(Tensor::from_vec(dx, dims, &candle_core::Device::Cpu)?)
}

/// `∂W = dyᵀ · x` for the linear layer `p` given its input `x` (`[.., in]`)
/// and its output's gradient `dy` (`[.., out]`), into `grads`.
fn weight_grad(grads: &mut Grads, p: &Param, dy: &Tensor, x: &Tensor) -> Result<()> {
    let var = p.var.as_tensor();
    let (out, cols) = var.dims2()?;
    let rows = x.elem_count() / cols.max(1);
    let mut dw = vec![0f32; out * cols];
    kernels::with_f32s(&[dy, x], "linear", |s| {
        let (dy, x) = (s[0], s[1]);
        check(dy.len() == rows * out && x.len() == rows * cols)?;
        gemm_into(
            &mut dw,
            false,
            (out, cols, rows),
            dy,
            (1, out),
            x,
            (cols, 1),
            1.0,
            true,
        );
        Ok(())
    })?;
    grads.insert(var, Tensor::from_vec(dw, (out, cols), var.device())?);
    Ok(())
}

/// Refuses mismatched shapes before gemm asserts on them.
fn check(fits: bool) -> candle_core::Result<()> {
    if fits {
        Ok(())
    } else {
        candle_core::bail!("linear: gradient and weight of mismatched shapes")
    }
}
