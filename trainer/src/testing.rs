//! Helpers of the unit tests of the fused operations: deterministic
//! values, and the check that a fused operation and the composed candle ops
//! agree, values and gradients.

use candle_core::{Device, Tensor, Var};

/// Values in [-1, 1) from a simple hash of the index.
pub fn values(n: usize, salt: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * 2654435761 + salt * 40503) % 1000) as f32 / 500.0) - 1.0)
        .collect()
}

/// The largest absolute difference of two tensors' elements.
pub fn worst(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .fold(0f32, |m, (p, q)| m.max((p - q).abs()))
}

/// `fused` and `plain` agree to `tol`, and so do the gradients of
/// `Σ out ⊙ w` with respect to each of `inputs`.
pub fn same(fused: Tensor, plain: Tensor, inputs: &[&Var], tol: f32) {
    assert!(
        worst(&fused, &plain) < tol,
        "output: {}",
        worst(&fused, &plain)
    );
    let w = Tensor::from_vec(values(plain.elem_count(), 9), plain.shape(), &Device::Cpu).unwrap();
    let gf = (fused * &w).unwrap().sum_all().unwrap().backward().unwrap();
    let gp = (plain * &w).unwrap().sum_all().unwrap().backward().unwrap();
    for (i, x) in inputs.iter().enumerate() {
        let d = worst(gf.get(x).unwrap(), gp.get(x).unwrap());
        assert!(d < tol, "gradient {i}: {d}");
    }
}
