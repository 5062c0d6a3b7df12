//! Plain UTF-8 text, cut into documents by [`TextUnit`]: the whole file, each
//! non-blank line, or each blank-line-separated paragraph.

use std::io::{BufRead, Read};

use super::TextUnit;
use super::{read_line, utf8_detail, Item, Malformed, MalformedReason, Record};
use crate::text::snippet;

/// Streams documents from a (decompressed) text byte stream.
pub struct TextReader {
    input: Box<dyn BufRead + Send>,
    label: String,
    unit: TextUnit,
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

impl TextReader {
    /// Reads `input`; ids are `label:line` of the document's first line.
    pub fn new(input: Box<dyn BufRead + Send>, label: String, unit: TextUnit) -> Self {
        TextReader {
            input,
            label,
            unit,
            line: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    fn doc(&self, line: u64, text: String) -> Item {
        Item::Doc(Record {
            line,
            id: format!("{}:{line}", self.label),
            text,
            turns: None,
        })
    }

    /// A malformed entry at `line`, for the document that starts at `start`.
    fn bad(&self, line: u64, start: u64, reason: MalformedReason, detail: String) -> Item {
        Item::Bad(Malformed {
            line,
            id: Some(format!("{}:{start}", self.label)),
            reason,
            detail,
        })
    }

    fn read_error(&mut self, e: std::io::Error) -> Item {
        self.done = true;
        Item::Bad(Malformed {
            line: self.line + 1,
            id: None,
            reason: MalformedReason::ReadError,
            detail: format!("reading stopped here: {e}"),
        })
    }

    fn next_file(&mut self) -> Option<Item> {
        self.done = true;
        let mut bytes = Vec::new();
        if let Err(e) = self.input.read_to_end(&mut bytes) {
            return Some(self.read_error(e));
        }
        if bytes.is_empty() {
            return None;
        }
        match String::from_utf8(bytes) {
            Ok(text) => Some(self.doc(1, text)),
            Err(e) => {
                let bytes = e.as_bytes();
                let at = e.utf8_error().valid_up_to();
                let line_start = bytes[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1);
                let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count() as u64;
                let before = String::from_utf8_lossy(&bytes[line_start..at]);
                Some(self.bad(
                    line,
                    1,
                    MalformedReason::InvalidUtf8,
                    format!(
                        "invalid UTF-8 at byte {} of the line, after {:?}",
                        at - line_start,
                        snippet(&before, 40)
                    ),
                ))
            }
        }
    }

    fn next_line(&mut self) -> Option<Item> {
        loop {
            match read_line(self.input.as_mut(), &mut self.buf) {
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Ok(true) => {
                    self.line += 1;
                    if self.buf.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return Some(match std::str::from_utf8(&self.buf) {
                        Ok(t) => self.doc(self.line, t.to_string()),
                        Err(e) => self.bad(
                            self.line,
                            self.line,
                            MalformedReason::InvalidUtf8,
                            utf8_detail(&self.buf, &e),
                        ),
                    });
                }
                Err(e) => return Some(self.read_error(e)),
            }
        }
    }

    fn next_paragraph(&mut self) -> Option<Item> {
        let mut text = String::new();
        let mut start = 0;
        let mut invalid: Option<(u64, String)> = None;
        loop {
            match read_line(self.input.as_mut(), &mut self.buf) {
                Ok(more) => {
                    let blank = !more || self.buf.iter().all(u8::is_ascii_whitespace);
                    if more {
                        self.line += 1;
                    } else {
                        self.done = true;
                    }
                    if blank {
                        if start == 0 {
                            if more {
                                continue;
                            }
                            return None;
                        }
                        return Some(match invalid {
                            Some((line, detail)) => {
                                self.bad(line, start, MalformedReason::InvalidUtf8, detail)
                            }
                            None => self.doc(start, text),
                        });
                    }
                    if start == 0 {
                        start = self.line;
                    } else {
                        text.push('\n');
                    }
                    match std::str::from_utf8(&self.buf) {
                        Ok(t) => text.push_str(t),
                        Err(e) => {
                            if invalid.is_none() {
                                invalid = Some((self.line, utf8_detail(&self.buf, &e)));
                            }
                        }
                    }
                }
                Err(e) => return Some(self.read_error(e)),
            }
        }
    }
}

impl Iterator for TextReader {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if self.done {
            return None;
        }
        match self.unit {
            TextUnit::File => self.next_file(),
            TextUnit::Line => self.next_line(),
            TextUnit::Paragraph => self.next_paragraph(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &'static [u8], unit: TextUnit) -> Vec<Item> {
        TextReader::new(Box::new(input), "t.txt".into(), unit).collect()
    }

    fn doc(line: u64, text: &str) -> Item {
        Item::Doc(Record {
            line,
            id: format!("t.txt:{line}"),
            text: text.into(),
            turns: None,
        })
    }

    #[test]
    fn whole_file_is_kept_byte_for_byte() {
        assert_eq!(
            read(b"a\r\n\nb\n", TextUnit::File),
            vec![doc(1, "a\r\n\nb\n")]
        );
        assert!(read(b"", TextUnit::File).is_empty());
    }

    #[test]
    fn invalid_utf8_in_a_file_names_the_line() {
        let items = read(b"one\ntwo\nth\xffree\n", TextUnit::File);
        match &items[..] {
            [Item::Bad(m)] => {
                assert_eq!(m.reason, MalformedReason::InvalidUtf8);
                assert_eq!((m.line, m.id.as_deref()), (3, Some("t.txt:1")));
                assert!(m.detail.contains("byte 2"), "{}", m.detail);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lines_skip_blanks_and_keep_numbers() {
        assert_eq!(
            read(b"a\n\n b \n\xff\n", TextUnit::Line)[..2],
            [doc(1, "a"), doc(3, " b ")]
        );
        let items = read(b"a\n\n b \n\xff\n", TextUnit::Line);
        assert!(matches!(&items[2], Item::Bad(m) if m.line == 4));
    }

    #[test]
    fn paragraphs_split_on_blank_lines() {
        assert_eq!(
            read(b"\n\na\nb\n\n\nc\n", TextUnit::Paragraph),
            vec![doc(3, "a\nb"), doc(7, "c")]
        );
        let items = read(b"a\n\nb\nc\xff\n\nd", TextUnit::Paragraph);
        assert_eq!(items.len(), 3);
        assert!(
            matches!(&items[1], Item::Bad(m) if m.line == 4 && m.id.as_deref() == Some("t.txt:3"))
        );
        assert_eq!(items[2], doc(6, "d"));
    }
}
