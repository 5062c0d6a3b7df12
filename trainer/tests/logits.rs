//! Our forward pass against an independent reference: a pure-Python Llama in
//! `tests/reference_llama.py`, on random checkpoints, to 1e-4.

mod common;

use std::process::Command;

use almr_trainer::checkpoint;
use almr_trainer::device::Precision;
use almr_trainer::model::Llama;
use candle_core::{DType, Device, Tensor};

fn compare(config: almr_trainer::config::LlamaConfig, ids: Vec<Vec<u32>>) {
    let dir = tempfile::tempdir().unwrap();
    let model = Llama::init(&config, 11, &Device::Cpu, DType::F32).unwrap();
    checkpoint::save(
        &model,
        dir.path(),
        Precision::F32,
        checkpoint::MAX_SHARD_BYTES,
        &[],
    )
    .unwrap();
    let ids_path = dir.path().join("ids.json");
    std::fs::write(&ids_path, serde_json::to_string(&ids).unwrap()).unwrap();
    let out = Command::new("python3")
        .arg(common::root().join("trainer/tests/reference_llama.py"))
        .arg(dir.path())
        .arg(&ids_path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reference: Vec<Vec<Vec<f64>>> =
        serde_json::from_value(reference["logits"].clone()).unwrap();

    let ours = model
        .forward(&Tensor::new(ids.clone(), &Device::Cpu).unwrap())
        .unwrap()
        .to_vec3::<f32>()
        .unwrap();
    let mut worst = 0f64;
    for (a, b) in ours
        .iter()
        .flatten()
        .flatten()
        .zip(reference.iter().flatten().flatten())
    {
        worst = worst.max((*a as f64 - b).abs());
    }
    assert_eq!(
        ours.len() * ours[0].len() * ours[0][0].len(),
        reference.iter().flatten().flatten().count()
    );
    assert!(worst < 1e-4, "largest difference {worst}");
}

#[test]
fn tied_llama3_logits_match_the_reference() {
    // The tiny preset: Llama-3 vocabulary, GQA (4 heads, 2 kv), llama3 rope.
    let ids = vec![
        vec![128000, 9906, 11, 1917, 0, 100, 5000, 127999],
        vec![1, 2, 3, 4, 5, 6, 7, 8],
    ];
    compare(common::tiny(2), ids);
}

#[test]
fn untied_logits_without_rope_scaling_match_the_reference() {
    let mut c = common::tiny(2);
    c.vocab_size = 1000;
    c.tie_word_embeddings = false;
    c.rope_scaling = None;
    c.rope_theta = 10000.0;
    c.num_key_value_heads = Some(4);
    compare(c, vec![vec![5, 999, 17, 3, 3, 3, 250, 0, 1, 42]]);
}
