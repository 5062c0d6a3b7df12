//! The Llama-3 model: RMSNorm, RoPE with Llama-3 scaling, grouped-query
//! attention, SwiGLU MLP, tied or untied embeddings.
//!
//! Parameters are f32 [`Var`]s named as in Hugging Face checkpoints
//! (`model.layers.N.self_attn.q_proj.weight`, …). The forward pass can run
//! in another dtype (bf16 on CUDA): each weight is cast on use, so gradients
//! flow back to the f32 master weights.

use std::collections::BTreeMap;

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::LlamaConfig;

/// A Llama model with its parameters.
pub struct Llama {
    config: LlamaConfig,
    params: BTreeMap<String, Var>,
    device: Device,
    compute: DType,
}

/// How a parameter is initialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// Normal(0, `initializer_range`): linear and embedding weights.
    Normal,
    /// All ones: RMSNorm weights.
    Ones,
}

/// Every parameter of `config`, in Hugging Face module order: name, shape,
/// initialisation.
pub fn parameter_specs(config: &LlamaConfig) -> Vec<(String, Vec<usize>, Init)> {
    let (h, i, v) = (
        config.hidden_size,
        config.intermediate_size,
        config.vocab_size,
    );
    let q = config.num_attention_heads * config.head_dim();
    let kv = config.kv_heads() * config.head_dim();
    let mut specs = vec![(
        "model.embed_tokens.weight".to_string(),
        vec![v, h],
        Init::Normal,
    )];
    for l in 0..config.num_hidden_layers {
        let p = format!("model.layers.{l}.");
        for (name, shape, init) in [
            ("self_attn.q_proj.weight", vec![q, h], Init::Normal),
            ("self_attn.k_proj.weight", vec![kv, h], Init::Normal),
            ("self_attn.v_proj.weight", vec![kv, h], Init::Normal),
            ("self_attn.o_proj.weight", vec![h, q], Init::Normal),
            ("mlp.gate_proj.weight", vec![i, h], Init::Normal),
            ("mlp.up_proj.weight", vec![i, h], Init::Normal),
            ("mlp.down_proj.weight", vec![h, i], Init::Normal),
            ("input_layernorm.weight", vec![h], Init::Ones),
            ("post_attention_layernorm.weight", vec![h], Init::Ones),
        ] {
            specs.push((format!("{p}{name}"), shape, init));
        }
    }
    specs.push(("model.norm.weight".to_string(), vec![h], Init::Ones));
    if !config.tie_word_embeddings {
        specs.push(("lm_head.weight".to_string(), vec![v, h], Init::Normal));
    }
    specs
}

/// Standard normal draws (Box–Muller), so that initial weights depend only on
/// the seed, not on the device.
fn normals(rng: &mut ChaCha8Rng, n: usize, std: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt() * std;
        let theta = 2.0 * std::f64::consts::PI * u2;
        out.push((r * theta.cos()) as f32);
        if out.len() < n {
            out.push((r * theta.sin()) as f32);
        }
    }
    out
}

/// `x · wᵀ` for `x` of shape `[b, t, in]` and `w` of shape `[out, in]`.
fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    let out = w.dim(0)?;
    Ok(x.reshape((b * t, d))?
        .matmul(&w.t()?)?
        .reshape((b, t, out))?)
}

/// RMSNorm, computed in f32 and returned in `x`'s dtype, then scaled.
fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let dtype = x.dtype();
    let x = x.to_dtype(DType::F32)?;
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = x.broadcast_div(&(ms + eps)?.sqrt()?)?;
    Ok(normed.to_dtype(dtype)?.broadcast_mul(w)?)
}

/// Rotates `x` of shape `[b, heads, t, d]` by the angles whose cosines and
/// sines are `cos`, `sin` of shape `[t, d]` (Hugging Face's half rotation).
fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, d / 2)?;
    let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    Ok((x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?)?)
}

/// Repeats each key/value head `n` times: `[b, kv, t, d]` → `[b, kv·n, t, d]`.
fn repeat_kv(x: Tensor, n: usize) -> Result<Tensor> {
    if n == 1 {
        return Ok(x);
    }
    let (b, kv, t, d) = x.dims4()?;
    Ok(x.unsqueeze(2)?
        .broadcast_as((b, kv, n, t, d))?
        .contiguous()?
        .reshape((b, kv * n, t, d))?)
}

impl Llama {
    /// A new model with weights drawn from `seed` as Hugging Face initialises
    /// Llama: normal with `initializer_range` for matrices, ones for norms.
    pub fn init(config: &LlamaConfig, seed: u64, device: &Device, compute: DType) -> Result<Llama> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut params = BTreeMap::new();
        for (name, shape, init) in parameter_specs(config) {
            let n: usize = shape.iter().product();
            let data = match init {
                Init::Normal => normals(&mut rng, n, config.initializer_range),
                Init::Ones => vec![1.0; n],
            };
            let t = Tensor::from_vec(data, shape, device)?;
            params.insert(name, Var::from_tensor(&t)?);
        }
        Ok(Llama {
            config: config.clone(),
            params,
            device: device.clone(),
            compute,
        })
    }

    /// A model from named tensors (a loaded checkpoint), converted to f32
    /// parameters on `device`. Every expected tensor must be there with its
    /// shape; `rotary_emb.inv_freq` buffers are ignored, anything else is an
    /// error.
    pub fn from_tensors(
        config: &LlamaConfig,
        mut tensors: BTreeMap<String, Tensor>,
        device: &Device,
        compute: DType,
    ) -> Result<Llama> {
        let mut params = BTreeMap::new();
        for (name, shape, _) in parameter_specs(config) {
            let t = tensors
                .remove(&name)
                .with_context(|| format!("the checkpoint has no tensor {name}"))?;
            ensure!(
                t.dims() == shape.as_slice(),
                "{name}: shape {:?}, the config needs {shape:?}",
                t.dims()
            );
            let t = t.to_dtype(DType::F32)?.to_device(device)?;
            params.insert(name, Var::from_tensor(&t)?);
        }
        tensors.retain(|name, _| !name.ends_with("rotary_emb.inv_freq"));
        if config.tie_word_embeddings {
            tensors.remove("lm_head.weight");
        }
        if let Some(name) = tensors.keys().next() {
            bail!(
                "the checkpoint has {} tensors this Llama config does not use, e.g. {name}",
                tensors.len()
            );
        }
        Ok(Llama {
            config: config.clone(),
            params,
            device: device.clone(),
            compute,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The parameters by Hugging Face name.
    pub fn params(&self) -> &BTreeMap<String, Var> {
        &self.params
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    fn w(&self, name: &str) -> Result<Tensor> {
        let v = self
            .params
            .get(name)
            .with_context(|| format!("no parameter {name}"))?;
        Ok(v.as_tensor().to_dtype(self.compute)?)
    }

    /// Cosines and sines of the RoPE angles for positions `0..t`, `[t, head_dim]`.
    fn rope_tables(&self, t: usize) -> Result<(Tensor, Tensor)> {
        let inv = self.config.inv_freq();
        let half = inv.len();
        let mut cos = Vec::with_capacity(t * 2 * half);
        let mut sin = Vec::with_capacity(t * 2 * half);
        for pos in 0..t {
            for _ in 0..2 {
                for &f in &inv {
                    let a = pos as f64 * f;
                    cos.push(a.cos() as f32);
                    sin.push(a.sin() as f32);
                }
            }
        }
        let shape = (t, 2 * half);
        Ok((
            Tensor::from_vec(cos, shape, &self.device)?.to_dtype(self.compute)?,
            Tensor::from_vec(sin, shape, &self.device)?.to_dtype(self.compute)?,
        ))
    }

    fn causal_mask(&self, t: usize) -> Result<Tensor> {
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| (0..t).map(move |j| if j > i { -1e9 } else { 0.0 }))
            .collect();
        Ok(Tensor::from_vec(mask, (t, t), &self.device)?)
    }

    /// Logits (f32, `[b, t, vocab]`) for token ids `[b, t]` (u32).
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let c = &self.config;
        let (b, t) = ids.dims2()?;
        let (h, nh, nkv, hd) = (
            c.hidden_size,
            c.num_attention_heads,
            c.kv_heads(),
            c.head_dim(),
        );
        let eps = c.rms_norm_eps;
        let embed = self.w("model.embed_tokens.weight")?;
        let mut x = embed
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, t, h))?;
        let (cos, sin) = self.rope_tables(t)?;
        let mask = self.causal_mask(t)?;
        let scale = 1.0 / (hd as f64).sqrt();
        for l in 0..c.num_hidden_layers {
            let w = |name: &str| self.w(&format!("model.layers.{l}.{name}"));
            let n = rms_norm(&x, &w("input_layernorm.weight")?, eps)?;
            let heads = |proj: &str, count: usize| -> Result<Tensor> {
                Ok(linear(&n, &w(proj)?)?
                    .reshape((b, t, count, hd))?
                    .transpose(1, 2)?
                    .contiguous()?)
            };
            let q = rope(&heads("self_attn.q_proj.weight", nh)?, &cos, &sin)?;
            let k = rope(&heads("self_attn.k_proj.weight", nkv)?, &cos, &sin)?;
            let v = heads("self_attn.v_proj.weight", nkv)?;
            let (k, v) = (repeat_kv(k, nh / nkv)?, repeat_kv(v, nh / nkv)?);
            let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?
                .to_dtype(DType::F32)?
                .broadcast_add(&mask)?;
            let probs = candle_nn::ops::softmax(&scores, D::Minus1)?.to_dtype(self.compute)?;
            let y = probs
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b, t, nh * hd))?;
            x = (x + linear(&y, &w("self_attn.o_proj.weight")?)?)?;
            let n = rms_norm(&x, &w("post_attention_layernorm.weight")?, eps)?;
            let gate = linear(&n, &w("mlp.gate_proj.weight")?)?.silu()?;
            let up = linear(&n, &w("mlp.up_proj.weight")?)?;
            x = (x + linear(&(gate * up)?, &w("mlp.down_proj.weight")?)?)?;
        }
        let x = rms_norm(&x, &self.w("model.norm.weight")?, eps)?;
        let head = if c.tie_word_embeddings {
            embed
        } else {
            self.w("lm_head.weight")?
        };
        Ok(linear(&x, &head)?.to_dtype(DType::F32)?)
    }

    /// Mean next-token cross-entropy of `targets` (`[b, t]`, u32) given
    /// `inputs` (`[b, t]`, u32).
    pub fn loss(&self, inputs: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let logits = self.forward(inputs)?;
        let (b, t, v) = logits.dims3()?;
        Ok(candle_nn::loss::cross_entropy(
            &logits.reshape((b * t, v))?,
            &targets.flatten_all()?,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> LlamaConfig {
        let mut c = LlamaConfig::preset_or_file("tiny").unwrap();
        c.vocab_size = 50;
        c.num_hidden_layers = 2;
        c
    }

    #[test]
    fn init_depends_only_on_the_seed() {
        let c = tiny();
        let a = Llama::init(&c, 3, &Device::Cpu, DType::F32).unwrap();
        let b = Llama::init(&c, 3, &Device::Cpu, DType::F32).unwrap();
        let e = |m: &Llama| {
            m.params()["model.embed_tokens.weight"]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        assert_eq!(e(&a), e(&b));
        let d = Llama::init(&c, 4, &Device::Cpu, DType::F32).unwrap();
        assert_ne!(e(&a), e(&d));
        let std =
            (e(&a).iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / e(&a).len() as f64).sqrt();
        assert!((std - 0.02).abs() < 0.002, "{std}");
        assert_eq!(a.params().len(), parameter_specs(&c).len());
    }

    #[test]
    fn forward_is_causal() {
        let m = Llama::init(&tiny(), 1, &Device::Cpu, DType::F32).unwrap();
        let a = Tensor::new(&[[1u32, 2, 3, 4]], &Device::Cpu).unwrap();
        let b = Tensor::new(&[[1u32, 2, 9, 9]], &Device::Cpu).unwrap();
        let la = m.forward(&a).unwrap().to_vec3::<f32>().unwrap();
        let lb = m.forward(&b).unwrap().to_vec3::<f32>().unwrap();
        assert_eq!(la[0][..2], lb[0][..2]);
        assert_ne!(la[0][2], lb[0][2]);
    }

    #[test]
    fn a_missing_or_extra_tensor_is_an_error() {
        let c = tiny();
        let m = Llama::init(&c, 1, &Device::Cpu, DType::F32).unwrap();
        let mut t: BTreeMap<String, Tensor> = m
            .params()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect();
        t.insert(
            "model.layers.0.self_attn.rotary_emb.inv_freq".into(),
            Tensor::zeros(8, DType::F32, &Device::Cpu).unwrap(),
        );
        assert!(Llama::from_tensors(&c, t.clone(), &Device::Cpu, DType::F32).is_ok());
        t.insert(
            "model.extra.weight".into(),
            Tensor::zeros(1, DType::F32, &Device::Cpu).unwrap(),
        );
        let e = Llama::from_tensors(&c, t.clone(), &Device::Cpu, DType::F32)
            .err()
            .unwrap();
        assert!(e.to_string().contains("model.extra.weight"), "{e}");
        t.remove("model.norm.weight");
        let e = Llama::from_tensors(&c, t, &Device::Cpu, DType::F32)
            .err()
            .unwrap();
        assert!(e.to_string().contains("model.norm.weight"), "{e}");
    }
}
