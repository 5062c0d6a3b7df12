//! A look at a file's fields before any of its records is read. A field
//! that a source names and that no record of a file has is a mistake in the
//! pipeline file (a misspelt column, the wrong chat shape), not in the
//! data: it would make every record of the file malformed.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use serde_json::Value;

use super::chat::ChatSchema;
use super::{open_text_stream, parquet, read_line, Format, ReadSettings};
use crate::text::nearest;

/// The setting of a source that names a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldSetting {
    /// `text_field`.
    Text,
    /// `id_field`.
    Id,
    /// `chat_schema`, through the key its records have.
    ChatSchema,
}

/// A field a source names that no record of a file has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsentField {
    /// The setting that names it.
    pub setting: FieldSetting,
    /// The JSON key or Parquet column.
    pub name: String,
    /// What the file has: its columns, or the keys of its first record.
    pub present: Vec<String>,
    /// Whether `present` are Parquet columns (else JSON keys).
    pub columns: bool,
}

impl AbsentField {
    /// Says what `file` lacks and what it has, and what was likely meant.
    pub fn describe(&self, file: &Path) -> String {
        let (file, name, present) = (file.display(), &self.name, self.present.join(", "));
        let what = match (self.columns, self.setting) {
            (true, _) => format!("{file} has no column {name:?} (its columns: {present})"),
            (false, FieldSetting::ChatSchema) => format!(
                "no record of {file} has the key {name:?} that this chat_schema reads \
                 (its first record's keys: {present})"
            ),
            (false, _) => format!(
                "no record of {file} has the key {name:?} (its first record's keys: {present})"
            ),
        };
        match self.hint() {
            Some(hint) => format!("{what}; did you mean {hint}?"),
            None => what,
        }
    }

    /// What was likely meant: a field of the file with a name near this
    /// one, or the chat shape whose key the file has.
    fn hint(&self) -> Option<String> {
        let present = || self.present.iter().map(String::as_str);
        match self.setting {
            FieldSetting::ChatSchema => ChatSchema::ALL
                .iter()
                .find(|s| present().any(|k| k == s.key()))
                .map(|s| format!("chat_schema = {:?}", s.name())),
            _ => nearest(&self.name, present()).map(|n| format!("{n:?}")),
        }
    }
}

/// The first field `settings` names that no record of `path` has. `None`
/// when each is in some record, when the file has no record that could
/// have it, or when the file cannot be read (its integrity check says so).
/// A JSON Lines file is read only until each field has been seen.
pub fn absent_field(path: &Path, settings: &ReadSettings) -> Option<AbsentField> {
    let fields = &settings.fields;
    let mut wanted = match settings.format {
        Format::Jsonl | Format::Parquet => vec![(FieldSetting::Text, fields.text.as_str())],
        Format::Chat => vec![(FieldSetting::ChatSchema, settings.chat_schema.key())],
        Format::Text => return None,
    };
    wanted.extend(fields.id.as_deref().map(|id| (FieldSetting::Id, id)));
    let names: Vec<&str> = wanted.iter().map(|(_, name)| *name).collect();
    let (found, columns) = match settings.format {
        Format::Parquet => {
            let columns = parquet::column_names(path)?;
            (
                Found {
                    has: columns.clone(),
                    shown: columns,
                },
                true,
            )
        }
        _ => (json_keys(path, &names)?, false),
    };
    let (setting, name) = wanted
        .into_iter()
        .find(|(_, name)| !found.has.iter().any(|h| h == name))?;
    Some(AbsentField {
        setting,
        name: name.to_string(),
        present: found.shown,
        columns,
    })
}

/// The fields of a file: the wanted ones it has, and the ones to show.
struct Found {
    /// Names the file has (for JSON Lines, the wanted keys seen).
    has: Vec<String>,
    /// Its columns, or the keys of its first record.
    shown: Vec<String>,
}

/// Reads `path` as JSON Lines until every wanted key has been seen in some
/// record; `None` when the file holds no JSON object or cannot be read.
fn json_keys(path: &Path, wanted: &[&str]) -> Option<Found> {
    let mut input = open_text_stream(path, Arc::new(AtomicU64::new(0))).ok()?;
    let mut buf = Vec::new();
    let mut shown: Option<Vec<String>> = None;
    let mut has: Vec<String> = Vec::new();
    while has.len() < wanted.len() && read_line(input.as_mut(), &mut buf).ok()? {
        let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(&buf) else {
            continue;
        };
        shown.get_or_insert_with(|| object.keys().cloned().collect());
        for key in wanted {
            if object.contains_key(*key) && !has.iter().any(|h| h == key) {
                has.push(key.to_string());
            }
        }
    }
    Some(Found { has, shown: shown? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::{Fields, TextUnit};

    fn settings(format: Format, text: &str, id: Option<&str>) -> ReadSettings {
        ReadSettings {
            format,
            fields: Fields {
                text: text.into(),
                id: id.map(str::to_string),
            },
            text_unit: TextUnit::File,
            chat_schema: ChatSchema::Messages,
        }
    }

    fn probe(body: &str, s: &ReadSettings) -> Option<AbsentField> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.jsonl");
        std::fs::write(&path, body).unwrap();
        absent_field(&path, s)
    }

    #[test]
    fn a_key_in_no_record_is_absent_with_a_hint() {
        let body = "{\"id\":1,\"txt\":\"a\"}\nnot json\n{\"id\":2,\"txt\":\"b\"}\n";
        let a = probe(body, &settings(Format::Jsonl, "text", None)).unwrap();
        assert_eq!((a.setting, a.name.as_str()), (FieldSetting::Text, "text"));
        assert_eq!(a.present, ["id", "txt"]);
        let said = a.describe(Path::new("f.jsonl"));
        assert!(
            said.starts_with("no record of f.jsonl has the key \"text\""),
            "{said}"
        );
        assert!(said.ends_with("did you mean \"txt\"?"), "{said}");
        let id = probe(body, &settings(Format::Jsonl, "txt", Some("doc_id"))).unwrap();
        assert_eq!(id.setting, FieldSetting::Id);
    }

    #[test]
    fn a_key_in_some_record_is_not_absent() {
        let body = "{\"id\":1}\n\n{\"id\":2,\"text\":null}\n";
        assert_eq!(
            probe(body, &settings(Format::Jsonl, "text", Some("id"))),
            None
        );
        // No JSON object at all: every line is malformed on its own account.
        assert_eq!(
            probe("[1]\nnope\n", &settings(Format::Jsonl, "text", None)),
            None
        );
        assert_eq!(probe("", &settings(Format::Jsonl, "text", None)), None);
        assert_eq!(probe("x", &settings(Format::Text, "text", None)), None);
        let missing = Path::new("/nonexistent/f.jsonl");
        assert_eq!(
            absent_field(missing, &settings(Format::Jsonl, "t", None)),
            None
        );
    }

    #[test]
    fn the_wrong_chat_shape_names_the_right_one() {
        let body = "{\"conversations\":[{\"from\":\"human\",\"value\":\"hi\"}]}\n";
        let a = probe(body, &settings(Format::Chat, "text", None)).unwrap();
        assert_eq!(
            (a.setting, a.name.as_str()),
            (FieldSetting::ChatSchema, "messages")
        );
        let said = a.describe(Path::new("c.jsonl"));
        assert!(
            said.ends_with("did you mean chat_schema = \"sharegpt\"?"),
            "{said}"
        );
    }

    #[test]
    fn parquet_columns_come_from_the_footer() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let path = root.join("fixtures/en/enwiki_more.parquet");
        let good = settings(Format::Parquet, "content", Some("page_id"));
        assert_eq!(absent_field(&path, &good), None);
        let a = absent_field(&path, &settings(Format::Parquet, "contnt", None)).unwrap();
        assert!(a.columns && a.present.contains(&"content".to_string()));
        let said = a.describe(Path::new("e.parquet"));
        assert!(
            said.starts_with("e.parquet has no column \"contnt\" (its columns: "),
            "{said}"
        );
        assert!(said.ends_with("did you mean \"content\"?"), "{said}");
    }
}
