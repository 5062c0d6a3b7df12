//! CPU row kernels: softmax and its gradients over one row at a time, with
//! a vectorized `exp`.
//!
//! Each public kernel is compiled three times (for AVX-512F, for AVX2 with
//! FMA, and for plain x86-64) and picks the widest the CPU has at run time.
//! The loops keep `LANES` separate partial results, so the compiler
//! vectorizes them without reassociating anything: every width gives the
//! same bits.

use candle_core::{CpuStorage, Layout, Storage, Tensor};

/// Lanes the row loops keep separate.
const LANES: usize = 16;

/// Defines `pub fn $name`, which runs `$portable` compiled for the widest
/// vector unit the CPU has.
macro_rules! widest {
    ($(#[$m:meta])* pub fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $portable:ident) => {
        $(#[$m])*
        pub fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) -> $ret {
                    $portable($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) -> $ret {
                    $portable($($arg),*)
                }
                if is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F, checked just above.
                    return unsafe { avx512($($arg),*) };
                }
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has AVX2 and FMA, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $portable($($arg),*)
        }
    };
}

widest! {
    /// Cross-entropy's gradient in place: turns a row of logits into
    /// `s · (softmax(row) − onehot(target))` and returns the row's loss,
    /// `logsumexp(row) − row[target]`. Without a target the row becomes 0
    /// and the loss is 0.
    pub fn xent_grad_row(row: &mut [f32], target: Option<usize>, s: f32) -> f64 = xent_grad_portable
}

widest! {
    /// Causal softmax in place: `row[..len]` becomes its softmax, the rest
    /// (the future positions) 0.
    pub fn causal_softmax_row(row: &mut [f32], len: usize) -> () = causal_softmax_portable
}

widest! {
    /// The gradient of a softmax `y` given the gradient `dy` of its output:
    /// `dx = y ⊙ (dy − Σ y ⊙ dy)` over `..len`, 0 beyond.
    pub fn softmax_grad_row(y: &[f32], dy: &[f32], dx: &mut [f32], len: usize) -> () = softmax_grad_portable
}

#[inline(always)]
fn xent_grad_portable(row: &mut [f32], target: Option<usize>, s: f32) -> f64 {
    let Some(t) = target else {
        row.fill(0.0);
        return 0.0;
    };
    let z_t = row[t];
    let max = max_of(row);
    let sum = exp_in_place(row, max);
    scale(row, (s as f64 / sum) as f32);
    row[t] -= s;
    (max as f64 + sum.ln()) - z_t as f64
}

#[inline(always)]
fn causal_softmax_portable(row: &mut [f32], len: usize) {
    let (seen, future) = row.split_at_mut(len);
    let max = max_of(seen);
    let sum = exp_in_place(seen, max);
    scale(seen, (1.0 / sum) as f32);
    future.fill(0.0);
}

#[inline(always)]
fn softmax_grad_portable(y: &[f32], dy: &[f32], dx: &mut [f32], len: usize) {
    let dot = dot(&y[..len], &dy[..len]) as f32;
    for ((d, &a), &b) in dx[..len].iter_mut().zip(&y[..len]).zip(&dy[..len]) {
        *d = a * (b - dot);
    }
    dx[len..].fill(0.0);
}

#[inline(always)]
fn max_of(row: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for (m, &x) in lanes.iter_mut().zip(c) {
            *m = m.max(x);
        }
    }
    let tail = chunks.remainder().iter().copied();
    lanes
        .into_iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, f32::max)
}

/// `row[i] = exp(row[i] − max)`; returns their sum, added up in f64 lanes.
#[inline(always)]
fn exp_in_place(row: &mut [f32], max: f32) -> f64 {
    let mut lanes = [0f64; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for (acc, x) in lanes.iter_mut().zip(c.iter_mut()) {
            *x = fast_exp(*x - max);
            *acc += *x as f64;
        }
    }
    let mut sum: f64 = lanes.iter().sum();
    for x in chunks.into_remainder() {
        *x = fast_exp(*x - max);
        sum += *x as f64;
    }
    sum
}

#[inline(always)]
fn scale(row: &mut [f32], k: f32) {
    for x in row.iter_mut() {
        *x *= k;
    }
}

/// `Σ a ⊙ b`, added up in f64 lanes.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f64 {
    let mut lanes = [0f64; LANES];
    let (mut ca, mut cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    for (x, y) in (&mut ca).zip(&mut cb) {
        for ((acc, &p), &q) in lanes.iter_mut().zip(x).zip(y) {
            *acc += (p * q) as f64;
        }
    }
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&p, &q)| (p * q) as f64)
        .sum();
    lanes.iter().sum::<f64>() + tail
}

/// 1.5 · 2²³: adding it rounds an f32 below 2²² to an integer, which then
/// sits in the low bits of the sum.
const ROUND: f32 = 12_582_912.0;

/// `exp(x)` for `x ≤ 0`, to about 2 ulp, in straight-line code that the
/// compiler vectorizes: `x = n·ln 2 + r` with `n` rounded by `ROUND`,
/// `exp(r)` by its degree-6 Taylor polynomial on `|r| ≤ ln 2 / 2`, times
/// `2ⁿ` put into the exponent bits.
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
    let x = x.max(-87.0);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let two_n = (t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127)) << 23;
    f32::from_bits(two_n) * p
}

/// `dst (m × n, row-major) = [dst +] scale · a · b`, where `a` is `m × k`
/// and `b` is `k × n`, each given with its (row, column) strides; on
/// rayon's threads when `parallel`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_into(
    dst: &mut [f32],
    accumulate: bool,
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
    scale: f32,
    parallel: bool,
) {
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs
    };
    assert!(dst.len() >= m * n, "gemm: destination too small");
    assert!(
        m * k == 0 || last(m, k, a_rs, a_cs) < a.len(),
        "gemm: lhs too small"
    );
    assert!(
        k * n == 0 || last(k, n, b_rs, b_cs) < b.len(),
        "gemm: rhs too small"
    );
    // SAFETY: the asserts above keep every index gemm reads or writes inside
    // the three slices, and `dst` is borrowed mutably, apart from `a` and `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            1.0,
            scale,
            false,
            false,
            false,
            if parallel {
                gemm::Parallelism::Rayon(0)
            } else {
                gemm::Parallelism::None
            },
        )
    }
}

/// The contiguous f32 elements of a CPU storage, as a fused operation
/// (`op`) reads them.
pub fn f32s<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(data), Some((a, b))) => Ok(&data[a..b]),
        _ => candle_core::bail!("{op}: contiguous f32 tensors only"),
    }
}

/// The same, to write in place.
pub fn f32s_mut<'a>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a mut [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(data), Some((a, b))) => Ok(&mut data[a..b]),
        _ => candle_core::bail!("{op}: contiguous f32 tensors only"),
    }
}

/// Runs `f` on the f32 elements of CPU tensors (made contiguous), as the
/// backward pass of a fused operation (`op`) reads them.
pub fn with_f32s<R>(
    tensors: &[&Tensor],
    op: &str,
    f: impl FnOnce(&[&[f32]]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let owned: Vec<Tensor> = tensors
        .iter()
        .map(|t| t.contiguous())
        .collect::<candle_core::Result<_>>()?;
    let guards: Vec<_> = owned.iter().map(|t| t.storage_and_layout()).collect();
    let mut slices = Vec::with_capacity(guards.len());
    for (storage, layout) in &guards {
        match &**storage {
            Storage::Cpu(s) => slices.push(f32s(s, layout, op)?),
            _ => candle_core::bail!("{op}: CPU tensors only"),
        }
    }
    f(&slices)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 25.0)
            .collect()
    }

    #[test]
    fn fast_exp_is_close_to_exp() {
        for i in 0..=100_000 {
            let x = -88.0 * i as f32 / 100_000.0;
            let (a, b) = (fast_exp(x), x.exp());
            assert!(
                (a - b).abs() <= 4e-7 * b + f32::MIN_POSITIVE,
                "{x}: {a} vs {b}"
            );
        }
    }

    #[test]
    fn every_vector_width_gives_the_same_bits() {
        let row = values(100_003);
        let (mut a, mut b) = (row.clone(), row);
        let la = xent_grad_row(&mut a, Some(77), 0.01);
        let lb = xent_grad_portable(&mut b, Some(77), 0.01);
        assert_eq!(la.to_bits(), lb.to_bits());
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    }

    #[test]
    fn causal_softmax_and_its_gradient_match_the_formulas() {
        let x = values(37);
        let mut y = x.clone();
        causal_softmax_row(&mut y, 20);
        let m = x[..20].iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let z: f64 = x[..20].iter().map(|v| ((v - m) as f64).exp()).sum();
        for j in 0..37 {
            let want = if j < 20 {
                ((x[j] - m) as f64).exp() / z
            } else {
                0.0
            };
            assert!((y[j] as f64 - want).abs() < 1e-6, "{j}");
        }
        let dy = values(37).iter().map(|v| v * 0.3 + 1.0).collect::<Vec<_>>();
        let mut dx = vec![9.0; 37];
        softmax_grad_row(&y, &dy, &mut dx, 20);
        let dot: f64 = (0..20).map(|j| y[j] as f64 * dy[j] as f64).sum();
        for j in 0..37 {
            let want = if j < 20 {
                y[j] as f64 * (dy[j] as f64 - dot)
            } else {
                0.0
            };
            assert!((dx[j] as f64 - want).abs() < 1e-6, "{j}");
        }
    }
}
