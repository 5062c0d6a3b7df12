//! Where a rendered conversation's message contents lie, and the pieces it
//! is encoded in, so that a build (`almr build`) and a chat
//! (`almr-train chat`) encode a conversation the same way:
//!
//! - the template's own text is split at the vocabulary's added tokens, each
//!   of which becomes its single id;
//! - everything else, message contents included, is plain text, so text in
//!   a message that spells a special token stays text;
//! - plain text is cut only where the loss mask changes.
//!
//! Contents are found by rendering the conversation once more with each
//! content replaced by a marker: between the markers is the template's own
//! text, and the real rendering must be that text with each content (or the
//! content trimmed, as many templates do) in the markers' places.

use std::ops::Range;

use aho_corasick::{AhoCorasick, MatchKind};

use super::{ChatTemplate, TemplateError, Turn};

/// A rendered conversation and the byte range of each message's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The rendering.
    pub text: String,
    /// Where each message's content lies in `text`, in message order.
    pub contents: Vec<Range<usize>>,
}

/// A piece of a rendered conversation, with its mask bit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Plain text, to encode with no special tokens.
    Text(String, u8),
    /// An added token of the template's text, as its id.
    Special(u32, u8),
}

/// The vocabulary's added tokens, found leftmost-longest.
pub struct AddedTokens {
    finder: AhoCorasick,
    ids: Vec<u32>,
}

impl AddedTokens {
    /// A finder for `(content, id)` pairs; `None` when there are none.
    pub fn new(tokens: &[(String, u32)]) -> Result<Option<AddedTokens>, TemplateError> {
        let tokens: Vec<&(String, u32)> = tokens.iter().filter(|(c, _)| !c.is_empty()).collect();
        if tokens.is_empty() {
            return Ok(None);
        }
        let finder = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(tokens.iter().map(|(c, _)| c))
            .map_err(|e| TemplateError::Template {
                template: "added tokens".into(),
                cause: e.to_string(),
            })?;
        Ok(Some(AddedTokens {
            finder,
            ids: tokens.iter().map(|(_, id)| *id).collect(),
        }))
    }
}

/// A marker that stands for message `i`'s content in the skeleton rendering.
fn marker(i: usize) -> String {
    format!("\u{E000}almr-content-{i}\u{E001}")
}

impl ChatTemplate {
    /// `turns` rendered (with the generation prompt when asked), and where
    /// each message's content lies in the rendering.
    pub fn render_placed(
        &self,
        turns: &[Turn],
        generation_prompt: bool,
    ) -> Result<Placed, TemplateError> {
        let text = self.render(turns, generation_prompt)?;
        let masked: Vec<Turn> = (0..turns.len())
            .map(|i| Turn {
                role: turns[i].role,
                content: marker(i),
            })
            .collect();
        let skeleton = self.render(&masked, generation_prompt)?;
        let between = self.template_texts(&skeleton, turns.len())?;
        let contents = self.place(&text, turns, &between)?;
        Ok(Placed { text, contents })
    }

    /// The template's own text before, between and after the markers.
    fn template_texts<'s>(
        &self,
        skeleton: &'s str,
        n: usize,
    ) -> Result<Vec<&'s str>, TemplateError> {
        let mut texts = Vec::with_capacity(n + 1);
        let mut rest = skeleton;
        for i in 0..n {
            let m = marker(i);
            let at = rest.find(&m).ok_or_else(|| {
                self.error(&format!(
                    "it does not show message {i}'s content (every message must appear once, in order)"
                ))
            })?;
            texts.push(&rest[..at]);
            rest = &rest[at + m.len()..];
        }
        if rest.contains("\u{E000}almr-content-") {
            return Err(self.error(&"it shows a message's content more than once"));
        }
        texts.push(rest);
        Ok(texts)
    }

    /// Each content's range in `text`, which must be `between` with the
    /// contents (or the contents trimmed) in turn.
    fn place(
        &self,
        text: &str,
        turns: &[Turn],
        between: &[&str],
    ) -> Result<Vec<Range<usize>>, TemplateError> {
        let unplaced = |i: usize| {
            self.error(&format!(
                "it changes message {i}'s content in a way almr cannot place (only trimming is understood)"
            ))
        };
        let mut at = 0;
        let mut ranges = Vec::with_capacity(turns.len());
        for (i, turn) in turns.iter().enumerate() {
            at = expect_text(text, at, between[i]).ok_or_else(|| unplaced(i))?;
            let c = &turn.content;
            let next = between[i + 1];
            let candidates = [c.as_str(), c.trim(), c.trim_start(), c.trim_end()];
            let content = candidates
                .into_iter()
                .find(|c| text[at..].starts_with(c) && text[at + c.len()..].starts_with(next))
                .ok_or_else(|| unplaced(i))?;
            ranges.push(at..at + content.len());
            at += content.len();
        }
        match expect_text(text, at, between[turns.len()]) {
            Some(end) if end == text.len() => Ok(ranges),
            _ => Err(unplaced(turns.len().saturating_sub(1))),
        }
    }
}

/// The end of `text` when `full` has it at `at`.
fn expect_text(full: &str, at: usize, text: &str) -> Option<usize> {
    full.get(at..)?.starts_with(text).then_some(at + text.len())
}

/// The pieces of a [`Placed`] rendering to encode: the template's text split
/// at `added` tokens, contents as plain text, adjacent plain text joined
/// unless the mask changes between them. `trained` are the byte ranges with
/// mask 1.
pub fn pieces(
    placed: &Placed,
    trained: &[Range<usize>],
    added: Option<&AddedTokens>,
) -> Vec<Piece> {
    let full = placed.text.as_str();
    let mut cuts: Vec<usize> = vec![0, full.len()];
    for r in placed.contents.iter().chain(trained) {
        cuts.extend([r.start, r.end]);
    }
    cuts.sort_unstable();
    cuts.dedup();
    let inside = |ranges: &[Range<usize>], at: usize| ranges.iter().any(|r| r.contains(&at));
    let mut out = Vec::new();
    let mut text = String::new();
    let mut text_bit = 0u8;
    let flush = |text: &mut String, bit: u8, out: &mut Vec<Piece>| {
        if !text.is_empty() {
            out.push(Piece::Text(std::mem::take(text), bit));
        }
    };
    for w in cuts.windows(2).filter(|w| w[0] < w[1]) {
        let (start, piece) = (w[0], &full[w[0]..w[1]]);
        let bit = inside(trained, start) as u8;
        if bit != text_bit {
            flush(&mut text, text_bit, &mut out);
            text_bit = bit;
        }
        match added.filter(|_| !inside(&placed.contents, start)) {
            Some(a) => {
                let mut last = 0;
                for m in a.finder.find_iter(piece) {
                    text.push_str(&piece[last..m.start()]);
                    flush(&mut text, bit, &mut out);
                    out.push(Piece::Special(a.ids[m.pattern().as_usize()], bit));
                    last = m.end();
                }
                text.push_str(&piece[last..]);
            }
            None => text.push_str(piece),
        }
    }
    flush(&mut text, text_bit, &mut out);
    out
}
