//! The pipeline's JSON Schema as a map of its keys, and the problems of a
//! pipeline document in the user's terms: an unknown key with the known key
//! it is nearest to, a value outside an enumeration with the values it may
//! take, and a language code the language step does not know.

use serde_json::Value;

use crate::language;
use crate::text::nearest;

/// A JSON Schema whose `$ref`s point into its own `$defs`.
pub(super) struct SchemaDoc {
    root: Value,
}

impl SchemaDoc {
    /// Wraps a parsed schema.
    pub fn new(root: Value) -> Self {
        SchemaDoc { root }
    }

    /// The root of the schema, its `$ref` followed.
    pub fn root(&self) -> &Value {
        self.resolve(&self.root)
    }

    /// The schema of the value at the JSON pointer `pointer` of a document,
    /// its `$ref`s followed.
    pub fn at(&self, pointer: &str) -> Option<&Value> {
        let mut node = self.root();
        for part in pointer.split('/').skip(1) {
            node = self.child(node, &part.replace("~1", "/").replace("~0", "~"))?;
        }
        Some(node)
    }

    /// `node` with its `$ref` followed (to a definition in `$defs`).
    pub fn resolve<'s>(&'s self, mut node: &'s Value) -> &'s Value {
        for _ in 0..16 {
            let Some(name) = node["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/$defs/"))
            else {
                break;
            };
            match self.root["$defs"].get(name) {
                Some(def) => node = def,
                None => break,
            }
        }
        node
    }

    /// The schema of `part` (a key or an index) inside a value of schema
    /// `node`.
    fn child<'s>(&'s self, node: &'s Value, part: &str) -> Option<&'s Value> {
        if let Some(p) = node["properties"].get(part) {
            return Some(self.resolve(p));
        }
        if let Ok(i) = part.parse::<usize>() {
            if let Some(item) = node["prefixItems"].get(i) {
                return Some(self.resolve(item));
            }
            if node["items"].is_object() {
                return Some(self.resolve(&node["items"]));
            }
        }
        ["anyOf", "oneOf", "allOf"]
            .iter()
            .filter_map(|k| node[*k].as_array())
            .flatten()
            .find_map(|alt| self.child(self.resolve(alt), part))
    }

    /// The table a key of `node` opens, if it opens one: its schema, and
    /// whether it is an array of tables (`[[source]]`).
    pub fn table<'s>(&'s self, property: &'s Value) -> Option<(&'s Value, bool)> {
        let node = self.resolve(property);
        if node["properties"].is_object() {
            return Some((node, false));
        }
        let items = self.resolve(&node["items"]);
        items["properties"].is_object().then_some((items, true))
    }

    /// Where keys named `key` sit below the object schema `node`, as dotted
    /// paths relative to it, up to `depth` tables down.
    fn below(&self, node: &Value, key: &str, depth: usize) -> Vec<String> {
        let Some(props) = node["properties"].as_object() else {
            return Vec::new();
        };
        let tables = props
            .iter()
            .filter(|_| depth > 0)
            .filter_map(|(name, prop)| Some((name, self.table(prop)?.0)));
        let mut found = Vec::new();
        for (name, table) in tables {
            if table["properties"].get(key).is_some() {
                found.push(format!("{name}.{key}"));
            }
            let deeper = self.below(table, key, depth - 1);
            found.extend(deeper.into_iter().map(|p| format!("{name}.{p}")));
        }
        found
    }

    /// The one place below `node` where a key named `key` sits, if there
    /// is exactly one.
    fn only_place_below(&self, node: &Value, key: &str) -> Option<String> {
        let mut places = self.below(node, key, 3);
        (places.len() == 1).then(|| places.remove(0))
    }
}

/// The keys an object schema knows.
pub(super) fn keys(node: &Value) -> Vec<&str> {
    node["properties"]
        .as_object()
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// The values an enumeration allows, with what each means: the `const` of
/// each `oneOf` alternative, or the `enum` list; `None` for other schemas.
pub(super) fn choices(node: &Value) -> Option<Vec<(String, Option<&str>)>> {
    let name = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    if let Some(values) = node["enum"].as_array() {
        return Some(values.iter().map(|v| (name(v), None)).collect());
    }
    let alts = node["oneOf"].as_array()?;
    alts.iter()
        .map(|alt| Some((name(alt.get("const")?), alt["description"].as_str())))
        .collect()
}

/// One problem of a pipeline document.
#[derive(Debug)]
pub(super) struct Problem {
    /// JSON pointer of the key it is about.
    pub pointer: String,
    /// What is wrong, and what to write instead where that is known.
    pub message: String,
    /// An unknown key: reported before other problems, since a misspelt key
    /// also shows up as a missing one.
    pub unknown: bool,
}

/// Every problem of `json` against the pipeline schema `doc`, and its
/// language codes against the language step.
pub(super) fn problems(doc: &SchemaDoc, json: &Value) -> Vec<Problem> {
    let validator = jsonschema::validator_for(&doc.root).expect("embedded schema compiles");
    let mut found = language_problems(json);
    let errors: Vec<Problem> = validator
        .iter_errors(json)
        .filter_map(|e| {
            let pointer = e.instance_path().to_string();
            let covered = found.iter().any(|p| p.pointer == pointer);
            match e.kind() {
                jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                    Some(unknown_keys(doc, &pointer, unexpected))
                }
                _ if covered => None,
                _ => Some(Problem {
                    message: enum_message(doc, &pointer, e.instance())
                        .unwrap_or_else(|| e.to_string()),
                    pointer,
                    unknown: false,
                }),
            }
        })
        .collect();
    found.extend(errors);
    found
}

/// Keys that the object at `pointer` does not know, each with the known
/// key it is nearest to, or the table below where a key of its name sits.
fn unknown_keys(doc: &SchemaDoc, pointer: &str, unexpected: &[String]) -> Problem {
    let node = doc.at(pointer);
    let known = node.map(keys).unwrap_or_default();
    let hint = |key: &str| {
        nearest(key, known.iter().copied())
            .map(str::to_string)
            .or_else(|| node.and_then(|n| doc.only_place_below(n, key)))
            .map_or(String::new(), |k| format!(" (did you mean `{k}`?)"))
    };
    let listed: Vec<String> = unexpected
        .iter()
        .map(|k| format!("`{k}`{}", hint(k)))
        .collect();
    let s = if unexpected.len() == 1 { "" } else { "s" };
    Problem {
        pointer: match unexpected.first() {
            Some(first) => format!("{pointer}/{first}"),
            None => pointer.to_string(),
        },
        message: format!("unknown key{s} {}", listed.join(", ")),
        unknown: true,
    }
}

/// For a value outside an enumeration: the values it may take, and the
/// nearest of them.
fn enum_message(doc: &SchemaDoc, pointer: &str, value: &Value) -> Option<String> {
    let choices = choices(doc.at(pointer)?)?;
    let names: Vec<&str> = choices.iter().map(|(n, _)| n.as_str()).collect();
    let hint = value
        .as_str()
        .and_then(|v| nearest(v, names.iter().copied()))
        .map_or(String::new(), |n| format!("; did you mean {n:?}?"));
    Some(format!(
        "{value} is not a valid value: expected one of {}{hint}",
        names.join(", ")
    ))
}

/// Sources whose `language` the language step cannot match: when the step
/// runs, any code it does not know; without it, only a code that means a
/// language it knows by another code (`cn` for `zh`).
fn language_problems(json: &Value) -> Vec<Problem> {
    let step_runs = match json.get("steps").and_then(Value::as_array) {
        Some(steps) => steps.iter().any(|s| s == "language"),
        None => true,
    };
    let known = language::known_codes();
    let sources = json.get("source").and_then(Value::as_array);
    sources
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, source)| {
            let code = source.get("language")?.as_str()?;
            if known.contains(&code) {
                return None;
            }
            let message = match language::known_code_for(code) {
                Some(k) => format!(
                    "{code:?} is not a language code the language step knows; did you mean {k:?}?"
                ),
                None if step_runs => format!(
                    "{code:?} is not a language code the language step knows; it knows {}",
                    known.join(", ")
                ),
                None => return None,
            };
            Some(Problem {
                pointer: format!("/source/{i}/language"),
                message,
                unknown: false,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> SchemaDoc {
        SchemaDoc::new(serde_json::from_str(super::super::PIPELINE_SCHEMA).unwrap())
    }

    #[test]
    fn pointers_reach_the_schema_of_their_value() {
        let doc = doc();
        let format = doc.at("/source/0/format").unwrap();
        let names: Vec<String> = choices(format).unwrap().into_iter().map(|c| c.0).collect();
        assert_eq!(names, ["jsonl", "parquet", "text", "chat"]);
        let c4 = doc.at("/source/2/filter/c4").unwrap();
        assert!(keys(c4).contains(&"reject_curly_bracket"));
        assert!(choices(doc.at("/steps/1").unwrap()).is_some());
        assert!(doc.at("/source/0/nope").is_none());
    }

    #[test]
    fn a_key_in_the_wrong_table_is_found_below() {
        let doc = doc();
        let source = doc.at("/source/0").unwrap();
        assert_eq!(
            doc.only_place_below(source, "min_words").as_deref(),
            Some("filter.gopher_quality.min_words")
        );
        assert_eq!(
            doc.only_place_below(doc.root(), "c4").as_deref(),
            Some("source.filter.c4")
        );
        // Many tables have `enabled`: no one of them is the place.
        assert_eq!(doc.only_place_below(source, "enabled"), None);
    }
}
