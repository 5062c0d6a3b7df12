//! Token-exact blending: which source each training sample comes from.
//!
//! Every sample is a window of `seq_len + 1` tokens, so a share of samples is
//! exactly the same share of tokens. The order follows Megatron-LM's
//! `build_blending_indices`: sample `i` goes to the candidate `d` with the
//! largest error `w[d]·max(i, 1) − count[d]`, ties to the lowest `d`.
//!
//! almr applies that rule on two levels. First between the two groups, the
//! additional sources (weight ALMR) and the rest (weight 1 − ALMR), which keeps
//! the additional count of every prefix of `k` samples within one sample of
//! `ALMR·k`. Then among the sources of the chosen group, with the group's own
//! sample count as `i`. With one source per group this is exactly Megatron's
//! order. Candidates of weight zero are never chosen.

/// Greedy error-minimising choice among weighted candidates.
struct Greedy {
    weights: Vec<f64>,
    counts: Vec<u64>,
    drawn: u64,
}

impl Greedy {
    /// Candidates with `weights`, normalised here to sum to one.
    fn new(mut weights: Vec<f64>) -> Greedy {
        let total: f64 = weights.iter().filter(|&&w| w > 0.0).sum();
        for w in &mut weights {
            *w = if *w > 0.0 { *w / total } else { 0.0 };
        }
        let counts = vec![0; weights.len()];
        Greedy {
            weights,
            counts,
            drawn: 0,
        }
    }

    /// Picks the next candidate; `None` when every weight is zero.
    fn next(&mut self) -> Option<usize> {
        let at = self.drawn.max(1) as f64;
        let mut best: Option<(usize, f64)> = None;
        for (d, &w) in self.weights.iter().enumerate() {
            if w <= 0.0 {
                continue;
            }
            let error = w * at - self.counts[d] as f64;
            if best.is_none_or(|(_, e)| error > e) {
                best = Some((d, error));
            }
        }
        let (d, _) = best?;
        self.counts[d] += 1;
        self.drawn += 1;
        Some(d)
    }
}

/// Samples per window for the reported `max_window_deviation`.
pub const WINDOW: usize = 1000;

/// Source index of each of `samples` samples.
///
/// `groups[g]` lists `(source, weight)` pairs; `group_weights[g]` is the
/// group's share of the stream. Weights need not be normalised, but a group
/// with positive weight must hold a source with positive weight.
pub fn blend(group_weights: &[f64], groups: &[Vec<(usize, f64)>], samples: u64) -> Vec<u16> {
    let mut top = Greedy::new(group_weights.to_vec());
    let mut inner: Vec<Greedy> = groups
        .iter()
        .map(|g| Greedy::new(g.iter().map(|&(_, w)| w).collect()))
        .collect();
    let mut out = Vec::with_capacity(samples as usize);
    for _ in 0..samples {
        let g = top.next().expect("a group has positive weight");
        let k = inner[g]
            .next()
            .expect("the group has a source of positive weight");
        out.push(groups[g][k].0 as u16);
    }
    out
}

/// How close a stream of samples comes to a target share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Achieved {
    /// Share of samples that are additional over the whole stream.
    pub share: f64,
    /// Largest `|share − target|` over every window of `window` consecutive
    /// samples (the whole stream when it is shorter).
    pub max_window_deviation: f64,
    /// The window length used.
    pub window: u64,
}

/// Measures the additional share of `is_additional` against `target`.
pub fn achieved(is_additional: &[bool], target: f64, window: usize) -> Achieved {
    let n = is_additional.len();
    if n == 0 {
        return Achieved {
            share: 0.0,
            max_window_deviation: 0.0,
            window: 0,
        };
    }
    let total = is_additional.iter().filter(|&&a| a).count();
    let w = window.min(n);
    let mut inside = is_additional[..w].iter().filter(|&&a| a).count();
    let mut worst = (inside as f64 / w as f64 - target).abs();
    for end in w..n {
        inside += is_additional[end] as usize;
        inside -= is_additional[end - w] as usize;
        worst = worst.max((inside as f64 / w as f64 - target).abs());
    }
    Achieved {
        share: total as f64 / n as f64,
        max_window_deviation: worst,
        window: w as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_per_group_is_megatrons_order() {
        // helpers.cpp's rule worked by hand for weights [0.3, 0.7].
        let got = blend(&[0.3, 0.7], &[vec![(0, 1.0)], vec![(1, 1.0)]], 10);
        assert_eq!(got, [1, 0, 1, 1, 0, 1, 1, 0, 1, 1]);
    }

    #[test]
    fn every_prefix_is_within_one_sample() {
        for target in [0.1, 0.2, 0.33, 0.5, 0.77, 0.999] {
            let groups = vec![vec![(0, 2.0), (1, 1.0), (2, 0.5)], vec![(3, 1.0), (4, 3.0)]];
            let s = blend(&[target, 1.0 - target], &groups, 5000);
            let mut additional = 0u64;
            for (k, &src) in s.iter().enumerate() {
                additional += (src < 3) as u64;
                let dev = (additional as f64 - target * (k + 1) as f64).abs();
                assert!(
                    dev <= 1.0,
                    "target {target}, prefix {}: off by {dev}",
                    k + 1
                );
            }
        }
    }

    #[test]
    fn weights_inside_a_group_need_no_normalising() {
        let s = blend(
            &[0.5, 0.5],
            &[vec![(0, 3000.0), (1, 1000.0)], vec![(2, 7.0)]],
            800,
        );
        let count = |d| s.iter().filter(|&&x| x == d).count();
        assert_eq!((count(0), count(1), count(2)), (300, 100, 400));
    }

    #[test]
    fn zero_weights_are_never_drawn() {
        let s = blend(
            &[0.0, 1.0],
            &[vec![(0, 1.0)], vec![(1, 1.0), (2, 0.0)]],
            100,
        );
        assert!(s.iter().all(|&d| d == 1));
    }

    #[test]
    fn window_deviation_sees_a_bad_stretch() {
        let mut v = [true, false].repeat(50);
        v.extend([true; 10]);
        let a = achieved(&v, 0.5, 10);
        assert!((a.max_window_deviation - 0.5).abs() < 1e-12);
        assert_eq!(a.window, 10);
        assert!((a.share - 60.0 / 110.0).abs() < 1e-12);
    }
}
