//! Tokenization: a document's ids are exactly what Hugging Face
//! `tokenizer.encode(text, add_special_tokens=False)` gives, followed by the
//! EOS id.
//!
//! Byte-level BPE tokenizers (Llama-3, Qwen) go through almr's own encoder,
//! [`fast`], which gives the same ids several times faster; everything else,
//! and any text it declines, through the `tokenizers` crate.

mod bpe;
pub mod chat;
pub mod fast;
mod pretokenize;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use tokenizers::Tokenizer;

use self::fast::FastTokenizer;

use crate::error::TokenizerError;
use crate::shard::DType;

/// Loads a Hugging Face `tokenizer.json`.
pub fn load(path: &Path) -> Result<Tokenizer, TokenizerError> {
    Tokenizer::from_file(path).map_err(|cause| TokenizerError::Load {
        path: path.to_path_buf(),
        cause,
    })
}

/// Decodes ids back to text, keeping special tokens such as EOS visible.
pub fn decode(tokenizer: &Tokenizer, ids: &[u32]) -> Result<String, TokenizerError> {
    tokenizer.decode(ids, false).map_err(TokenizerError::Decode)
}

/// The added (special) token of `tokenizer` nearest to `token`, when one is
/// close.
fn nearest_added_token(tokenizer: &Tokenizer, token: &str) -> Option<String> {
    let added = tokenizer.get_added_tokens_decoder();
    let mut contents: Vec<&str> = added.values().map(|t| t.content.as_str()).collect();
    contents.sort_unstable();
    crate::text::nearest(token, contents).map(str::to_string)
}

/// A loaded tokenizer plus the EOS id appended to every document.
pub struct DocTokenizer {
    inner: Tokenizer,
    /// `inner` with special tokens encoded as text, when `fast` is off.
    plain: Option<Tokenizer>,
    /// almr's encoder, or why it cannot stand in for `inner`.
    fast: Result<FastTokenizer, String>,
    /// Documents that `fast` declined and `inner` encoded.
    declined: AtomicU64,
    eos: String,
    eos_id: u32,
    vocab_size: usize,
}

impl DocTokenizer {
    /// Loads `tokenizer.json` and looks up `eos` in its vocabulary.
    pub fn from_file(path: &Path, eos: &str) -> Result<Self, TokenizerError> {
        type Cause = Box<dyn std::error::Error + Send + Sync>;
        // Both parse the 9 MB file; on two threads the load takes half as long.
        let (inner, fast) = std::thread::scope(|s| {
            let fast = s.spawn(|| -> Result<_, Cause> {
                let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
                Ok(FastTokenizer::from_json(&json))
            });
            let inner = load(path);
            let fast = fast
                .join()
                .unwrap_or_else(|_| Err("loading panicked".into()));
            (inner, fast)
        });
        let inner = inner?;
        let fast = fast.map_err(|cause| TokenizerError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        let eos_id = inner
            .token_to_id(eos)
            .ok_or_else(|| TokenizerError::UnknownEos {
                path: path.to_path_buf(),
                eos: eos.to_string(),
                nearest: nearest_added_token(&inner, eos),
            })?;
        // The largest id plus one: added tokens can sit past the base vocab.
        let vocab_size = inner
            .get_vocab(true)
            .values()
            .map(|&id| id as usize + 1)
            .max()
            .unwrap_or(0);
        if vocab_size > i32::MAX as usize {
            return Err(TokenizerError::VocabTooLarge {
                path: path.to_path_buf(),
                ids: vocab_size,
            });
        }
        let plain = fast.is_err().then(|| {
            let mut plain = inner.clone();
            plain.set_encode_special_tokens(true);
            plain
        });
        Ok(DocTokenizer {
            inner,
            plain,
            fast,
            declined: AtomicU64::new(0),
            eos: eos.to_string(),
            eos_id,
            vocab_size,
        })
    }

    /// Token ids of `text` without special tokens, followed by EOS.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        if let Ok(fast) = &self.fast {
            if let Some(mut ids) = fast.encode(text) {
                ids.push(self.eos_id);
                return Ok(ids);
            }
            self.declined.fetch_add(1, Ordering::Relaxed);
        }
        let enc = self
            .inner
            .encode_fast(text, false)
            .map_err(TokenizerError::Encode)?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        ids.extend_from_slice(enc.get_ids());
        ids.push(self.eos_id);
        Ok(ids)
    }

    /// Token ids of `text` alone, with added tokens' text encoded as text and
    /// nothing appended: a piece of a rendered conversation.
    pub fn encode_text(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        if let Ok(fast) = &self.fast {
            return Ok(fast.encode_plain(text));
        }
        let plain = self.plain.as_ref().unwrap_or(&self.inner);
        let enc = plain
            .encode_fast(text, false)
            .map_err(TokenizerError::Encode)?;
        Ok(enc.get_ids().to_vec())
    }

    /// The content and id of every added token, longest content first.
    pub fn added_tokens(&self) -> Vec<(String, u32)> {
        let mut added: Vec<(String, u32)> = self
            .inner
            .get_added_tokens_decoder()
            .into_iter()
            .map(|(id, t)| (t.content, id))
            .filter(|(c, _)| !c.is_empty())
            .collect();
        added.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        added
    }

    /// The id of token `content`, if the vocabulary has it.
    pub fn token_id(&self, content: &str) -> Option<u32> {
        self.inner.token_to_id(content)
    }

    /// The encoder that gives the ids: `"almr"` or `"tokenizers"`.
    pub fn encoder(&self) -> &'static str {
        if self.fast.is_ok() {
            "almr"
        } else {
            "tokenizers"
        }
    }

    /// Why almr's own encoder is off for this tokenizer; `None` when it is on.
    pub fn fast_path_off(&self) -> Option<&str> {
        self.fast.as_ref().err().map(String::as_str)
    }

    /// Documents so far that almr's encoder declined (they hold an added
    /// token's text) and the `tokenizers` crate encoded.
    pub fn declined(&self) -> u64 {
        self.declined.load(Ordering::Relaxed)
    }

    /// Decodes ids back to text, special tokens included.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        decode(&self.inner, ids)
    }

    /// The EOS token string.
    pub fn eos(&self) -> &str {
        &self.eos
    }

    /// The EOS token id.
    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    /// Number of ids the tokenizer can produce (largest id + 1).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The shard dtype Megatron would choose for this vocabulary.
    pub fn dtype(&self) -> DType {
        DType::for_vocab_size(self.vocab_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn llama3() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tokenizers/llama3/tokenizer.json")
    }

    #[test]
    fn eos_is_appended_and_vocab_gives_i32() {
        let t = DocTokenizer::from_file(&llama3(), "<|end_of_text|>").unwrap();
        assert_eq!(t.eos_id(), 128001);
        assert_eq!(t.vocab_size(), 128256);
        assert_eq!(t.dtype(), DType::I32);
        // "Hello world" is two tokens in Llama-3; no BOS is added.
        assert_eq!(t.encode("Hello world").unwrap(), [9906, 1917, 128001]);
        assert_eq!(t.encode("").unwrap(), [128001]);
        assert_eq!(t.fast_path_off(), None);
        assert_eq!(t.declined(), 0);
        // Special-token text is split out by `tokenizers`.
        assert_eq!(t.encode("a<|end_of_text|>").unwrap(), [64, 128001, 128001]);
        assert_eq!(t.declined(), 1);
    }

    #[test]
    fn unknown_eos_is_an_error() {
        let e = DocTokenizer::from_file(&llama3(), "</s>").err().unwrap();
        assert!(e.to_string().contains("not in the vocabulary"), "{e}");
    }

    #[test]
    fn decode_keeps_special_tokens() {
        let t = load(&llama3()).unwrap();
        assert_eq!(
            decode(&t, &[9906, 1917, 128001]).unwrap(),
            "Hello world<|end_of_text|>"
        );
    }
}
