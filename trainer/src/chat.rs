//! Chatting with a checkpoint (`almr-train chat`): its tokenizer and chat
//! template, the conversation encoded as `almr build` encodes chat shards,
//! and replies generated with [`crate::generate`].
//!
//! The prompt is the conversation rendered with the generation prompt and
//! encoded as a build encodes chat shards ([`almr::template::place`]): the
//! template's text is split at the vocabulary's added tokens, each of which
//! becomes its single id (`<|begin_of_text|>`, `<|start_header_id|>`, …);
//! message contents are plain text, so special-token text typed into a
//! message stays text.

use std::path::{Path, PathBuf};

use tokenizers::Tokenizer;

use almr::template::place::{self, AddedTokens, Piece};
use almr::template::{ChatTemplate, Role, TemplateError, Turn, AUTO, TOKENIZER_CONFIG};

use crate::checkpoint::TOKENIZER;
use crate::error::TrainerError;
use crate::generate::{Decoder, KvCache, Sampler, Stop};

/// End-of-text tokens that stop a reply whenever the vocabulary has them.
const END_OF_TEXT: [&str; 2] = ["<|end_of_text|>", "<|endoftext|>"];
/// End-of-turn tokens that stop a reply when the template writes them.
const END_OF_TURN: [&str; 3] = ["<|eot_id|>", "<|im_end|>", "<|end|>"];

/// Why a chat cannot start or go on.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The checkpoint has no `tokenizer.json`.
    #[error(
        "{}: no {TOKENIZER}: checkpoints of runs on a mix carry their build's; copy the build's \
         {TOKENIZER} (and {TOKENIZER_CONFIG}) into the checkpoint",
        dir.display()
    )]
    NoTokenizer {
        /// The checkpoint directory.
        dir: PathBuf,
    },
    /// The tokenizer cannot be loaded, or fails on a text.
    #[error("{}: {what}: {cause}", path.display())]
    Tokenizer {
        /// The `tokenizer.json`.
        path: PathBuf,
        /// What failed: `cannot load it`, `cannot encode`, `cannot decode`.
        what: &'static str,
        /// Why.
        cause: String,
    },
    /// The checkpoint's tokenizer has no chat template and none was given.
    #[error(
        "{}: no chat_template: pass --chat-template llama3 (Meta's Llama-3 format) or a Jinja file",
        path.display()
    )]
    NoTemplate {
        /// The `tokenizer_config.json` looked at.
        path: PathBuf,
    },
    /// The template cannot be loaded or rendered.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A user message is empty.
    #[error("the prompt is empty")]
    EmptyPrompt,
    /// Generating failed.
    #[error(transparent)]
    Trainer(#[from] TrainerError),
    /// Showing the reply failed.
    #[error("writing the reply")]
    Write(#[source] std::io::Error),
}

/// A checkpoint's tokenizer and chat template.
pub struct ChatFormat {
    tokenizer: Tokenizer,
    path: PathBuf,
    template: ChatTemplate,
    /// The vocabulary's added tokens.
    added: Option<AddedTokens>,
    stop: Vec<u32>,
}

impl ChatFormat {
    /// The tokenizer of checkpoint `dir` and its chat template:
    /// `tokenizer_config.json`'s, or `choice` (`llama3` or a Jinja file).
    pub fn open(dir: &Path, choice: Option<&str>) -> Result<ChatFormat, ChatError> {
        let path = dir.join(TOKENIZER);
        if !path.is_file() {
            return Err(ChatError::NoTokenizer {
                dir: dir.to_path_buf(),
            });
        }
        let mut tokenizer = Tokenizer::from_file(&path).map_err(|e| ChatError::Tokenizer {
            path: path.clone(),
            what: "cannot load it",
            cause: e.to_string(),
        })?;
        tokenizer.set_encode_special_tokens(true);
        let template = match ChatTemplate::resolve(choice.unwrap_or(AUTO), &path) {
            Err(TemplateError::NoChatTemplate { path }) => Err(ChatError::NoTemplate { path }),
            other => Ok(other?),
        }?;
        let added: Vec<(String, u32)> = (tokenizer.get_added_tokens_decoder().into_iter())
            .map(|(id, t)| (t.content, id))
            .collect();
        let added = AddedTokens::new(&added)?;
        let stop = stop_tokens(&tokenizer, &template);
        Ok(ChatFormat {
            tokenizer,
            path,
            template,
            added,
            stop,
        })
    }

    /// The tokens that end a reply: the template's `eos_token`, the
    /// end-of-turn tokens it writes, and the end-of-text tokens, those the
    /// vocabulary has.
    pub fn stop_tokens(&self) -> &[u32] {
        &self.stop
    }

    /// Where the template came from.
    pub fn template_origin(&self) -> &str {
        &self.template.origin
    }

    /// The ids of `turns` rendered with the generation prompt.
    pub fn prompt(&self, turns: &[Turn]) -> Result<Vec<u32>, ChatError> {
        let placed = self.template.render_placed(turns, true)?;
        let mut ids = Vec::new();
        for piece in place::pieces(&placed, &[], self.added.as_ref()) {
            match piece {
                Piece::Special(id, _) => ids.push(id),
                Piece::Text(text, _) => ids.extend(self.encode_plain(&text)?),
            }
        }
        Ok(ids)
    }

    /// Plain text's ids, with no special tokens added.
    fn encode_plain(&self, text: &str) -> Result<Vec<u32>, ChatError> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let enc = (self.tokenizer.encode_fast(text, false)).map_err(|e| ChatError::Tokenizer {
            path: self.path.clone(),
            what: "cannot encode",
            cause: e.to_string(),
        })?;
        Ok(enc.get_ids().to_vec())
    }

    /// The text of `ids`, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String, ChatError> {
        (self.tokenizer.decode(ids, true)).map_err(|e| ChatError::Tokenizer {
            path: self.path.clone(),
            what: "cannot decode",
            cause: e.to_string(),
        })
    }
}

/// The stop tokens of [`ChatFormat::stop_tokens`].
fn stop_tokens(tokenizer: &Tokenizer, template: &ChatTemplate) -> Vec<u32> {
    let turn_ends = END_OF_TURN
        .into_iter()
        .filter(|t| template.text.contains(t));
    let mut stop: Vec<u32> = std::iter::once(template.eos.as_str())
        .chain(turn_ends)
        .chain(END_OF_TEXT)
        .filter_map(|t| tokenizer.token_to_id(t))
        .collect();
    stop.sort_unstable();
    stop.dedup();
    stop
}

/// A conversation with a model: the turns so far, and the cache of what
/// the model has read.
pub struct Session {
    format: ChatFormat,
    decoder: Decoder,
    sampler: Sampler,
    cache: KvCache,
    turns: Vec<Turn>,
    max_new: usize,
}

impl Session {
    /// A conversation that starts with `system`, if given; replies of at
    /// most `max_new` tokens.
    pub fn new(
        format: ChatFormat,
        decoder: Decoder,
        sampler: Sampler,
        system: Option<&str>,
        max_new: usize,
    ) -> Session {
        let turns = (system.into_iter())
            .map(|s| Turn {
                role: Role::System,
                content: s.to_string(),
            })
            .collect();
        Session {
            cache: decoder.cache(),
            format,
            decoder,
            sampler,
            turns,
            max_new,
        }
    }

    /// The model's reply to `user`, shown piece by piece through `show` as
    /// it is generated; it joins the conversation. Returns the reply and
    /// whether it was cut at the token limit.
    pub fn reply(
        &mut self,
        user: &str,
        mut show: impl FnMut(&str) -> std::io::Result<()>,
    ) -> Result<(String, bool), ChatError> {
        if user.trim().is_empty() {
            return Err(ChatError::EmptyPrompt);
        }
        let mut turns = self.turns.clone();
        turns.push(Turn {
            role: Role::User,
            content: user.to_string(),
        });
        let prompt = self.format.prompt(&turns)?;
        let mut shown = String::new();
        let format = &self.format;
        let mut each = |ids: &[u32]| -> Result<(), ChatError> {
            let text = format.decode(ids)?;
            // Hold back a partial character (bytes of a UTF-8 sequence not
            // yet complete decode to U+FFFD).
            if text.starts_with(&shown) && !text.ends_with('\u{FFFD}') {
                show(&text[shown.len()..]).map_err(ChatError::Write)?;
                shown = text;
            }
            Ok(())
        };
        let limits = (self.max_new, format.stop_tokens());
        let (ids, stop) = (self.decoder).generate(
            &prompt,
            &mut self.cache,
            &mut self.sampler,
            limits,
            &mut each,
        )?;
        let text = format.decode(&ids)?;
        if let Some(rest) = text.strip_prefix(shown.as_str()) {
            show(rest).map_err(ChatError::Write)?;
        }
        turns.push(Turn {
            role: Role::Assistant,
            content: text.clone(),
        });
        self.turns = turns;
        Ok((text, stop == Stop::Length))
    }
}
