//! The bodies of almr's fuzz targets, one `pub fn TARGET(data: &[u8])` each.
//!
//! `fuzz/fuzz_targets/TARGET.rs` hands libFuzzer's input to one of them, and
//! `tests/fuzz_replay.rs` includes this file as a module and replays the
//! committed corpora (`fuzz/corpus/TARGET/`) and crash inputs
//! (`fuzz/regressions/TARGET/`) through them in `cargo test`. So this file
//! uses only the `almr` library, `serde_json`, `tokenizers` and `std`, never
//! libfuzzer-sys.
//!
//! Each target checks more than "no panic": readers must say where every bad
//! record is (a line or row ≥ 1), agree with a small model of their format
//! where one is easy to write, and give the same items however the bytes
//! arrive; the binary readers must keep every read inside what they
//! validated at open; the BPE encoder must give `tokenizers`' ids.

use std::fs;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use almr::config::{self, ConfigError};
use almr::mixfile::index::{MixIndex, MixIndexError, Split};
use almr::read::{
    Fields, Format, Item, JsonlReader, Malformed, MalformedReason, ParquetReader, ReadSettings,
    Record, TextReader, TextUnit,
};
use almr::shard::{bin_path, idx_path, DType, ShardError, ShardReader};
use almr::tokenize::fast::FastTokenizer;
use almr::tokenize::DocTokenizer;
use serde_json::Value;

/// The file name readers are given; default ids are `LABEL:line`.
const LABEL: &str = "fuzz.in";

// ---------------------------------------------------------------- helpers

/// A fresh directory under the system temp dir, removed on drop. Unique per
/// process and call, so replay tests may run in parallel.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("almr-fuzz-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("creating a scratch directory");
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The repository root, whether this file is built by the fuzz crate
/// (`fuzz/`) or by almr's own tests (the root).
fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if here.join("fuzz_targets").is_dir() {
        here.parent().expect("fuzz/ has a parent").to_path_buf()
    } else {
        here.to_path_buf()
    }
}

/// Whether `cargo fuzz` built this (it sets `--cfg fuzzing`).
#[allow(unexpected_cfgs)]
fn fuzzing_build() -> bool {
    cfg!(fuzzing)
}

/// A reader that fails once its bytes are used up, as a disk or a
/// decompressor does mid-file.
struct FailAtEnd {
    data: Cursor<Vec<u8>>,
}

impl Read for FailAtEnd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.data.read(buf)? {
            0 if !buf.is_empty() => Err(io::Error::other("injected read error")),
            n => Ok(n),
        }
    }
}

/// The three ways a line reader is fed: all at once, in 3-byte reads, and
/// with an I/O error after the last byte.
fn streams(data: &[u8]) -> [Box<dyn BufRead + Send>; 3] {
    [
        Box::new(Cursor::new(data.to_vec())),
        Box::new(BufReader::with_capacity(3, Cursor::new(data.to_vec()))),
        Box::new(BufReader::with_capacity(
            5,
            FailAtEnd {
                data: Cursor::new(data.to_vec()),
            },
        )),
    ]
}

/// The input's lines as the readers see them: 1-based number and bytes
/// without the `\n` (and a `\r` before it).
fn lines(data: &[u8]) -> Vec<(u64, &[u8])> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut n = 0;
    while !rest.is_empty() {
        n += 1;
        match rest.iter().position(|&b| b == b'\n') {
            Some(p) => {
                let line = &rest[..p];
                out.push((n, line.strip_suffix(b"\r").unwrap_or(line)));
                rest = &rest[p + 1..];
            }
            None => {
                out.push((n, rest));
                rest = &[];
            }
        }
    }
    out
}

/// Lines the readers skip (and that end a paragraph).
fn blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Number of complete (`\n`-terminated) lines.
fn complete_lines(data: &[u8]) -> u64 {
    data.iter().filter(|&&b| b == b'\n').count() as u64
}

fn line_of(item: &Item) -> u64 {
    match item {
        Item::Doc(r) => r.line,
        Item::Bad(m) => m.line,
    }
}

/// What every item of a line reader must satisfy: a location, a reason the
/// reader may give for a record, and a detail that says what was wrong.
fn check_located(items: &[Item]) {
    let mut last = 0;
    for item in items {
        let line = line_of(item);
        assert!(line >= 1, "item without a line: {item:?}");
        assert!(line > last, "lines out of order: {last} then {item:?}");
        last = line;
        if let Item::Bad(m) = item {
            assert_ne!(m.reason, MalformedReason::UnreadableFile, "{m:?}");
            assert!(!m.detail.is_empty(), "malformed item without detail: {m:?}");
        }
    }
}

/// The third stream failed after the input's last byte: what came before
/// the failure must be what the plain read gave, and the failure must be one
/// `read_error` item on the line after the last complete one.
fn check_failed_read(data: &[u8], plain: &[Item], failed: &[Item]) {
    let (last, before) = failed.split_last().expect("a read error must be reported");
    match last {
        Item::Bad(m) if m.reason == MalformedReason::ReadError => {
            assert_eq!(m.line, complete_lines(data) + 1, "read error at {m:?}");
        }
        other => panic!("the read error became {other:?}"),
    }
    assert!(
        plain.starts_with(before),
        "items before a read error differ:\n{before:?}\nvs\n{plain:?}"
    );
}

// ------------------------------------------------------------------ jsonl

/// What the JSONL reader must make of one non-blank line: the record, or
/// `None` when it is malformed.
fn jsonl_model(line: u64, bytes: &[u8], fields: &Fields) -> Option<Record> {
    let text = std::str::from_utf8(bytes).ok()?;
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(text) else {
        return None;
    };
    let id = match &fields.id {
        None => format!("{LABEL}:{line}"),
        Some(key) => match object.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return None,
        },
    };
    match object.remove(&fields.text) {
        Some(Value::String(text)) => Some(Record {
            line,
            id,
            text,
            turns: None,
        }),
        _ => None,
    }
}

/// `JsonlReader` over arbitrary bytes, with and without an id field.
pub fn jsonl(data: &[u8]) {
    for id in [None, Some("id")] {
        let fields = Fields {
            text: "text".into(),
            id: id.map(String::from),
        };
        let [plain, chunked, failing] = streams(data)
            .map(|input| JsonlReader::new(input, LABEL.into(), fields.clone()).collect::<Vec<_>>());
        check_located(&plain);
        let expected: Vec<(u64, Option<Record>)> = lines(data)
            .into_iter()
            .filter(|(_, l)| !blank(l))
            .map(|(n, l)| (n, jsonl_model(n, l, &fields)))
            .collect();
        assert_eq!(plain.len(), expected.len(), "one item per non-blank line");
        for (item, (line, want)) in plain.iter().zip(&expected) {
            assert_eq!(line_of(item), *line, "{item:?}");
            match (item, want) {
                (Item::Doc(got), Some(want)) => assert_eq!(got, want),
                (Item::Bad(m), None) => {
                    assert!(!matches!(m.reason, MalformedReason::ReadError), "{m:?}")
                }
                (got, want) => panic!("line {line}: read {got:?}, expected {want:?}"),
            }
        }
        assert_eq!(plain, chunked, "small reads changed the items");
        check_failed_read(data, &plain, &failing);
    }
    chat(data);
}

/// The same bytes read as conversations of each shape: one item per
/// non-blank line, located, and every conversation kept is well formed
/// (an optional system turn, then user and assistant in turn, ending on a
/// non-blank assistant turn) with its turns' contents as its text.
fn chat(data: &[u8]) {
    use almr::read::chat::{joined, ChatSchema, Role};
    let fields = Fields {
        text: "text".into(),
        id: None,
    };
    let non_blank = lines(data).into_iter().filter(|(_, l)| !blank(l)).count();
    for schema in [
        ChatSchema::Messages,
        ChatSchema::Sharegpt,
        ChatSchema::Alpaca,
    ] {
        let [plain, chunked, _] = streams(data).map(|input| {
            let reader = JsonlReader::new(input, LABEL.into(), fields.clone()).chat(schema);
            reader.collect::<Vec<_>>()
        });
        check_located(&plain);
        assert_eq!(plain.len(), non_blank, "one item per non-blank line");
        assert_eq!(plain, chunked, "small reads changed the conversations");
        for item in &plain {
            let Item::Doc(r) = item else { continue };
            let turns = r.turns.as_ref().expect("a conversation has turns");
            let body = match turns.first() {
                Some(t) if t.role == Role::System => &turns[1..],
                _ => &turns[..],
            };
            assert!(!body.is_empty() && body.len() % 2 == 0, "{turns:?}");
            for (i, t) in body.iter().enumerate() {
                let want = if i % 2 == 0 {
                    Role::User
                } else {
                    Role::Assistant
                };
                assert_eq!(t.role, want, "{turns:?}");
                assert!(t.role == Role::User || !t.content.trim().is_empty());
            }
            assert_eq!(r.text, joined(turns));
        }
    }
}

// ------------------------------------------------------------------- text

/// What the text reader must give for `data` cut by `unit`.
fn text_model(data: &[u8], unit: TextUnit) -> Vec<Item> {
    let doc = |line: u64, text: String| {
        Item::Doc(Record {
            line,
            id: format!("{LABEL}:{line}"),
            text,
            turns: None,
        })
    };
    let bad = |line: u64, start: u64| {
        Item::Bad(Malformed {
            line,
            id: Some(format!("{LABEL}:{start}")),
            reason: MalformedReason::InvalidUtf8,
            detail: String::new(),
        })
    };
    match unit {
        TextUnit::File if data.is_empty() => Vec::new(),
        TextUnit::File => vec![match std::str::from_utf8(data) {
            Ok(t) => doc(1, t.to_string()),
            Err(e) => bad(1 + complete_lines(&data[..e.valid_up_to()]), 1),
        }],
        TextUnit::Line => lines(data)
            .into_iter()
            .filter(|(_, l)| !blank(l))
            .map(|(n, l)| match std::str::from_utf8(l) {
                Ok(t) => doc(n, t.to_string()),
                Err(_) => bad(n, n),
            })
            .collect(),
        TextUnit::Paragraph => {
            let mut out = Vec::new();
            let mut para: Vec<(u64, &[u8])> = Vec::new();
            let all = lines(data);
            for (i, &(n, l)) in all.iter().enumerate() {
                if !blank(l) {
                    para.push((n, l));
                }
                if (blank(l) || i + 1 == all.len()) && !para.is_empty() {
                    let start = para[0].0;
                    let invalid = para.iter().find(|(_, l)| std::str::from_utf8(l).is_err());
                    out.push(match invalid {
                        Some(&(n, _)) => bad(n, start),
                        None => {
                            let texts: Vec<&str> = para
                                .iter()
                                .map(|(_, l)| std::str::from_utf8(l).expect("checked"))
                                .collect();
                            doc(start, texts.join("\n"))
                        }
                    });
                    para.clear();
                }
            }
            out
        }
    }
}

/// Malformed items compare without their detail, which the model leaves out.
fn without_detail(items: &[Item]) -> Vec<Item> {
    items
        .iter()
        .map(|item| match item {
            Item::Bad(m) => Item::Bad(Malformed {
                detail: String::new(),
                ..m.clone()
            }),
            doc => doc.clone(),
        })
        .collect()
}

/// `TextReader` over arbitrary bytes, for each of the three text units.
pub fn text(data: &[u8]) {
    for unit in [TextUnit::File, TextUnit::Line, TextUnit::Paragraph] {
        let [plain, chunked, failing] = streams(data)
            .map(|input| TextReader::new(input, LABEL.into(), unit).collect::<Vec<_>>());
        check_located(&plain);
        assert_eq!(
            without_detail(&plain),
            text_model(data, unit),
            "{unit:?} items differ from the model"
        );
        assert_eq!(plain, chunked, "{unit:?}: small reads changed the items");
        if unit == TextUnit::File {
            // The whole file is read before anything is handed out.
            assert!(
                matches!(&failing[..], [Item::Bad(m)] if m.reason == MalformedReason::ReadError && m.line == 1),
                "{failing:?}"
            );
        } else {
            check_failed_read(data, &plain, &failing);
        }
    }
}

// ---------------------------------------------------------------- parquet

/// The `ParquetReader` on arbitrary file bytes, with the column names of
/// the fixtures, of almr's own tables and of the seed files.
pub fn parquet(data: &[u8]) {
    if fuzzing_build() {
        // The reader turns a panic inside the parquet crate into an error
        // (`catch_unwind`); libfuzzer-sys's panic hook would abort on it
        // anyway. A panic that escapes still aborts: libfuzzer-sys also
        // catches the target's unwinding and aborts.
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| std::panic::set_hook(Box::new(|info| eprintln!("{info}"))));
    }
    let dir = Scratch::new("parquet");
    let path = dir.path().join("input.parquet");
    fs::write(&path, data).expect("writing the input");
    let configs = [
        ("content", Some("page_id")),
        ("text", Some("id")),
        ("source", Some("line")),
        ("file", None),
    ];
    for (text, id) in configs {
        let fields = Fields {
            text: text.into(),
            id: id.map(String::from),
        };
        // The build's integrity pass, which decodes every page first.
        let settings = ReadSettings {
            format: Format::Parquet,
            fields: fields.clone(),
            text_unit: TextUnit::File,
            chat_schema: Default::default(),
        };
        let checked = almr::read::check(&path, &settings);
        // Every file that exists is read to its end: its digest covers it,
        // whether or not it opens as Parquet
        // (fuzz/regressions/parquet/unopenable_file_has_no_digest).
        assert_eq!(checked.digest.bytes, data.len() as u64, "{checked:?}");
        if let Some(m) = &checked.failure {
            match m.reason {
                MalformedReason::UnreadableFile => assert_eq!(m.line, 0, "{m:?}"),
                MalformedReason::ReadError => assert!(m.line >= 1, "{m:?}"),
                _ => panic!("the check failed with {m:?}"),
            }
        }
        let passed = checked.failure.is_none();
        let progress = Arc::new(AtomicU64::new(0));
        let reader = match ParquetReader::open(&path, LABEL.into(), fields, progress.clone()) {
            // `read::open` turns this into one unreadable_file item for
            // the whole file: the file is its location.
            Err(e) => {
                assert!(!passed, "the check passed a file that does not open: {e}");
                continue;
            }
            Ok(reader) => reader,
        };
        let mut last = 0;
        for item in reader {
            let line = line_of(&item);
            assert!(line > last, "rows out of order: {last} then {item:?}");
            last = line;
            match &item {
                Item::Doc(r) if id.is_none() => assert_eq!(r.id, format!("{LABEL}:{line}")),
                Item::Doc(_) => {}
                Item::Bad(m) => {
                    assert_ne!(m.reason, MalformedReason::UnreadableFile, "{m:?}");
                    assert!(!m.detail.is_empty(), "{m:?}");
                    assert!(
                        !(passed && m.reason == MalformedReason::ReadError),
                        "the check passed a file that fails to read: {m:?}"
                    );
                }
            }
        }
        let done = progress.load(Ordering::Relaxed);
        assert!(
            done <= data.len() as u64,
            "progress {done} of {} bytes",
            data.len()
        );
    }
}

// -------------------------------------------------------------------- idx

/// Splits `[u16 LE n][n bytes][rest]` (`n` clamped to what is there).
fn split_u16(data: &[u8]) -> (&[u8], &[u8]) {
    match data {
        [a, b, rest @ ..] => rest.split_at((u16::from_le_bytes([*a, *b]) as usize).min(rest.len())),
        _ => (data, &[]),
    }
}

/// Checks an error of `ShardReader::open` names the file it is about.
fn check_shard_error(e: &ShardError, dir: &Path) {
    match e {
        ShardError::Io { path, .. } | ShardError::Corrupt { path, .. } => {
            assert!(path.starts_with(dir), "{e}");
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }
        ShardError::OutOfRange { .. }
        | ShardError::BadRange { .. }
        | ShardError::BadToken { .. } => panic!("opening gave {e}"),
    }
}

/// A Megatron shard `[u16 LE idx_len][.idx bytes][.bin bytes]`: opened, and
/// when it opens, every sequence and document read back within bounds.
pub fn idx(data: &[u8]) {
    let (idx, bin) = split_u16(data);
    let dir = Scratch::new("idx");
    let prefix = dir.path().join("s");
    fs::write(idx_path(&prefix), idx).expect("writing .idx");
    fs::write(bin_path(&prefix), bin).expect("writing .bin");
    let r = match ShardReader::open(&prefix) {
        Err(e) => return check_shard_error(&e, dir.path()),
        Ok(r) => r,
    };
    let n = r.len();
    assert_eq!(r.is_empty(), n == 0);
    assert!(r.dtype().is_integer());
    let docs = r.document_indices();
    assert_eq!(docs.len(), r.documents() + 1);
    assert_eq!(docs[0], 0);
    assert!(docs.windows(2).all(|w| w[0] <= w[1]), "{docs:?}");
    assert!(docs.iter().all(|&d| d as u64 <= n as u64), "{docs:?}");
    let mut total = 0u64;
    let mut out = Vec::new();
    let mut sequences = Vec::new();
    for i in 0..n {
        let len = r.seq_len(i).expect("in range");
        total += len as u64;
        let tokens = r.get(i).expect("validated at open");
        assert_eq!(tokens.len(), len);
        out.clear();
        r.read_range_into(i, len / 3..len, &mut out)
            .expect("a range inside the sequence");
        assert_eq!(out, tokens[len / 3..]);
        assert!(matches!(
            r.read_range_into(i, 0..len + 1, &mut out),
            Err(ShardError::BadRange { .. })
        ));
        sequences.push(tokens);
    }
    assert_eq!(total, r.total_tokens());
    assert!(matches!(r.get(n), Err(ShardError::OutOfRange { .. })));

    // Checked against a build's manifest: the dtype must match, and ids at
    // or past the vocabulary are errors that name the shard.
    let dtype = r.dtype();
    let other = if dtype == DType::U16 {
        DType::I32
    } else {
        DType::U16
    };
    match r.expect(other, u32::MAX) {
        Err(e @ ShardError::Corrupt { .. }) => check_shard_error(&e, dir.path()),
        Err(e) => panic!("a dtype mismatch gave {e}"),
        Ok(_) => panic!("a dtype mismatch was accepted"),
    }
    let vocab = sequences
        .iter()
        .flatten()
        .max()
        .copied()
        .unwrap_or(1)
        .max(1);
    let r = ShardReader::open(&prefix)
        .and_then(|r| r.expect(dtype, vocab))
        .expect("it opened before");
    for (i, tokens) in sequences.iter().enumerate() {
        match r.get(i) {
            Ok(got) => assert_eq!(&got, tokens),
            Err(e @ ShardError::BadToken { .. }) => {
                assert!(tokens.iter().any(|&t| t >= vocab), "{e}");
                assert!(e.to_string().contains(&prefix.display().to_string()), "{e}");
            }
            Err(e) => panic!("sequence {i}: {e}"),
        }
    }
}

// -------------------------------------------------------------- mix_index

/// A small real build and a mix over it (`fuzz/data/mix_build/`, made with
/// `almr build` and `almr mix OUT --name m --almr 0.5 --seq-len 128
/// --samples 50`): every file but the mix's own two.
struct MixBuild {
    files: Vec<(PathBuf, Vec<u8>)>,
    sidecar: Vec<u8>,
}

fn mix_build() -> &'static MixBuild {
    static BUILD: OnceLock<MixBuild> = OnceLock::new();
    BUILD.get_or_init(|| {
        let root = repo_root().join("fuzz/data/mix_build");
        let mut files = Vec::new();
        let mut todo = vec![root.clone()];
        while let Some(dir) = todo.pop() {
            for entry in fs::read_dir(&dir).expect("fuzz/data/mix_build") {
                let path = entry.expect("listing").path();
                let rel = path.strip_prefix(&root).expect("inside").to_path_buf();
                if path.is_dir() {
                    todo.push(path);
                } else if rel.parent() != Some(Path::new("mix")) {
                    files.push((rel, fs::read(&path).expect("reading the build")));
                }
            }
        }
        let sidecar = fs::read(root.join("mix/m.json")).expect("the mix sidecar");
        MixBuild { files, sidecar }
    })
}

/// Checks an error of `MixIndex::open` says which file it is about.
fn check_mix_error(e: &MixIndexError) {
    let named = match e {
        MixIndexError::Io { path, .. }
        | MixIndexError::Json { path, .. }
        | MixIndexError::Corrupt { path, .. }
        | MixIndexError::Manifest { path, .. }
        | MixIndexError::Shard(ShardError::Io { path, .. } | ShardError::Corrupt { path, .. }) => {
            path
        }
        MixIndexError::Shard(ShardError::BadToken { prefix, .. })
        | MixIndexError::MultiSequence { prefix } => prefix,
        MixIndexError::Stale { mix, .. } => mix,
        MixIndexError::NotInMixDir { .. }
        | MixIndexError::Shard(_)
        | MixIndexError::OutOfRange { .. }
        | MixIndexError::PastEnd { .. } => panic!("opening gave {e}"),
    };
    let msg = e.to_string();
    assert!(msg.contains(&named.display().to_string()), "{msg}");
}

/// The build's sidecar, made to list `index` (its size and sha256), so that
/// a plain `.mix` input reaches the layout checks.
fn sidecar_for(build: &MixBuild, index: &[u8]) -> Vec<u8> {
    let mut sidecar: Value = serde_json::from_slice(&build.sidecar).expect("the sidecar");
    sidecar["index"]["bytes"] = index.len().into();
    sidecar["index"]["sha256"] = almr::fsutil::sha256_hex(index).into();
    serde_json::to_vec(&sidecar).expect("JSON")
}

/// A mix index over a real build. An input that starts with `{` is a
/// sidecar's JSON, a NUL byte and the `.mix` file; any other input is the
/// `.mix` file, with the build's sidecar adjusted to list it. When it
/// opens, every sample must read as `seq_len + 1` tokens from inside its
/// documents, or fail with `PastEnd`.
pub fn mix_index(data: &[u8]) {
    let build = mix_build();
    let (sidecar, index) = match data.iter().position(|&b| b == 0) {
        Some(p) if data.starts_with(b"{") => (data[..p].to_vec(), &data[p + 1..]),
        _ => (sidecar_for(build, data), data),
    };
    let dir = Scratch::new("mix");
    for (rel, bytes) in &build.files {
        let path = dir.path().join(rel);
        fs::create_dir_all(path.parent().expect("a parent")).expect("creating the build");
        fs::write(&path, bytes).expect("writing the build");
    }
    fs::create_dir_all(dir.path().join("mix")).expect("creating mix/");
    fs::write(dir.path().join("mix/m.json"), sidecar).expect("writing the sidecar");
    fs::write(dir.path().join("mix/m.mix"), index).expect("writing the index");
    let mix = match MixIndex::open(&dir.path().join("mix/m")) {
        Err(e) => return check_mix_error(&e),
        Ok(mix) => mix,
    };
    let need = mix.seq_len() + 1;
    let mut out = Vec::new();
    for split in [Split::Train, Split::Valid] {
        let n = mix.len(split);
        assert_eq!(mix.is_empty(split), n == 0);
        for i in 0..n.min(256) {
            let source = mix.source_of(split, i).expect("in range");
            assert!(source < mix.report().sources.len());
            match mix.spans(split, i) {
                Ok(spans) => {
                    let mut got = 0;
                    for (k, sp) in spans.iter().enumerate() {
                        assert_eq!(sp.source, source);
                        assert!(k == 0 || sp.start == 0, "{spans:?}");
                        assert!(sp.start <= sp.end, "{spans:?}");
                        let len = mix.shard(sp).seq_len(sp.document).expect("validated");
                        assert!(sp.end <= len, "{spans:?} past a {len}-token document");
                        got += sp.end - sp.start;
                    }
                    assert_eq!(got, need, "sample {i}: {spans:?}");
                    mix.read(split, i, &mut out).expect("spans were fine");
                    assert_eq!(out.len(), need);
                }
                Err(MixIndexError::PastEnd { index }) => {
                    assert_eq!(index, i);
                    assert!(mix.read(split, i, &mut out).is_err());
                }
                Err(e) => panic!("sample {i} of a mix that opened: {e}"),
            }
        }
        assert!(mix.source_of(split, n).is_err());
        assert!(mix.spans(split, n).is_err());
    }
}

// ----------------------------------------------------------------- config

/// Checks a `ConfigError` points into the file: its path, and a line inside
/// the text whenever it names a key.
fn check_config_error(e: &ConfigError, path: &Path, raw: &str) {
    assert_eq!(e.file, path);
    assert!(!e.message.is_empty(), "{e}");
    if let Some(line) = e.line {
        let lines = 1 + raw.matches('\n').count();
        assert!((1..=lines).contains(&line), "line {line} of {lines}: {e}");
    }
    assert!(
        e.key.is_empty() || e.line.is_some(),
        "key {} without a line: {e}",
        e.key
    );
}

/// The pipeline parser and validator on arbitrary text; what it accepts
/// must build its chain of steps (word-list files left out: they are read
/// from disk).
pub fn config(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    let mut pipeline = match config::parse(path, raw) {
        Err(e) => return check_config_error(&e, path, raw),
        Ok(p) => p,
    };
    for source in &mut pipeline.sources {
        source.filter.words.banned.clear();
        source.filter.words.flagged.clear();
        let _ = source.read_settings();
    }
    let steps = pipeline.steps();
    let per_source: Vec<_> = pipeline.sources.iter().map(|s| s.step_settings()).collect();
    let scratch = Scratch::new("config");
    let shared = pipeline.shared_steps(1 << 20, scratch.path());
    let Ok(mut chain) = almr::chain::Chain::new(&steps, &per_source, &shared) else {
        return;
    };
    assert_eq!(chain.names().len(), steps.len());
    // A few short documents through every step the settings shape.
    for (s, source) in pipeline.sources.iter().enumerate() {
        for sample in SAMPLES {
            let mut text = sample.to_string();
            let mut notes = almr::step::Notes::default();
            for stage in &chain.stages {
                if let almr::chain::Stage::Doc(per_source) = stage {
                    if per_source[s].apply(&mut text, &mut notes).is_err() {
                        break;
                    }
                }
            }
            for corpus in &mut chain.corpus {
                let sketch = corpus.sketch(&text, &source.language);
                corpus.add(&sketch).expect("adding to a corpus step");
            }
        }
    }
    for corpus in chain.corpus {
        corpus.decide().expect("a corpus step's decision");
    }
}

/// Documents the `config` target runs through the steps it built.
const SAMPLES: [&str; 3] = [
    "",
    "The quick brown fox jumps over the lazy dog. Contact me at fox@example.com.\n\
     Home | About | Privacy policy\nThe quick brown fox jumps over the lazy dog again.",
    "迈向充满希望的新世纪——一九九八年新年讲话。\n中共中央总书记、国家主席发表了讲话。电话 13800138000。",
];

// --------------------------------------------------------------- bpe_diff

/// The Llama-3 tokenizer three ways: as the build uses it, almr's own
/// encoder alone, and the `tokenizers` crate alone.
struct Bpe {
    doc: DocTokenizer,
    fast: FastTokenizer,
    hf: tokenizers::Tokenizer,
    added: Vec<String>,
}

fn bpe() -> &'static Bpe {
    static BPE: OnceLock<Bpe> = OnceLock::new();
    BPE.get_or_init(|| {
        let path = repo_root().join("fixtures/tokenizers/llama3/tokenizer.json");
        let json: Value = serde_json::from_slice(&fs::read(&path).expect("reading tokenizer.json"))
            .expect("tokenizer.json is JSON");
        let fast = FastTokenizer::from_json(&json).expect("Llama-3 takes the fast path");
        let hf = almr::tokenize::load(&path).expect("loading tokenizer.json");
        let added = hf
            .get_added_tokens_decoder()
            .values()
            .map(|t| t.content.clone())
            .collect();
        let doc = DocTokenizer::from_file(&path, "<|end_of_text|>").expect("loading");
        assert_eq!(doc.encoder(), "almr");
        Bpe {
            doc,
            fast,
            hf,
            added,
        }
    })
}

fn compare_bpe(t: &Bpe, text: &str) {
    let want = t.hf.encode_fast(text, false).map(|e| e.get_ids().to_vec());
    let Ok(want) = want else {
        assert!(
            t.doc.encode(text).is_err(),
            "tokenizers failed on {text:?}, almr did not"
        );
        return;
    };
    match t.fast.encode(text) {
        Some(ids) => assert_eq!(ids, want, "almr's encoder differs on {text:?}"),
        None => assert!(
            t.added.iter().any(|a| text.contains(a.as_str())),
            "almr's encoder declined {text:?}, which holds no added token"
        ),
    }
    let mut with_eos = want;
    with_eos.push(t.doc.eos_id());
    assert_eq!(t.doc.encode(text).expect("tokenizers encoded it"), with_eos);
}

/// Differential: almr's byte-level BPE (and the build's encoder, which
/// sends declined texts to `tokenizers`) against the `tokenizers` crate,
/// on the input as UTF-8 when it is, else on its lossy decoding.
pub fn bpe_diff(data: &[u8]) {
    let t = bpe();
    match std::str::from_utf8(data) {
        Ok(text) => compare_bpe(t, text),
        Err(_) => compare_bpe(t, &String::from_utf8_lossy(data)),
    }
}
