//! Chat templates: the model's own Jinja `chat_template`, rendered the way
//! Hugging Face's `apply_chat_template` renders it, with `minijinja`, and the
//! [`Turn`]s of a conversation they render.
//!
//! A formats-layer module (cargo feature `templates`, which `pipeline`
//! enables) with its own [`TemplateError`], so that the trainer renders
//! prompts the way a build rendered its chat shards.
//!
//! The template comes from the pipeline's `[tokenizer] chat_template`:
//! `"auto"` (the `chat_template` of the `tokenizer_config.json` beside
//! `tokenizer.json`), `"llama3"` (the built-in [`LLAMA3`], Meta's
//! `ChatFormat`), or the path of a Jinja file.

pub mod place;

use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{context, Environment, Error as JinjaError, ErrorKind, Value as JinjaValue};
use serde_json::{Map, Value};

/// Why a chat template cannot be found, loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// `chat_template = "auto"` and the tokenizer has no chat template.
    #[error(
        "{}: no chat_template here, so `chat_template = \"auto\"` has no template for the chat \
         sources; set [tokenizer] chat_template to \"llama3\" (Meta's Llama-3 format) or to a Jinja file",
        path.display()
    )]
    NoChatTemplate {
        /// The `tokenizer_config.json` looked at.
        path: PathBuf,
    },
    /// A chat template cannot be loaded or rendered, or its output cannot be
    /// masked.
    #[error("chat template {template}: {cause}")]
    Template {
        /// Where the template came from.
        template: String,
        /// What went wrong.
        cause: String,
    },
    /// The `tokenizer_config.json` cannot be read or is not a JSON object.
    #[error("{}: cannot read tokenizer: {cause}", path.display())]
    Config {
        /// The `tokenizer_config.json`.
        path: PathBuf,
        /// Why.
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Who speaks a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The system prompt.
    System,
    /// The user (the prompt).
    User,
    /// The model (the reply the loss is taken on).
    Assistant,
}

impl Role {
    /// The role's name, as chat templates see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
}

/// Meta's `ChatFormat` for Llama-3: `<|begin_of_text|>` once, then each
/// message as `<|start_header_id|>ROLE<|end_header_id|>\n\n` + content +
/// `<|eot_id|>`; the generation prompt is the assistant's header. Content is
/// not trimmed (Meta's code does not; the Hub's Instruct template does).
pub const LLAMA3: &str = "{{ bos_token }}{% for message in messages %}\
<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n{{ message['content'] }}<|eot_id|>\
{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}";

/// The BOS token the built-in Llama-3 template starts with.
const LLAMA3_BOS: &str = "<|begin_of_text|>";

/// The name of the built-in template in `chat_template`.
pub const BUILT_IN: &str = "llama3";
/// The `chat_template` value that reads the tokenizer's own template.
pub const AUTO: &str = "auto";
/// The file beside `tokenizer.json` that holds a model's chat template.
pub const TOKENIZER_CONFIG: &str = "tokenizer_config.json";

/// A loaded chat template, ready to render.
pub struct ChatTemplate {
    env: Environment<'static>,
    /// Where it came from: `llama3 (built in)`, or a file.
    pub origin: String,
    /// The template text.
    pub text: String,
    /// `bos_token` as the template sees it.
    pub bos: String,
    /// `eos_token` as the template sees it.
    pub eos: String,
    /// The `tokenizer_config.json` beside the tokenizer, parsed, if there is
    /// one.
    pub tokenizer_config: Option<Map<String, Value>>,
}

impl ChatTemplate {
    /// Resolves `choice` (`auto`, `llama3` or a path) for the tokenizer at
    /// `tokenizer`.
    pub fn resolve(choice: &str, tokenizer: &Path) -> Result<ChatTemplate, TemplateError> {
        let config_path = tokenizer.with_file_name(TOKENIZER_CONFIG);
        let config = read_config(&config_path)?;
        let token = |key: &str| config.as_ref().and_then(|c| token_text(c.get(key)));
        let (origin, text, bos) = match choice {
            BUILT_IN => (
                "llama3 (built in: Meta's ChatFormat)".to_string(),
                LLAMA3.to_string(),
                LLAMA3_BOS.to_string(),
            ),
            AUTO => {
                let text = config
                    .as_ref()
                    .and_then(|c| template_of(c.get("chat_template")))
                    .ok_or_else(|| TemplateError::NoChatTemplate {
                        path: config_path.clone(),
                    })?;
                let origin = format!("{} (chat_template)", config_path.display());
                (origin, text, token("bos_token").unwrap_or_default())
            }
            path => {
                let path = PathBuf::from(path);
                let text = std::fs::read_to_string(&path).map_err(|e| TemplateError::Template {
                    template: path.display().to_string(),
                    cause: format!("cannot read it: {e}"),
                })?;
                (
                    path.display().to_string(),
                    text,
                    token("bos_token").unwrap_or_default(),
                )
            }
        };
        let eos = token("eos_token").unwrap_or_default();
        ChatTemplate::new(origin, text, bos, eos, config)
    }

    /// A template from its text.
    pub fn new(
        origin: String,
        text: String,
        bos: String,
        eos: String,
        tokenizer_config: Option<Map<String, Value>>,
    ) -> Result<ChatTemplate, TemplateError> {
        let mut env = Environment::new();
        // As Hugging Face's ImmutableSandboxedEnvironment(trim_blocks=True,
        // lstrip_blocks=True), with Python's string methods.
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| TemplateError::Template {
                template: origin.clone(),
                cause: jinja_cause(&e),
            })?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, JinjaError> {
                Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_template_owned("chat_template", text.clone())
            .map_err(|e| TemplateError::Template {
                template: origin.clone(),
                cause: jinja_cause(&e),
            })?;
        Ok(ChatTemplate {
            env,
            origin,
            text,
            bos,
            eos,
            tokenizer_config,
        })
    }

    /// The conversation `turns` rendered, with the assistant's generation
    /// prompt at the end when `generation_prompt`.
    pub fn render(&self, turns: &[Turn], generation_prompt: bool) -> Result<String, TemplateError> {
        let messages: Vec<Value> = turns
            .iter()
            .map(|t| serde_json::json!({"role": t.role.as_str(), "content": t.content}))
            .collect();
        self.render_messages(&messages, generation_prompt)
    }

    /// Renders a list of `{role, content}` messages.
    fn render_messages(
        &self,
        messages: &[Value],
        generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        let template = self
            .env
            .get_template("chat_template")
            .map_err(|e| self.error(&e))?;
        template
            .render(context! {
                messages => JinjaValue::from(Serde(messages)),
                add_generation_prompt => generation_prompt,
                bos_token => &self.bos,
                eos_token => &self.eos,
            })
            .map_err(|e| self.error(&e))
    }

    /// A template error, naming the template.
    pub fn error(&self, cause: &dyn std::fmt::Display) -> TemplateError {
        TemplateError::Template {
            template: self.origin.clone(),
            cause: cause.to_string(),
        }
    }

    /// The `tokenizer_config.json` to publish beside the tokenizer: the
    /// tokenizer's own, with `chat_template` set to this template (and
    /// `bos_token`/`eos_token` filled in where it has none).
    pub fn tokenizer_config(&self) -> Map<String, Value> {
        let mut config = self.tokenizer_config.clone().unwrap_or_default();
        config.insert("chat_template".into(), Value::String(self.text.clone()));
        for (key, value) in [("bos_token", &self.bos), ("eos_token", &self.eos)] {
            if !config.contains_key(key) && !value.is_empty() {
                config.insert(key.into(), Value::String(value.clone()));
            }
        }
        config
    }
}

/// The full message of a minijinja error, with its causes.
fn jinja_cause(e: &JinjaError) -> String {
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(&format!(": {c}"));
        cause = c.source();
    }
    out
}

/// The parsed `tokenizer_config.json` at `path`, or `None` when there is none.
fn read_config(path: &Path) -> Result<Option<Map<String, Value>>, TemplateError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(TemplateError::Config {
                path: path.to_path_buf(),
                cause: Box::new(e),
            })
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(TemplateError::Config {
            path: path.to_path_buf(),
            cause: "not a JSON object".into(),
        }),
        Err(e) => Err(TemplateError::Config {
            path: path.to_path_buf(),
            cause: Box::new(e),
        }),
    }
}

/// A token setting: a string, or an `AddedToken` object with `content`.
fn token_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

/// A `chat_template` setting: a string, or a list of `{name, template}` of
/// which the one named `default` is used.
fn template_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Array(named) => named
            .iter()
            .find(|t| t["name"] == "default")
            .and_then(|t| t["template"].as_str())
            .map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns() -> Vec<Turn> {
        vec![
            Turn {
                role: Role::System,
                content: "Be brief.".into(),
            },
            Turn {
                role: Role::User,
                content: "Hi".into(),
            },
            Turn {
                role: Role::Assistant,
                content: "Hello!".into(),
            },
        ]
    }

    #[test]
    fn the_built_in_template_is_metas_chat_format() {
        let t = ChatTemplate::resolve(BUILT_IN, Path::new("/nonexistent/tokenizer.json")).unwrap();
        let out = t.render(&turns(), false).unwrap();
        assert_eq!(
            out,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>\
<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>\
<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        );
        let prompt = t.render(&turns()[..2], true).unwrap();
        assert!(prompt.ends_with("<|start_header_id|>assistant<|end_header_id|>\n\n"));
        assert!(out.starts_with(&prompt));
    }

    #[test]
    fn auto_without_a_template_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let tok = dir.path().join("tokenizer.json");
        let e = ChatTemplate::resolve(AUTO, &tok).err().unwrap();
        assert!(matches!(e, TemplateError::NoChatTemplate { .. }), "{e}");
        std::fs::write(
            dir.path().join(TOKENIZER_CONFIG),
            r#"{"eos_token": "</s>"}"#,
        )
        .unwrap();
        assert!(ChatTemplate::resolve(AUTO, &tok).is_err());
    }

    #[test]
    fn raise_exception_and_python_methods_work() {
        let text =
            "{% if messages[0]['role'] != 'user' %}{{ raise_exception('user first') }}{% endif %}\
{% for m in messages %}{{ m['content'].strip().upper() }}|{% endfor %}";
        let t =
            ChatTemplate::new("t".into(), text.into(), String::new(), String::new(), None).unwrap();
        let e = t.render(&turns(), false).err().unwrap().to_string();
        assert!(e.contains("user first") && e.contains("t"), "{e}");
        assert_eq!(t.render(&turns()[1..], false).unwrap(), "HI|HELLO!|");
    }
}
