//! Learning-rate schedules: linear warmup, then a cosine decay to a floor, or
//! warmup-stable-decay (WSD).

use serde::{Deserialize, Serialize};

/// The shape after warmup.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Cosine from the peak to the floor over the remaining steps.
    Cosine,
    /// Constant at the peak, then linear to the floor over the last
    /// `decay_steps` steps.
    Wsd,
}

/// A schedule over `total` optimizer steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// The shape after warmup.
    pub kind: Kind,
    /// Peak learning rate.
    pub peak: f64,
    /// Floor.
    pub min: f64,
    /// Warmup steps (linear from `peak / warmup` up to `peak`).
    pub warmup: u64,
    /// Total optimizer steps.
    pub total: u64,
    /// WSD: steps of the final decay.
    pub decay_steps: u64,
}

impl Schedule {
    /// The learning rate of optimizer step `step` (0-based).
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup {
            return self.peak * (step + 1) as f64 / self.warmup as f64;
        }
        match self.kind {
            Kind::Cosine => {
                let span = self.total.saturating_sub(self.warmup).max(1) as f64;
                let p = ((step - self.warmup) as f64 / span).min(1.0);
                self.min + (self.peak - self.min) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
            }
            Kind::Wsd => {
                let start = self.total.saturating_sub(self.decay_steps).max(self.warmup);
                if step < start {
                    self.peak
                } else {
                    let span = (self.total - start).max(1) as f64;
                    let p = ((step - start + 1) as f64 / span).min(1.0);
                    self.peak - (self.peak - self.min) * p
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(kind: Kind) -> Schedule {
        Schedule {
            kind,
            peak: 1e-3,
            min: 1e-4,
            warmup: 10,
            total: 110,
            decay_steps: 20,
        }
    }

    #[test]
    fn warmup_then_cosine_to_the_floor() {
        let c = s(Kind::Cosine);
        assert!((c.lr(0) - 1e-4).abs() < 1e-12);
        assert!((c.lr(9) - 1e-3).abs() < 1e-12);
        assert!((c.lr(10) - 1e-3).abs() < 1e-12);
        assert!((c.lr(60) - 5.5e-4).abs() < 1e-12);
        assert!((c.lr(110) - 1e-4).abs() < 1e-12);
        assert!((1..110).all(|k| c.lr(k) <= c.lr(k - 1) || k < 10));
    }

    #[test]
    fn wsd_is_flat_then_decays_linearly() {
        let w = s(Kind::Wsd);
        assert_eq!(w.lr(50), 1e-3);
        assert_eq!(w.lr(89), 1e-3);
        assert!((w.lr(99) - 5.5e-4).abs() < 1e-12);
        assert!((w.lr(109) - 1e-4).abs() < 1e-12);
    }
}
