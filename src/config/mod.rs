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
use crate::read::{self, compression_of, Compression, FieldSetting, Fields, ReadSettings};
use crate::read::{Format, TextUnit};
use crate::template;
use crate::tokenize::chat::MaskConfig;

use self::schema::SchemaDoc;

mod reference;
mod schema;

pub use self::reference::markdown as reference_markdown;

/// The committed JSON Schema of the pipeline file.
pub const PIPELINE_SCHEMA: &str = include_str!("../../schemas/pipeline.schema.json");

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
    /// Language code of the text, as the `language` step names languages:
    /// ISO 639-1 for the common ones (`zh`, `en`, `ja`, `fr`, …), ISO 639-3
    /// for the others. When that step runs, a code it does not know is an
    /// error; a country code or another standard's code for a language it
    /// knows (`cn`, `zho`) always is, with the code meant.
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

impl LoadedPipeline {
    /// An error about the key at the JSON pointer `pointer` (such as
    /// `/tokenizer/eos`): it names the pipeline file, the key and its line.
    pub fn error_at(&self, pointer: &str, message: String) -> ConfigError {
        Locator::new(&self.path, &self.raw).error(pointer, message)
    }
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
    if let Some(p) = first_problem(&json, &spans) {
        return Err(err(
            spans.line(&p.pointer),
            &key_path(&p.pointer),
            p.message,
        ));
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

/// The first problem of the pipeline against its JSON Schema: unknown keys
/// first (a misspelt key also shows up as a missing one), then by line.
fn first_problem(json: &serde_json::Value, spans: &KeyLines) -> Option<schema::Problem> {
    let doc = SchemaDoc::new(
        serde_json::from_str(PIPELINE_SCHEMA).expect("embedded schema is valid JSON"),
    );
    schema::problems(&doc, json)
        .into_iter()
        .min_by_key(|p| (!p.unknown, spans.line(&p.pointer).unwrap_or(0)))
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

/// Checks the files the pipeline names and lists each source's inputs.
fn resolve_inputs(
    path: &Path,
    raw: &str,
    pipeline: &Pipeline,
) -> Result<Vec<Vec<PathBuf>>, ConfigError> {
    let at = Locator::new(path, raw);
    if !pipeline.tokenizer.path.is_file() {
        return Err(at.error(
            "/tokenizer/path",
            format!("no such file: {}", pipeline.tokenizer.path.display()),
        ));
    }
    let template = pipeline.tokenizer.chat_template.as_str();
    if ![template::AUTO, template::BUILT_IN].contains(&template) && !Path::new(template).is_file() {
        return Err(at.error(
            "/tokenizer/chat_template",
            format!("no such file: {template} (or use \"auto\" or \"llama3\")"),
        ));
    }
    let sources = pipeline.sources.iter().enumerate();
    sources.map(|(i, s)| source_inputs(i, s, &at)).collect()
}

/// The input files of source `i`, each checked for the fields it names.
fn source_inputs(i: usize, source: &Source, at: &Locator) -> Result<Vec<PathBuf>, ConfigError> {
    if let Some((list, j, f)) = crate::filter::missing_file(&source.filter.words) {
        return Err(at.error(
            &format!("/source/{i}/filter/words/{list}/{j}"),
            format!("no such file: {}", f.display()),
        ));
    }
    let mut files = Vec::new();
    for (j, pattern) in source.paths.iter().enumerate() {
        let pointer = format!("/source/{i}/paths/{j}");
        for f in glob_files(pattern).map_err(|m| at.error(&pointer, m))? {
            if source.format == Format::Parquet && compression_of(&f) != Compression::None {
                return Err(at.error(
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
    let settings = source.read_settings();
    for f in &files {
        if let Some(absent) = read::absent_field(f, &settings) {
            let key = match absent.setting {
                FieldSetting::Text => "text_field",
                FieldSetting::Id => "id_field",
                FieldSetting::ChatSchema => "chat_schema",
            };
            let message = format!("source {:?}: {}", source.name, absent.describe(f));
            return Err(at.error(&format!("/source/{i}/{key}"), message));
        }
    }
    Ok(files)
}

/// The files `pattern` matches, sorted; an error when there are none.
fn glob_files(pattern: &str) -> Result<Vec<PathBuf>, String> {
    let matches = glob::glob(pattern).map_err(|e| format!("bad glob pattern {pattern:?}: {e}"))?;
    let mut found: Vec<PathBuf> = matches
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    if found.is_empty() {
        return Err(format!("no file matches {pattern:?}"));
    }
    found.sort();
    Ok(found)
}

/// Names the file, key and line of an error about a key of a pipeline
/// file.
struct Locator<'a> {
    file: &'a Path,
    spans: KeyLines,
}

impl<'a> Locator<'a> {
    /// The keys of the pipeline text `raw`, read from `file`.
    fn new(file: &'a Path, raw: &str) -> Self {
        let spans = DeTable::parse(raw)
            .map(|doc| KeyLines::new(raw, doc.get_ref()))
            .unwrap_or_default();
        Locator { file, spans }
    }

    /// An error about the key at the JSON pointer `pointer`.
    fn error(&self, pointer: &str, message: String) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: self.spans.line(pointer),
            key: key_path(pointer),
            message,
        }
    }
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
        assert_eq!(
            e.message,
            "unknown key `text_feild` (did you mean `text_field`?)"
        );
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
        assert_eq!(
            e.message,
            "\"xml\" is not a valid value: expected one of jsonl, parquet, text, chat"
        );
        let near = GOOD.replace("format = \"jsonl\"", "format = \"json\"");
        let e = parse_str(&near).unwrap_err();
        assert!(e.message.ends_with("; did you mean \"jsonl\"?"), "{e}");
        let step = GOOD.replace("steps = []", "steps = [\"dedupe\"]");
        let e = parse_str(&step).unwrap_err();
        assert!(
            e.message
                .contains("expected one of normalize, language, filter, exact_dedup, near_dedup"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_get_the_nearest_known_key_or_their_table() {
        let hint = |toml: &str| parse_str(&format!("{GOOD}{toml}")).unwrap_err().message;
        assert_eq!(
            hint("[source.filter.gopher_quality]\nmin_wrds = 3\n"),
            "unknown key `min_wrds` (did you mean `min_words`?)"
        );
        assert_eq!(
            hint("[source.filter]\nmin_words = 3\n"),
            "unknown key `min_words` (did you mean `gopher_quality.min_words`?)"
        );
        assert_eq!(
            hint("[source.c4]\nenabled = false\n"),
            "unknown key `c4` (did you mean `filter.c4`?)"
        );
        // A key of many tables, and a key far from every known one: no hint.
        assert_eq!(
            hint("[source.filter]\nenabled = false\n"),
            "unknown key `enabled`"
        );
        assert_eq!(hint("colour = 3\n"), "unknown key `colour`");
    }

    #[test]
    fn language_codes_are_checked_against_the_language_step() {
        let with = |code: &str, steps: &str| {
            let text = GOOD
                .replace("language = \"zh\"", &format!("language = {code:?}"))
                .replace("steps = []", steps);
            parse_str(&text)
        };
        for (code, meant) in [("cn", "zh"), ("zh-CN", "zh"), ("eng", "en"), ("jp", "ja")] {
            for steps in ["", "steps = []"] {
                let e = with(code, steps).unwrap_err();
                assert_eq!((e.key.as_str(), e.line), ("source[0].language", Some(9)));
                let said = format!("did you mean {meant:?}?");
                assert!(e.message.ends_with(&said), "{code} {steps:?}: {e}");
            }
        }
        let e = with("xx", "").unwrap_err();
        assert!(
            e.message
                .contains("the language step knows; it knows afr, "),
            "{e}"
        );
        assert!(e.message.contains(", zh"), "{e}");
        // Without the language step a code it does not know is a label.
        assert_eq!(with("xx", "steps = []").unwrap().sources[0].language, "xx");
        assert!(with("Chinese!", "steps = []").is_err());
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
