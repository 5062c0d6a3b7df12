//! AdamW with decoupled weight decay (as `torch.optim.AdamW`), no decay on
//! norms or biases, global-norm gradient clipping, and a state that can be
//! saved and restored exactly.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainerError};

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
            let zeros = var.as_tensor().zeros_like()?;
            let decay = decays(&name);
            slots.insert(
                name,
                Slot {
                    var,
                    exp_avg: zeros.clone(),
                    exp_avg_sq: zeros,
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

    /// One update with learning rate `lr` from `grads` (by parameter name).
    pub fn step(&mut self, grads: &BTreeMap<String, Tensor>, lr: f64) -> Result<()> {
        self.steps += 1;
        let c = &self.config;
        let t = self.steps as i32;
        let (bc1, bc2) = (1.0 - c.beta1.powi(t), 1.0 - c.beta2.powi(t));
        for (name, slot) in &mut self.slots {
            let Some(g) = grads.get(name) else {
                continue;
            };
            let m = ((&slot.exp_avg * c.beta1)? + (g * (1.0 - c.beta1))?)?;
            let v = ((&slot.exp_avg_sq * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let theta = slot.var.as_tensor();
            let theta = if slot.decay {
                (theta * (1.0 - lr * c.weight_decay))?
            } else {
                theta.clone()
            };
            let denom = ((&v / bc2)?.sqrt()? + c.eps)?;
            let update = ((&m / bc1)? / denom)?;
            slot.var.set(&(theta - (update * lr)?)?)?;
            slot.exp_avg = m;
            slot.exp_avg_sq = v;
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

/// Scales `grads` in place so that their global L2 norm is at most `max`
/// (no clipping when `max <= 0`); returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut BTreeMap<String, Tensor>, max: f64) -> Result<f64> {
    let mut sum = 0f64;
    for g in grads.values() {
        sum += g
            .sqr()?
            .sum_all()?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
    }
    let norm = sum.sqrt();
    if max > 0.0 && norm > max {
        let scale = max / (norm + 1e-6);
        for g in grads.values_mut() {
            *g = (&*g * scale)?;
        }
    }
    Ok(norm)
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
        opt.step(&grads, 0.1).unwrap();
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
        let mut g = BTreeMap::from([
            ("a".to_string(), Tensor::new(&[3f32], &d).unwrap()),
            ("b".to_string(), Tensor::new(&[4f32], &d).unwrap()),
        ]);
        assert_eq!(clip_grad_norm(&mut g, 10.0).unwrap(), 5.0);
        assert_eq!(clip_grad_norm(&mut g, 1.0).unwrap(), 5.0);
        let after = clip_grad_norm(&mut g, 0.0).unwrap();
        assert!((after - 1.0).abs() < 1e-5, "{after}");
    }
}
