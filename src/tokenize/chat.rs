//! A conversation's tokens and loss mask: the rendered chat template,
//! encoded, with 1 on every token the loss counts.
//!
//! 1. **Render and place.** The whole conversation, without a generation
//!    prompt, and where each message's content lies in it
//!    ([`ChatTemplate::render_placed`]). The template ends the conversation:
//!    nothing is appended.
//! 2. **Find the assistant spans.** For each assistant turn `i`, the prefix
//!    `P` (turns before `i`, with the generation prompt) and `Q` (turns up to
//!    `i`) are rendered. `Q` must start with `P` and the whole rendering with
//!    `Q` (the template is prefix-consistent), and `Q` minus `P` (the reply
//!    and the template's end of turn, e.g. `<|eot_id|>`) has mask 1.
//! 3. **Encode** the [`place::pieces`]: the template's text split at the
//!    vocabulary's added tokens, each its single id; contents as plain text,
//!    so special-token text inside a message stays text; plain text cut only
//!    where the mask changes.

use std::ops::Range;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DocTokenizer;
use crate::error::TokenizerError;
use crate::template::place::{self, AddedTokens, Piece};
use crate::template::{ChatTemplate, Role, Turn};

/// Which tokens of a conversation the loss counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaskConfig {
    /// Count every token, prompts included (LLaMA-Factory's
    /// `train_on_prompt`).
    #[serde(default)]
    pub train_on_prompt: bool,
    /// Count only the last assistant turn (LLaMA-Factory's `mask_history`).
    #[serde(default)]
    pub mask_history: bool,
}

/// A conversation's ids and the loss mask, one bit per id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The token ids.
    pub ids: Vec<u32>,
    /// 1 where the loss counts, else 0.
    pub mask: Vec<u8>,
}

/// Renders, masks and encodes conversations with one template and tokenizer.
pub struct ChatEncoder<'a> {
    template: &'a ChatTemplate,
    tokenizer: &'a DocTokenizer,
    added: Option<AddedTokens>,
}

impl<'a> ChatEncoder<'a> {
    /// An encoder for `template` over `tokenizer`'s vocabulary.
    pub fn new(
        template: &'a ChatTemplate,
        tokenizer: &'a DocTokenizer,
    ) -> Result<Self, TokenizerError> {
        Ok(ChatEncoder {
            template,
            tokenizer,
            added: AddedTokens::new(&tokenizer.added_tokens())?,
        })
    }

    /// The ids and mask of `turns`.
    pub fn encode(&self, turns: &[Turn], mask: &MaskConfig) -> Result<Encoded, TokenizerError> {
        let placed = self.template.render_placed(turns, false)?;
        let trained = match mask.train_on_prompt {
            true => std::iter::once(0..placed.text.len()).collect(),
            false => self.assistant_spans(turns, &placed.text, mask.mask_history)?,
        };
        let mut out = Encoded {
            ids: Vec::new(),
            mask: Vec::new(),
        };
        for piece in place::pieces(&placed, &trained, self.added.as_ref()) {
            match piece {
                Piece::Special(id, bit) => {
                    out.ids.push(id);
                    out.mask.push(bit);
                }
                Piece::Text(text, bit) => {
                    let ids = self.tokenizer.encode_text(&text)?;
                    out.mask.extend(std::iter::repeat_n(bit, ids.len()));
                    out.ids.extend(ids);
                }
            }
        }
        Ok(out)
    }

    /// The byte ranges of `full` that the loss counts: each assistant turn's
    /// reply and end of turn (only the last with `last_only`).
    fn assistant_spans(
        &self,
        turns: &[Turn],
        full: &str,
        last_only: bool,
    ) -> Result<Vec<Range<usize>>, TokenizerError> {
        let mut assistant: Vec<usize> = (0..turns.len())
            .filter(|&i| turns[i].role == Role::Assistant)
            .collect();
        if last_only {
            assistant.drain(..assistant.len().saturating_sub(1));
        }
        assistant
            .into_iter()
            .map(|i| {
                let prompt = self.template.render(&turns[..i], true)?;
                let upto = self.template.render(&turns[..=i], false)?;
                if !upto.starts_with(&prompt) || !full.starts_with(&upto) {
                    return Err(self
                        .template
                        .error(&format!(
                        "it is not prefix-consistent at turn {i}: rendering the turns before it \
                         with the generation prompt, then up to it, then all, does not give \
                         prefixes of one another, so the reply's tokens cannot be found"
                    ))
                        .into());
                }
                Ok(prompt.len()..upto.len())
            })
            .collect()
    }
}
