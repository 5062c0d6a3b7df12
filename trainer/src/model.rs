//! The Llama-3 model, module by module as in Hugging Face's
//! `LlamaForCausalLM`: [`Llama`] is an embedding, a stack of `Block`s
//! (each `RmsNorm` → `Attention` → residual, `RmsNorm` → `Mlp` →
//! residual), a final norm and a head tied to the embedding or not.
//!
//! Parameters are f32 [`Var`]s (the master weights) named as in Hugging Face
//! checkpoints (`model.layers.N.self_attn.q_proj.weight`, …). The forward
//! pass can run in another dtype (bf16 on CUDA): the embedding is cast to it,
//! so are the activations from then on, and every other weight is cast to the
//! activations' dtype on use, so gradients flow back to the f32 masters.

use std::collections::BTreeMap;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, TensorId, Var, D};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::attention;
use crate::config::LlamaConfig;
use crate::error::{Result, TrainerError};
use crate::fused;
use crate::loss;
use crate::ops;

mod backprop;

use backprop::Saved;

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

/// A named f32 master weight.
#[derive(Clone)]
struct Param {
    /// The Hugging Face name.
    name: String,
    /// The value.
    var: Var,
}

impl Param {
    /// The parameter `name`, taken out of `params`.
    fn take(params: &mut BTreeMap<String, Var>, name: String) -> Result<Param> {
        match params.remove(&name) {
            Some(var) => Ok(Param { name, var }),
            None => Err(TrainerError::MissingTensor(name)),
        }
    }

    /// The weight cast to `dtype`, tracked back to the master.
    fn cast(&self, dtype: DType) -> Result<Tensor> {
        Ok(self.var.as_tensor().to_dtype(dtype)?)
    }

    /// The name and the variable.
    fn named(&self) -> (String, Var) {
        (self.name.clone(), self.var.clone())
    }
}

/// The gradients of a model's parameters, by variable.
#[derive(Default)]
pub struct Grads(HashMap<TensorId, Tensor>);

impl Grads {
    /// The gradient of the variable `var`, if it has one.
    pub fn get(&self, var: &Tensor) -> Option<&Tensor> {
        self.0.get(&var.id())
    }

    fn insert(&mut self, var: &Tensor, grad: Tensor) {
        self.0.insert(var.id(), grad);
    }
}

/// A linear layer without bias: `x · Wᵀ`.
struct Linear {
    weight: Param,
}

impl Linear {
    fn new(params: &mut BTreeMap<String, Var>, prefix: &str) -> Result<Linear> {
        Ok(Linear {
            weight: Param::take(params, format!("{prefix}.weight"))?,
        })
    }

    /// `x` of shape `[b, t, in]` → `[b, t, out]`, in `x`'s dtype.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        linear(x, &self.weight.cast(x.dtype())?)
    }
}

/// `x · wᵀ` for `x` of shape `[b, t, in]` and `w` of shape `[out, in]`.
fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    let out = w.dim(0)?;
    Ok(x.reshape((b * t, d))?
        .matmul(&w.t()?)?
        .reshape((b, t, out))?)
}

/// RMSNorm with a learned scale.
struct RmsNorm {
    weight: Param,
    eps: f64,
}

impl RmsNorm {
    fn new(params: &mut BTreeMap<String, Var>, prefix: &str, eps: f64) -> Result<RmsNorm> {
        Ok(RmsNorm {
            weight: Param::take(params, format!("{prefix}.weight"))?,
            eps,
        })
    }

    /// Normalised in f32, returned in `x`'s dtype, then scaled.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let w = self.weight.cast(dtype)?;
        if fused::applies(x) {
            return fused::rms_norm(x, &w, self.eps);
        }
        let x = x.to_dtype(DType::F32)?;
        let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = x.broadcast_div(&(ms + self.eps)?.sqrt()?)?;
        Ok(normed.to_dtype(dtype)?.broadcast_mul(&w)?)
    }
}

/// Where packed samples' conversations are, per token of the batch
/// (`[b·t]`, row-major): its position in its conversation, which RoPE
/// rotates by, and its segment, outside which attention does not look
/// ([`attention::Segments`]). Samples without it (CPT windows) are one
/// sequence each, positions `0..t`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packing {
    /// Position of each token within its conversation.
    pub positions: Vec<u32>,
    /// Segment of each token: its conversation's number in the sample.
    pub segments: Vec<u32>,
}

/// What attention needs for `b` sequences of `t` tokens: the cosines and
/// sines of the RoPE angles (`[t, head_dim]`, or `[b, 1, t, head_dim]` for
/// packed samples, in the compute dtype), and the segments of packed
/// samples.
struct Positions {
    cos: Tensor,
    sin: Tensor,
    /// The same angles for the fused CPU path.
    angles: fused::Angles,
    /// Packed samples' segments.
    segments: Option<attention::Segments>,
}

/// The RoPE cosines and sines of positions `0..t`, `[t, head_dim]`
/// row-major each.
fn angle_table(config: &LlamaConfig, t: usize) -> (Vec<f32>, Vec<f32>) {
    let inv = config.inv_freq();
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
    (cos, sin)
}

/// The rows of `table` (`[t, d]`) at `positions`, in order.
fn gather_rows(table: &[f32], d: usize, positions: &[u32]) -> Vec<f32> {
    (positions.iter())
        .flat_map(|&p| &table[p as usize * d..(p as usize + 1) * d])
        .copied()
        .collect()
}

impl Positions {
    /// For `b` samples of `t` tokens: positions `0..t` in each, or those of
    /// `packing`, and its segments.
    fn new(
        config: &LlamaConfig,
        (b, t): (usize, usize),
        packing: Option<&Packing>,
        device: &Device,
        dtype: DType,
    ) -> Result<Positions> {
        let (mut cos, mut sin) = angle_table(config, t);
        let d = config.head_dim();
        let mut shape = vec![t, d];
        let mut segments = None;
        if let Some(p) = packing {
            let n = b * t;
            let fits = p.positions.iter().all(|&x| (x as usize) < t);
            if p.positions.len() != n || p.segments.len() != n || !fits {
                return Err(TrainerError::Shape(format!(
                    "packing of {} positions (all below {t}?) and {} segments for {b} samples of {t} tokens",
                    p.positions.len(),
                    p.segments.len()
                )));
            }
            (cos, sin) = (
                gather_rows(&cos, d, &p.positions),
                gather_rows(&sin, d, &p.positions),
            );
            shape = vec![b, 1, t, d];
            segments = Some(attention::Segments::new(&p.segments, t)?);
        }
        Ok(Positions {
            cos: Tensor::from_vec(cos.clone(), shape.clone(), device)?.to_dtype(dtype)?,
            sin: Tensor::from_vec(sin.clone(), shape, device)?.to_dtype(dtype)?,
            angles: fused::Angles {
                cos: cos.into(),
                sin: sin.into(),
            },
            segments,
        })
    }

    /// Splits a projection `x` of shape `[b, t, heads·d]` into heads and
    /// rotates them by the RoPE angles: `[b, heads, t, d]`.
    fn rope_heads(&self, x: &Tensor, heads: usize) -> Result<Tensor> {
        if fused::applies(x) {
            return fused::rope_heads(x, heads, &self.angles);
        }
        let (b, t, hd) = x.dims3()?;
        let x = x
            .reshape((b, t, heads, hd / heads))?
            .transpose(1, 2)?
            .contiguous()?;
        self.rope(&x)
    }

    /// Rotates `x` of shape `[b, heads, t, d]` by the RoPE angles (Hugging
    /// Face's half rotation).
    fn rope(&self, x: &Tensor) -> Result<Tensor> {
        let d = x.dim(D::Minus1)?;
        let x1 = x.narrow(D::Minus1, 0, d / 2)?;
        let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
        let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
        Ok((x.broadcast_mul(&self.cos)? + rotated.broadcast_mul(&self.sin)?)?)
    }
}

/// Causal self-attention with grouped-query heads and RoPE.
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(params: &mut BTreeMap<String, Var>, prefix: &str, c: &LlamaConfig) -> Result<Self> {
        Ok(Attention {
            q_proj: Linear::new(params, &format!("{prefix}.q_proj"))?,
            k_proj: Linear::new(params, &format!("{prefix}.k_proj"))?,
            v_proj: Linear::new(params, &format!("{prefix}.v_proj"))?,
            o_proj: Linear::new(params, &format!("{prefix}.o_proj"))?,
            n_heads: c.num_attention_heads,
            n_kv_heads: c.kv_heads(),
            head_dim: c.head_dim(),
        })
    }

    /// `x` of shape `[b, t, hidden]` → `[b, t, hidden]`.
    fn forward(&self, x: &Tensor, pos: &Positions) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (nh, nkv, hd) = (self.n_heads, self.n_kv_heads, self.head_dim);
        let heads = |proj: &Linear, count: usize| -> Result<Tensor> {
            Ok(proj
                .forward(x)?
                .reshape((b, t, count, hd))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let q = pos.rope_heads(&self.q_proj.forward(x)?, nh)?;
        let k = pos.rope_heads(&self.k_proj.forward(x)?, nkv)?;
        let v = heads(&self.v_proj, nkv)?;
        let scale = 1.0 / (hd as f64).sqrt();
        let y = attention::causal(&q, &k, &v, scale, pos.segments.as_ref())?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, t, nh * hd))?;
        self.o_proj.forward(&y)
    }

    fn params(&self) -> [&Param; 4] {
        [
            &self.q_proj.weight,
            &self.k_proj.weight,
            &self.v_proj.weight,
            &self.o_proj.weight,
        ]
    }
}

/// The SwiGLU MLP: `down(silu(gate(x)) · up(x))`.
struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    fn new(params: &mut BTreeMap<String, Var>, prefix: &str) -> Result<Mlp> {
        Ok(Mlp {
            gate_proj: Linear::new(params, &format!("{prefix}.gate_proj"))?,
            up_proj: Linear::new(params, &format!("{prefix}.up_proj"))?,
            down_proj: Linear::new(params, &format!("{prefix}.down_proj"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (gate, up) = (self.gate_proj.forward(x)?, self.up_proj.forward(x)?);
        let act = if fused::applies(&gate) {
            fused::swiglu(&gate, &up)?
        } else {
            (gate.silu()? * up)?
        };
        self.down_proj.forward(&act)
    }

    fn params(&self) -> [&Param; 3] {
        [
            &self.gate_proj.weight,
            &self.up_proj.weight,
            &self.down_proj.weight,
        ]
    }
}

/// A transformer block: pre-norm attention and pre-norm MLP, each added to
/// the residual stream.
struct Block {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

impl Block {
    fn new(params: &mut BTreeMap<String, Var>, prefix: &str, c: &LlamaConfig) -> Result<Block> {
        let eps = c.rms_norm_eps;
        Ok(Block {
            input_layernorm: RmsNorm::new(params, &format!("{prefix}.input_layernorm"), eps)?,
            self_attn: Attention::new(params, &format!("{prefix}.self_attn"), c)?,
            post_attention_layernorm: RmsNorm::new(
                params,
                &format!("{prefix}.post_attention_layernorm"),
                eps,
            )?,
            mlp: Mlp::new(params, &format!("{prefix}.mlp"))?,
        })
    }

    fn forward(&self, x: &Tensor, pos: &Positions) -> Result<Tensor> {
        let h = self.input_layernorm.forward(x)?;
        let x = (x + self.self_attn.forward(&h, pos)?)?;
        let h = self.post_attention_layernorm.forward(&x)?;
        Ok((&x + self.mlp.forward(&h)?)?)
    }

    /// In Hugging Face order: attention, MLP, then the two norms.
    fn params(&self) -> impl Iterator<Item = &Param> {
        self.self_attn
            .params()
            .into_iter()
            .chain(self.mlp.params())
            .chain([
                &self.input_layernorm.weight,
                &self.post_attention_layernorm.weight,
            ])
    }
}

/// A Llama model with its parameters.
pub struct Llama {
    config: LlamaConfig,
    embed_tokens: Param,
    layers: Vec<Block>,
    norm: RmsNorm,
    /// `None` when tied to the embedding.
    lm_head: Option<Linear>,
    device: Device,
    compute: DType,
    /// Rows of the fused loss head per chunk ([`loss::chunk_rows`]).
    head_rows: usize,
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
        Llama::new(config, params, device, compute)
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
        for (name, expected, _) in parameter_specs(config) {
            let Some(t) = tensors.remove(&name) else {
                return Err(TrainerError::MissingTensor(name));
            };
            if t.dims() != expected.as_slice() {
                let found = t.dims().to_vec();
                return Err(TrainerError::TensorShape {
                    name,
                    found,
                    expected,
                });
            }
            let t = t.to_dtype(DType::F32)?.to_device(device)?;
            params.insert(name, Var::from_tensor(&t)?);
        }
        tensors.retain(|name, _| !name.ends_with("rotary_emb.inv_freq"));
        if config.tie_word_embeddings {
            tensors.remove("lm_head.weight");
        }
        if let Some(example) = tensors.keys().next() {
            return Err(TrainerError::UnusedTensors {
                count: tensors.len(),
                example: example.clone(),
            });
        }
        Llama::new(config, params, device, compute)
    }

    /// The modules, built from the parameters named in [`parameter_specs`].
    fn new(
        config: &LlamaConfig,
        mut params: BTreeMap<String, Var>,
        device: &Device,
        compute: DType,
    ) -> Result<Llama> {
        let p = &mut params;
        let embed_tokens = Param::take(p, "model.embed_tokens.weight".into())?;
        let layers = (0..config.num_hidden_layers)
            .map(|l| Block::new(p, &format!("model.layers.{l}"), config))
            .collect::<Result<_>>()?;
        let norm = RmsNorm::new(p, "model.norm", config.rms_norm_eps)?;
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            Some(Linear::new(p, "lm_head")?)
        };
        Ok(Llama {
            config: config.clone(),
            embed_tokens,
            layers,
            norm,
            lm_head,
            device: device.clone(),
            compute,
            head_rows: loss::chunk_rows(config.vocab_size),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// Every parameter by Hugging Face name, in the order of
    /// [`parameter_specs`].
    pub fn params(&self) -> Vec<(String, Var)> {
        let layers = self.layers.iter().flat_map(Block::params);
        std::iter::once(&self.embed_tokens)
            .chain(layers)
            .chain([&self.norm.weight])
            .chain(self.lm_head.iter().map(|h| &h.weight))
            .map(Param::named)
            .collect()
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Sets the rows `ids` of the embedding, and of the head when it is not
    /// tied, to the mean of the rows neither in `ids` nor in `left_out`: for
    /// tokens the checkpoint never trained (`--init-untrained-tokens mean`).
    /// An id past the vocabulary is an error.
    pub fn set_rows_to_mean(&self, ids: &[u32], left_out: &[u32]) -> Result<()> {
        let v = self.config.vocab_size;
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= v) {
            return Err(TrainerError::Shape(format!(
                "token id {bad} is past the vocabulary of {v}"
            )));
        }
        let (mut set, mut averaged) = (vec![0f32; v], vec![1f32; v]);
        for &i in ids {
            set[i as usize] = 1.0;
            averaged[i as usize] = 0.0;
        }
        for &i in left_out.iter().filter(|&&i| (i as usize) < v) {
            averaged[i as usize] = 0.0;
        }
        let others = averaged.iter().filter(|&&x| x == 1.0).count();
        if others == 0 {
            return Err(TrainerError::Shape("no other rows to average".into()));
        }
        let set = Tensor::from_vec(set, (v, 1), &self.device)?;
        let averaged = Tensor::from_vec(averaged, (v, 1), &self.device)?;
        let keep = set.affine(-1.0, 1.0)?;
        let heads = self.lm_head.iter().map(|h| &h.weight);
        for p in std::iter::once(&self.embed_tokens).chain(heads) {
            let w = p.var.as_tensor();
            let mean = (averaged.t()?.matmul(w)? / others as f64)?;
            p.var
                .set(&(w.broadcast_mul(&keep)? + set.broadcast_mul(&mean)?)?)?;
        }
        Ok(())
    }

    /// The final hidden states `[b, t, hidden]` (after the last norm, in the
    /// compute dtype) for token ids `[b, t]` (u32), packed as `packing`
    /// says, tracked by autograd.
    fn hidden(&self, ids: &Tensor, packing: Option<&Packing>) -> Result<Tensor> {
        self.body(&self.embed(ids)?, packing)
    }

    /// The embedding rows of token ids `[b, t]` (u32): `[b, t, hidden]` in
    /// the compute dtype.
    fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let embed = self.embed_tokens.cast(self.compute)?;
        Ok(embed
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, t, self.config.hidden_size))?)
    }

    /// The blocks and the last norm over embedded tokens `x` (`[b, t,
    /// hidden]`).
    fn body(&self, x: &Tensor, packing: Option<&Packing>) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let pos = Positions::new(&self.config, (b, t), packing, &self.device, self.compute)?;
        let mut x = x.clone();
        for block in &self.layers {
            x = block.forward(&x, &pos)?;
        }
        self.norm.forward(&x)
    }

    /// The output projection's weight: `lm_head`, or the embedding when tied.
    fn head(&self) -> &Param {
        match &self.lm_head {
            Some(head) => &head.weight,
            None => &self.embed_tokens,
        }
    }

    /// Logits (f32, `[b, t, vocab]`) for token ids `[b, t]` (u32): the whole
    /// tensor, for inspection and tests; training and evaluation never make
    /// it ([`crate::loss`]).
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let x = self.hidden(ids, None)?;
        let w = self.head().cast(x.dtype())?;
        Ok(linear(&x, &w)?.to_dtype(DType::F32)?)
    }

    /// The summed next-token cross-entropy of `targets` (`[b·t]`,
    /// [`loss::IGNORE`] for none) given `inputs` (`[b, t]`, u32) packed as
    /// `packing` says (`None`: one sequence per sample), and the number of
    /// tokens counted. No gradients; the logits are made a chunk at a time.
    pub fn loss_sum(
        &self,
        inputs: &Tensor,
        packing: Option<&Packing>,
        targets: &[i64],
    ) -> Result<(f64, usize)> {
        let x = self.hidden(inputs, packing)?.detach();
        let (b, t, h) = x.dims3()?;
        let w = self.head().var.as_tensor().detach();
        loss::linear_cross_entropy_sum(&x.reshape((b * t, h))?, &w, targets, self.head_rows)
    }

    /// The mean next-token cross-entropy of `targets` given `inputs`
    /// packed as `packing` says, and the gradients of `scale ×` that mean
    /// for every parameter. The head runs fused with the loss
    /// ([`crate::loss`]); the rest of the model gets its gradients from the
    /// head's gradient at the hidden states, down to the embedded tokens,
    /// whose gradient is added into the embedding's rows in place (into the
    /// head's own gradient when the two are tied).
    pub fn backward(
        &self,
        inputs: &Tensor,
        packing: Option<&Packing>,
        targets: &[i64],
        scale: f64,
    ) -> Result<(f64, Grads)> {
        if self.device.is_cpu() && self.compute == DType::F32 {
            return self.backward_cpu(inputs, packing, targets, scale);
        }
        self.backward_autograd(inputs, packing, targets, scale)
    }

    /// [`Llama::backward`] through candle's autograd (CUDA, bf16).
    fn backward_autograd(
        &self,
        inputs: &Tensor,
        packing: Option<&Packing>,
        targets: &[i64],
        scale: f64,
    ) -> Result<(f64, Grads)> {
        let embedded = Var::from_tensor(&self.embed(&inputs.detach())?.detach())?;
        let x = self.body(embedded.as_tensor(), packing)?;
        let (b, t, h) = x.dims3()?;
        let x = x.reshape((b * t, h))?;
        let hg = self.head_grads(&x, targets, scale)?;
        // ∂(Σ x ⊙ ∂x)/∂θ is the chain rule through the model below the head.
        let mut store = (&x * hg.hidden.to_dtype(x.dtype())?)?
            .sum_all()?
            .backward()?;
        let rows = match store.remove(embedded.as_tensor()) {
            Some(g) => g.reshape((b * t, h))?,
            None => Tensor::zeros((b * t, h), DType::F32, &self.device)?,
        };
        let mut grads = Grads::default();
        for (_, var) in self.params() {
            if let Some(g) = store.remove(var.as_tensor()) {
                grads.insert(var.as_tensor(), g);
            }
        }
        drop(store);
        self.embedding_grads(inputs, &rows, hg.weight, &mut grads)?;
        Ok((hg.loss, grads))
    }

    /// [`Llama::backward`] in f32 on the CPU: the blocks' backward pass
    /// written out ([`backprop`]), each block's activations dropped once its
    /// gradients are out.
    fn backward_cpu(
        &self,
        inputs: &Tensor,
        packing: Option<&Packing>,
        targets: &[i64],
        scale: f64,
    ) -> Result<(f64, Grads)> {
        let (b, t) = inputs.dims2()?;
        let logits = loss::logits_buffer(b * t, self.config.vocab_size, self.head_rows);
        let pos = Positions::new(&self.config, (b, t), packing, &self.device, self.compute)?;
        let (x, saved) = self.blocks_saved(&inputs.detach(), &pos)?;
        let h = x.dim(2)?;
        let norm_w = self.norm.weight.var.as_tensor().detach();
        let last = fused::rms_norm(&x, &norm_w, self.norm.eps)?;
        let head = self.head().var.as_tensor().detach();
        let last = last.reshape((b * t, h))?;
        let hg =
            loss::linear_cross_entropy_in(logits, &last, &head, targets, scale, self.head_rows)?;
        let mut grads = Grads::default();
        let dlast = hg.hidden.reshape((b, t, h))?;
        let (mut dx, dw) = fused::rms_norm_grad(&x, &norm_w, &dlast, self.norm.eps)?;
        grads.insert(self.norm.weight.var.as_tensor(), dw);
        drop(x);
        for (block, s) in self.layers.iter().zip(saved).rev() {
            dx = block.backward(s, &pos, &dx, &mut grads)?;
        }
        self.embedding_grads(inputs, &dx.reshape((b * t, h))?, hg.weight, &mut grads)?;
        Ok((hg.loss, grads))
    }

    /// The blocks' output for token ids `inputs` (`[b, t]`), untracked, and
    /// what each block keeps for its backward pass.
    fn blocks_saved(&self, inputs: &Tensor, pos: &Positions) -> Result<(Tensor, Vec<Saved>)> {
        let mut x = self.embed(inputs)?.detach();
        let mut saved = Vec::with_capacity(self.layers.len());
        for block in &self.layers {
            let (y, s) = block.forward_saved(&x, pos)?;
            saved.push(s);
            x = y;
        }
        Ok((x, saved))
    }

    /// The fused head's loss and gradients for the final hidden states `x`
    /// (`[b·t, hidden]`).
    fn head_grads(&self, x: &Tensor, targets: &[i64], scale: f64) -> Result<loss::HeadGrads> {
        let head = self.head().var.as_tensor().detach();
        loss::linear_cross_entropy(&x.detach(), &head, targets, scale, self.head_rows)
    }

    /// The embedding's gradient from `rows`, the gradient of the embedded
    /// tokens `inputs` (`[b·t, hidden]`), added in place into the head's
    /// `head_grad` when the two are tied; both into `grads`.
    fn embedding_grads(
        &self,
        inputs: &Tensor,
        rows: &Tensor,
        head_grad: Tensor,
        grads: &mut Grads,
    ) -> Result<()> {
        let ids = inputs.flatten_all()?.to_vec1::<u32>()?;
        let embed = self.embed_tokens.var.as_tensor();
        match &self.lm_head {
            None => {
                grads.insert(embed, ops::scatter_add_rows(head_grad, &ids, rows)?);
            }
            Some(lm_head) => {
                let zeros = Tensor::zeros(embed.shape(), DType::F32, &self.device)?;
                grads.insert(embed, ops::scatter_add_rows(zeros, &ids, rows)?);
                grads.insert(lm_head.weight.var.as_tensor(), head_grad);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{to_packed_batch, PackedSeq};
    use crate::testing::{values, worst};

    fn tiny() -> LlamaConfig {
        let mut c = LlamaConfig::preset_or_file("tiny").unwrap();
        c.vocab_size = 50;
        c.num_hidden_layers = 2;
        c
    }

    fn by_name(m: &Llama) -> BTreeMap<String, Var> {
        m.params().into_iter().collect()
    }

    /// The plain computation: whole logits, log-softmax, the mean over the
    /// counted targets, autograd through everything.
    fn plain_grads(
        m: &Llama,
        ids: &Tensor,
        targets: &[i64],
        scale: f64,
    ) -> (f64, candle_core::backprop::GradStore) {
        let logits = m.forward(ids).unwrap();
        let (b, t, v) = logits.dims3().unwrap();
        let logp = candle_nn::ops::log_softmax(&logits.reshape((b * t, v)).unwrap(), 1).unwrap();
        let keep: Vec<f32> = targets
            .iter()
            .map(|&x| (x != loss::IGNORE) as u8 as f32)
            .collect();
        let idx: Vec<u32> = targets.iter().map(|&x| x.max(0) as u32).collect();
        let keep = Tensor::from_vec(keep, (b * t, 1), &Device::Cpu).unwrap();
        let idx = Tensor::from_vec(idx, (b * t, 1), &Device::Cpu).unwrap();
        let counted = targets.iter().filter(|&&x| x != loss::IGNORE).count() as f64;
        let picked = (logp.gather(&idx, 1).unwrap() * keep).unwrap();
        let mean = (picked.sum_all().unwrap() * (-1.0 / counted)).unwrap();
        let value = mean.to_scalar::<f32>().unwrap() as f64;
        (value, (mean * scale).unwrap().backward().unwrap())
    }

    /// The written-out backward pass of the CPU equals candle's autograd
    /// through the same fused kernels: packed samples, grouped-query heads,
    /// tied and untied embeddings.
    #[test]
    fn the_written_out_backward_equals_autograd() {
        let seq_len = 96;
        let packs = [pack(&[50, 30, 16], seq_len, 1), pack(&[9, 87], seq_len, 2)];
        for tied in [true, false] {
            let (m, b) = packed_model(tied, 11, &packs, seq_len);
            let c = &m.config;
            assert!(c.kv_heads() < c.num_attention_heads, "grouped-query heads");
            let args = (&b.inputs, b.packing.as_ref(), &b.targets[..], 0.7);
            let (got, written) = m.backward_cpu(args.0, args.1, args.2, args.3).unwrap();
            let (want, auto) = m.backward_autograd(args.0, args.1, args.2, args.3).unwrap();
            assert!((got - want).abs() <= 1e-6 * want, "{got} vs {want}");
            for (name, var) in m.params() {
                let a = written.get(var.as_tensor()).unwrap();
                let b = auto.get(var.as_tensor()).unwrap();
                let top = b
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                let worst = worst(a, b);
                assert!(
                    top > 0.0 && worst <= 1e-5 * top,
                    "tied {tied}, {name}: {worst} of {top}"
                );
            }
        }
    }

    #[test]
    fn the_fused_head_gives_the_plain_loss_and_gradients() {
        for tied in [true, false] {
            let mut c = tiny();
            c.tie_word_embeddings = tied;
            let mut m = Llama::init(&c, 5, &Device::Cpu, DType::F32).unwrap();
            m.head_rows = 3;
            let ids = Tensor::new(&[[1u32, 7, 3, 9, 2], [4, 4, 8, 0, 49]], &Device::Cpu).unwrap();
            let targets = [
                7,
                3,
                loss::IGNORE,
                2,
                11,
                4,
                loss::IGNORE,
                loss::IGNORE,
                49,
                1,
            ];
            let (want, plain) = plain_grads(&m, &ids, &targets, 0.5);
            let (got, fused) = m.backward(&ids, None, &targets, 0.5).unwrap();
            assert!(
                (got - want).abs() <= 1e-5 * want,
                "tied {tied}: {got} vs {want}"
            );
            let (sum, counted) = m.loss_sum(&ids, None, &targets).unwrap();
            assert_eq!(counted, 7);
            assert!((sum / 7.0 - want).abs() <= 1e-5 * want);
            for (name, var) in m.params() {
                let a = fused.get(var.as_tensor()).unwrap().flatten_all().unwrap();
                let b = plain.get(var.as_tensor()).unwrap().flatten_all().unwrap();
                let (a, b) = (a.to_vec1::<f32>().unwrap(), b.to_vec1::<f32>().unwrap());
                let top = b.iter().fold(0f32, |x, y| x.max(y.abs()));
                let worst = a
                    .iter()
                    .zip(&b)
                    .fold(0f32, |x, (p, q)| x.max((p - q).abs()));
                assert!(worst <= 1e-5 * top, "tied {tied}, {name}: {worst} of {top}");
            }
        }
    }

    #[test]
    fn init_depends_only_on_the_seed() {
        let c = tiny();
        let a = Llama::init(&c, 3, &Device::Cpu, DType::F32).unwrap();
        let b = Llama::init(&c, 3, &Device::Cpu, DType::F32).unwrap();
        let e = |m: &Llama| {
            by_name(m)["model.embed_tokens.weight"]
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
    }

    #[test]
    fn params_are_the_specs_in_their_order() {
        for tied in [true, false] {
            let mut c = tiny();
            c.tie_word_embeddings = tied;
            let m = Llama::init(&c, 3, &Device::Cpu, DType::F32).unwrap();
            let ours: Vec<(String, Vec<usize>)> = m
                .params()
                .into_iter()
                .map(|(n, v)| (n, v.dims().to_vec()))
                .collect();
            let specs: Vec<(String, Vec<usize>)> = parameter_specs(&c)
                .into_iter()
                .map(|(n, s, _)| (n, s))
                .collect();
            assert_eq!(ours, specs, "tied {tied}");
        }
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
            .into_iter()
            .map(|(k, v)| (k, v.as_tensor().clone()))
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

    /// A sample of `seq_len` tokens packing conversations of `lens` tokens,
    /// each a prompt of 3 tokens (mask 0) and a reply (mask 1), then
    /// padding.
    /// The test model, tied or not, drawn from `seed`, and `packs` as one
    /// batch.
    fn packed_model(
        tied: bool,
        seed: u64,
        packs: &[PackedSeq],
        seq_len: usize,
    ) -> (Llama, crate::data::Batch) {
        let mut c = tiny();
        c.tie_word_embeddings = tied;
        let m = Llama::init(&c, seed, &Device::Cpu, DType::F32).unwrap();
        (m, to_packed_batch(packs, seq_len, &Device::Cpu).unwrap())
    }

    fn pack(lens: &[usize], seq_len: usize, salt: u32) -> PackedSeq {
        let n: usize = lens.iter().sum();
        let ids = (0..n as u32).map(|i| (i * 7 + salt) % 50).collect();
        let mut starts = vec![0];
        for l in &lens[..lens.len() - 1] {
            starts.push(starts.last().unwrap() + l);
        }
        let mask = (lens.iter())
            .flat_map(|&l| (0..l).map(|j| (j >= 3) as u8))
            .collect();
        assert!(n <= seq_len);
        PackedSeq {
            source: 0,
            ids,
            mask,
            starts,
        }
    }

    /// The mean loss and the gradients of `scale ×` it, by name.
    fn run(
        m: &Llama,
        ids: &Tensor,
        packing: Option<&Packing>,
        targets: &[i64],
        scale: f64,
    ) -> (f64, BTreeMap<String, Tensor>) {
        let (loss, g) = m.backward(ids, packing, targets, scale).unwrap();
        let grads = (m.params().into_iter())
            .map(|(name, var)| (name, g.get(var.as_tensor()).unwrap().clone()))
            .collect();
        (loss, grads)
    }

    /// A batch of packed samples (three conversations of 50, 40 and 30
    /// tokens across attention's row blocks, then padding; and two of 9 and
    /// 100) has the loss and the gradients of its conversations run one by
    /// one, unpacked with positions from 0, weighted by their counted
    /// tokens.
    #[test]
    fn a_packed_batch_trains_as_its_conversations_one_by_one() {
        let seq_len = 128;
        let packs = [pack(&[50, 40, 30], seq_len, 1), pack(&[9, 100], seq_len, 2)];
        for tied in [true, false] {
            let (m, b) = packed_model(tied, 7, &packs, seq_len);
            let (loss, grads) = run(&m, &b.inputs, b.packing.as_ref(), &b.targets, 1.0);
            let total = b.targets.iter().filter(|&&t| t != loss::IGNORE).count();
            let mut want_loss = 0.0;
            let mut want: BTreeMap<String, Tensor> = BTreeMap::new();
            for p in &packs {
                let ends = p.starts[1..].iter().copied().chain([p.ids.len()]);
                for (a, e) in p.starts.iter().copied().zip(ends) {
                    let ids = Tensor::new(&p.ids[a..e], &Device::Cpu).unwrap();
                    let targets: Vec<i64> = (a..e)
                        .map(|j| match j + 1 < e && p.mask[j + 1] == 1 {
                            true => p.ids[j + 1] as i64,
                            false => loss::IGNORE,
                        })
                        .collect();
                    let n = targets.iter().filter(|&&t| t != loss::IGNORE).count();
                    let w = n as f64 / total as f64;
                    let ids = ids.unsqueeze(0).unwrap();
                    let (l, g) = run(&m, &ids, None, &targets, w);
                    want_loss += l * w;
                    for (name, g) in g {
                        let sum = match want.remove(&name) {
                            Some(prev) => (prev + g).unwrap(),
                            None => g,
                        };
                        want.insert(name, sum);
                    }
                }
            }
            assert!(
                (loss - want_loss).abs() <= 1e-5 * want_loss,
                "{loss} vs {want_loss}"
            );
            for (name, g) in &grads {
                let a = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let b = want[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let top = b.iter().fold(0f32, |x, y| x.max(y.abs()));
                let worst = (a.iter().zip(&b)).fold(0f32, |x, (p, q)| x.max((p - q).abs()));
                assert!(worst <= 1e-5 * top, "tied {tied}, {name}: {worst} of {top}");
            }
        }
    }

    /// The hidden states of a conversation do not change when another
    /// conversation of its pack does.
    #[test]
    fn a_conversation_does_not_see_its_neighbours() {
        let m = Llama::init(&tiny(), 1, &Device::Cpu, DType::F32).unwrap();
        let seq_len = 128;
        let a = pack(&[50, 40, 30], seq_len, 1);
        let mut b = a.clone();
        for id in &mut b.ids[50..90] {
            *id = (*id + 13) % 50;
        }
        let hidden = |p: &PackedSeq| {
            let batch = to_packed_batch(std::slice::from_ref(p), seq_len, &Device::Cpu).unwrap();
            m.hidden(&batch.inputs, batch.packing.as_ref()).unwrap()
        };
        let (ha, hb) = (hidden(&a), hidden(&b));
        let rows = |h: &Tensor, s, n| h.narrow(1, s, n).unwrap();
        for (s, n) in [(0, 50), (90, 38)] {
            assert_eq!(worst(&rows(&ha, s, n), &rows(&hb, s, n)), 0.0, "{s}..");
        }
        assert!(worst(&rows(&ha, 50, 40), &rows(&hb, 50, 40)) > 1e-3);
    }

    /// Per-token positions rotate each token as the unpacked RoPE rotates
    /// the token at that position, on the fused path and the composed one.
    #[test]
    fn packed_positions_rotate_as_unpacked_ones() {
        let c = tiny();
        let (b, t, heads, d) = (2, 12, c.num_attention_heads, c.head_dim());
        let x = Tensor::from_vec(
            values(b * t * heads * d, 3),
            (b, t, heads * d),
            &Device::Cpu,
        );
        let x = x.unwrap();
        // Sample 0 repeats its first 5 tokens at positions 0..5 after them;
        // sample 1 is unpacked.
        let seg: Vec<u32> = (0..t).map(|j| (j >= 5) as u32).collect();
        let pos0: Vec<u32> = (0..t as u32)
            .map(|j| if j < 5 { j } else { j - 5 })
            .collect();
        let packing = Packing {
            positions: [pos0.clone(), (0..t as u32).collect()].concat(),
            segments: [seg, vec![0; t]].concat(),
        };
        let x0: Vec<Tensor> = (pos0.iter())
            .map(|&p| x.narrow(0, 0, 1).unwrap().narrow(1, p as usize, 1).unwrap())
            .collect();
        let x0 = Tensor::cat(&x0, 1).unwrap();
        let x = Tensor::cat(&[&x0, &x.narrow(0, 1, 1).unwrap()], 0).unwrap();
        let packed = Positions::new(&c, (b, t), Some(&packing), &Device::Cpu, DType::F32);
        let plain = Positions::new(&c, (b, t), None, &Device::Cpu, DType::F32).unwrap();
        let packed = packed.unwrap();
        let heads_of = |x: &Tensor| {
            let x = x.reshape((b, t, heads, d)).unwrap();
            x.transpose(1, 2).unwrap().contiguous().unwrap()
        };
        let fused = packed.rope_heads(&x, heads).unwrap();
        let composed = packed.rope(&heads_of(&x)).unwrap();
        assert!(worst(&fused, &composed) < 1e-6);
        // Token 5 + j of sample 0 is token j, at position j.
        let ours = fused.narrow(0, 0, 1).unwrap().narrow(2, 5, 5).unwrap();
        let unpacked = plain.rope_heads(&x, heads).unwrap();
        let theirs = unpacked.narrow(0, 0, 1).unwrap().narrow(2, 0, 5).unwrap();
        assert_eq!(worst(&ours, &theirs), 0.0);
        let sample1 = |r: &Tensor| r.narrow(0, 1, 1).unwrap();
        assert_eq!(worst(&sample1(&fused), &sample1(&unpacked)), 0.0);
    }

    /// The rows set are the mean of the others but those left out, in the
    /// embedding and the untied head; the other rows are unchanged.
    #[test]
    fn set_rows_to_mean_averages_the_other_rows() {
        for tied in [true, false] {
            let mut c = tiny();
            c.tie_word_embeddings = tied;
            let m = Llama::init(&c, 2, &Device::Cpu, DType::F32).unwrap();
            let before: BTreeMap<String, Vec<Vec<f32>>> = (m.params().into_iter())
                .filter(|(n, _)| n.contains("embed") || n.contains("lm_head"))
                .map(|(n, v)| (n, v.as_tensor().to_vec2::<f32>().unwrap()))
                .collect();
            m.set_rows_to_mean(&[3, 7, 7], &[9]).unwrap();
            assert_eq!(before.len(), if tied { 1 } else { 2 });
            for (name, old) in before {
                let new = by_name(&m)[&name].as_tensor().to_vec2::<f32>().unwrap();
                let others: Vec<&Vec<f32>> = (old.iter().enumerate())
                    .filter(|(r, _)| ![3, 7, 9].contains(r))
                    .map(|(_, row)| row)
                    .collect();
                for (r, row) in new.iter().enumerate() {
                    if r != 3 && r != 7 {
                        assert_eq!(row, &old[r], "{name} {r}");
                        continue;
                    }
                    for (k, x) in row.iter().enumerate() {
                        let mean = others.iter().map(|o| o[k] as f64).sum::<f64>() / 47.0;
                        assert!((*x as f64 - mean).abs() < 1e-6, "{name} {r} {k}");
                    }
                }
            }
            assert!(m.set_rows_to_mean(&[50], &[]).is_err());
        }
    }
}
