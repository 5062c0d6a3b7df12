//! The loss head's three products on the CPU at several chunk sizes: the
//! logits `z = h·Wᵀ`, `∂h = g·W` and `∂W += gᵀ·h`, a chunk of rows at a time,
//! through the same `gemm_into` as `trainer/src/loss.rs`.
//!
//! ```text
//! cargo run --release -p almr-trainer --example bench_head -- [ROWS...]
//! ```
//!
//! Shapes: 2,048 tokens (`proxy-125m` at 4 × 512), hidden 576, Llama-3's
//! 128,256 ids. Each chunk size runs three times, alternating with the
//! others; each line gives the seconds of each product over all tokens and
//! their GFLOP/s.

use std::time::Instant;

use almr_trainer::kernels::gemm_into;

const TOKENS: usize = 2048;
const HIDDEN: usize = 576;
const VOCAB: usize = 128_256;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .filter(|&r| r > 0)
        .collect();
    let sizes = if sizes.is_empty() {
        vec![261, 1046]
    } else {
        sizes
    };
    let hidden: Vec<f32> = (0..TOKENS * HIDDEN).map(|i| small(i, 7919)).collect();
    let weight: Vec<f32> = (0..VOCAB * HIDDEN).map(|i| small(i, 104_729)).collect();
    for round in 1..=3 {
        for &rows in &sizes {
            let [z, dh, dw] = products(&hidden, &weight, rows);
            let flop = 2.0 * (TOKENS * HIDDEN * VOCAB) as f64 / 1e9;
            println!(
                "round {round}, {rows} rows: z {z:.3} s ({:.0} GFLOP/s), ∂h {dh:.3} s ({:.0}), ∂W {dw:.3} s ({:.0}), total {:.3} s",
                flop / z,
                flop / dh,
                flop / dw,
                z + dh + dw
            );
        }
    }
}

/// A deterministic value in `[0, 1)`.
fn small(i: usize, prime: usize) -> f32 {
    ((i * prime) % 1000) as f32 * 1e-3
}

/// Seconds spent in each of the three products over all tokens.
fn products(hidden: &[f32], weight: &[f32], rows: usize) -> [f64; 3] {
    let (h, v) = (HIDDEN, VOCAB);
    let mut z = vec![0f32; rows.min(TOKENS) * v];
    let mut dh = vec![0f32; TOKENS * h];
    let mut dw = vec![0f32; v * h];
    let mut seconds = [0f64; 3];
    for start in (0..TOKENS).step_by(rows) {
        let c = rows.min(TOKENS - start);
        let (z, hc) = (&mut z[..c * v], &hidden[start * h..(start + c) * h]);
        let t = Instant::now();
        gemm_into(z, false, (c, v, h), hc, (h, 1), weight, (1, h), 1.0, true);
        seconds[0] += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let dh = &mut dh[start * h..(start + c) * h];
        gemm_into(dh, false, (c, h, v), z, (v, 1), weight, (h, 1), 1.0, true);
        seconds[1] += t.elapsed().as_secs_f64();
        let t = Instant::now();
        gemm_into(&mut dw, true, (v, h, c), z, (1, v), hc, (h, 1), 1.0, true);
        seconds[2] += t.elapsed().as_secs_f64();
    }
    seconds
}
