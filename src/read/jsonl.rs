//! JSON Lines: one JSON object per line. Blank lines are not records and are
//! skipped; every other line is either a document or a malformed entry.

use std::io::BufRead;

use serde_json::{Map, Value};

use super::chat::{self, kind, ChatSchema};
use super::{read_line, utf8_detail, Fields, Item, Malformed, MalformedReason, Record};
use crate::text::snippet;

/// Streams records from a (decompressed) JSONL byte stream.
pub struct JsonlReader {
    input: Box<dyn BufRead + Send>,
    label: String,
    fields: Fields,
    chat: Option<ChatSchema>,
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

impl JsonlReader {
    /// Reads `input`; `label` (the file name) forms default ids `label:line`.
    pub fn new(input: Box<dyn BufRead + Send>, label: String, fields: Fields) -> Self {
        JsonlReader {
            input,
            label,
            fields,
            chat: None,
            line: 0,
            buf: Vec::with_capacity(1 << 16),
            done: false,
        }
    }

    /// Reads each line as a conversation of shape `schema` (`format =
    /// "chat"`) instead of a text field.
    pub fn chat(mut self, schema: ChatSchema) -> Self {
        self.chat = Some(schema);
        self
    }

    fn parse_line(&self) -> Item {
        match self.record() {
            Ok(record) => Item::Doc(record),
            Err((reason, id, detail)) => Item::Bad(Malformed {
                line: self.line,
                id,
                reason,
                detail,
            }),
        }
    }

    /// The current line as a record, or why it is malformed (with the id
    /// when it could be read).
    fn record(&self) -> Result<Record, (MalformedReason, Option<String>, String)> {
        let text = std::str::from_utf8(&self.buf).map_err(|e| {
            (
                MalformedReason::InvalidUtf8,
                None,
                utf8_detail(&self.buf, &e),
            )
        })?;
        let mut object =
            json_object(text).map_err(|detail| (MalformedReason::BadJson, None, detail))?;
        let id = self
            .id(&object, text)
            .map_err(|(reason, detail)| (reason, None, detail))?;
        if let Some(schema) = self.chat {
            let turns = chat::conversation(&mut object, schema)
                .map_err(|(reason, detail)| (reason, Some(id.clone()), detail))?;
            return Ok(Record {
                line: self.line,
                id,
                text: chat::joined(&turns),
                turns: Some(turns),
            });
        }
        let key = &self.fields.text;
        match object.remove(key) {
            Some(Value::String(text)) => Ok(Record {
                line: self.line,
                id,
                text,
                turns: None,
            }),
            None | Some(Value::Null) => Err((
                MalformedReason::MissingText,
                Some(id),
                format!("no text field {key:?}: {}", snippet(text, 60)),
            )),
            Some(other) => Err((
                MalformedReason::NonStringText,
                Some(id),
                format!("text field {key:?} is {}, not a string", kind(&other)),
            )),
        }
    }

    /// The record's id: its id field, or `file:line` without one.
    fn id(
        &self,
        object: &Map<String, Value>,
        text: &str,
    ) -> Result<String, (MalformedReason, String)> {
        let Some(key) = &self.fields.id else {
            return Ok(format!("{}:{}", self.label, self.line));
        };
        match object.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            None | Some(Value::Null) => Err((
                MalformedReason::MissingId,
                format!("no id field {key:?}: {}", snippet(text, 60)),
            )),
            Some(other) => Err((
                MalformedReason::BadId,
                format!(
                    "id field {key:?} is {}, not a string or number",
                    kind(other)
                ),
            )),
        }
    }
}

/// A line parsed as a JSON object, or why it is not one.
fn json_object(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "expected a JSON object, found {}: {}",
            kind(&other),
            snippet(text, 60)
        )),
        Err(e) => Err(format!("{e}: {}", snippet(text, 60))),
    }
}

impl Iterator for JsonlReader {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        while !self.done {
            match read_line(self.input.as_mut(), &mut self.buf) {
                Ok(false) => self.done = true,
                Ok(true) => {
                    self.line += 1;
                    if self.buf.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return Some(self.parse_line());
                }
                Err(e) => {
                    self.done = true;
                    return Some(Item::Bad(Malformed {
                        line: self.line + 1,
                        id: None,
                        reason: MalformedReason::ReadError,
                        detail: format!("reading stopped here: {e}"),
                    }));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &'static [u8], id: Option<&str>) -> Vec<Item> {
        JsonlReader::new(
            Box::new(input),
            "f.jsonl".into(),
            Fields {
                text: "text".into(),
                id: id.map(str::to_string),
            },
        )
        .collect()
    }

    fn reason(item: &Item) -> Option<(u64, MalformedReason)> {
        match item {
            Item::Bad(m) => Some((m.line, m.reason)),
            Item::Doc(_) => None,
        }
    }

    #[test]
    fn good_lines_become_records() {
        let items = read(
            b"{\"id\":\"a\",\"text\":\"x\"}\n\n{\"id\":7,\"text\":\"y\"}\n",
            Some("id"),
        );
        assert_eq!(
            items,
            vec![
                Item::Doc(Record {
                    line: 1,
                    id: "a".into(),
                    text: "x".into(),
                    turns: None
                }),
                Item::Doc(Record {
                    line: 3,
                    id: "7".into(),
                    text: "y".into(),
                    turns: None
                }),
            ]
        );
    }

    #[test]
    fn default_id_is_file_and_line() {
        let items = read(b"\n{\"text\":\"x\"}", None);
        assert_eq!(
            items,
            vec![Item::Doc(Record {
                line: 2,
                id: "f.jsonl:2".into(),
                text: "x".into(),
                turns: None
            })]
        );
    }

    #[test]
    fn each_kind_of_bad_line_is_located() {
        let input: &'static [u8] = b"{\"text\":\"ok\",\"id\":\"1\"}\n\
{\"text\": broken\n\
{\"id\":\"3\",\"text\":\"\xff\xfe\"}\n\
{\"id\":\"4\"}\n\
{\"id\":\"5\",\"text\":42}\n\
[1,2]\n\
{\"text\":\"no id\"}\n\
{\"id\":[1],\"text\":\"x\"}\n";
        let got: Vec<_> = read(input, Some("id")).iter().map(reason).collect();
        assert_eq!(
            got,
            vec![
                None,
                Some((2, MalformedReason::BadJson)),
                Some((3, MalformedReason::InvalidUtf8)),
                Some((4, MalformedReason::MissingText)),
                Some((5, MalformedReason::NonStringText)),
                Some((6, MalformedReason::BadJson)),
                Some((7, MalformedReason::MissingId)),
                Some((8, MalformedReason::BadId)),
            ]
        );
    }

    #[test]
    fn truncated_gzip_ends_with_a_read_error() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for i in 0..2000 {
            writeln!(enc, "{{\"text\":\"document number {i} with some words\"}}").unwrap();
        }
        let bytes = enc.finish().unwrap();
        let cut: &'static [u8] = Box::leak(bytes[..bytes.len() / 2].to_vec().into_boxed_slice());
        let reader = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(cut));
        let items: Vec<Item> = JsonlReader::new(
            Box::new(reader),
            "f.jsonl.gz".into(),
            Fields {
                text: "text".into(),
                id: None,
            },
        )
        .collect();
        let last = items.last().unwrap();
        let docs = items.iter().filter(|i| matches!(i, Item::Doc(_))).count();
        assert!(docs > 0 && docs < 2000);
        // The cut may fall inside a line, which then fails to parse, before the
        // decoder reports the truncation.
        assert_eq!(reason(last).map(|r| r.1), Some(MalformedReason::ReadError));
    }
}
