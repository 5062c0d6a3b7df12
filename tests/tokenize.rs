//! almr's own byte-level BPE encoder against the `tokenizers` crate: the
//! same ids for every fixture document and for random Unicode text, with the
//! Llama-3 and the Qwen3 `tokenizer.json`. (Unit tests in `src/tokenize`
//! check the splits and NFC around every code point.)

mod common;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use almr::config::{self, Source};
use almr::read::{self, Format, Item};
use almr::shard::ShardReader;
use almr::tokenize::fast::FastTokenizer;
use common::root;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokenizers::Tokenizer;

const TOKENIZERS: [&str; 2] = ["llama3", "qwen3"];

/// Both encoders for one `tokenizer.json`.
struct Pair {
    name: &'static str,
    fast: FastTokenizer,
    hf: Tokenizer,
}

impl Pair {
    fn load(name: &'static str) -> Pair {
        let path = root().join(format!("fixtures/tokenizers/{name}/tokenizer.json"));
        let json = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        Pair {
            name,
            fast: FastTokenizer::from_json(&json).unwrap(),
            hf: Tokenizer::from_file(&path).unwrap(),
        }
    }

    fn hf_ids(&self, text: &str) -> Vec<u32> {
        self.hf.encode(text, false).unwrap().get_ids().to_vec()
    }

    /// Compares the two on `text`; false when the fast path declined it.
    fn check(&self, what: &str, text: &str) -> bool {
        let Some(fast) = self.fast.encode(text) else {
            return false;
        };
        let want = self.hf_ids(text);
        if fast != want {
            let at = fast.iter().zip(&want).take_while(|(a, b)| a == b).count();
            panic!(
                "{}: {what}: ids differ at token {at} of {}: almr {:?} tokenizers {:?}\ntext: {text:?}",
                self.name,
                want.len(),
                &fast[at..(at + 8).min(fast.len())],
                &want[at..(at + 8).min(want.len())],
            );
        }
        true
    }
}

/// Every document in the fixtures, read by almr's readers: the sources of
/// `pipelines/tokenize_only.toml` plus the near-duplicate and junk sets.
fn fixture_documents() -> Vec<(String, String)> {
    std::env::set_current_dir(root()).unwrap();
    let loaded = config::load(&root().join("pipelines/tokenize_only.toml")).unwrap();
    let mut inputs: Vec<(Source, Vec<std::path::PathBuf>)> = loaded
        .pipeline
        .sources
        .iter()
        .cloned()
        .zip(loaded.inputs)
        .collect();
    let mut jsonl = loaded.pipeline.sources[0].clone();
    jsonl.format = Format::Jsonl;
    jsonl.id_field = None;
    for pattern in ["fixtures/neardup/*.jsonl.gz", "fixtures/quality/*.jsonl"] {
        let files: Vec<_> = glob::glob(pattern).unwrap().map(Result::unwrap).collect();
        assert!(!files.is_empty(), "{pattern}");
        inputs.push((jsonl.clone(), files));
    }
    let mut docs = Vec::new();
    for (source, files) in inputs {
        for file in files {
            for item in read::open(&file, &source.read_settings(), Arc::new(AtomicU64::new(0))) {
                match item {
                    Item::Doc(r) => docs.push((format!("{}:{}", file.display(), r.line), r.text)),
                    Item::Bad(m) => panic!("{}: {m:?}", file.display()),
                }
            }
        }
    }
    docs
}

#[test]
fn every_fixture_document_gets_the_same_ids() {
    let docs = fixture_documents();
    assert!(docs.len() > 500, "{} documents", docs.len());
    for name in TOKENIZERS {
        let pair = Pair::load(name);
        let compared = docs
            .iter()
            .filter(|(at, text)| pair.check(at, text))
            .count();
        // No fixture document holds special-token text.
        assert_eq!(compared, docs.len(), "{name}");
    }
}

/// Pieces that random strings are built from: scripts, white space and digit
/// runs, contractions and their case folds, combining marks, emoji
/// sequences, special-token look-alikes.
const PIECES: &[&str] = &[
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\n\n",
    "\r",
    " \n ",
    "\u{3000}",
    "\u{a0}",
    "\u{85}",
    "\u{2028}",
    "\u{180e}",
    "\u{200b}",
    "\u{feff}",
    "\u{b}",
    "\u{c}",
    "'s",
    "'S",
    "'t",
    "'re",
    "'RE",
    "'Ve",
    "'m",
    "'ll",
    "'LL",
    "'d",
    "'x",
    "'",
    "''",
    "'ſ",
    "ſ",
    "'\u{212a}",
    "'ﬅ",
    "'\u{1e9e}",
    "123",
    "4567",
    "0",
    "١٢٣",
    "²",
    "Ⅻ",
    "½",
    "１２３",
    "𝟘𝟙",
    "hello",
    "World",
    "ABC",
    "naïve",
    "e\u{301}",
    "Å",
    "A\u{30a}",
    "\u{212b}",
    "\u{1109a}",
    "\u{11099}\u{110ba}",
    "\u{345}",
    "\u{301}",
    "\u{1100}\u{1161}\u{11a8}",
    "\u{ac00}\u{11a8}",
    "中文",
    "测试一下",
    "，",
    "。",
    "「」",
    "——",
    "（）",
    "日本語",
    "カタカナ",
    "ｶﾀｶﾅ",
    "한국어",
    "Ελληνικά",
    "русский",
    "עברית",
    "العربية",
    "हिन्दी",
    "ไทย",
    "😀",
    "👍🏽",
    "👨‍👩‍👧",
    "🇨🇳",
    "🇨",
    "️",
    "...",
    "!!",
    "?",
    "-",
    "==",
    "$",
    "%",
    "#",
    "@",
    "<",
    ">",
    "<|",
    "|>",
    "/",
    "\\",
    "\"",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "_",
    "__init__",
    "\u{e000}",
    "\u{10ffff}",
    "\u{1f}",
    "\u{0}",
    "\u{7f}",
    "\u{ad}",
    "\u{34f}",
    "𝔘𝔫𝔦",
    "𐍈",
    "\u{fffd}",
    "\u{d7ff}",
    "\u{e0001}",
];

/// A random string of up to 24 parts: pieces, runs of a piece, random code
/// points from the whole range or from CJK, and lossily decoded byte cuts
/// through multi-byte chars.
fn random_text(rng: &mut ChaCha8Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.random_range(1..=24) {
        let piece = *PIECES.choose(rng).unwrap();
        match rng.random_range(0..10) {
            0 => s.extend(char::from_u32(rng.random_range(0..0x11_0000))),
            1 => s.extend(char::from_u32(rng.random_range(0x4E00..0xA000))),
            2 => s.push_str(&piece.repeat(rng.random_range(2..60))),
            3 => {
                let bytes = piece.as_bytes();
                let cut = rng.random_range(0..=bytes.len());
                s.push_str(&String::from_utf8_lossy(&bytes[cut..]));
            }
            _ => s.push_str(piece),
        }
    }
    s
}

#[test]
fn random_unicode_gets_the_same_ids() {
    for name in TOKENIZERS {
        let pair = Pair::load(name);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut compared = 0;
        for case in 0..4000 {
            let text = random_text(&mut rng);
            compared += usize::from(pair.check(&format!("case {case}"), &text));
        }
        // Only strings with special-token text are declined.
        assert!(compared > 3900, "{name}: {compared} compared");
    }
}

#[test]
fn special_token_text_is_declined_not_mangled() {
    for name in TOKENIZERS {
        let pair = Pair::load(name);
        let special = if name == "llama3" {
            "<|end_of_text|>"
        } else {
            "<|im_start|>"
        };
        assert!(pair.fast.encode(&format!("x {special} y")).is_none());
        assert!(pair.fast.encode("x <| y").is_some());
    }
}

/// Builds `texts` (one JSON line each) with the tokenizer at `tokenizer`;
/// returns the manifest's tokenizer record and each document's ids.
fn build_texts(
    dir: &std::path::Path,
    tokenizer: &std::path::Path,
    texts: &[&str],
) -> (almr::manifest::TokenizerInfo, Vec<Vec<u32>>) {
    let input = dir.join("in.jsonl");
    let lines: Vec<String> = texts
        .iter()
        .map(|t| serde_json::json!({ "text": t }).to_string() + "\n")
        .collect();
    std::fs::write(&input, lines.concat()).unwrap();
    let pipeline = dir.join("pipeline.toml");
    std::fs::write(
        &pipeline,
        format!(
            "output = {:?}\nsteps = []\n[tokenizer]\npath = {:?}\neos = \"<|end_of_text|>\"\n\
             [[source]]\nname = \"docs\"\nlanguage = \"en\"\nadditional = false\n\
             format = \"jsonl\"\npaths = [{:?}]\n",
            dir.join("out").display().to_string(),
            tokenizer.display().to_string(),
            input.display().to_string(),
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let manifest = common::build_to(&pipeline, &out, 2).manifest;
    let reader = ShardReader::open(&out.join(&manifest.shards[0].prefix)).unwrap();
    let ids = (0..reader.len())
        .map(|i| {
            let mut v = Vec::new();
            reader.read_into(i, &mut v).unwrap();
            v
        })
        .collect();
    (manifest.tokenizer, ids)
}

#[test]
fn a_build_hands_special_token_text_to_tokenizers_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = root().join(common::LLAMA3);
    let texts = [
        "Hello <|end_of_text|> world",
        "Hello world",
        "a<|begin_of_text|>",
    ];
    let (info, ids) = build_texts(dir.path(), &path, &texts);
    assert_eq!(info.encoder, "almr");
    assert_eq!(info.encoder_note, None);
    assert_eq!(info.declined_documents, 2);
    let pair = Pair::load("llama3");
    for (text, got) in texts.iter().zip(&ids) {
        let mut want = pair.hf_ids(text);
        want.push(128001);
        assert_eq!(got, &want, "{text:?}");
    }
    // The special tokens became single ids.
    assert!(ids[0].contains(&128001) && ids[0].len() > 3);
}

#[test]
fn a_build_with_an_unsupported_tokenizer_uses_tokenizers_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root().join(common::LLAMA3)).unwrap()).unwrap();
    json["normalizer"] = serde_json::json!({"type": "Lowercase"});
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, json.to_string()).unwrap();
    let texts = ["Hello World", "中文 ABC"];
    let (info, ids) = build_texts(dir.path(), &path, &texts);
    assert_eq!(info.encoder, "tokenizers");
    let note = info.encoder_note.unwrap();
    assert!(note.contains("normalizer"), "{note}");
    assert_eq!(info.declined_documents, 0);
    let hf = Tokenizer::from_file(&path).unwrap();
    for (text, got) in texts.iter().zip(&ids) {
        let mut want = hf.encode(*text, false).unwrap().get_ids().to_vec();
        want.push(128001);
        assert_eq!(got, &want, "{text:?}");
    }
    // Lowercasing took effect: the ids are those of the lowercase text.
    assert_eq!(
        ids[0],
        Pair::load("llama3")
            .hf_ids("hello world")
            .into_iter()
            .chain([128001])
            .collect::<Vec<_>>()
    );
}
