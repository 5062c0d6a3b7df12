//! AdamW with decoupled weight decay (as `torch.optim.AdamW`), no decay on
//! norms or biases, global-norm gradient clipping, and a state that can be
//! saved and restored exactly.

use std::collections::BTreeMap;

use candle_core::{CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Tensor, Var};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainerError};
use crate::kernels;

/// Hyper-parameters other than the learning rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Decoupled weight decay, for matrices only.
    pub weight_decay: f64,
}

struct Slot {
    var: Var,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    decay: bool,
}

/// The step's constants for one parameter: `θ ← decay·θ − lr·m̂/(√v̂ + ε)`
/// with `m̂ = m/bias.0` and `v̂ = v/bias.1`.
struct Update {
    lr: f64,
    decay: f64,
    bias: (f64, f64),
    eps: f64,
}

impl Slot {
    /// The update as three in-place passes over the CPU buffers.
    fn update_in_place(&self, g: &Tensor, c: &AdamWConfig, scale: f64, u: &Update) -> Result<()> {
        let moment = |beta: f64, square: bool| Moment {
            beta,
            scale,
            square,
        };
        self.exp_avg.inplace_op2(g, &moment(c.beta1, false))?;
        self.exp_avg_sq.inplace_op2(g, &moment(c.beta2, true))?;
        let theta = self.var.as_tensor();
        theta.inplace_op3(&self.exp_avg, &self.exp_avg_sq, u)?;
        Ok(())
    }

    /// The same update as tensor ops (CUDA).
    fn update_with_ops(
        &mut self,
        g: &Tensor,
        c: &AdamWConfig,
        scale: f64,
        u: &Update,
    ) -> Result<()> {
        let g = if scale == 1.0 {
            g.clone()
        } else {
            (g * scale)?
        };
        let m = ((&self.exp_avg * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
        let v = ((&self.exp_avg_sq * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
        let theta = (self.var.as_tensor() * u.decay)?;
        let denom = ((&v / u.bias.1)?.sqrt()? + u.eps)?;
        let update = ((&m / u.bias.0)? / denom)?;
        self.var.set(&(theta - (update * u.lr)?)?)?;
        self.exp_avg = m;
        self.exp_avg_sq = v;
        Ok(())
    }
}

/// Elements per parallel task of the in-place passes.
const PASS_CHUNK: usize = 1 << 15;

/// `m ← β·m + (1 − β)·(s·g)`, or with `(s·g)²`: a moment, in place.
struct Moment {
    beta: f64,
    scale: f64,
    square: bool,
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "adamw-moment"
    }

    fn cpu_fwd(
        &self,
        m: &mut CpuStorage,
        lm: &Layout,
        g: &CpuStorage,
        lg: &Layout,
    ) -> candle_core::Result<()> {
        let (m, g) = (
            kernels::f32s_mut(m, lm, "AdamW")?,
            kernels::f32s(g, lg, "AdamW")?,
        );
        if m.len() != g.len() {
            candle_core::bail!("AdamW: a gradient of another shape");
        }
        let (beta, rest) = (self.beta as f32, (1.0 - self.beta) as f32);
        let (scale, square) = (self.scale as f32, self.square);
        m.par_chunks_mut(PASS_CHUNK)
            .zip(g.par_chunks(PASS_CHUNK))
            .for_each(|(m, g)| {
                for (m, &g) in m.iter_mut().zip(g) {
                    // As the tensor ops round: a scalar product is x·a + 0.
                    let g = if scale == 1.0 { g } else { g * scale + 0.0 };
                    let g = if square { g * g } else { g };
                    *m = (*m * beta + 0.0) + (g * rest + 0.0);
                }
            });
        Ok(())
    }
}

impl InplaceOp3 for Update {
    fn name(&self) -> &'static str {
        "adamw-update"
    }

    fn cpu_fwd(
        &self,
        theta: &mut CpuStorage,
        lt: &Layout,
        m: &CpuStorage,
        lm: &Layout,
        v: &CpuStorage,
        lv: &Layout,
    ) -> candle_core::Result<()> {
        let (theta, m, v) = (
            kernels::f32s_mut(theta, lt, "AdamW")?,
            kernels::f32s(m, lm, "AdamW")?,
            kernels::f32s(v, lv, "AdamW")?,
        );
        if theta.len() != m.len() || theta.len() != v.len() {
            candle_core::bail!("AdamW: moments of another shape");
        }
        let decay = self.decay as f32;
        let (inv1, inv2) = ((1.0 / self.bias.0) as f32, (1.0 / self.bias.1) as f32);
        let (eps, lr) = (self.eps as f32, self.lr as f32);
        theta
            .par_chunks_mut(PASS_CHUNK)
            .zip(m.par_chunks(PASS_CHUNK).zip(v.par_chunks(PASS_CHUNK)))
            .for_each(|(theta, (m, v))| {
                for ((t, &m), &v) in theta.iter_mut().zip(m).zip(v) {
                    let denom = (v * inv2 + 0.0).sqrt() * 1.0 + eps;
                    let update = (m * inv1 + 0.0) / denom;
                    *t = (*t * decay + 0.0) - (update * lr + 0.0);
                }
            });
        Ok(())
    }
}

/// The optimizer.
pub struct AdamW {
    config: AdamWConfig,
    slots: BTreeMap<String, Slot>,
    steps: u64,
}

/// Whether a parameter gets weight decay: not norms, not biases.
pub fn decays(name: &str) -> bool {
    !(name.ends_with("norm.weight") || name.ends_with(".bias"))
}

impl AdamW {
    /// An optimizer over `params` (by name), moments at zero.
    pub fn new(
        params: impl IntoIterator<Item = (String, Var)>,
        config: AdamWConfig,
    ) -> Result<AdamW> {
        let mut slots = BTreeMap::new();
        for (name, var) in params {
            // Two buffers: the CPU update writes the moments in place.
            let exp_avg = var.as_tensor().zeros_like()?;
            let exp_avg_sq = var.as_tensor().zeros_like()?;
            let decay = decays(&name);
            slots.insert(
                name,
                Slot {
                    var,
                    exp_avg,
                    exp_avg_sq,
                    decay,
                },
            );
        }
        Ok(AdamW {
            config,
            slots,
            steps: 0,
        })
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One update with learning rate `lr` from `grads` (by parameter name),
    /// each multiplied by `grad_scale` first (the clipping factor of
    /// [`clip_scale`]). On the CPU the moments and the weights are updated
    /// in place, one pass each and no temporaries; elsewhere as tensor ops.
    /// Both round as the tensor ops do, in f32.
    pub fn step(
        &mut self,
        grads: &BTreeMap<String, Tensor>,
        lr: f64,
        grad_scale: f64,
    ) -> Result<()> {
        self.steps += 1;
        let c = &self.config;
        let t = self.steps as i32;
        let bias = (1.0 - c.beta1.powi(t), 1.0 - c.beta2.powi(t));
        for (name, slot) in &mut self.slots {
            let Some(g) = grads.get(name) else {
                continue;
            };
            let update = Update {
                lr,
                decay: if slot.decay {
                    1.0 - lr * c.weight_decay
                } else {
                    1.0
                },
                bias,
                eps: c.eps,
            };
            if g.device().is_cpu() {
                slot.update_in_place(g, c, grad_scale, &update)?;
            } else {
                slot.update_with_ops(g, c, grad_scale, &update)?;
            }
        }
        Ok(())
    }

    /// The moments as named tensors (`exp_avg.NAME`, `exp_avg_sq.NAME`), on
    /// the CPU, for `optimizer.safetensors`.
    pub fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for (name, s) in &self.slots {
            out.push((
                format!("exp_avg.{name}"),
                s.exp_avg.to_device(&candle_core::Device::Cpu)?,
            ));
            out.push((
                format!("exp_avg_sq.{name}"),
                s.exp_avg_sq.to_device(&candle_core::Device::Cpu)?,
            ));
        }
        Ok(out)
    }

    /// Restores the moments saved by [`AdamW::state`] and the step count.
    pub fn restore(&mut self, mut tensors: BTreeMap<String, Tensor>, steps: u64) -> Result<()> {
        for (name, s) in &mut self.slots {
            let device = s.var.device().clone();
            for (key, slot) in [
                ("exp_avg", &mut s.exp_avg),
                ("exp_avg_sq", &mut s.exp_avg_sq),
            ] {
                let moment = format!("{key}.{name}");
                let Some(t) = tensors.remove(&moment) else {
                    return Err(TrainerError::MissingMoment(moment));
                };
                if t.dims() != slot.dims() {
                    let found = t.dims().to_vec();
                    return Err(TrainerError::MomentShape {
                        name: moment,
                        found,
                    });
                }
                *slot = t.to_dtype(DType::F32)?.to_device(&device)?;
            }
        }
        if !tensors.is_empty() {
            return Err(TrainerError::UnknownMoments);
        }
        self.steps = steps;
        Ok(())
    }
}

/// The global L2 norm of `grads`, summed in f64.
pub fn grad_norm(grads: &BTreeMap<String, Tensor>) -> Result<f64> {
    let mut sum = 0f64;
    for g in grads.values() {
        sum += sum_of_squares(g)?;
    }
    Ok(sum.sqrt())
}

/// `Σ g²` in f64: on the CPU straight from the buffer (the same bits for
/// any thread count), elsewhere as tensor ops.
fn sum_of_squares(g: &Tensor) -> Result<f64> {
    {
        let (storage, layout) = g.storage_and_layout();
        if let candle_core::Storage::Cpu(s) = &*storage {
            if let Ok(values) = kernels::f32s(s, layout, "AdamW") {
                // Chunk sums in parallel, added up in chunk order: a
                // parallel `sum` adds in the order threads finish, which
                // changed the last bit of the norm from run to run.
                let chunks: Vec<f64> = values
                    .par_chunks(PASS_CHUNK)
                    .map(|c| c.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>())
                    .collect();
                return Ok(chunks.iter().sum());
            }
        }
    }
    Ok(g.to_dtype(DType::F64)?
        .sqr()?
        .sum_all()?
        .to_scalar::<f64>()?)
}

/// The factor that brings a global gradient norm `norm` down to `max`: 1
/// when it is not above `max`, or when `max <= 0` (no clipping).
pub fn clip_scale(norm: f64, max: f64) -> f64 {
    if max > 0.0 && norm > max {
        max / (norm + 1e-6)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norms_and_biases_do_not_decay() {
        assert!(decays("model.layers.0.mlp.up_proj.weight"));
        assert!(decays("model.embed_tokens.weight"));
        assert!(!decays("model.layers.3.input_layernorm.weight"));
        assert!(!decays("model.norm.weight"));
        assert!(!decays("model.layers.0.self_attn.q_proj.bias"));
    }

    #[test]
    fn one_step_matches_the_adamw_formula() {
        let d = candle_core::Device::Cpu;
        let var = |x: f32| Var::from_tensor(&Tensor::new(&[x], &d).unwrap()).unwrap();
        let params = BTreeMap::from([
            ("w.weight".to_string(), var(1.0)),
            ("norm.weight".to_string(), var(1.0)),
        ]);
        let config = AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
        };
        let mut opt = AdamW::new(params.clone(), config).unwrap();
        let g = |x: f32| Tensor::new(&[x], &d).unwrap();
        let grads = BTreeMap::from([
            ("w.weight".to_string(), g(0.5)),
            ("norm.weight".to_string(), g(-2.0)),
        ]);
        opt.step(&grads, 0.1, 1.0).unwrap();
        let value = |n: &str| params[n].as_tensor().to_vec1::<f32>().unwrap()[0];
        // Bias-corrected first step: m̂/√v̂ = sign(g); decay 1 − lr·wd.
        assert!((value("w.weight") - (0.99 - 0.1)).abs() < 1e-6);
        assert!((value("norm.weight") - 1.1).abs() < 1e-6);
        assert_eq!(opt.steps(), 1);
        let state = opt.state().unwrap();
        let mut again = AdamW::new(params.clone(), opt.config.clone()).unwrap();
        again.restore(state.into_iter().collect(), 1).unwrap();
        assert_eq!(again.steps(), 1);
    }

    #[test]
    fn clipping_scales_to_the_limit() {
        let d = candle_core::Device::Cpu;
        let g = BTreeMap::from([
            ("a".to_string(), Tensor::new(&[3f32], &d).unwrap()),
            ("b".to_string(), Tensor::new(&[4f32], &d).unwrap()),
        ]);
        let norm = grad_norm(&g).unwrap();
        assert_eq!(norm, 5.0);
        assert_eq!(clip_scale(norm, 10.0), 1.0);
        assert_eq!(clip_scale(norm, 0.0), 1.0);
        assert!((clip_scale(norm, 1.0) * norm - 1.0).abs() < 1e-6);
    }

    /// The in-place CPU update equals the tensor ops bit for bit, clipped
    /// or not, with and without decay, over several steps.
    #[test]
    fn the_in_place_update_equals_the_tensor_ops() {
        use rand::{RngExt, SeedableRng};
        let d = candle_core::Device::Cpu;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut values =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random::<f32>() - 0.5).collect() };
        let n = 100_003;
        let start = values(n);
        let params = |decayed: &str| {
            BTreeMap::from([(
                decayed.to_string(),
                Var::from_tensor(&Tensor::from_vec(start.clone(), n, &d).unwrap()).unwrap(),
            )])
        };
        let config = AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
        };
        for name in ["w.weight", "norm.weight"] {
            let (a, b) = (params(name), params(name));
            let mut in_place = AdamW::new(a.clone(), config.clone()).unwrap();
            let mut ops = AdamW::new(b.clone(), config.clone()).unwrap();
            for (step, scale) in [1.0, 0.37, 1.0].into_iter().enumerate() {
                let g = Tensor::from_vec(values(n), n, &d).unwrap();
                let grads = BTreeMap::from([(name.to_string(), g.clone())]);
                in_place.step(&grads, 3e-3, scale).unwrap();
                ops.steps += 1;
                let c = &ops.config;
                let t = ops.steps as i32;
                let u = Update {
                    lr: 3e-3,
                    decay: if decays(name) {
                        1.0 - 3e-3 * c.weight_decay
                    } else {
                        1.0
                    },
                    bias: (1.0 - c.beta1.powi(t), 1.0 - c.beta2.powi(t)),
                    eps: c.eps,
                };
                let c = c.clone();
                ops.slots
                    .get_mut(name)
                    .unwrap()
                    .update_with_ops(&g, &c, scale, &u)
                    .unwrap();
                let got = a[name].as_tensor().to_vec1::<f32>().unwrap();
                let want = b[name].as_tensor().to_vec1::<f32>().unwrap();
                assert!(got == want, "{name}, step {step}");
            }
        }
    }
}
