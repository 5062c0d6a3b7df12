//! The pipeline file: a TOML document, validated against
//! `schemas/pipeline.schema.json`, then resolved (globs expanded, files checked).
//!
//! This module only collects settings: each table's type belongs to the part
//! that uses it (the reader's formats to [`crate::read`], each step's
//! settings to its step, the step names to [`crate::chain`]).
//!
//! The Rust types below are the single source of truth: the committed schema is
//! generated from them (`almr schema pipeline`) and a test keeps the two in
//! sync. Every error names the offending key, as a dotted path such as
//! `source[1].format`, and the line of the pipeline file it sits on.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue};

pub use crate::chain::Step;
use crate::chain::{SharedSteps, SourceSteps};
use crate::dedup::near::NearDedupConfig;
pub use crate::error::ConfigError;
use crate::filter::FilterConfig;
use crate::language::LanguageConfig;
use crate::normalize::NormalizeConfig;
use crate::read::chat::ChatSchema;
use crate::read::{compression_of, Compression, Fields, ReadSettings};
use crate::read::{Format, TextUnit};
use crate::template;
use crate::tokenize::chat::MaskConfig;

/// The committed JSON Schema of the pipeline file.
pub const PIPELINE_SCHEMA: &str = include_str!("../schemas/pipeline.schema.json");

/// A whole pipeline file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "almr pipeline",
    description = "An almr pipeline file (TOML). Relative paths are resolved against the working directory."
)]
pub struct Pipeline {
    /// Directory the build writes to. `almr build --out DIR` overrides it.
    pub output: PathBuf,
    /// Processing steps run between reading and tokenizing, in this order.
    /// Left out, every step runs: `normalize`, `language`, `filter`,
    /// `exact_dedup`, `near_dedup`. An empty list tokenizes the text exactly
    /// as it was read. `near_dedup` must come last.
    #[serde(default)]
    pub steps: Option<Vec<Step>>,
    /// The tokenizer every source is encoded with.
    pub tokenizer: TokenizerConfig,
    /// Settings of the `near_dedup` step, which runs across all sources.
    #[serde(default)]
    pub near_dedup: NearDedupConfig,
    /// The input sources, written as `[[source]]` tables. Each source gets its
    /// own shards.
    #[serde(rename = "source")]
    #[schemars(length(min = 1))]
    pub sources: Vec<Source>,
}

/// The tokenizer section.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenizerConfig {
    /// Path to a Hugging Face `tokenizer.json`.
    pub path: PathBuf,
    /// Token appended to every document, e.g. `<|end_of_text|>` for Llama-3. It
    /// must be in the tokenizer's vocabulary. Conversations (`format =
    /// "chat"`) get nothing appended: their template ends them.
    pub eos: String,
    /// The chat template of `chat` sources: `"auto"` (the `chat_template` of
    /// the `tokenizer_config.json` beside `path`; an error for chat sources
    /// if there is none), `"llama3"` (built in: Meta's Llama-3 `ChatFormat`,
    /// for the base tokenizer, which ships no template), or the path of a
    /// Jinja file.
    #[serde(default = "default_chat_template")]
    pub chat_template: String,
}

fn default_chat_template() -> String {
    template::AUTO.to_string()
}

/// One `[[source]]` table.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Unique name of the source. It names the shard directory, so it is
    /// restricted to letters, digits, `_`, `-` and `.`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"))]
    pub name: String,
    /// Language code of the text (ISO 639-1, e.g. `zh`, `en`).
    #[schemars(regex(pattern = r"^[a-z]{2,3}$"))]
    pub language: String,
    /// Whether the source's tokens count toward the ALMR (the added language).
    pub additional: bool,
    /// Input files, as glob patterns. Every pattern must match at least one
    /// file; the matches of each pattern are read in sorted order.
    #[schemars(length(min = 1))]
    pub paths: Vec<String>,
    /// Input format.
    pub format: Format,
    /// JSON key (jsonl) or column (parquet) holding the text.
    #[serde(default = "default_text_field")]
    pub text_field: String,
    /// JSON key or column holding the record id. Without it the id is
    /// `file:line` (the row number for Parquet).
    #[serde(default)]
    pub id_field: Option<String>,
    /// How `text` files are cut into documents. Ignored for other formats.
    #[serde(default)]
    pub text_unit: TextUnit,
    /// The shape of `chat` records: `messages` (OpenAI), `sharegpt` or
    /// `alpaca`. Ignored for other formats.
    #[serde(default)]
    pub chat_schema: ChatSchema,
    /// Loss masks of `chat` records. Ignored for other formats.
    #[serde(default)]
    pub mask: MaskConfig,
    /// Most tokens in one shard; a new shard starts before a document that
    /// would pass it (a document is never split).
    #[serde(default = "default_max_shard_tokens")]
    #[schemars(range(min = 1))]
    pub max_shard_tokens: u64,
    /// Shuffle the documents inside each shard with this seed. Without it a
    /// shard keeps the input order.
    #[serde(default)]
    pub shuffle_seed: Option<u64>,
    /// Settings of the `normalize` step.
    #[serde(default)]
    pub normalize: NormalizeConfig,
    /// Settings of the `language` step.
    #[serde(default)]
    pub language_id: LanguageConfig,
    /// Settings of the `filter` step.
    #[serde(default)]
    pub filter: FilterConfig,
}

impl Pipeline {
    /// The steps to run: the `steps` list, or every step when it is left out.
    pub fn steps(&self) -> Vec<Step> {
        self.steps.clone().unwrap_or_else(|| Step::ALL.to_vec())
    }

    /// The settings of the steps that span every source.
    pub fn shared_steps<'a>(&'a self, mem_budget: usize, scratch: &'a Path) -> SharedSteps<'a> {
        SharedSteps {
            near_dedup: &self.near_dedup,
            mem_budget,
            scratch,
        }
    }
}

impl Source {
    /// How this source's files are read.
    pub fn read_settings(&self) -> ReadSettings {
        ReadSettings {
            format: self.format,
            fields: Fields {
                text: self.text_field.clone(),
                id: self.id_field.clone(),
            },
            text_unit: self.text_unit,
            chat_schema: self.chat_schema,
        }
    }

    /// The settings its per-document steps take.
    pub fn step_settings(&self) -> SourceSteps<'_> {
        SourceSteps {
            language: &self.language,
            normalize: &self.normalize,
            language_id: &self.language_id,
            filter: &self.filter,
        }
    }
}

fn default_text_field() -> String {
    "text".to_string()
}

fn default_max_shard_tokens() -> u64 {
    1_000_000_000
}

/// A validated pipeline, with its inputs resolved.
#[derive(Debug, Clone)]
pub struct LoadedPipeline {
    /// Where the pipeline was read from.
    pub path: PathBuf,
    /// The raw bytes of the pipeline file (hashed into the manifest).
    pub raw: String,
    /// The parsed pipeline.
    pub pipeline: Pipeline,
    /// For each source, in order, the input files it reads.
    pub inputs: Vec<Vec<PathBuf>>,
}

/// The JSON Schema generated from the types above, pretty-printed with a
/// trailing newline, as committed in `schemas/pipeline.schema.json`.
pub fn generated_schema() -> String {
    let schema = schemars::schema_for!(Pipeline);
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serializes");
    s.push('\n');
    s
}

/// Reads, validates and resolves a pipeline file.
pub fn load(path: &Path) -> Result<LoadedPipeline, ConfigError> {
    let raw = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        key: String::new(),
        message: format!("cannot read pipeline file: {e}"),
    })?;
    let pipeline = parse(path, &raw)?;
    let inputs = resolve_inputs(path, &raw, &pipeline)?;
    Ok(LoadedPipeline {
        path: path.to_path_buf(),
        raw,
        pipeline,
        inputs,
    })
}

/// Parses and validates pipeline text without touching the file system.
pub fn parse(path: &Path, raw: &str) -> Result<Pipeline, ConfigError> {
    let err = |line, key: &str, message: String| ConfigError {
        file: path.to_path_buf(),
        line,
        key: key.to_string(),
        message,
    };
    let spans = match DeTable::parse(raw) {
        Ok(doc) => KeyLines::new(raw, doc.get_ref()),
        Err(e) => {
            let line = e.span().map(|s| line_of(raw, s.start));
            return Err(err(line, "", format!("invalid TOML: {}", e.message())));
        }
    };
    let value: toml::Value =
        toml::from_str(raw).map_err(|e| err(None, "", format!("invalid TOML: {}", e.message())))?;
    let json = serde_json::to_value(&value).map_err(|e| err(None, "", e.to_string()))?;
    if let Some((pointer, message)) = first_schema_error(&json, &spans) {
        return Err(err(spans.line(&pointer), &key_path(&pointer), message));
    }
    let pipeline: Pipeline = serde_json::from_value(json)
        .map_err(|e| err(None, "", format!("does not match the schema: {e}")))?;
    let problem = misplaced_step(&pipeline)
        .or_else(|| duplicate_source(&pipeline))
        .or_else(|| too_many_permutations(&pipeline));
    match problem {
        Some((pointer, message)) => Err(err(spans.line(&pointer), &key_path(&pointer), message)),
        None => Ok(pipeline),
    }
}

/// The first error of the pipeline against its JSON Schema, as a JSON
/// pointer and a message. Unknown keys come first: a misspelt key also shows
/// up as a missing one, then errors go by line.
fn first_schema_error(json: &serde_json::Value, spans: &KeyLines) -> Option<(String, String)> {
    let schema: serde_json::Value =
        serde_json::from_str(PIPELINE_SCHEMA).expect("embedded schema is valid JSON");
    let validator = jsonschema::validator_for(&schema).expect("embedded schema compiles");
    let mut errors: Vec<(bool, String, String)> = validator
        .iter_errors(json)
        .map(|e| {
            let pointer = e.instance_path().to_string();
            match e.kind() {
                jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                    let pointer = match unexpected.first() {
                        Some(first) => format!("{pointer}/{first}"),
                        None => pointer,
                    };
                    let keys = quote_all(unexpected);
                    let message = format!("unknown key{} {keys}", plural(unexpected.len()));
                    (true, pointer, message)
                }
                _ => (false, pointer, e.to_string()),
            }
        })
        .collect();
    errors.sort_by_key(|(unknown, pointer, _)| (!unknown, spans.line(pointer).unwrap_or(0)));
    let (_, pointer, message) = errors.into_iter().next()?;
    Some((pointer, message))
}

/// A step listed twice, or a corpus step that is not last.
fn misplaced_step(pipeline: &Pipeline) -> Option<(String, String)> {
    let steps = pipeline.steps.as_deref().unwrap_or_default();
    for (i, step) in steps.iter().enumerate() {
        let pointer = format!("/steps/{i}");
        if step.sees_the_corpus() && i + 1 != steps.len() {
            let message = format!("{step} must be the last step: it looks at the final text");
            return Some((pointer, message));
        }
        if steps[..i].contains(step) {
            return Some((pointer, format!("step {step} is listed twice")));
        }
    }
    None
}

/// A source name used twice.
fn duplicate_source(pipeline: &Pipeline) -> Option<(String, String)> {
    let mut seen = HashSet::new();
    let (i, s) = pipeline
        .sources
        .iter()
        .enumerate()
        .find(|(_, s)| !seen.insert(s.name.as_str()))?;
    let message = format!("duplicate source name {:?}", s.name);
    Some((format!("/source/{i}/name"), message))
}

/// Most MinHash permutations (`bands × rows`) `near_dedup` accepts: 16 KiB
/// of signature per document. The schema bounds each number from below
/// only, and a product past this made the build overflow, or ask for
/// terabytes for its tables (found by `fuzz/`, target `config`).
pub const MAX_PERMUTATIONS: usize = 4096;

/// `near_dedup.bands × rows` past [`MAX_PERMUTATIONS`].
fn too_many_permutations(pipeline: &Pipeline) -> Option<(String, String)> {
    let (bands, rows) = (pipeline.near_dedup.bands, pipeline.near_dedup.rows);
    match bands.checked_mul(rows) {
        Some(n) if n <= MAX_PERMUTATIONS => None,
        _ => Some((
            "/near_dedup/bands".into(),
            format!(
                "bands × rows = {bands} × {rows} permutations; at most {MAX_PERMUTATIONS} are supported"
            ),
        )),
    }
}

fn resolve_inputs(
    path: &Path,
    raw: &str,
    pipeline: &Pipeline,
) -> Result<Vec<Vec<PathBuf>>, ConfigError> {
    let spans = DeTable::parse(raw)
        .map(|doc| KeyLines::new(raw, doc.get_ref()))
        .unwrap_or_default();
    let err = |pointer: &str, message: String| ConfigError {
        file: path.to_path_buf(),
        line: spans.line(pointer),
        key: key_path(pointer),
        message,
    };
    if !pipeline.tokenizer.path.is_file() {
        return Err(err(
            "/tokenizer/path",
            format!("no such file: {}", pipeline.tokenizer.path.display()),
        ));
    }
    let template = pipeline.tokenizer.chat_template.as_str();
    if ![template::AUTO, template::BUILT_IN].contains(&template) && !Path::new(template).is_file() {
        return Err(err(
            "/tokenizer/chat_template",
            format!("no such file: {template} (or use \"auto\" or \"llama3\")"),
        ));
    }
    let mut all = Vec::with_capacity(pipeline.sources.len());
    for (i, source) in pipeline.sources.iter().enumerate() {
        if let Some((list, j, f)) = crate::filter::missing_file(&source.filter.words) {
            return Err(err(
                &format!("/source/{i}/filter/words/{list}/{j}"),
                format!("no such file: {}", f.display()),
            ));
        }
        let mut files = Vec::new();
        for (j, pattern) in source.paths.iter().enumerate() {
            let pointer = format!("/source/{i}/paths/{j}");
            let matches = glob::glob(pattern)
                .map_err(|e| err(&pointer, format!("bad glob pattern {pattern:?}: {e}")))?;
            let mut found: Vec<PathBuf> = matches
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            if found.is_empty() {
                return Err(err(&pointer, format!("no file matches {pattern:?}")));
            }
            found.sort();
            for f in found {
                if source.format == Format::Parquet && compression_of(&f) != Compression::None {
                    return Err(err(
                        &pointer,
                        format!(
                            "{}: Parquet files carry their own compression; an outer .gz/.zst is not supported",
                            f.display()
                        ),
                    ));
                }
                if !files.contains(&f) {
                    files.push(f);
                }
            }
        }
        all.push(files);
    }
    Ok(all)
}

/// JSON pointer (`/source/0/format`) to dotted key path (`source[0].format`).
fn key_path(pointer: &str) -> String {
    let mut out = String::new();
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        if part.chars().all(|c| c.is_ascii_digit()) && !part.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&part);
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn quote_all(keys: &[String]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn line_of(raw: &str, offset: usize) -> usize {
    raw.as_bytes()[..offset.min(raw.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Maps JSON pointers of the parsed document to the line of their key.
#[derive(Debug, Default)]
struct KeyLines(BTreeMap<String, usize>);

impl KeyLines {
    fn new(raw: &str, doc: &DeTable<'_>) -> Self {
        let mut map = BTreeMap::new();
        walk_table(raw, doc, "", &mut map);
        KeyLines(map)
    }

    /// The line of `pointer`, or of its nearest ancestor that has one.
    fn line(&self, pointer: &str) -> Option<usize> {
        let mut p = pointer;
        loop {
            if let Some(&l) = self.0.get(p) {
                return Some(l);
            }
            p = &p[..p.rfind('/')?];
        }
    }
}

fn walk_table(raw: &str, table: &DeTable<'_>, prefix: &str, map: &mut BTreeMap<String, usize>) {
    for (k, v) in table.iter() {
        let pointer = format!("{prefix}/{}", k.get_ref());
        map.insert(pointer.clone(), line_of(raw, k.span().start));
        walk_value(raw, v.get_ref(), &pointer, map);
    }
}

fn walk_value(raw: &str, value: &DeValue<'_>, pointer: &str, map: &mut BTreeMap<String, usize>) {
    match value {
        DeValue::Table(t) => walk_table(raw, t, pointer, map),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{pointer}/{i}");
                map.insert(p.clone(), line_of(raw, item.span().start));
                walk_value(raw, item.get_ref(), &p, map);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
output = "out/demo"
steps = []
[tokenizer]
path = "fixtures/tokenizers/llama3/tokenizer.json"
eos = "<|end_of_text|>"
[[source]]
name = "zh_news"
language = "zh"
additional = true
paths = ["fixtures/zh/*.jsonl.gz"]
format = "jsonl"
text_field = "text"
id_field = "id"
"#;

    fn parse_str(s: &str) -> Result<Pipeline, ConfigError> {
        parse(Path::new("p.toml"), s)
    }

    #[test]
    fn minimal_form_parses_with_defaults() {
        let p = parse_str(GOOD).unwrap();
        assert_eq!(p.sources.len(), 1);
        let s = &p.sources[0];
        assert_eq!(s.format, Format::Jsonl);
        assert_eq!(s.id_field.as_deref(), Some("id"));
        assert_eq!(s.max_shard_tokens, 1_000_000_000);
        assert_eq!(s.text_unit, TextUnit::File);
        assert!(s.shuffle_seed.is_none());
        assert!(p.steps().is_empty());
        let all = parse_str(&GOOD.replace("steps = []\n", "")).unwrap();
        assert_eq!(all.steps(), Step::ALL);
        assert_eq!(all.steps().last(), Some(&Step::NearDedup));
    }

    #[test]
    fn step_settings_are_validated() {
        let bad = format!("{GOOD}[source.filter.gopher_quality]\nmin_wrds = 3\n");
        let e = parse_str(&bad).unwrap_err();
        assert_eq!(e.key, "source[0].filter.gopher_quality.min_wrds");
        let twice = GOOD.replace("steps = []", "steps = [\"filter\", \"filter\"]");
        assert_eq!(parse_str(&twice).unwrap_err().key, "steps[1]");
        let unknown = GOOD.replace("steps = []", "steps = [\"dedupe\"]");
        assert_eq!(parse_str(&unknown).unwrap_err().key, "steps[0]");
    }

    #[test]
    fn absurd_near_dedup_sizes_are_refused_with_their_line() {
        for (bands, rows) in [("1000000000000", "5"), ("4611686018427387904", "4")] {
            let bad = format!("{GOOD}[near_dedup]\nbands = {bands}\nrows = {rows}\n");
            let e = parse_str(&bad).unwrap_err();
            assert_eq!((e.key.as_str(), e.line), ("near_dedup.bands", Some(16)));
            assert!(e.message.contains("at most 4096"), "{e}");
        }
        let most = format!("{GOOD}[near_dedup]\nbands = 64\nrows = 64\n");
        assert_eq!(parse_str(&most).unwrap().near_dedup.bands, 64);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let bad = GOOD.replace("text_field = \"text\"", "text_feild = \"text\"");
        let e = parse_str(&bad).unwrap_err();
        assert_eq!(e.key, "source[0].text_feild");
        assert_eq!(e.line, Some(13));
        assert!(e.message.contains("unknown key"), "{e}");
        assert!(
            e.to_string()
                .starts_with("p.toml:13: `source[0].text_feild`"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_is_named_with_its_line() {
        let bad = GOOD.replace("additional = true", "additional = \"yes\"");
        let e = parse_str(&bad).unwrap_err();
        assert_eq!(e.key, "source[0].additional");
        assert_eq!(e.line, Some(10));
    }

    #[test]
    fn bad_enum_value_is_named() {
        let bad = GOOD.replace("format = \"jsonl\"", "format = \"xml\"");
        let e = parse_str(&bad).unwrap_err();
        assert_eq!(e.key, "source[0].format");
        assert_eq!(e.line, Some(12));
    }

    #[test]
    fn missing_required_key_names_its_table() {
        let bad = GOOD.replace("eos = \"<|end_of_text|>\"\n", "");
        let e = parse_str(&bad).unwrap_err();
        assert_eq!(e.key, "tokenizer");
        assert!(e.message.contains("eos"), "{e}");
    }

    #[test]
    fn duplicate_source_names_are_rejected() {
        let twice = format!("{GOOD}{}", &GOOD[GOOD.find("[[source]]").unwrap()..]);
        let e = parse_str(&twice).unwrap_err();
        assert_eq!(e.key, "source[1].name");
        assert!(e.message.contains("duplicate"));
    }

    #[test]
    fn toml_syntax_error_has_a_line() {
        let e = parse_str("output = \"x\"\n[tokenizer\n").unwrap_err();
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn key_paths() {
        assert_eq!(key_path("/source/0/paths/2"), "source[0].paths[2]");
        assert_eq!(key_path(""), "");
        assert_eq!(key_path("/tokenizer"), "tokenizer");
    }
}
