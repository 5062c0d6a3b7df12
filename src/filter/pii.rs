//! PII redaction: e-mail addresses, phone numbers (Chinese mobile and
//! landline, international `+…`, North American), Chinese resident identity
//! numbers (with their ISO 7064 check digit) and IPv4 addresses become
//! placeholders. Boundaries are ASCII word boundaries, so a number glued to
//! Chinese text (`电话13812345678联系`) is still found.

use std::sync::OnceLock;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::step::Notes;

/// PII settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PiiConfig {
    /// Redact e-mail addresses as `<EMAIL>`.
    pub email: bool,
    /// Redact phone numbers as `<PHONE>`.
    pub phone: bool,
    /// Redact Chinese resident identity numbers as `<ID_NUMBER>`.
    pub id_number: bool,
    /// Redact IPv4 addresses as `<IP_ADDRESS>`.
    pub ip: bool,
}

impl Default for PiiConfig {
    fn default() -> Self {
        PiiConfig {
            email: true,
            phone: true,
            id_number: true,
            ip: true,
        }
    }
}

struct Patterns {
    id_number: Regex,
    phone: Regex,
    email: Regex,
    ip: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let re = |s: &str| Regex::new(s).expect("valid PII pattern");
        Patterns {
            id_number: re(r"(?-u:\b)[1-9][0-9]{5}(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx](?-u:\b)"),
            phone: re(concat!(
                r"(?:\+[0-9]{1,3}[ -]?(?:\([0-9]{1,4}\)[ -]?)?[0-9]{1,4}(?:[ -]?[0-9]{2,4}){2,4}(?-u:\b))",
                r"|(?:(?-u:\b)(?:86[ -]?)?1[3-9][0-9]{9}(?-u:\b))",
                r"|(?:(?-u:\b)0[1-9][0-9]{1,2}-[0-9]{7,8}(?-u:\b))",
                r"|(?:(?:\([0-9]{3}\) ?|(?-u:\b)[0-9]{3}[-.])[0-9]{3}[-.][0-9]{4}(?-u:\b))",
            )),
            email: re(r"(?-u:\b)[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?-u:\b)"),
            ip: re(r"(?-u:\b)(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?-u:\b)"),
        }
    })
}

/// Whether an 18-character resident identity number has a valid check digit.
fn id_checksum_ok(id: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let b = id.as_bytes();
    let sum: u32 = b[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| (d - b'0') as u32 * w)
        .sum();
    CHECK[(sum % 11) as usize] == b[17].to_ascii_uppercase()
}

fn replace(text: &mut String, re: &Regex, placeholder: &str, keep: impl Fn(&str) -> bool) -> u64 {
    let mut n = 0;
    let out = re.replace_all(text, |caps: &regex::Captures| {
        let m = &caps[0];
        if keep(m) {
            n += 1;
            placeholder.to_string()
        } else {
            m.to_string()
        }
    });
    if n > 0 {
        *text = out.into_owned();
    }
    n
}

/// Redacts PII in place and counts each kind in `notes`.
pub fn redact(text: &mut String, c: &PiiConfig, notes: &mut Notes) {
    let p = patterns();
    let has_digit = text.bytes().any(|b| b.is_ascii_digit());
    if c.id_number && has_digit {
        notes.add(
            "pii_id_number",
            replace(text, &p.id_number, "<ID_NUMBER>", id_checksum_ok),
        );
    }
    if c.email && text.contains('@') {
        notes.add("pii_email", replace(text, &p.email, "<EMAIL>", |_| true));
    }
    if c.ip && has_digit {
        notes.add("pii_ip", replace(text, &p.ip, "<IP_ADDRESS>", |_| true));
    }
    if c.phone && has_digit {
        notes.add("pii_phone", replace(text, &p.phone, "<PHONE>", |_| true));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> (String, Notes) {
        let mut t = text.to_string();
        let mut notes = Notes::default();
        redact(&mut t, &PiiConfig::default(), &mut notes);
        (t, notes)
    }

    #[test]
    fn each_kind_is_replaced_and_counted() {
        let (t, n) =
            run("请联系张先生，电话13812345678或010-62751234，邮箱 zhang.san@example.com.cn。");
        assert_eq!(t, "请联系张先生，电话<PHONE>或<PHONE>，邮箱 <EMAIL>。");
        assert_eq!((n.get("pii_phone"), n.get("pii_email")), (2, 1));
        let (t, n) = run("Call +1 415 555 2671 or (415) 555-2671 from 192.168.1.20.");
        assert_eq!(t, "Call <PHONE> or <PHONE> from <IP_ADDRESS>.");
        assert_eq!((n.get("pii_phone"), n.get("pii_ip")), (2, 1));
    }

    #[test]
    fn id_numbers_need_a_valid_check_digit() {
        // 11010519491231002X is the standard's worked example.
        let (t, n) = run("身份证号11010519491231002X已登记");
        assert_eq!(t, "身份证号<ID_NUMBER>已登记");
        assert_eq!(n.get("pii_id_number"), 1);
        let (t, _) = run("编号110105194912310021不是");
        assert!(t.contains("110105194912310021"), "{t}");
    }

    #[test]
    fn ordinary_numbers_survive() {
        for s in [
            "1998年1月1日",
            "GDP grew 7.8% in 1998",
            "version 3.14",
            "共计1234567元",
        ] {
            assert_eq!(run(s).0, s);
        }
    }
}
