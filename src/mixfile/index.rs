//! The mix index `OUT/mix/NAME.mix`: for each training and validation sample,
//! its source and where its `seq_len + 1` tokens start. The byte layout is
//! specified in `schemas/formats.md`; [`MixIndex`] reads it back from mmap and
//! maps sample `i` to its tokens in O(1). Errors are [`MixIndexError`]s.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::report::MixReport;
use std::io::Write as _;

use serde::Deserialize;

use crate::fsutil::FileDigest;
use crate::fsutil::{create_hashed, finish_hashed, partial_path, sha256_hex};
use crate::shard::{DType, ShardError, ShardReader};

/// Folder of a build's output directory that holds its mixes.
pub const DIR: &str = "mix";

/// First 8 bytes of every mix index.
pub const MAGIC: &[u8; 8] = b"ALMRMIX\0";
/// Format version.
pub const VERSION: u64 = 1;
/// Bytes of the fixed header: magic, version, seq_len, sources, train and
/// validation sample counts.
pub const HEADER_LEN: usize = 48;
/// The longest `seq_len` a mix has: 2^20 tokens (a sample reads one more).
pub const MAX_SEQ_LEN: u64 = 1 << 20;
/// Bytes of one sample record: `pos: u64, offset: u32, source: u16, 0u16`.
pub const RECORD_LEN: usize = 16;

/// Why a mix index could not be written, opened or read.
#[derive(Debug, thiserror::Error)]
pub enum MixIndexError {
    /// A file operation failed: `{action} {path}`.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done: `reading`, `opening`, `mapping`, `writing`,
        /// `renaming to`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The sidecar `NAME.json` does not parse.
    #[error("parsing {}", path.display())]
    Json {
        /// The sidecar.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The path given is not `OUT/mix/NAME`, so the build is not known.
    #[error("a mix lives in OUT/mix/")]
    NotInMixDir {
        /// The path given.
        path: PathBuf,
    },
    /// A shard of the mix could not be opened or read.
    #[error(transparent)]
    Shard(#[from] ShardError),
    /// A shard holds documents of more than one sequence.
    #[error("{}: documents of several sequences are not supported", prefix.display())]
    MultiSequence {
        /// The shard prefix, relative to the build.
        prefix: PathBuf,
    },
    /// The index does not match its sidecar or its shards.
    #[error("{}: not a valid mix index: {problem}", path.display())]
    Corrupt {
        /// The index file.
        path: PathBuf,
        /// What is wrong, e.g. `bad magic`.
        problem: String,
    },
    /// A sample number past the end of its split.
    #[error("sample {index} is out of range: the {split:?} split has {len}")]
    OutOfRange {
        /// The sample asked for.
        index: usize,
        /// Its split.
        split: Split,
        /// Samples in the split.
        len: usize,
    },
    /// The build was redone after the mix was made: its manifest is not the
    /// one the mix records.
    #[error(
        "{}: the build in {} changed after this mix was made (its manifest.json has sha256 {actual}, \
         the mix was made from {recorded}); remake the mix with `almr mix`",
        mix.display(),
        out.display()
    )]
    Stale {
        /// The mix sidecar.
        mix: PathBuf,
        /// The build's output directory.
        out: PathBuf,
        /// The manifest sha256 the mix records.
        recorded: String,
        /// The manifest's sha256 now.
        actual: String,
    },
    /// The build's manifest lacks a field the reader checks shards against.
    #[error("{}: no {field}", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// The field, e.g. `tokenizer.dtype`.
        field: &'static str,
    },
    /// A sample needs more documents than its source's list holds.
    #[error("sample {index} runs past the end of its source's document list")]
    PastEnd {
        /// The sample.
        index: usize,
    },
}

/// An I/O error while doing `action` on `path`, for `map_err`.
pub(super) fn io<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> MixIndexError + 'a {
    move |source| MixIndexError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// What the build's manifest says every shard holds, the token dtype and
/// the vocabulary size, once its sha256 is the one the mix records.
pub(super) fn build_facts(
    out: &Path,
    report: &MixReport,
    mix: &Path,
) -> Result<(DType, u32), MixIndexError> {
    let path = out.join("manifest.json");
    let bytes = std::fs::read(&path).map_err(io("reading", &path))?;
    let actual = sha256_hex(&bytes);
    if actual != report.manifest_sha256 {
        return Err(MixIndexError::Stale {
            mix: mix.to_path_buf(),
            out: out.to_path_buf(),
            recorded: report.manifest_sha256.clone(),
            actual,
        });
    }
    let json = |source| MixIndexError::Json {
        path: path.clone(),
        source,
    };
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).map_err(json)?;
    let tokenizer = &manifest["tokenizer"];
    let missing = |field| MixIndexError::Manifest {
        path: path.clone(),
        field,
    };
    let dtype = DType::deserialize(&tokenizer["dtype"]).map_err(|_| missing("tokenizer.dtype"))?;
    let vocab = tokenizer["vocab_size"]
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| missing("tokenizer.vocab_size"))?;
    Ok((dtype, vocab))
}

/// `Err(problem)` unless `ok`: one check of `MixIndex::check_layout`.
pub(super) fn require(ok: bool, problem: impl FnOnce() -> String) -> Result<(), String> {
    match ok {
        true => Ok(()),
        false => Err(problem()),
    }
}

/// The training or the validation samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The blended training stream.
    Train,
    /// The held-out documents of every source.
    Valid,
}

impl Split {
    fn at(self) -> usize {
        match self {
            Split::Train => 0,
            Split::Valid => 1,
        }
    }
}

/// Where a sample starts: a position in its source's document list and a
/// token offset inside that document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// Index into the document list.
    pub pos: u64,
    /// Token offset inside that document.
    pub offset: u32,
}

/// One source's two document lists, in the order their tokens are read.
pub struct SourceLists {
    /// Training documents, epoch after epoch.
    pub train: Vec<u32>,
    /// Validation documents.
    pub valid: Vec<u32>,
}

/// A sample to write: its source and start.
pub type Record = (u16, Start);

/// Writes an index atomically and returns its digest. `train` yields the
/// `train_len` training records in order; they are streamed to disk, not held.
pub fn write(
    path: &Path,
    seq_len: u64,
    lists: &[SourceLists],
    train_len: usize,
    train: impl Iterator<Item = Record>,
    valid: &[Record],
) -> Result<FileDigest, MixIndexError> {
    let tmp = partial_path(path);
    let written = (|| -> std::io::Result<FileDigest> {
        let mut w = create_hashed(&tmp)?;
        w.write_all(MAGIC)?;
        let header = [
            VERSION,
            seq_len,
            lists.len() as u64,
            train_len as u64,
            valid.len() as u64,
        ];
        for v in header {
            w.write_all(&v.to_le_bytes())?;
        }
        for l in lists {
            w.write_all(&(l.train.len() as u64).to_le_bytes())?;
            w.write_all(&(l.valid.len() as u64).to_le_bytes())?;
        }
        for split in [Split::Train, Split::Valid] {
            for l in lists {
                let docs = match split {
                    Split::Train => &l.train,
                    Split::Valid => &l.valid,
                };
                for &d in docs {
                    w.write_all(&d.to_le_bytes())?;
                }
                if docs.len() % 2 == 1 {
                    w.write_all(&[0; 4])?;
                }
            }
        }
        let mut record = |(source, start): Record| {
            let mut r = [0u8; RECORD_LEN];
            r[..8].copy_from_slice(&start.pos.to_le_bytes());
            r[8..12].copy_from_slice(&start.offset.to_le_bytes());
            r[12..14].copy_from_slice(&source.to_le_bytes());
            w.write_all(&r)
        };
        let mut n = 0usize;
        for r in train {
            record(r)?;
            n += 1;
        }
        assert_eq!(
            n, train_len,
            "the header promised {train_len} training records"
        );
        for &r in valid {
            record(r)?;
        }
        finish_hashed(w)
    })();
    let digest = written.map_err(io("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("renaming to", path))?;
    Ok(digest)
}

/// Part of a document that a sample covers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Span {
    /// Source number.
    pub source: usize,
    /// Shard number within the source.
    pub shard: usize,
    /// Document number within the shard.
    pub document: usize,
    /// First token of the document in the sample.
    pub start: usize,
    /// One past the last.
    pub end: usize,
}

struct SourceData {
    shards: Vec<ShardReader>,
    /// Document number of each shard's first document, plus the total.
    first_doc: Vec<u64>,
    /// Byte offset and length of the training and validation lists.
    lists: [(usize, usize); 2],
}

impl SourceData {
    fn locate(&self, doc: u32) -> (usize, usize) {
        let shard = self.first_doc.partition_point(|&f| f <= doc as u64) - 1;
        (shard, (doc as u64 - self.first_doc[shard]) as usize)
    }

    fn doc_len(&self, doc: u32) -> usize {
        let (s, d) = self.locate(doc);
        self.shards[s].seq_len(d).expect("validated at open")
    }
}

/// A mix index opened for reading, with the shards it points into.
pub struct MixIndex {
    report: MixReport,
    out: PathBuf,
    map: Mmap,
    sources: Vec<SourceData>,
    samples: [(usize, usize); 2],
}

pub(super) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

pub(super) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The file `OUT/mix/NAME.EXT` of the mix `OUT/mix/NAME`. A name may hold
/// dots (`almr0.5`), so this appends rather than `with_extension`, which
/// would replace `.5`.
pub fn mix_file(stem: &Path, ext: &str) -> PathBuf {
    let mut name = stem.as_os_str().to_os_string();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// `OUT/mix/NAME` from `OUT/mix/NAME`, `NAME.json` or `NAME.mix`.
pub(super) fn stem(path: &Path) -> PathBuf {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json" | "mix") => path.with_extension(""),
        _ => path.to_path_buf(),
    }
}

/// What both mix readers open first: the sidecar, the build it belongs to
/// (checked against the manifest the mix records) and the index, mapped.
pub(super) struct Opened {
    /// The sidecar.
    pub report: MixReport,
    /// The build's output directory.
    pub out: PathBuf,
    /// The index file, mapped.
    pub map: Mmap,
    /// Its path.
    pub file_path: PathBuf,
    /// The build's token dtype.
    pub dtype: DType,
    /// Its vocabulary size.
    pub vocab: u32,
}

impl Opened {
    /// Opens the mix at `OUT/mix/NAME` (or its `.json` or `.mix` file).
    pub fn open(path: &Path) -> Result<Opened, MixIndexError> {
        let stem = stem(path);
        let json = mix_file(&stem, "json");
        let text = std::fs::read_to_string(&json).map_err(io("reading", &json))?;
        let report: MixReport =
            serde_json::from_str(&text).map_err(|source| MixIndexError::Json {
                path: json.clone(),
                source,
            })?;
        let out = stem
            .parent()
            .and_then(Path::parent)
            .ok_or_else(|| MixIndexError::NotInMixDir {
                path: path.to_path_buf(),
            })?
            .to_path_buf();
        let (dtype, vocab) = build_facts(&out, &report, &json)?;
        let file_path = out.join(&report.index.path);
        let file = File::open(&file_path).map_err(io("opening", &file_path))?;
        // SAFETY: indexes are written once, atomically, and never modified;
        // every offset read from them is checked against the map's length.
        let map = unsafe { Mmap::map(&file) }.map_err(io("mapping", &file_path))?;
        Ok(Opened {
            report,
            out,
            map,
            file_path,
            dtype,
            vocab,
        })
    }

    /// Checks what every index starts with: its size against the sidecar,
    /// `magic`, `version`, and the `seq_len` at byte 16; returns `seq_len`.
    pub fn check_header(
        b: &[u8],
        report: &MixReport,
        magic: &[u8; 8],
        version: u64,
    ) -> Result<u64, String> {
        let listed = report.index.digest.bytes;
        require(b.len() as u64 == listed, || {
            format!("{} bytes, the sidecar lists {listed}", b.len())
        })?;
        require(b.len() >= 24 && &b[..8] == magic, || "bad magic".into())?;
        require(u64_at(b, 8) == version, || {
            format!("version {}, expected {version}", u64_at(b, 8))
        })?;
        let seq_len = u64_at(b, 16);
        require(seq_len == report.seq_len, || {
            "seq_len differs from the sidecar".into()
        })?;
        require((1..=MAX_SEQ_LEN).contains(&seq_len), || {
            format!("seq_len {seq_len} outside 1..={MAX_SEQ_LEN}")
        })?;
        Ok(seq_len)
    }
}

impl MixIndex {
    /// Opens a mix from `OUT/mix/NAME` (or its `.json` or `.mix` file),
    /// checking every record against the shards.
    pub fn open(path: &Path) -> Result<MixIndex, MixIndexError> {
        let Opened {
            report,
            out,
            map,
            file_path,
            dtype,
            vocab,
        } = Opened::open(path)?;
        let mut sources = Vec::new();
        for s in &report.sources {
            let mut shards = Vec::new();
            let mut first_doc = vec![0u64];
            for sh in &s.shards {
                let r = ShardReader::open(&out.join(&sh.prefix))?.expect(dtype, vocab)?;
                if r.len() != r.documents() {
                    return Err(MixIndexError::MultiSequence {
                        prefix: sh.prefix.clone(),
                    });
                }
                first_doc.push(first_doc.last().unwrap() + r.documents() as u64);
                shards.push(r);
            }
            sources.push(SourceData {
                shards,
                first_doc,
                lists: [(0, 0); 2],
            });
        }
        let mut index = MixIndex {
            report,
            out,
            map,
            sources,
            samples: [(0, 0); 2],
        };
        index
            .check_layout()
            .map_err(|problem| MixIndexError::Corrupt {
                path: file_path,
                problem,
            })?;
        Ok(index)
    }

    /// Checks the index against its sidecar and shards; the error says what
    /// is wrong.
    fn check_layout(&mut self) -> Result<(), String> {
        let b = &self.map;
        Opened::check_header(b, &self.report, MAGIC, VERSION)?;
        require(b.len() >= HEADER_LEN, || "truncated header".into())?;
        let n_sources = u64_at(b, 24) as usize;
        require(n_sources == self.sources.len(), || {
            format!(
                "{n_sources} sources, the sidecar lists {}",
                self.sources.len()
            )
        })?;
        let counts = [u64_at(b, 32), u64_at(b, 40)];
        let mut at = HEADER_LEN + 16 * n_sources;
        require(b.len() >= at, || "truncated source table".into())?;
        let lens: Vec<[u64; 2]> = (0..n_sources)
            .map(|s| {
                [
                    u64_at(b, HEADER_LEN + 16 * s),
                    u64_at(b, HEADER_LEN + 16 * s + 8),
                ]
            })
            .collect();
        for split in [Split::Train, Split::Valid] {
            for (s, len) in lens.iter().enumerate() {
                let n = len[split.at()] as usize;
                require(b.len() as u128 >= at as u128 + 4 * n as u128, || {
                    "truncated document list".into()
                })?;
                let docs = *self.sources[s].first_doc.last().unwrap();
                for k in 0..n {
                    let d = u32_at(b, at + 4 * k);
                    require((d as u64) < docs, || {
                        format!("source {s}: document {d} of {docs}")
                    })?;
                }
                self.sources[s].lists[split.at()] = (at, n);
                at = (at + 4 * n).next_multiple_of(8);
            }
        }
        // In u128: the counts come from the file, and must not overflow.
        let need = at as u128 + RECORD_LEN as u128 * (counts[0] as u128 + counts[1] as u128);
        require(need == self.map.len() as u128, || {
            format!("{} bytes, the header needs {need}", self.map.len())
        })?;
        for split in [Split::Train, Split::Valid] {
            let n = counts[split.at()] as usize;
            self.samples[split.at()] = (at, n);
            at += RECORD_LEN * n;
        }
        for split in [Split::Train, Split::Valid] {
            for i in 0..counts[split.at()] as usize {
                let (source, start) = self.record(split, i);
                require(source < n_sources, || {
                    format!("sample {i}: source {source}")
                })?;
                let (_, n) = self.sources[source].lists[split.at()];
                require((start.pos as usize) < n, || {
                    format!("sample {i}: position {}", start.pos)
                })?;
                let doc = self.list_doc(source, split, start.pos as usize);
                require(
                    (start.offset as usize) < self.sources[source].doc_len(doc),
                    || format!("sample {i}: offset {} past its document", start.offset),
                )?;
            }
        }
        Ok(())
    }

    fn record(&self, split: Split, i: usize) -> (usize, Start) {
        let at = self.samples[split.at()].0 + RECORD_LEN * i;
        let pos = u64_at(&self.map, at);
        let offset = u32_at(&self.map, at + 8);
        let source = u16::from_le_bytes([self.map[at + 12], self.map[at + 13]]) as usize;
        (source, Start { pos, offset })
    }

    fn list_doc(&self, source: usize, split: Split, pos: usize) -> u32 {
        let (at, _) = self.sources[source].lists[split.at()];
        u32_at(&self.map, at + 4 * pos)
    }

    /// The sidecar.
    pub fn report(&self) -> &MixReport {
        &self.report
    }

    /// The build's output directory.
    pub fn out_dir(&self) -> &Path {
        &self.out
    }

    /// Tokens a sample is trained on; a sample holds `seq_len + 1` tokens.
    pub fn seq_len(&self) -> usize {
        self.report.seq_len as usize
    }

    /// Number of samples in `split`.
    pub fn len(&self, split: Split) -> usize {
        self.samples[split.at()].1
    }

    /// Whether `split` holds no samples.
    pub fn is_empty(&self, split: Split) -> bool {
        self.len(split) == 0
    }

    fn check(&self, split: Split, i: usize) -> Result<(), MixIndexError> {
        match i < self.len(split) {
            true => Ok(()),
            false => Err(MixIndexError::OutOfRange {
                index: i,
                split,
                len: self.len(split),
            }),
        }
    }

    /// Source number of sample `i`.
    pub fn source_of(&self, split: Split, i: usize) -> Result<usize, MixIndexError> {
        self.check(split, i)?;
        Ok(self.record(split, i).0)
    }

    /// The document ranges sample `i` covers, in order.
    pub fn spans(&self, split: Split, i: usize) -> Result<Vec<Span>, MixIndexError> {
        self.check(split, i)?;
        let (source, start) = self.record(split, i);
        let src = &self.sources[source];
        let (_, list_len) = src.lists[split.at()];
        let mut spans = Vec::new();
        let mut need = self.seq_len() + 1;
        let (mut pos, mut offset) = (start.pos as usize, start.offset as usize);
        while need > 0 {
            if pos >= list_len {
                return Err(MixIndexError::PastEnd { index: i });
            }
            let (shard, document) = src.locate(self.list_doc(source, split, pos));
            let len = src.shards[shard].seq_len(document)?;
            let take = (len - offset).min(need);
            spans.push(Span {
                source,
                shard,
                document,
                start: offset,
                end: offset + take,
            });
            need -= take;
            pos += 1;
            offset = 0;
        }
        Ok(spans)
    }

    /// Replaces `out` with the `seq_len + 1` tokens of sample `i`.
    pub fn read(&self, split: Split, i: usize, out: &mut Vec<u32>) -> Result<(), MixIndexError> {
        out.clear();
        for sp in self.spans(split, i)? {
            self.sources[sp.source].shards[sp.shard].read_range_into(
                sp.document,
                sp.start..sp.end,
                out,
            )?;
        }
        Ok(())
    }

    /// The shard a [`Span`] points into.
    pub fn shard(&self, span: &Span) -> &ShardReader {
        &self.sources[span.source].shards[span.shard]
    }
}
