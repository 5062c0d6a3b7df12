//! A conversation's tokens and loss mask: the rendered chat template,
//! encoded, with 1 on every token the loss counts.
//!
//! 1. **Render.** The whole conversation, without a generation prompt. The
//!    template ends the conversation: nothing is appended.
//! 2. **Find the contents.** The template is rendered once more with each
//!    message's content replaced by a marker. Between the markers is the
//!    template's own text; the real rendering must be that text with each
//!    content (or the content trimmed, as many templates do) in the markers'
//!    places. Otherwise the template changes content in a way almr cannot
//!    place, and that is an error naming the template.
//! 3. **Find the assistant spans.** For each assistant turn `i`, the prefix
//!    `P` (turns before `i`, with the generation prompt) and `Q` (turns up to
//!    `i`) are rendered. `Q` must start with `P` and the whole rendering with
//!    `Q` (the template is prefix-consistent), and `Q` minus `P` (the reply
//!    and the template's end of turn, e.g. `<|eot_id|>`) has mask 1.
//! 4. **Encode.** The template's text is split at the vocabulary's added
//!    tokens, each of which becomes its single id; everything else, contents
//!    included, is encoded as plain text, so special-token text inside a
//!    message stays text. Text is cut only where the mask changes.

use std::ops::Range;

use aho_corasick::{AhoCorasick, MatchKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DocTokenizer;
use crate::error::TokenizerError;
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
    added: Option<(AhoCorasick, Vec<u32>)>,
}

/// A marker that stands for message `i`'s content in the skeleton rendering.
fn marker(i: usize) -> String {
    format!("\u{E000}almr-content-{i}\u{E001}")
}

impl<'a> ChatEncoder<'a> {
    /// An encoder for `template` over `tokenizer`'s vocabulary.
    pub fn new(
        template: &'a ChatTemplate,
        tokenizer: &'a DocTokenizer,
    ) -> Result<Self, TokenizerError> {
        let (contents, ids): (Vec<String>, Vec<u32>) = tokenizer.added_tokens().into_iter().unzip();
        let added = match contents.is_empty() {
            true => None,
            false => Some((
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&contents)
                    .map_err(|e| template.error(&format!("added tokens: {e}")))?,
                ids,
            )),
        };
        Ok(ChatEncoder {
            template,
            tokenizer,
            added,
        })
    }

    /// The ids and mask of `turns`.
    pub fn encode(&self, turns: &[Turn], mask: &MaskConfig) -> Result<Encoded, TokenizerError> {
        let full = self.template.render(turns, false)?;
        let contents = self.locate_contents(turns, &full)?;
        let trained = match mask.train_on_prompt {
            true => std::iter::once(0..full.len()).collect(),
            false => self.assistant_spans(turns, &full, mask.mask_history)?,
        };
        self.encode_pieces(&full, &contents, &trained)
    }

    /// The byte range of each message's content in `full`.
    fn locate_contents(
        &self,
        turns: &[Turn],
        full: &str,
    ) -> Result<Vec<Range<usize>>, TokenizerError> {
        let masked: Vec<Turn> = (0..turns.len())
            .map(|i| Turn {
                role: turns[i].role,
                content: marker(i),
            })
            .collect();
        let skeleton = self.template.render(&masked, false)?;
        let mut texts = Vec::with_capacity(turns.len() + 1);
        let mut rest = skeleton.as_str();
        for i in 0..turns.len() {
            let m = marker(i);
            let at = rest.find(&m).ok_or_else(|| {
                self.template.error(&format!(
                    "it does not show message {i}'s content (every message must appear once, in order)"
                ))
            })?;
            texts.push(&rest[..at]);
            rest = &rest[at + m.len()..];
        }
        if rest.contains('\u{E000}') && rest.contains("almr-content-") {
            return Err(self
                .template
                .error(&"it shows a message's content more than once")
                .into());
        }
        texts.push(rest);
        let mut at = 0;
        let mut ranges = Vec::with_capacity(turns.len());
        for (i, turn) in turns.iter().enumerate() {
            at = expect_text(full, at, texts[i]).ok_or_else(|| self.unplaced(i))?;
            let c = &turn.content;
            let next = texts[i + 1];
            let candidates = [c.as_str(), c.trim(), c.trim_start(), c.trim_end()];
            let content = candidates
                .into_iter()
                .find(|c| full[at..].starts_with(c) && full[at + c.len()..].starts_with(next))
                .ok_or_else(|| self.unplaced(i))?;
            ranges.push(at..at + content.len());
            at += content.len();
        }
        match expect_text(full, at, texts[turns.len()]) {
            Some(end) if end == full.len() => Ok(ranges),
            _ => Err(self.unplaced(turns.len().saturating_sub(1))),
        }
    }

    fn unplaced(&self, i: usize) -> TokenizerError {
        self.template
            .error(&format!(
                "it changes message {i}'s content in a way almr cannot place (only trimming is understood)"
            ))
            .into()
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

    /// Encodes `full`: template text split at added tokens, contents as
    /// plain text, cut where the mask changes.
    fn encode_pieces(
        &self,
        full: &str,
        contents: &[Range<usize>],
        trained: &[Range<usize>],
    ) -> Result<Encoded, TokenizerError> {
        let mut cuts: Vec<usize> = vec![0, full.len()];
        for r in contents.iter().chain(trained) {
            cuts.extend([r.start, r.end]);
        }
        cuts.sort_unstable();
        cuts.dedup();
        let mut out = Encoded {
            ids: Vec::new(),
            mask: Vec::new(),
        };
        let mut text = String::new();
        let mut text_bit = 0u8;
        let inside = |ranges: &[Range<usize>], at: usize| ranges.iter().any(|r| r.contains(&at));
        for w in cuts.windows(2) {
            let (start, end) = (w[0], w[1]);
            if start == end {
                continue;
            }
            let bit = inside(trained, start) as u8;
            if bit != text_bit {
                self.flush(&mut text, text_bit, &mut out)?;
                text_bit = bit;
            }
            let piece = &full[start..end];
            match (&self.added, inside(contents, start)) {
                (Some((finder, ids)), false) => {
                    let mut last = 0;
                    for m in finder.find_iter(piece) {
                        text.push_str(&piece[last..m.start()]);
                        self.flush(&mut text, bit, &mut out)?;
                        out.ids.push(ids[m.pattern().as_usize()]);
                        out.mask.push(bit);
                        last = m.end();
                    }
                    text.push_str(&piece[last..]);
                }
                _ => text.push_str(piece),
            }
        }
        self.flush(&mut text, text_bit, &mut out)?;
        Ok(out)
    }

    /// Encodes the pending plain `text` with mask `bit`.
    fn flush(&self, text: &mut String, bit: u8, out: &mut Encoded) -> Result<(), TokenizerError> {
        if text.is_empty() {
            return Ok(());
        }
        let ids = self.tokenizer.encode_text(text)?;
        out.mask.extend(std::iter::repeat_n(bit, ids.len()));
        out.ids.extend(ids);
        text.clear();
        Ok(())
    }
}

/// The end of `text` when `full` has it at `at`.
fn expect_text(full: &str, at: usize, text: &str) -> Option<usize> {
    full.get(at..)?.starts_with(text).then_some(at + text.len())
}
