//! Generation: an inference forward pass with a KV cache, and sampling.
//!
//! [`Decoder`] runs the model of a [`Llama`] one new stretch of tokens at a
//! time. Each layer keeps the keys and values of every token it has seen
//! ([`KvCache`], `[1, kv_heads, T, head_dim]` per layer, RoPE already
//! applied at each token's absolute position), so a new token costs one
//! row of every projection and one row of attention over the cache instead
//! of a forward pass over the whole sequence. Query heads share key/value
//! heads as in training (grouped-query attention: query head `h` reads
//! key/value head `h / (heads / kv_heads)`).
//!
//! [`Sampler`] picks the next token: greedy at temperature 0, else from the
//! softmax at the temperature, cut to the smallest set of tokens whose
//! probability reaches `top_p` (nucleus sampling), with a seeded RNG.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, D};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::LlamaConfig;
use crate::error::{Result, TrainerError};
use crate::fused;
use crate::model::Llama;

/// The weights of one block, in the compute dtype.
struct Layer {
    input_norm: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    o: Tensor,
    post_norm: Tensor,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
}

/// A model ready for generation: its weights cast once to the compute
/// dtype, detached from autograd.
pub struct Decoder {
    config: LlamaConfig,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    head: Tensor,
    inv_freq: Vec<f64>,
    device: Device,
    dtype: DType,
}

/// Every layer's keys and values so far, and the tokens they are of.
pub struct KvCache {
    kv: Vec<Option<(Tensor, Tensor)>>,
    tokens: Vec<u32>,
}

impl KvCache {
    /// The tokens the cache holds, in order.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Keeps the first `n` tokens.
    pub fn truncate(&mut self, n: usize) -> Result<()> {
        if n >= self.tokens.len() {
            return Ok(());
        }
        self.tokens.truncate(n);
        for entry in &mut self.kv {
            *entry = match entry.take() {
                Some((k, v)) if n > 0 => Some((k.narrow(2, 0, n)?, v.narrow(2, 0, n)?)),
                _ => None,
            };
        }
        Ok(())
    }
}

impl Decoder {
    /// The model of `model`, computing in `dtype` on the model's device.
    pub fn new(model: &Llama, dtype: DType) -> Result<Decoder> {
        let mut w: BTreeMap<String, Tensor> = (model.params().into_iter())
            .map(|(name, var)| Ok((name, var.as_tensor().detach().to_dtype(dtype)?)))
            .collect::<Result<_>>()?;
        let mut take = |name: String| w.remove(&name).ok_or(TrainerError::MissingTensor(name));
        let config = model.config().clone();
        let layers = (0..config.num_hidden_layers)
            .map(|l| {
                let mut p = |n: &str| take(format!("model.layers.{l}.{n}.weight"));
                Ok(Layer {
                    input_norm: p("input_layernorm")?,
                    q: p("self_attn.q_proj")?,
                    k: p("self_attn.k_proj")?,
                    v: p("self_attn.v_proj")?,
                    o: p("self_attn.o_proj")?,
                    post_norm: p("post_attention_layernorm")?,
                    gate: p("mlp.gate_proj")?,
                    up: p("mlp.up_proj")?,
                    down: p("mlp.down_proj")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let embed = take("model.embed_tokens.weight".into())?;
        let norm = take("model.norm.weight".into())?;
        let head = match config.tie_word_embeddings {
            true => embed.clone(),
            false => take("lm_head.weight".into())?,
        };
        Ok(Decoder {
            inv_freq: config.inv_freq(),
            config,
            embed,
            layers,
            norm,
            head,
            device: model.device().clone(),
            dtype,
        })
    }

    /// The model's vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    /// An empty cache for this model.
    pub fn cache(&self) -> KvCache {
        KvCache {
            kv: vec![None; self.layers.len()],
            tokens: Vec::new(),
        }
    }

    /// Runs `ids` after the tokens in `cache`, appends them to it, and
    /// returns the logits (f32) that follow the last of them.
    pub fn step(&self, ids: &[u32], cache: &mut KvCache) -> Result<Vec<f32>> {
        let vocab = self.config.vocab_size;
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(TrainerError::Shape(format!(
                "token id {bad} is past the model's vocabulary of {vocab}"
            )));
        }
        if ids.is_empty() {
            return Err(TrainerError::Shape("no tokens to run".into()));
        }
        let start = cache.tokens.len();
        let t = ids.len();
        let input = Tensor::new(ids, &self.device)?;
        let mut x = self.embed.index_select(&input, 0)?.unsqueeze(0)?;
        let (cos, sin) = self.angles(start, t)?;
        let mask = self.mask(start, t)?;
        for (layer, kv) in self.layers.iter().zip(&mut cache.kv) {
            x = self.block(layer, &x, (&cos, &sin), mask.as_ref(), kv)?;
        }
        cache.tokens.extend_from_slice(ids);
        let last = x.narrow(1, t - 1, 1)?;
        let h = rms_norm(&last, &self.norm, self.config.rms_norm_eps)?;
        let logits = linear(&h, &self.head)?.to_dtype(DType::F32)?;
        Ok(logits.flatten_all()?.to_vec1::<f32>()?)
    }

    /// One block: attention over the cache, then the MLP, each added to
    /// the residual stream.
    fn block(
        &self,
        l: &Layer,
        x: &Tensor,
        rope: (&Tensor, &Tensor),
        mask: Option<&Tensor>,
        kv: &mut Option<(Tensor, Tensor)>,
    ) -> Result<Tensor> {
        let eps = self.config.rms_norm_eps;
        let h = rms_norm(x, &l.input_norm, eps)?;
        let x = (x + self.attention(l, &h, rope, mask, kv)?)?;
        let h = rms_norm(&x, &l.post_norm, eps)?;
        let act = (linear(&h, &l.gate)?.silu()? * linear(&h, &l.up)?)?;
        Ok((&x + linear(&act, &l.down)?)?)
    }

    /// Attention of the new tokens `h` (`[1, t, hidden]`) over the cached
    /// keys and values and their own, which are appended to the cache.
    fn attention(
        &self,
        l: &Layer,
        h: &Tensor,
        (cos, sin): (&Tensor, &Tensor),
        mask: Option<&Tensor>,
        kv: &mut Option<(Tensor, Tensor)>,
    ) -> Result<Tensor> {
        let (nh, nkv, hd) = (
            self.config.num_attention_heads,
            self.config.kv_heads(),
            self.config.head_dim(),
        );
        let t = h.dim(1)?;
        let heads = |w: &Tensor, n: usize| -> Result<Tensor> {
            Ok(linear(h, w)?
                .reshape((1, t, n, hd))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let q = rope(&heads(&l.q, nh)?, cos, sin)?;
        let k = rope(&heads(&l.k, nkv)?, cos, sin)?;
        let v = heads(&l.v, nkv)?;
        let (k, v) = match kv.take() {
            Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
            None => (k, v),
        };
        *kv = Some((k.clone(), v.clone()));
        let rep = nh / nkv.max(1);
        let (k, v) = (repeat_kv(&k, rep)?, repeat_kv(&v, rep)?);
        let scale = 1.0 / (hd as f64).sqrt();
        let scores = (q.matmul(&k.t()?)? * scale)?.to_dtype(DType::F32)?;
        let scores = match mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores,
        };
        let p = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(self.dtype)?;
        let y = p
            .matmul(&v.contiguous()?)?
            .transpose(1, 2)?
            .reshape((1, t, nh * hd))?;
        linear(&y, &l.o)
    }

    /// The RoPE cosines and sines of positions `start..start + t`
    /// (`[t, head_dim]`, in the compute dtype), as the training forward
    /// makes them.
    fn angles(&self, start: usize, t: usize) -> Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(t * 2 * half);
        let mut sin = Vec::with_capacity(t * 2 * half);
        for pos in start..start + t {
            for _ in 0..2 {
                for &f in &self.inv_freq {
                    let a = pos as f64 * f;
                    cos.push(a.cos() as f32);
                    sin.push(a.sin() as f32);
                }
            }
        }
        let shape = (t, 2 * half);
        let make = |v: Vec<f32>| -> Result<Tensor> {
            Ok(Tensor::from_vec(v, shape, &self.device)?.to_dtype(self.dtype)?)
        };
        Ok((make(cos)?, make(sin)?))
    }

    /// The causal mask of `t` new tokens after `start` cached ones
    /// (`[t, start + t]` f32, −∞ above the diagonal), or none for one token.
    fn mask(&self, start: usize, t: usize) -> Result<Option<Tensor>> {
        if t == 1 {
            return Ok(None);
        }
        let total = start + t;
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| {
                (0..total).map(move |j| {
                    if j > start + i {
                        f32::NEG_INFINITY
                    } else {
                        0.0
                    }
                })
            })
            .collect();
        Ok(Some(Tensor::from_vec(mask, (t, total), &self.device)?))
    }
}

/// `x · wᵀ` for `x` of shape `[b, t, in]` and `w` of shape `[out, in]`.
fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    Ok(x.reshape((b * t, d))?
        .matmul(&w.t()?)?
        .reshape((b, t, w.dim(0)?))?)
}

/// RMSNorm, normalised in f32 and scaled in `x`'s dtype, as in training.
fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    if fused::applies(x) {
        return fused::rms_norm(x, w, eps);
    }
    let dtype = x.dtype();
    let x = x.to_dtype(DType::F32)?;
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = x.broadcast_div(&(ms + eps)?.sqrt()?)?;
    Ok(normed.to_dtype(dtype)?.broadcast_mul(w)?)
}

/// Rotates `x` (`[b, heads, t, d]`) by the angles (Hugging Face's half
/// rotation).
fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let d = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, d / 2)?;
    let x2 = x.narrow(D::Minus1, d / 2, d / 2)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    Ok((x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?)?)
}

/// `[b, kv, T, d]` → `[b, kv · rep, T, d]`, each key/value head repeated
/// for the `rep` query heads that read it.
fn repeat_kv(x: &Tensor, rep: usize) -> Result<Tensor> {
    if rep == 1 {
        return Ok(x.clone());
    }
    let (b, kv, t, d) = x.dims4()?;
    Ok(x.unsqueeze(2)?
        .expand((b, kv, rep, t, d))?
        .reshape((b, kv * rep, t, d))?)
}

/// How the next token is picked.
#[derive(Debug, Clone, Copy)]
pub struct Sampling {
    /// Softmax temperature; 0 is greedy (the most likely token).
    pub temperature: f64,
    /// Nucleus: sample among the most likely tokens whose probabilities add
    /// up to at least this, in (0, 1].
    pub top_p: f64,
    /// The RNG's seed.
    pub seed: u64,
}

impl Sampling {
    /// Checks the settings: a finite temperature ≥ 0, `top_p` in (0, 1].
    pub fn check(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(TrainerError::OutOfRange {
                flag: "--temperature",
                value: self.temperature,
                range: "a finite number ≥ 0",
            });
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(TrainerError::OutOfRange {
                flag: "--top-p",
                value: self.top_p,
                range: "in (0, 1]",
            });
        }
        Ok(())
    }
}

/// Picks tokens from logits, as [`Sampling`] says.
pub struct Sampler {
    sampling: Sampling,
    rng: ChaCha8Rng,
}

impl Sampler {
    /// A sampler; the settings are checked.
    pub fn new(sampling: Sampling) -> Result<Sampler> {
        sampling.check()?;
        Ok(Sampler {
            sampling,
            rng: ChaCha8Rng::seed_from_u64(sampling.seed),
        })
    }

    /// The next token given `logits`.
    pub fn pick(&mut self, logits: &[f32]) -> u32 {
        if self.sampling.temperature == 0.0 {
            return argmax(logits);
        }
        let top = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let t = self.sampling.temperature;
        let mut probs: Vec<(u32, f64)> = (logits.iter().enumerate())
            .map(|(i, &l)| (i as u32, ((f64::from(l) - f64::from(top)) / t).exp()))
            .filter(|(_, p)| *p > 0.0)
            .collect();
        if probs.is_empty() {
            return argmax(logits);
        }
        probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let total: f64 = probs.iter().map(|(_, p)| p).sum();
        let mut kept = 0.0;
        let mut n = 0;
        while n < probs.len() && kept < self.sampling.top_p * total {
            kept += probs[n].1;
            n += 1;
        }
        let mut r = self.rng.random::<f64>() * kept;
        for &(id, p) in &probs[..n] {
            if r < p {
                return id;
            }
            r -= p;
        }
        probs[n - 1].0
    }
}

/// The index of the largest value (the first of equals); NaN never wins.
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] || values[best].is_nan() {
            best = i;
        }
    }
    best as u32
}

/// Why a generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A stop token came (it is not in the reply).
    Token(u32),
    /// The reply reached the token limit.
    Length,
}

impl Decoder {
    /// Generates after `prompt`, at most `max_new` tokens, until one of
    /// `stop`. The cache keeps what it shares with `prompt` (earlier turns
    /// of a conversation) and runs only the rest. `each` sees every token
    /// of the reply as it comes. Returns the reply (without the stop
    /// token) and why it ended.
    pub fn generate<E: From<TrainerError>>(
        &self,
        prompt: &[u32],
        cache: &mut KvCache,
        sampler: &mut Sampler,
        limits: (usize, &[u32]),
        mut each: impl FnMut(&[u32]) -> std::result::Result<(), E>,
    ) -> std::result::Result<(Vec<u32>, Stop), E> {
        let (max_new, stop) = limits;
        let shared = (cache.tokens.iter().zip(prompt))
            .take_while(|(a, b)| a == b)
            .count()
            .min(prompt.len().saturating_sub(1));
        cache.truncate(shared)?;
        let mut logits = self.step(&prompt[shared..], cache)?;
        let mut reply = Vec::new();
        while reply.len() < max_new {
            let next = sampler.pick(&logits);
            if stop.contains(&next) {
                return Ok((reply, Stop::Token(next)));
            }
            reply.push(next);
            each(&reply)?;
            if reply.len() < max_new {
                logits = self.step(&[next], cache)?;
            }
        }
        Ok((reply, Stop::Length))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint;
    use crate::device::Precision;

    /// A small random checkpoint, saved and loaded as `almr-train init`
    /// writes it; weights wider than Hugging Face's init, so that the
    /// greedy path is not one token repeated.
    fn model(dir: &std::path::Path) -> Llama {
        let mut c = LlamaConfig::preset_or_file("tiny").unwrap();
        c.vocab_size = 512;
        c.num_hidden_layers = 2;
        c.initializer_range = 0.2;
        checkpoint::init(&c, 11, Precision::F32, dir).unwrap();
        checkpoint::load(dir, &Device::Cpu, DType::F32).unwrap()
    }

    /// Greedy tokens by the training forward over the whole sequence each
    /// step, no cache.
    fn reference(m: &Llama, prompt: &[u32], n: usize) -> Vec<u32> {
        let mut ids = prompt.to_vec();
        for _ in 0..n {
            let input = Tensor::new(ids.as_slice(), &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let logits = m.forward(&input).unwrap().squeeze(0).unwrap();
            let last = logits.get(ids.len() - 1).unwrap().to_vec1::<f32>().unwrap();
            ids.push(argmax(&last));
        }
        ids.split_off(prompt.len())
    }

    fn greedy() -> Sampler {
        Sampler::new(Sampling {
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
        })
        .unwrap()
    }

    #[test]
    fn greedy_with_the_cache_gives_the_tokens_of_the_full_forward() {
        let dir = tempfile::tempdir().unwrap();
        let m = model(dir.path());
        let d = Decoder::new(&m, DType::F32).unwrap();
        let prompt = [5u32, 77, 300, 12, 9];
        let want = reference(&m, &prompt, 32);
        let mut cache = d.cache();
        let (got, stop) = d
            .generate(&prompt, &mut cache, &mut greedy(), (32, &[]), |_| {
                Ok::<_, TrainerError>(())
            })
            .unwrap();
        assert_eq!(stop, Stop::Length);
        assert_eq!(got, want);
        let distinct: std::collections::BTreeSet<_> = got.iter().collect();
        assert!(distinct.len() > 3, "a degenerate path: {got:?}");
        // A second turn reuses the cache for the shared prefix: the same
        // as generating from scratch.
        let mut longer = prompt.to_vec();
        longer.extend(&got[..10]);
        longer.extend([41, 42]);
        let (again, _) = d
            .generate(&longer, &mut cache, &mut greedy(), (8, &[]), |_| {
                Ok::<_, TrainerError>(())
            })
            .unwrap();
        assert_eq!(again, reference(&m, &longer, 8));
    }

    #[test]
    fn a_stop_token_ends_the_reply() {
        let dir = tempfile::tempdir().unwrap();
        let m = model(dir.path());
        let d = Decoder::new(&m, DType::F32).unwrap();
        let prompt = [5u32, 77, 300];
        let want = reference(&m, &prompt, 6);
        let stop = [want[3]];
        let first = want.iter().position(|t| *t == want[3]).unwrap();
        let (got, why) = d
            .generate(&prompt, &mut d.cache(), &mut greedy(), (6, &stop), |_| {
                Ok::<_, TrainerError>(())
            })
            .unwrap();
        assert_eq!(why, Stop::Token(want[3]));
        assert_eq!(got, want[..first]);
        let e = d.step(&[512], &mut d.cache()).err().unwrap();
        assert!(e.to_string().contains("512"), "{e}");
    }

    #[test]
    fn sampling_is_seeded_and_top_p_cuts_the_tail() {
        let logits = [1.0f32, 3.0, 2.9, -1.0, 0.5];
        let draw = |top_p: f64, seed: u64| -> Vec<u32> {
            let mut s = Sampler::new(Sampling {
                temperature: 1.0,
                top_p,
                seed,
            })
            .unwrap();
            (0..200).map(|_| s.pick(&logits)).collect()
        };
        assert_eq!(draw(0.9, 3), draw(0.9, 3));
        assert_ne!(draw(0.9, 3), draw(0.9, 4));
        assert!(draw(1e-6, 3).iter().all(|&t| t == 1));
        let small: std::collections::BTreeSet<u32> = draw(0.5, 3).into_iter().collect();
        assert_eq!(small, [1, 2].into());
        assert_eq!(draw(1.0, 3).into_iter().max(), Some(4));
        for (temperature, top_p) in [(-1.0, 0.9), (f64::NAN, 0.9), (1.0, 0.0), (1.0, 1.5)] {
            let s = Sampling {
                temperature,
                top_p,
                seed: 0,
            };
            assert!(Sampler::new(s).is_err(), "{temperature} {top_p}");
        }
    }
}
