//! Chat records: one conversation per JSON line, in one of the shapes SFT
//! data comes in ([`ChatSchema`]), turned into checked [`Turn`]s.
//!
//! A conversation is an optional system turn, then user and assistant turns
//! alternating, starting with a user turn and ending with an assistant turn.
//! Anything else is a malformed record that says what is wrong.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::MalformedReason;
pub use crate::template::{Role, Turn};

/// The shape of a chat record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChatSchema {
    /// OpenAI style: `messages: [{role, content}]`, roles `system`, `user`
    /// and `assistant`.
    #[default]
    Messages,
    /// ShareGPT: `conversations: [{from, value}]`, with `human`, `gpt` and
    /// `system` (and an optional top-level `system` string).
    Sharegpt,
    /// Alpaca: `instruction`, optional `input`, `output`, optional `system`
    /// and `history` (`[[user, assistant], …]`). The user turn is
    /// `instruction + "\n" + input`, and the history pairs come first, as in
    /// LLaMA-Factory.
    Alpaca,
}

impl ChatSchema {
    /// Every shape, in the order the pipeline file lists them.
    pub const ALL: [ChatSchema; 3] = [
        ChatSchema::Messages,
        ChatSchema::Sharegpt,
        ChatSchema::Alpaca,
    ];

    /// Its name in the pipeline file.
    pub fn name(self) -> &'static str {
        match self {
            ChatSchema::Messages => "messages",
            ChatSchema::Sharegpt => "sharegpt",
            ChatSchema::Alpaca => "alpaca",
        }
    }

    /// The key every record of this shape has.
    pub fn key(self) -> &'static str {
        match self {
            ChatSchema::Messages => "messages",
            ChatSchema::Sharegpt => "conversations",
            ChatSchema::Alpaca => "instruction",
        }
    }
}

/// Why a chat record is malformed, and the detail.
pub type ChatError = (MalformedReason, String);

/// The turns of the conversation in `object`, checked.
pub fn conversation(
    object: &mut Map<String, Value>,
    schema: ChatSchema,
) -> Result<Vec<Turn>, ChatError> {
    let turns = match schema {
        ChatSchema::Messages => listed(object, "messages", "role", "content", |r| match r {
            "system" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            _ => None,
        })?,
        ChatSchema::Sharegpt => {
            let mut turns = system_field(object)?;
            turns.extend(listed(
                object,
                "conversations",
                "from",
                "value",
                |r| match r {
                    "system" => Some(Role::System),
                    "human" | "user" => Some(Role::User),
                    "gpt" | "assistant" => Some(Role::Assistant),
                    _ => None,
                },
            )?);
            turns
        }
        ChatSchema::Alpaca => alpaca(object)?,
    };
    check_order(&turns)?;
    Ok(turns)
}

/// The turns of a list of `{ROLE_KEY, CONTENT_KEY}` objects under `key`.
fn listed(
    object: &mut Map<String, Value>,
    key: &str,
    role_key: &str,
    content_key: &str,
    role_of: impl Fn(&str) -> Option<Role>,
) -> Result<Vec<Turn>, ChatError> {
    let missing = |detail: String| (MalformedReason::MissingMessages, detail);
    let list = match object.remove(key) {
        Some(Value::Array(list)) => list,
        None | Some(Value::Null) => return Err(missing(format!("no {key:?} list"))),
        Some(other) => return Err(missing(format!("{key:?} is {}, not a list", kind(&other)))),
    };
    list.into_iter()
        .enumerate()
        .map(|(i, message)| {
            let Value::Object(mut m) = message else {
                return Err(missing(format!(
                    "{key}[{i}] is {}, not an object",
                    kind(&message)
                )));
            };
            let role = match m.get(role_key) {
                Some(Value::String(r)) => role_of(r).ok_or_else(|| {
                    (
                        MalformedReason::BadRole,
                        format!("{key}[{i}].{role_key} is {r:?}"),
                    )
                })?,
                Some(other) => {
                    return Err((
                        MalformedReason::BadRole,
                        format!("{key}[{i}].{role_key} is {}, not a string", kind(other)),
                    ))
                }
                None => return Err(missing(format!("{key}[{i}] has no {role_key:?}"))),
            };
            let content = string(m.remove(content_key), &format!("{key}[{i}].{content_key}"))?;
            Ok(Turn { role, content })
        })
        .collect()
}

/// A ShareGPT record's top-level `system` string, as a system turn.
fn system_field(object: &mut Map<String, Value>) -> Result<Vec<Turn>, ChatError> {
    match object.remove("system") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => Ok(vec![Turn {
            role: Role::System,
            content: string(Some(v), "system")?,
        }]),
    }
}

/// An Alpaca record as turns: system, history pairs, then the instruction
/// (with its input) and the output.
fn alpaca(object: &mut Map<String, Value>) -> Result<Vec<Turn>, ChatError> {
    let mut turns = system_field(object)?;
    let turn = |role, content| Turn { role, content };
    match object.remove("history") {
        None | Some(Value::Null) => {}
        Some(Value::Array(pairs)) => {
            for (i, pair) in pairs.into_iter().enumerate() {
                let where_ = format!("history[{i}]");
                let Value::Array(pair) = pair else {
                    return Err(bad_history(&where_, &pair));
                };
                let [user, assistant]: [Value; 2] = pair
                    .try_into()
                    .map_err(|p: Vec<Value>| bad_history(&where_, &Value::Array(p)))?;
                turns.push(turn(
                    Role::User,
                    string(Some(user), &format!("{where_}[0]"))?,
                ));
                let reply = string(Some(assistant), &format!("{where_}[1]"))?;
                turns.push(turn(Role::Assistant, reply));
            }
        }
        Some(other) => return Err(bad_history("history", &other)),
    }
    let instruction = string(object.remove("instruction"), "instruction")?;
    let user = match object.remove("input") {
        None | Some(Value::Null) => instruction,
        Some(input) => match string(Some(input), "input")? {
            input if input.is_empty() => instruction,
            input => format!("{instruction}\n{input}"),
        },
    };
    turns.push(turn(Role::User, user));
    turns.push(turn(
        Role::Assistant,
        string(object.remove("output"), "output")?,
    ));
    Ok(turns)
}

fn bad_history(at: &str, v: &Value) -> ChatError {
    (
        MalformedReason::MissingMessages,
        format!("{at} is {}, not a [user, assistant] pair", kind(v)),
    )
}

/// A content value, which must be a string.
fn string(v: Option<Value>, at: &str) -> Result<String, ChatError> {
    match v {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err((MalformedReason::MissingMessages, format!("no {at}"))),
        Some(other) => Err((
            MalformedReason::NonStringContent,
            format!("{at} is {}, not a string", kind(&other)),
        )),
    }
}

/// Checks the order of turns: an optional system turn, then user and
/// assistant alternating from a user turn, ending on a non-empty assistant
/// turn.
fn check_order(turns: &[Turn]) -> Result<(), ChatError> {
    let body = match turns.first() {
        Some(t) if t.role == Role::System => &turns[1..],
        _ => turns,
    };
    if !body.iter().any(|t| t.role == Role::Assistant) {
        return Err((
            MalformedReason::NoAssistantTurn,
            format!("{} turns, none from the assistant", turns.len()),
        ));
    }
    let offset = turns.len() - body.len();
    for (i, t) in body.iter().enumerate() {
        let expected = if i % 2 == 0 {
            Role::User
        } else {
            Role::Assistant
        };
        if t.role != expected {
            return Err((
                MalformedReason::RolesOutOfOrder,
                format!(
                    "turn {} is {}, where {} was expected",
                    offset + i,
                    t.role.as_str(),
                    expected.as_str()
                ),
            ));
        }
        if t.role == Role::Assistant && t.content.trim().is_empty() {
            return Err((
                MalformedReason::EmptyAssistantTurn,
                format!("turn {} is an empty assistant turn", offset + i),
            ));
        }
    }
    if body.len() % 2 == 1 {
        return Err((
            MalformedReason::RolesOutOfOrder,
            format!(
                "the conversation ends with a user turn (turn {}) that nothing answers",
                turns.len() - 1
            ),
        ));
    }
    Ok(())
}

/// The JSON type name of a value, for messages.
pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The text the cleaning steps judge a conversation by: its turns' contents,
/// separated by blank lines.
pub fn joined(turns: &[Turn]) -> String {
    let contents: Vec<&str> = turns.iter().map(|t| t.content.as_str()).collect();
    contents.join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_the_pipeline_file_names() {
        for schema in ChatSchema::ALL {
            assert_eq!(serde_json::to_value(schema).unwrap(), schema.name());
        }
    }

    fn parse(line: &str, schema: ChatSchema) -> Result<Vec<(Role, String)>, MalformedReason> {
        let Value::Object(mut m) = serde_json::from_str(line).unwrap() else {
            panic!("not an object")
        };
        conversation(&mut m, schema)
            .map(|ts| ts.into_iter().map(|t| (t.role, t.content)).collect())
            .map_err(|(r, _)| r)
    }

    #[test]
    fn the_three_shapes() {
        use Role::*;
        let m = r#"{"messages":[{"role":"system","content":"S"},{"role":"user","content":"Q"},{"role":"assistant","content":"A"}]}"#;
        let want = vec![
            (System, "S".into()),
            (User, "Q".into()),
            (Assistant, "A".into()),
        ];
        assert_eq!(parse(m, ChatSchema::Messages), Ok(want.clone()));
        let s = r#"{"system":"S","conversations":[{"from":"human","value":"Q"},{"from":"gpt","value":"A"}]}"#;
        assert_eq!(parse(s, ChatSchema::Sharegpt), Ok(want));
        let a = r#"{"instruction":"Do","input":"this","output":"Done","history":[["q1","a1"]]}"#;
        assert_eq!(
            parse(a, ChatSchema::Alpaca),
            Ok(vec![
                (User, "q1".into()),
                (Assistant, "a1".into()),
                (User, "Do\nthis".into()),
                (Assistant, "Done".into())
            ])
        );
    }

    #[test]
    fn each_defect_has_its_reason() {
        use MalformedReason::*;
        let cases = [
            (
                r#"{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}"#,
                NoAssistantTurn,
            ),
            (
                r#"{"messages":[{"role":"assistant","content":"a"},{"role":"user","content":"b"}]}"#,
                RolesOutOfOrder,
            ),
            (
                r#"{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"}]}"#,
                RolesOutOfOrder,
            ),
            (
                r#"{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":" "}]}"#,
                EmptyAssistantTurn,
            ),
            (
                r#"{"messages":[{"role":"user","content":1},{"role":"assistant","content":"b"}]}"#,
                NonStringContent,
            ),
            (
                r#"{"messages":[{"role":"user","content":["x"]},{"role":"assistant","content":"b"}]}"#,
                NonStringContent,
            ),
            (r#"{"messages":[{"role":"bot","content":"a"}]}"#, BadRole),
            (r#"{"messages":"hi"}"#, MissingMessages),
            (r#"{"text":"hi"}"#, MissingMessages),
            (r#"{"messages":[]}"#, NoAssistantTurn),
        ];
        for (line, reason) in cases {
            assert_eq!(parse(line, ChatSchema::Messages), Err(reason), "{line}");
        }
        let bad_history = r#"{"instruction":"i","output":"o","history":[["only one"]]}"#;
        assert_eq!(parse(bad_history, ChatSchema::Alpaca), Err(MissingMessages));
    }
}
