//! Chat (SFT) data: conversations rendered with real chat templates and
//! masked, token by token equal to an independent renderer (Jinja2 and
//! Hugging Face `tokenizers`, `scripts/make_chat_golden.py`); malformed
//! conversations counted; chat shards with their masks through a build.

mod common;

use std::io::BufRead;
use std::path::Path;

use almr::read::chat::{conversation, ChatSchema, Turn};
use almr::shard::{with_suffix, ShardReader};
use almr::template::ChatTemplate;
use almr::tokenize::chat::{ChatEncoder, MaskConfig};
use almr::tokenize::DocTokenizer;
use common::root;
use serde_json::Value;

/// The first 30 conversations of a fixture, as turns.
fn conversations(file: &str, schema: ChatSchema) -> Vec<(u64, Vec<Turn>)> {
    let f = std::fs::File::open(root().join(file)).unwrap();
    std::io::BufReader::new(f)
        .lines()
        .take(30)
        .enumerate()
        .map(|(i, line)| {
            let Value::Object(mut m) = serde_json::from_str(&line.unwrap()).unwrap() else {
                panic!("{file}:{}: not an object", i + 1)
            };
            (i as u64 + 1, conversation(&mut m, schema).unwrap())
        })
        .collect()
}

fn golden(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(root().join("fixtures/golden").join(file)).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn template(path: &str, bos: &str, eos: &str) -> ChatTemplate {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    ChatTemplate::new(path.into(), text, bos.into(), eos.into(), None).unwrap()
}

/// Every golden line equals almr's ids and mask, and every conversation the
/// reference found not prefix-consistent is an error naming the template.
fn check(golden_file: &str, template: &ChatTemplate, tokenizer: &str) {
    let tok = DocTokenizer::from_file(&root().join(tokenizer), "<|endoftext|>")
        .or_else(|_| DocTokenizer::from_file(&root().join(tokenizer), "<|end_of_text|>"))
        .unwrap();
    let encoder = ChatEncoder::new(template, &tok).unwrap();
    let mut inputs = conversations("fixtures/chat/zh_chatterbot.jsonl", ChatSchema::Messages);
    inputs.extend(conversations(
        "fixtures/chat/en_chatterbot.jsonl",
        ChatSchema::Sharegpt,
    ));
    let golden = golden(golden_file);
    assert_eq!(golden.len(), inputs.len());
    let (mut same, mut refused) = (0, 0);
    for ((line, turns), want) in inputs.iter().zip(&golden) {
        assert_eq!(want["line"], *line);
        let got = encoder.encode(turns, &MaskConfig::default());
        if want.get("error").is_some() {
            let e = got.expect_err("the reference found it not prefix-consistent");
            let e = e.to_string();
            assert!(
                e.contains("prefix-consistent") && e.contains(&template.origin),
                "{e}"
            );
            refused += 1;
            continue;
        }
        let got = got.unwrap_or_else(|e| panic!("{golden_file} line {line}: {e}"));
        let ids: Vec<u32> = serde_json::from_value(want["ids"].clone()).unwrap();
        let mask: Vec<u8> = serde_json::from_value(want["mask"].clone()).unwrap();
        assert_eq!(got.ids, ids, "{golden_file}: ids of {}", want["file"]);
        assert_eq!(
            got.mask, mask,
            "{golden_file}: mask of {} line {line}",
            want["file"]
        );
        same += 1;
    }
    assert!(
        same >= 50,
        "{golden_file}: only {same} compared ({refused} refused)"
    );
}

#[test]
fn built_in_llama3_matches_metas_chat_format() {
    let t = ChatTemplate::resolve("llama3", &root().join(common::LLAMA3)).unwrap();
    check("chat_llama3_llama3.jsonl", &t, common::LLAMA3);
}

#[test]
fn llama3_instruct_template_matches_the_reference() {
    for (golden, file) in [
        (
            "chat_llama3_instruct_llama3.jsonl",
            "fixtures/templates/llama3_instruct.jinja",
        ),
        (
            "chat_llama3_1_instruct_llama3.jsonl",
            "fixtures/templates/llama3_1_instruct.jinja",
        ),
    ] {
        let t = template(file, "<|begin_of_text|>", "<|eot_id|>");
        check(golden, &t, common::LLAMA3);
    }
}

#[test]
fn qwen3_template_from_tokenizer_config_matches_the_reference() {
    let tok = "fixtures/tokenizers/qwen3/tokenizer.json";
    let t = ChatTemplate::resolve("auto", &root().join(tok)).unwrap();
    assert_eq!(t.eos, "<|im_end|>");
    check("chat_qwen3_qwen3.jsonl", &t, tok);
}

#[test]
fn smollm2_template_renders_and_masks() {
    let t = template(
        "fixtures/templates/smollm2_instruct.jinja",
        "<|im_start|>",
        "<|im_end|>",
    );
    let tok = DocTokenizer::from_file(&root().join(common::LLAMA3), "<|end_of_text|>").unwrap();
    let turns = &conversations("fixtures/chat/en_chatterbot.jsonl", ChatSchema::Sharegpt)[0].1;
    let rendered = t.render(turns, false).unwrap();
    assert!(rendered.contains("<|im_start|>assistant\n"), "{rendered}");
    let e = ChatEncoder::new(&t, &tok)
        .unwrap()
        .encode(turns, &MaskConfig::default())
        .unwrap();
    assert_eq!(e.ids.len(), e.mask.len());
    assert!(e.mask.contains(&1) && e.mask.contains(&0));
}

#[test]
fn special_token_text_in_content_stays_text() {
    let t = ChatTemplate::resolve("llama3", &root().join(common::LLAMA3)).unwrap();
    let tok = DocTokenizer::from_file(&root().join(common::LLAMA3), "<|end_of_text|>").unwrap();
    let line = r#"{"messages":[{"role":"user","content":"say <|eot_id|>"},{"role":"assistant","content":"<|eot_id|> done"}]}"#;
    let Value::Object(mut m) = serde_json::from_str(line).unwrap() else {
        panic!()
    };
    let turns = conversation(&mut m, ChatSchema::Messages).unwrap();
    let e = ChatEncoder::new(&t, &tok)
        .unwrap()
        .encode(&turns, &MaskConfig::default())
        .unwrap();
    let eot = tok.token_id("<|eot_id|>").unwrap();
    // One <|eot_id|> id per message: the ones in the contents are text.
    assert_eq!(e.ids.iter().filter(|&&i| i == eot).count(), 2);
    assert_eq!(e.ids[0], tok.token_id("<|begin_of_text|>").unwrap());
    // The loss counts the reply and its <|eot_id|>, and nothing else.
    let trained: Vec<u32> = e
        .ids
        .iter()
        .zip(&e.mask)
        .filter(|(_, &m)| m == 1)
        .map(|(&i, _)| i)
        .collect();
    assert_eq!(*trained.last().unwrap(), eot);
    assert_eq!(tok.decode(&trained).unwrap(), "<|eot_id|> done<|eot_id|>");
    // mask_history and train_on_prompt.
    let all = MaskConfig {
        train_on_prompt: true,
        mask_history: false,
    };
    let e2 = ChatEncoder::new(&t, &tok)
        .unwrap()
        .encode(&turns, &all)
        .unwrap();
    assert_eq!(e2.ids, e.ids);
    assert!(e2.mask.iter().all(|&m| m == 1));
}

#[test]
fn mask_history_trains_only_the_last_reply() {
    let t = ChatTemplate::resolve("llama3", &root().join(common::LLAMA3)).unwrap();
    let tok = DocTokenizer::from_file(&root().join(common::LLAMA3), "<|end_of_text|>").unwrap();
    let line = r#"{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"one"},{"role":"user","content":"b"},{"role":"assistant","content":"two"}]}"#;
    let Value::Object(mut m) = serde_json::from_str(line).unwrap() else {
        panic!()
    };
    let turns = conversation(&mut m, ChatSchema::Messages).unwrap();
    let enc = ChatEncoder::new(&t, &tok).unwrap();
    let trained = |cfg: &MaskConfig| {
        let e = enc.encode(&turns, cfg).unwrap();
        let ids: Vec<u32> = e
            .ids
            .iter()
            .zip(&e.mask)
            .filter(|(_, &m)| m == 1)
            .map(|(&i, _)| i)
            .collect();
        tok.decode(&ids).unwrap()
    };
    assert_eq!(
        trained(&MaskConfig::default()),
        "one<|eot_id|>two<|eot_id|>"
    );
    let last = MaskConfig {
        mask_history: true,
        train_on_prompt: false,
    };
    assert_eq!(trained(&last), "two<|eot_id|>");
}

#[test]
fn a_template_that_is_not_prefix_consistent_is_an_error_naming_it() {
    // Llama-3 base's own template always appends the assistant header.
    let t = template(
        "fixtures/templates/llama3_base.jinja",
        "<|begin_of_text|>",
        "<|end_of_text|>",
    );
    let tok = DocTokenizer::from_file(&root().join(common::LLAMA3), "<|end_of_text|>").unwrap();
    let turns = &conversations("fixtures/chat/zh_chatterbot.jsonl", ChatSchema::Messages)[2].1;
    let e = ChatEncoder::new(&t, &tok)
        .unwrap()
        .encode(turns, &MaskConfig::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("llama3_base.jinja") && e.contains("prefix-consistent"),
        "{e}"
    );
}

/// The SFT pipeline builds: every shard has a u8 mask shard with the same
/// sequence lengths, the manifest's trained tokens are the mask's ones, and
/// the template is recorded.
#[test]
fn the_sft_pipeline_writes_masks_beside_the_shards() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let built = common::build_to(&root().join("pipelines/sft.toml"), &out, 2);
    let m = &built.manifest;
    let t = m
        .tokenizer
        .chat_template
        .as_ref()
        .expect("template recorded");
    assert!(t.origin.starts_with("llama3"));
    assert_eq!(t.sha256.len(), 64);
    let config: Value =
        serde_json::from_slice(&std::fs::read(out.join("tokenizer_config.json")).unwrap()).unwrap();
    assert_eq!(config["chat_template"], almr::template::LLAMA3);
    assert!(m.totals.kept > 500, "{:?}", m.totals);
    for shard in &m.shards {
        let prefix = out.join(&shard.prefix);
        let tokens = ShardReader::open(&prefix).unwrap();
        let mask = ShardReader::open(&with_suffix(&prefix, ".mask")).unwrap();
        assert_eq!(mask.dtype(), almr::shard::DType::U8);
        assert_eq!(mask.len(), tokens.len());
        let mut ones = 0u64;
        for i in 0..tokens.len() {
            let (ids, bits) = (tokens.get(i).unwrap(), mask.get(i).unwrap());
            assert_eq!(ids.len(), bits.len());
            assert!(bits.iter().all(|&b| b <= 1));
            assert!(bits.contains(&1) && bits[0] == 0);
            ones += bits.iter().map(|&b| b as u64).sum::<u64>();
        }
        assert_eq!(shard.trained_tokens, Some(ones));
        for suffix in [".mask.bin", ".mask.idx"] {
            let path = shard.prefix.to_string_lossy().to_string() + suffix;
            assert!(
                m.outputs.iter().any(|o| o.path == Path::new(&path)),
                "{path}"
            );
        }
    }
}

/// Each kind of malformed conversation is a malformed record with its line,
/// counted by reason; the good ones are kept.
#[test]
fn malformed_conversations_are_counted_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = root().join("fixtures/chat/malformed.jsonl");
    let pipeline = common::write_pipeline(
        dir.path(),
        &[("chat", "chat", vec![file], "id_field = \"id\"")],
    );
    use_llama3_template(&pipeline);
    let built = common::build_to(&pipeline, &dir.path().join("out"), 1);
    let c = &built.manifest.totals;
    assert_eq!((c.read, c.kept, c.malformed.total), (15, 2, 13), "{c:?}");
    let rows = common::read_rejects(&dir.path().join("out/rejects/read.parquet"));
    assert_eq!(rows.len(), 13);
    assert!(rows
        .iter()
        .all(|(f, line, _, _)| f.ends_with("malformed.jsonl") && *line > 0));
    for reason in [
        "roles_out_of_order",
        "empty_assistant_turn",
        "non_string_content",
        "no_assistant_turn",
        "missing_messages",
        "bad_role",
        "bad_json",
    ] {
        assert!(
            c.malformed.by_reason.contains_key(reason),
            "{reason}: {c:?}"
        );
    }
}

/// Sets `chat_template = "llama3"` in a pipeline from `write_pipeline`.
fn use_llama3_template(pipeline: &Path) {
    let text = std::fs::read_to_string(pipeline).unwrap().replace(
        "eos = \"<|end_of_text|>\"\n",
        "eos = \"<|end_of_text|>\"\nchat_template = \"llama3\"\n",
    );
    std::fs::write(pipeline, text).unwrap();
}

/// Alpaca records become conversations: history first, then the
/// instruction with its input.
#[test]
fn alpaca_records_build() {
    let dir = tempfile::tempdir().unwrap();
    let file = root().join("fixtures/chat/en_alpaca.jsonl");
    let pipeline = common::write_pipeline(
        dir.path(),
        &[("alpaca", "chat", vec![file], "chat_schema = \"alpaca\"")],
    );
    use_llama3_template(&pipeline);
    let built = common::build_to(&pipeline, &dir.path().join("out"), 1);
    let c = &built.manifest.totals;
    assert_eq!((c.read, c.kept), (40, 40), "{c:?}");
    assert!(built.manifest.shards[0].trained_tokens.unwrap() > 0);
}

/// `almr mix` on a chat build packs whole conversations: no sequence passes
/// `seq_len`, every conversation is whole and recorded, validation
/// conversations never train, the ALMR holds over trained tokens, and the
/// sidecar's numbers add up.
#[test]
fn an_sft_mix_packs_whole_conversations() {
    use almr::mix::{mix, MixOptions, Size, Split, TooLong};
    use almr::mixfile::packed::PackedIndex;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    common::build_to(&root().join("pipelines/sft.toml"), &out, 2);
    let opts = |too_long, seq_len| MixOptions {
        name: format!("m{seq_len}"),
        almr: 0.3,
        seq_len,
        seed: 7,
        size: Size::Samples(30),
        weights: Default::default(),
        valid_share: 0.05,
        valid_shares: Default::default(),
        max_epochs: None,
        too_long,
        force: false,
    };
    let report = mix(&out, &opts(TooLong::Drop, 256)).unwrap();
    let p = report.packing.as_ref().unwrap();
    let index = PackedIndex::open(&out.join("mix/m256")).unwrap();
    let (mut tokens, mut trained, mut add, mut convs) = (0u64, 0u64, 0u64, 0u64);
    let mut train_docs = std::collections::HashSet::new();
    for i in 0..index.len(Split::Train) {
        let seq = index.read(Split::Train, i).unwrap();
        let entries = index.conversations(Split::Train, i).unwrap();
        assert!(seq.ids.len() <= 256 && seq.ids.len() == seq.mask.len());
        assert_eq!(seq.starts.len(), entries.len());
        for (k, e) in entries.iter().enumerate() {
            let (shard, doc) = index.shard_of(e);
            assert_eq!(e.len as usize, shard.seq_len(doc).unwrap(), "whole");
            let end = seq.starts.get(k + 1).copied().unwrap_or(seq.ids.len());
            assert_eq!(seq.ids[seq.starts[k]..end], shard.get(doc).unwrap()[..]);
            let t: u64 = seq.mask[seq.starts[k]..end].iter().map(|&b| b as u64).sum();
            trained += t;
            if report.sources[e.source as usize].additional {
                add += t;
            }
            train_docs.insert((e.source, e.doc));
            convs += 1;
        }
        tokens += seq.ids.len() as u64;
    }
    assert_eq!(
        (p.tokens, p.trained_tokens, p.conversations),
        (tokens, trained, convs)
    );
    assert!(tokens >= 30 * 256, "{tokens}");
    assert_eq!(report.samples, index.len(Split::Train) as u64);
    assert!((p.efficiency - tokens as f64 / (report.samples * 256) as f64).abs() < 1e-12);
    assert!(p.efficiency > 0.9, "{}", p.efficiency);
    assert!(
        (add as f64 / trained as f64 - 0.3).abs() < 0.01,
        "{add}/{trained}"
    );
    for i in 0..index.len(Split::Valid) {
        let entries = index.conversations(Split::Valid, i).unwrap();
        assert!(entries.iter().all(|e| e.source == entries[0].source));
        assert!(entries
            .iter()
            .all(|e| !train_docs.contains(&(e.source, e.doc))));
    }
    // Conversations past seq_len are dropped or cut, and counted.
    let short = mix(&out, &opts(TooLong::Drop, 40)).unwrap();
    let dropped: u64 = short
        .packing
        .unwrap()
        .sources
        .iter()
        .map(|s| s.dropped_too_long)
        .sum();
    assert!(dropped > 0);
    let cut = mix(&out, &opts(TooLong::Truncate, 41)).unwrap();
    let cut = cut.packing.unwrap();
    assert!(cut.sources.iter().map(|s| s.truncated).sum::<u64>() > 0);
    let index = PackedIndex::open(&out.join("mix/m41")).unwrap();
    for i in 0..index.len(Split::Train) {
        assert!(index.read(Split::Train, i).unwrap().ids.len() <= 41);
    }
    // An empty stream, and one past what a mix holds, are refused.
    for size in [Size::Samples(0), Size::Tokens(1 << 62)] {
        let e = mix(
            &out,
            &MixOptions {
                size,
                name: "refused".into(),
                ..opts(TooLong::Drop, 256)
            },
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("sample") || e.to_string().contains("at most"),
            "{e}"
        );
    }
    // The same options give the same bytes.
    let again = mix(
        &out,
        &MixOptions {
            force: true,
            ..opts(TooLong::Drop, 256)
        },
    )
    .unwrap();
    assert_eq!(again.index.digest, report.index.digest);
}
