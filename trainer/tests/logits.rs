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

/// The reference's logits for one sequence of `ids` of the checkpoint in
/// `dir`.
fn reference_logits(dir: &std::path::Path, ids: &[u32]) -> Vec<Vec<f64>> {
    let ids_path = dir.join("ids.json");
    std::fs::write(&ids_path, serde_json::to_string(&[ids]).unwrap()).unwrap();
    let out = Command::new("python3")
        .arg(common::root().join("trainer/tests/reference_llama.py"))
        .arg(dir)
        .arg(&ids_path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut logits: Vec<Vec<Vec<f64>>> = serde_json::from_value(v["logits"].clone()).unwrap();
    logits.remove(0)
}

/// A small untied model with weights large enough that greedy decoding does
/// not repeat one token, saved in `dir`.
fn small_checkpoint(dir: &std::path::Path) -> Llama {
    let mut c = common::tiny(2);
    c.vocab_size = 300;
    c.tie_word_embeddings = false;
    c.initializer_range = 0.2;
    checkpoint::init(&c, 5, Precision::F32, dir).unwrap();
    checkpoint::load(dir, &Device::Cpu, DType::F32).unwrap()
}

/// Greedy generation with the KV cache picks, at every step, the argmax of
/// the independent reference's logits over the same prefix.
#[test]
fn greedy_generation_follows_the_reference() {
    use almr_trainer::generate::{Decoder, Sampler, Sampling};
    let dir = tempfile::tempdir().unwrap();
    let model = small_checkpoint(dir.path());
    let decoder = Decoder::new(&model, DType::F32).unwrap();
    let prompt = [7u32, 42, 199, 3, 250, 18];
    let mut sampler = Sampler::new(Sampling {
        temperature: 0.0,
        top_p: 1.0,
        seed: 0,
    })
    .unwrap();
    let (got, _) = decoder
        .generate(
            &prompt,
            &mut decoder.cache(),
            &mut sampler,
            (32, &[]),
            |_| Ok::<_, almr_trainer::error::TrainerError>(()),
        )
        .unwrap();
    assert_eq!(got.len(), 32);
    let mut all = prompt.to_vec();
    all.extend(&got[..31]);
    let logits = reference_logits(dir.path(), &all);
    for (k, &token) in got.iter().enumerate() {
        let row = &logits[prompt.len() - 1 + k];
        let best = (0..row.len())
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap();
        assert_eq!(token as usize, best, "token {k} of {got:?}");
    }
    let distinct: std::collections::BTreeSet<_> = got.iter().collect();
    assert!(distinct.len() > 3, "a degenerate path: {got:?}");
}

/// `eval` of a chat shard is the mean, over mask-1 targets, of the
/// independent reference's cross-entropy, each conversation run alone.
#[test]
fn masked_chat_shard_loss_matches_the_reference() {
    use almr::shard::{DType as ShardDType, ShardWriter};
    let dir = tempfile::tempdir().unwrap();
    let model = small_checkpoint(dir.path());
    let prefix = dir.path().join("chat");
    let convs: [(&[u32], &[u8]); 3] = [
        (&[1, 20, 30, 40, 50, 60, 70], &[0, 0, 0, 1, 1, 1, 1]),
        (&[1, 99, 98, 97, 5, 6], &[0, 0, 0, 0, 1, 1]),
        (
            &[1, 250, 251, 252, 253, 254, 255, 256, 257],
            &[0, 0, 1, 1, 0, 0, 1, 1, 1],
        ),
    ];
    let mut tokens = ShardWriter::create(&prefix, ShardDType::U16).unwrap();
    let mut masks =
        ShardWriter::create(&almr_trainer::eval::mask_prefix(&prefix), ShardDType::U8).unwrap();
    let (mut sum, mut n) = (0f64, 0usize);
    for (ids, mask) in convs {
        tokens.push(ids).unwrap();
        masks
            .push(&mask.iter().map(|&b| b as u32).collect::<Vec<_>>())
            .unwrap();
        let logits = reference_logits(dir.path(), &ids[..ids.len() - 1]);
        for j in 1..ids.len() {
            if mask[j] == 1 {
                let row = &logits[j - 1];
                let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = max + row.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
                sum += lse - row[ids[j] as usize];
                n += 1;
            }
        }
    }
    tokens.finish().unwrap();
    masks.finish().unwrap();
    let got = almr_trainer::eval::chat_shard_loss(&model, &prefix, 2).unwrap();
    assert_eq!(got.tokens, n);
    assert!(
        (got.loss - sum / n as f64).abs() < 1e-4,
        "{} vs {}",
        got.loss,
        sum / n as f64
    );
}
