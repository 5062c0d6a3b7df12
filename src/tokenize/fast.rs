//! almr's own encoder for byte-level BPE tokenizers such as Llama-3's and
//! Qwen's: the `tokenizers` chain (normalizer → pre-tokenizer → model →
//! post-processor) for the shapes it can reproduce exactly, about four times
//! faster (`docs/benchmarks.md`).
//!
//! [`FastTokenizer::from_json`] accepts a `tokenizer.json` only when every
//! part is one it reproduces, and says why otherwise:
//!
//! * normalizer: none, or NFC;
//! * pre-tokenizer: `Split` on the Llama-3 or Qwen pattern (isolated, not
//!   inverted) followed by `ByteLevel` without its own regex or prefix space;
//! * model: byte-level BPE (see `ByteBpe`);
//! * post-processor: none, `ByteLevel` or `TemplateProcessing`, which add
//!   nothing without special tokens;
//! * no truncation or padding.
//!
//! `tokenizers` splits added tokens (`<|end_of_text|>`, …) out of the text
//! before the rest of the chain. [`FastTokenizer::encode`] does not: it
//! declines any text in which an added token's content occurs, and the
//! caller encodes that text with `tokenizers`.

use aho_corasick::AhoCorasick;
use serde_json::Value;

use super::bpe::ByteBpe;
use super::pretokenize::Scanner;

/// A byte-level BPE tokenizer that gives the same ids as `tokenizers`.
pub struct FastTokenizer {
    nfc: bool,
    scanner: Scanner,
    model: ByteBpe,
    /// Finds the content of any added token.
    added: Option<AhoCorasick>,
}

impl FastTokenizer {
    /// Reads a parsed `tokenizer.json`. `Err` says which part the fast path
    /// cannot reproduce exactly.
    pub fn from_json(t: &Value) -> Result<FastTokenizer, String> {
        for key in ["truncation", "padding"] {
            if !t[key].is_null() {
                return Err(format!("{key} is set"));
            }
        }
        let nfc = match &t["normalizer"] {
            Value::Null => false,
            n if n["type"] == "NFC" => true,
            n => return Err(format!("normalizer {} is not NFC", n["type"])),
        };
        let scanner = pre_tokenizer(&t["pre_tokenizer"])?;
        post_processor(&t["post_processor"])?;
        let model = ByteBpe::from_model(&t["model"])?;
        let mut contents = Vec::new();
        for token in t["added_tokens"].as_array().into_iter().flatten() {
            match token["content"].as_str() {
                Some(c) if !c.is_empty() => contents.push(c),
                _ => return Err(format!("added token {token} has no content")),
            }
        }
        let added = if contents.is_empty() {
            None
        } else {
            Some(AhoCorasick::new(&contents).map_err(|e| format!("added tokens: {e}"))?)
        };
        Ok(FastTokenizer {
            nfc,
            scanner,
            model,
            added,
        })
    }

    /// Ids of `text`, without special tokens: what `tokenizers`'
    /// `encode(text, false)` gives. `None` when the text holds an added
    /// token's content, which only `tokenizers` splits out correctly.
    pub fn encode(&self, text: &str) -> Option<Vec<u32>> {
        let holds_added = |s: &str| self.added.as_ref().is_some_and(|a| a.is_match(s));
        if holds_added(text) {
            return None;
        }
        if self.nfc && !is_stable_nfc(text) {
            let normalized = nfc_as_tokenizers(text);
            if holds_added(&normalized) {
                return None;
            }
            return Some(self.encode_normalized(&normalized));
        }
        Some(self.encode_normalized(text))
    }

    /// Ids of `text` with any added token's content in it encoded as plain
    /// text, as `tokenizers` does with its special tokens switched off:
    /// what a chat message's content becomes.
    pub fn encode_plain(&self, text: &str) -> Vec<u32> {
        match self.nfc && !is_stable_nfc(text) {
            true => self.encode_normalized(&nfc_as_tokenizers(text)),
            false => self.encode_normalized(text),
        }
    }

    fn encode_normalized(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::with_capacity(text.len() / 3 + 1);
        self.scanner
            .split(text, |piece| self.model.encode_piece(piece, &mut ids));
        ids
    }
}

/// The scanner for a `Sequence[Split, ByteLevel]` pre-tokenizer.
fn pre_tokenizer(p: &Value) -> Result<Scanner, String> {
    let parts = match p["type"].as_str() {
        Some("Sequence") => p["pretokenizers"].as_array().map(Vec::as_slice),
        _ => None,
    };
    let [split, byte_level] = parts.unwrap_or_default() else {
        return Err(format!(
            "pre-tokenizer {} is not a Split then a ByteLevel",
            p["type"]
        ));
    };
    if split["type"] != "Split" || split["behavior"] != "Isolated" || split["invert"] != false {
        return Err("pre-tokenizer is not an isolating Split".into());
    }
    let scanner = split["pattern"]["Regex"]
        .as_str()
        .and_then(Scanner::for_pattern)
        .ok_or_else(|| {
            format!(
                "split pattern {} is not Llama-3's or Qwen's",
                split["pattern"]
            )
        })?;
    if byte_level["type"] != "ByteLevel"
        || byte_level["use_regex"] != false
        || byte_level["add_prefix_space"] != false
    {
        return Err("pre-tokenizer does not end in a plain ByteLevel".into());
    }
    Ok(scanner)
}

/// Accepts post-processors that add nothing when special tokens are off.
fn post_processor(p: &Value) -> Result<(), String> {
    match p["type"].as_str() {
        None if p.is_null() => Ok(()),
        Some("ByteLevel" | "TemplateProcessing") => Ok(()),
        Some("Sequence") => p["processors"]
            .as_array()
            .into_iter()
            .flatten()
            .try_for_each(post_processor),
        _ => Err(format!("post-processor {} may change ids", p["type"])),
    }
}

/// True when NFC leaves `text` as it is under every Unicode version from 9
/// (that of `tokenizers`' tables) on: the quick check says so and no char has
/// a combining class. Decompositions never change between versions.
fn is_stable_nfc(text: &str) -> bool {
    use unicode_normalization::char::canonical_combining_class;
    use unicode_normalization::{is_nfc_quick, IsNormalized};
    text.is_ascii()
        || (is_nfc_quick(text.chars()) == IsNormalized::Yes
            && text
                .chars()
                .all(|c| c < '\u{300}' || canonical_combining_class(c) == 0))
}

/// NFC with `tokenizers`' own tables.
fn nfc_as_tokenizers(text: &str) -> String {
    let mut n = tokenizers::NormalizedString::from(text);
    n.nfc();
    n.get().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn llama3() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/tokenizers/llama3/tokenizer.json"
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn encodes_and_declines_added_tokens() {
        let t = FastTokenizer::from_json(&llama3()).unwrap();
        assert_eq!(t.encode("Hello world").unwrap(), [9906, 1917]);
        assert_eq!(t.encode("").unwrap(), Vec::<u32>::new());
        assert!(t.encode("a<|end_of_text|>b").is_none());
    }

    /// Text that `is_stable_nfc` lets through unnormalized is text that
    /// `tokenizers`' NFC leaves alone, around every code point.
    #[test]
    fn stable_nfc_is_left_alone_by_tokenizers() {
        let mut skipped = 0;
        for c in (0..0x4_0000)
            .chain(0xE_0000..0x11_0000)
            .filter_map(char::from_u32)
        {
            for text in [
                c.to_string(),
                format!("a{c}"),
                format!("{c}a"),
                format!("\u{1100}{c}"),
            ] {
                if is_stable_nfc(&text) {
                    skipped += 1;
                    assert_eq!(nfc_as_tokenizers(&text), text, "U+{:04X}", u32::from(c));
                }
            }
        }
        // Nearly all text skips normalization.
        assert!(skipped > 1_700_000, "{skipped}");
        assert!(is_stable_nfc("中文，English 123"));
        assert!(!is_stable_nfc("e\u{301}"));
    }

    #[test]
    fn refuses_what_it_cannot_reproduce() {
        let refusal = |edit: &dyn Fn(&mut Value)| {
            let mut v = llama3();
            edit(&mut v);
            FastTokenizer::from_json(&v).err().unwrap()
        };
        let e = refusal(&|v| v["normalizer"] = serde_json::json!({"type": "Lowercase"}));
        assert!(e.contains("normalizer"), "{e}");
        let e = refusal(&|v| v["model"]["dropout"] = 0.1.into());
        assert!(e.contains("dropout"), "{e}");
        let e = refusal(&|v| {
            v["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = r"\w+".into()
        });
        assert!(e.contains("pattern"), "{e}");
        let e = refusal(&|v| v["truncation"] = serde_json::json!({"max_length": 8}));
        assert!(e.contains("truncation"), "{e}");
        let e = refusal(&|v| v["post_processor"] = serde_json::json!({"type": "BertProcessing"}));
        assert!(e.contains("post-processor"), "{e}");
        let e = refusal(&|v| v["model"]["type"] = "WordPiece".into());
        assert!(e.contains("not BPE"), "{e}");
    }
}
