//! The colour scale of the loss surfaces: bands of loss whose widths grow
//! in 1-2-5 steps above the least loss (fine near the optimum, coarse far
//! from it), coloured by viridis, dark for the least loss.

use plotters::style::RGBColor;

/// Viridis at 0, 0.1, …, 1.
const VIRIDIS: [(u8, u8, u8); 11] = [
    (0x44, 0x01, 0x54),
    (0x48, 0x24, 0x75),
    (0x41, 0x44, 0x87),
    (0x35, 0x5f, 0x8d),
    (0x2a, 0x78, 0x8e),
    (0x21, 0x91, 0x8c),
    (0x22, 0xa8, 0x84),
    (0x44, 0xbf, 0x70),
    (0x7a, 0xd1, 0x51),
    (0xbd, 0xdf, 0x26),
    (0xfd, 0xe7, 0x25),
];

/// Viridis at `t` in [0, 1].
fn viridis(t: f64) -> RGBColor {
    let x = t.clamp(0.0, 1.0) * 10.0;
    let i = (x.floor() as usize).min(9);
    let f = x - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// The mantissas of the 1-2-5 steps.
const STEPS: [f64; 3] = [1.0, 2.0, 5.0];

/// A colour scale: the levels bounding its bands, ascending.
pub struct Scale {
    levels: Vec<f64>,
    decimals: usize,
}

impl Scale {
    /// The scale over the losses from `span[0]` to `span[1]`: the first
    /// band 1/300 of the span wide (rounded to 1, 2 or 5 × 10^k), each
    /// level above it the next 1-2-5 step above the first.
    pub fn new(span: [f64; 2]) -> Scale {
        let [lo, hi] = span;
        if !(lo.is_finite() && hi.is_finite()) {
            return Scale::flat(0.0);
        }
        if hi - lo < 1e-6 {
            return Scale::flat(lo);
        }
        let e = ((hi - lo) / 300.0).log10().floor() as i32;
        let m = STEPS
            .iter()
            .rposition(|s| s * 10f64.powi(e) <= (hi - lo) / 300.0);
        let first = m.unwrap_or(0);
        let step = |k: usize| STEPS[(first + k) % 3] * 10f64.powi(e + ((first + k) / 3) as i32);
        let base = (lo / step(0)).floor() * step(0);
        let mut levels = vec![base];
        for k in 0.. {
            levels.push(base + step(k));
            if base + step(k) >= hi {
                break;
            }
        }
        Scale {
            levels,
            decimals: (-e).clamp(0, 4) as usize,
        }
    }

    /// One band around `x`.
    fn flat(x: f64) -> Scale {
        Scale {
            levels: vec![x - 0.005, x + 0.005],
            decimals: 3,
        }
    }

    /// How many bands.
    pub fn bands(&self) -> usize {
        self.levels.len() - 1
    }

    /// The band of loss `v` (the first or last past the ends).
    pub fn band(&self, v: f64) -> usize {
        let above = self.levels.partition_point(|&l| l <= v);
        above.clamp(1, self.bands()) - 1
    }

    /// The colour of band `k`.
    pub fn colour(&self, k: usize) -> RGBColor {
        viridis(k as f64 / (self.bands().max(2) - 1) as f64)
    }

    /// The levels, written with the decimals the first band needs.
    pub fn labels(&self) -> Vec<String> {
        let d = self.decimals;
        self.levels.iter().map(|l| format!("{l:.d$}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_start_at_the_least_loss_and_grow_in_1_2_5_steps() {
        let s = Scale::new([2.0684, 3.5]);
        // 1.43 / 300 = 0.0048: the first band is 0.002 wide.
        assert_eq!(s.labels()[..4], ["2.068", "2.070", "2.073", "2.078"]);
        assert!(*s.levels.last().unwrap() >= 3.5);
        assert!(s.levels[s.levels.len() - 2] < 3.5);
        assert_eq!(s.band(2.0684), 0);
        assert_eq!(s.band(1.0), 0);
        assert_eq!(s.band(9.0), s.bands() - 1);
        assert_eq!(Scale::new([2.0, 2.0]).bands(), 1);
        assert_eq!(Scale::new([f64::INFINITY, f64::NEG_INFINITY]).bands(), 1);
    }
}
