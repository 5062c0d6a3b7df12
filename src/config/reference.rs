//! Every key of the pipeline file as Markdown tables, one per TOML table,
//! generated from the JSON Schema: `almr schema pipeline --markdown`. The
//! section "Every key" of `docs/cleaning.md` holds its output, and a test
//! fails when the two differ.

use std::fmt::Write;

use serde_json::Value;

use super::schema::{choices, SchemaDoc};

/// The reference of every key, as Markdown: a table per TOML table, each
/// key with its values, its default and what it means.
pub fn markdown() -> String {
    let schema = schemars::schema_for!(super::Pipeline);
    let doc = SchemaDoc::new(serde_json::to_value(&schema).expect("schema serializes"));
    let mut out = String::new();
    table(&doc, doc.root(), "", None, &mut out);
    out
}

/// Writes the section of the table at dotted path `path` (empty for the
/// top level), then the sections of the tables inside it.
fn table(doc: &SchemaDoc, node: &Value, path: &str, about: Option<&str>, out: &mut String) {
    let required: Vec<&str> = node["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let props = node["properties"].as_object().into_iter().flatten();
    let (tables, keys): (Vec<_>, Vec<_>) = props.partition(|(_, p)| doc.table(p).is_some());
    if !keys.is_empty() {
        let heading = match path {
            "" => "the top level".to_string(),
            p if is_array_of_tables(doc, p) => format!("`[[{p}]]`"),
            p => format!("`[{p}]`"),
        };
        let _ = writeln!(out, "#### {heading}\n");
        if let Some(about) = about {
            let _ = writeln!(out, "{}\n", one_line(about));
        }
        out.push_str("| key | value | default | meaning |\n|---|---|---|---|\n");
        for (key, prop) in keys {
            let default = match required.contains(&key.as_str()) {
                true => "required".to_string(),
                false => prop
                    .get("default")
                    .map_or("—".into(), |d| format!("`{}`", cell(&toml(d)))),
            };
            let (value, meaning) = (cell(&value_kind(doc, prop)), cell(&meaning(doc, prop)));
            let _ = writeln!(out, "| `{key}` | {value} | {default} | {meaning} |");
        }
        out.push('\n');
    }
    for (key, prop) in tables {
        let (inner, _) = doc.table(prop).expect("partitioned as a table");
        let child = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        table(doc, inner, &child, prop["description"].as_str(), out);
    }
}

/// Whether the top-level key `path` holds an array of tables.
fn is_array_of_tables(doc: &SchemaDoc, path: &str) -> bool {
    let prop = &doc.root()["properties"][path];
    doc.table(prop).is_some_and(|(_, array)| array)
}

/// What a key takes: a type, a range, or the values of an enumeration.
fn value_kind(doc: &SchemaDoc, prop: &Value) -> String {
    let node = doc.resolve(prop);
    if let Some(choices) = choices(node) {
        return one_of(&choices);
    }
    let ty = match &node["type"] {
        Value::Array(types) => types
            .iter()
            .find(|t| *t != "null")
            .cloned()
            .unwrap_or_default(),
        other => other.clone(),
    };
    match ty.as_str().unwrap_or("any") {
        "array" => list_of(doc, node),
        ty @ ("integer" | "number") => number(node, ty),
        other => other.to_string(),
    }
}

/// `one of `a`, `b``.
fn one_of(choices: &[(String, Option<&str>)]) -> String {
    let names: Vec<String> = choices.iter().map(|(n, _)| format!("`{n}`")).collect();
    format!("one of {}", names.join(", "))
}

/// What the items of an array schema are.
fn list_of(doc: &SchemaDoc, node: &Value) -> String {
    let items = doc.resolve(&node["items"]);
    if let Some(pair) = items["prefixItems"].as_array() {
        let parts: Vec<&str> = pair.iter().filter_map(|p| p["type"].as_str()).collect();
        return format!("list of [{}] pairs", parts.join(", "));
    }
    match (choices(items), items["type"].as_str()) {
        (Some(choices), _) => format!("list, each {}", one_of(&choices)),
        (None, Some(ty)) => format!("list of {ty}s"),
        (None, None) => "list".to_string(),
    }
}

/// A number type `ty` with the bounds of `node`: `number in [0, 1]`,
/// `integer ≥ 1`.
fn number(node: &Value, ty: &str) -> String {
    let (min, max) = (&node["minimum"], &node["maximum"]);
    let trivial_min = min.as_f64() == Some(0.0) && ty == "integer";
    match (min.is_number() && !trivial_min, max.is_number()) {
        (true, true) => format!("{ty} in [{min}, {max}]"),
        (true, false) => format!("{ty} ≥ {min}"),
        (false, true) => format!("{ty} ≤ {max}"),
        (false, false) => ty.to_string(),
    }
}

/// The key's description, and what each value of an enumeration means.
fn meaning(doc: &SchemaDoc, prop: &Value) -> String {
    let mut text = prop["description"].as_str().unwrap_or_default().to_string();
    let node = doc.resolve(prop);
    for (name, about) in choices(node).unwrap_or_default() {
        if let Some(about) = about {
            let _ = write!(text, " `{name}`: {about}");
        }
    }
    text
}

/// A value as it is written in TOML; a missing value is "none".
fn toml(v: &Value) -> String {
    match v {
        Value::Null => "none".to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(toml).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// Text for one table cell: one line, with `|` escaped.
fn cell(s: &str) -> String {
    one_line(s).replace('|', "\\|")
}

/// Text with its line breaks turned into spaces.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_filter_key_has_a_row_with_its_default() {
        let md = markdown();
        let doc = SchemaDoc::new(serde_json::from_str(super::super::PIPELINE_SCHEMA).unwrap());
        let filter = doc.at("/source/0/filter").unwrap();
        for (table, prop) in filter["properties"].as_object().unwrap() {
            let heading = format!("#### `[source.filter.{table}]`\n");
            let section = md
                .split(&heading)
                .nth(1)
                .unwrap_or_else(|| panic!("{heading}"));
            let section = section.split("####").next().unwrap();
            let (inner, _) = doc.table(prop).unwrap();
            for key in inner["properties"].as_object().unwrap().keys() {
                assert!(section.contains(&format!("| `{key}` |")), "{table}.{key}");
            }
        }
        assert!(
            md.contains("| `reject_curly_bracket` | boolean | `false` | "),
            "{md}"
        );
        assert!(
            md.contains("| `min_score` | number in [0.0, 1.0] | `0.5` | "),
            "{md}"
        );
        assert!(md.contains("#### `[[source]]`"), "{md}");
        assert!(md.contains("| `format` | one of `jsonl`, `parquet`, `text`, `chat` | required | "));
        assert!(md.contains("| `id_field` | string | `none` | "), "{md}");
    }

    #[test]
    fn values_are_written_as_in_toml() {
        let v: Value = serde_json::json!([[5, 0.15], ["a", true]]);
        assert_eq!(toml(&v), "[[5, 0.15], [\"a\", true]]");
        assert_eq!(cell("a |\n b"), "a \\| b");
    }
}
