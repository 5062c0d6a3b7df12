//! Chat with a checkpoint and evaluate it on a chat shard: the prompt is
//! encoded as Hugging Face `tokenizers` encodes the rendered template; the
//! stop tokens come from the template; `eval` on a chat shard is the mean
//! loss over mask-1 tokens, each conversation on its own, equal to a plain
//! computation over the whole logits; `almr-train chat` and `eval` work from
//! the command line and refuse bad input with a message.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use almr::shard::{DType as ShardDType, ShardWriter};
use almr::template::{Role, Turn, LLAMA3};
use almr_trainer::chat::ChatFormat;
use almr_trainer::checkpoint;
use almr_trainer::device::Precision;
use almr_trainer::eval::{chat_shard_loss, mask_prefix};
use almr_trainer::model::Llama;
use candle_core::{DType, Device, Tensor, D};

const BIN: &str = env!("CARGO_BIN_EXE_almr-train");

fn turn(role: Role, content: &str) -> Turn {
    Turn {
        role,
        content: content.into(),
    }
}

/// A tiny random checkpoint in `dir`, with the Llama-3 fixture tokenizer
/// and a `tokenizer_config.json` holding Meta's chat format, as a run on a
/// chat build saves it.
fn checkpoint_with_tokenizer(dir: &Path) {
    checkpoint::init(&common::tiny(2), 3, Precision::F32, dir).unwrap();
    let tok = common::root().join("fixtures/tokenizers/llama3/tokenizer.json");
    std::fs::copy(tok, dir.join(checkpoint::TOKENIZER)).unwrap();
    let config = serde_json::json!({
        "chat_template": LLAMA3,
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",
    });
    std::fs::write(dir.join(checkpoint::TOKENIZER_CONFIG), config.to_string()).unwrap();
}

#[test]
fn the_prompt_is_encoded_as_tokenizers_encodes_the_rendered_template() {
    let dir = tempfile::tempdir().unwrap();
    checkpoint_with_tokenizer(dir.path());
    let f = ChatFormat::open(dir.path(), None).unwrap();
    let turns = [
        turn(Role::System, "Be brief."),
        turn(Role::User, "你好，今天天气怎么样？ Hi!"),
    ];
    let ids = f.prompt(&turns).unwrap();
    let hf = tokenizers::Tokenizer::from_file(dir.path().join("tokenizer.json")).unwrap();
    let text = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>\
<|start_header_id|>user<|end_header_id|>\n\n你好，今天天气怎么样？ Hi!<|eot_id|>\
<|start_header_id|>assistant<|end_header_id|>\n\n";
    assert_eq!(ids, hf.encode(text, false).unwrap().get_ids());
    assert_eq!(ids[0], 128000);
    // <|end_of_text|> and the template's <|eot_id|>.
    assert_eq!(f.stop_tokens(), [128001, 128009]);
    assert_eq!(f.decode(&ids[ids.len() - 4..]).unwrap(), "assistant\n\n");
    // Special-token text typed into a message stays text, as in a build.
    let typed = f.prompt(&[turn(Role::User, "say <|eot_id|>")]).unwrap();
    assert_eq!(typed.iter().filter(|&&i| i == 128009).count(), 1);
}

/// Writes a chat shard of `convs` (each a prompt and a reply) at `prefix`:
/// mask 0 on the prompt, 1 on the reply and its end of turn.
fn chat_shard(f: &ChatFormat, prefix: &Path, convs: &[(&str, &str)]) -> Vec<(Vec<u32>, Vec<u8>)> {
    let mut tokens = ShardWriter::create(prefix, ShardDType::I32).unwrap();
    let mut masks = ShardWriter::create(&mask_prefix(prefix), ShardDType::U8).unwrap();
    let mut out = Vec::new();
    let tok = common::root().join("fixtures/tokenizers/llama3/tokenizer.json");
    let hf = tokenizers::Tokenizer::from_file(tok).unwrap();
    for (user, reply) in convs {
        let mut ids = f.prompt(&[turn(Role::User, user)]).unwrap();
        let mut mask = vec![0u8; ids.len()];
        let answer = hf.encode(format!("{reply}<|eot_id|>"), false).unwrap();
        let answer = answer.get_ids().to_vec();
        mask.extend(vec![1u8; answer.len()]);
        ids.extend(answer);
        tokens.push(&ids).unwrap();
        masks
            .push(&mask.iter().map(|&m| u32::from(m)).collect::<Vec<_>>())
            .unwrap();
        out.push((ids, mask));
    }
    tokens.finish().unwrap();
    masks.finish().unwrap();
    out
}

/// The mean loss over mask-1 targets, from the whole logits of each
/// conversation.
fn plain_loss(m: &Llama, convs: &[(Vec<u32>, Vec<u8>)]) -> (f64, usize) {
    let (mut sum, mut n) = (0.0, 0);
    for (ids, mask) in convs {
        let input = Tensor::new(&ids[..ids.len() - 1], &Device::Cpu).unwrap();
        let logits = m.forward(&input.unsqueeze(0).unwrap()).unwrap();
        let logp = candle_nn::ops::log_softmax(&logits.squeeze(0).unwrap(), D::Minus1).unwrap();
        let logp = logp.to_vec2::<f32>().unwrap();
        for j in 1..ids.len() {
            if mask[j] == 1 {
                sum -= f64::from(logp[j - 1][ids[j] as usize]);
                n += 1;
            }
        }
    }
    (sum / n as f64, n)
}

#[test]
fn eval_of_a_chat_shard_is_the_mean_loss_over_trained_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    checkpoint_with_tokenizer(&ckpt);
    let f = ChatFormat::open(&ckpt, None).unwrap();
    let prefix = dir.path().join("chat_00000");
    let convs = chat_shard(
        &f,
        &prefix,
        &[
            ("Hi", "Hello! How can I help?"),
            ("你好吗？", "我很好，谢谢。"),
            ("What is 2+2? Answer in one word, please.", "Four."),
        ],
    );
    let m = checkpoint::load(&ckpt, &Device::Cpu, DType::F32).unwrap();
    let (want, counted) = plain_loss(&m, &convs);
    for batch in [1, 2, 8] {
        let got = chat_shard_loss(&m, &prefix, batch).unwrap();
        assert_eq!(
            (got.conversations, got.tokens),
            (3, counted),
            "batch {batch}"
        );
        assert!(
            (got.loss - want).abs() < 1e-4 * want,
            "batch {batch}: {} vs {want}",
            got.loss
        );
    }
    let out = Command::new(BIN)
        .args(["eval", "--json", "--checkpoint"])
        .arg(&ckpt)
        .arg("--shard")
        .arg(&prefix)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["shard"]["conversations"], 3);
    assert_eq!(v["shard"]["tokens"], counted);
    assert!((v["shard"]["loss"].as_f64().unwrap() - want).abs() < 1e-4 * want);
    // A mask shard of other lengths is refused.
    let mut bad = ShardWriter::create(&mask_prefix(&prefix), ShardDType::U8).unwrap();
    bad.push(&[0, 1]).unwrap();
    bad.finish().unwrap();
    let e = chat_shard_loss(&m, &prefix, 2).err().unwrap().to_string();
    assert!(e.contains(".mask") && e.contains("1 sequences"), "{e}");
}

/// Runs `almr-train chat ARGS` with `stdin`; its success, stdout, stderr.
fn chat(args: &[String], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .arg("chat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

#[test]
fn chat_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    checkpoint_with_tokenizer(&ckpt);
    let c = ckpt.to_str().unwrap();
    let base = ["--checkpoint", c, "--max-new-tokens", "6"];
    let with =
        |more: &[&str]| -> Vec<String> { base.iter().chain(more).map(|s| s.to_string()).collect() };
    let (ok, greedy, err) = chat(&with(&["--prompt", "Hi", "--temperature", "0"]), "");
    assert!(ok, "{err}");
    assert!(greedy.ends_with('\n'), "{greedy:?}");
    let again = chat(&with(&["--prompt", "Hi", "--temperature", "0"]), "");
    assert_eq!(again.1, greedy);
    let sampled = |seed: &'static str| chat(&with(&["--prompt", "Hi", "--seed", seed]), "").1;
    assert_eq!(sampled("5"), sampled("5"));
    // Interactive: two messages, then an empty line ends it.
    let (ok, _, err) = chat(
        &with(&["--system", "Be brief."]),
        "Hi\nAnd then?\n\nignored\n",
    );
    assert!(ok, "{err}");
    let built_in = chat(&with(&["--prompt", "Hi", "--chat-template", "llama3"]), "");
    assert!(built_in.0, "{}", built_in.2);
    for (args, says) in [
        (with(&["--prompt", " "]), "empty"),
        (
            with(&["--prompt", "Hi", "--temperature=-1"]),
            "--temperature",
        ),
        (with(&["--prompt", "Hi", "--top-p", "0"]), "--top-p"),
        (
            with(&["--prompt", "Hi", "--chat-template", "/no/such.jinja"]),
            "/no/such.jinja",
        ),
    ] {
        let (ok, _, err) = chat(&args, "");
        assert!(!ok && err.contains(says), "{args:?}: {err}");
    }
    std::fs::remove_file(ckpt.join(checkpoint::TOKENIZER_CONFIG)).unwrap();
    let (ok, _, err) = chat(&with(&["--prompt", "Hi"]), "");
    assert!(!ok && err.contains("--chat-template"), "{err}");
    std::fs::remove_file(ckpt.join(checkpoint::TOKENIZER)).unwrap();
    let (ok, _, err) = chat(&with(&["--prompt", "Hi"]), "");
    assert!(!ok && err.contains("no tokenizer.json"), "{err}");
}
