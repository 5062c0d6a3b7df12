//! The packed (SFT) mix index `OUT/mix/NAME.mix` of a build with chat
//! sources: each sample is a sequence of whole conversations, at most
//! `seq_len` tokens, with every conversation boundary recorded. The byte
//! layout is specified in `schemas/formats.md`; [`PackedIndex`] reads it
//! back, with each conversation's tokens and loss mask.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::index::{io, require, stem, u32_at, u64_at, MixIndexError, Opened, Split};
use super::report::MixReport;
use crate::fsutil::{create_hashed, finish_hashed, partial_path, FileDigest};
use crate::shard::{with_suffix, DType, ShardReader};

/// First 8 bytes of a packed mix index.
pub const MAGIC: &[u8; 8] = b"ALMRPAK\0";
/// Format version.
pub const VERSION: u64 = 1;
/// Bytes of the fixed header: magic, version, seq_len, sources, training
/// and validation sequences, entries.
pub const HEADER_LEN: usize = 56;
/// Bytes of one entry: `doc: u32, len: u32, source: u16`, 6 zero bytes.
pub const ENTRY_LEN: usize = 16;
/// The suffix of a chat shard's mask: `PREFIX.mask.{bin,idx}`.
pub const MASK: &str = ".mask";

/// One conversation of a sequence: the first `len` tokens of document `doc`
/// (numbered across the source's shards) of `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Source number.
    pub source: u16,
    /// Document number across the source's shards.
    pub doc: u32,
    /// Tokens taken from the document's start (all, unless truncated).
    pub len: u32,
}

/// Whether `magic` starts a packed index.
pub fn is_packed(path: &Path) -> bool {
    let index = super::index::mix_file(&stem(path), "mix");
    let mut head = [0u8; 8];
    File::open(index)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| &head == MAGIC)
}

/// Writes a packed index atomically: the training sequences, then the
/// validation sequences, each a list of entries.
pub fn write(
    path: &Path,
    seq_len: u64,
    sources: usize,
    train: &[Vec<Entry>],
    valid: &[Vec<Entry>],
) -> Result<FileDigest, MixIndexError> {
    let tmp = partial_path(path);
    let entries: usize = train.iter().chain(valid).map(Vec::len).sum();
    let written = (|| -> std::io::Result<FileDigest> {
        let mut w = create_hashed(&tmp)?;
        w.write_all(MAGIC)?;
        let header = [
            VERSION,
            seq_len,
            sources as u64,
            train.len() as u64,
            valid.len() as u64,
            entries as u64,
        ];
        for v in header {
            w.write_all(&v.to_le_bytes())?;
        }
        let mut at = 0u64;
        w.write_all(&at.to_le_bytes())?;
        for seq in train.iter().chain(valid) {
            at += seq.len() as u64;
            w.write_all(&at.to_le_bytes())?;
        }
        for e in train.iter().chain(valid).flatten() {
            let mut r = [0u8; ENTRY_LEN];
            r[..4].copy_from_slice(&e.doc.to_le_bytes());
            r[4..8].copy_from_slice(&e.len.to_le_bytes());
            r[8..10].copy_from_slice(&e.source.to_le_bytes());
            w.write_all(&r)?;
        }
        finish_hashed(w)
    })();
    let digest = written.map_err(io("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("renaming to", path))?;
    Ok(digest)
}

/// A packed sequence: whole conversations, back to back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedSeq {
    /// Source of the first conversation (validation sequences hold one
    /// source each).
    pub source: usize,
    /// The tokens, at most `seq_len`.
    pub ids: Vec<u32>,
    /// One bit per token: 1 where the loss counts.
    pub mask: Vec<u8>,
    /// Where each conversation starts in `ids`; the first is 0.
    pub starts: Vec<usize>,
}

/// One source's shards and masks.
struct SourceShards {
    tokens: Vec<ShardReader>,
    masks: Vec<ShardReader>,
    /// Document number of each shard's first document, plus the total.
    first_doc: Vec<u64>,
}

impl SourceShards {
    fn locate(&self, doc: u32) -> (usize, usize) {
        let shard = self.first_doc.partition_point(|&f| f <= doc as u64) - 1;
        (shard, (doc as u64 - self.first_doc[shard]) as usize)
    }
}

/// A packed mix opened for reading, with its shards and masks.
pub struct PackedIndex {
    report: MixReport,
    out: PathBuf,
    map: Mmap,
    sources: Vec<SourceShards>,
    counts: [usize; 2],
    entries_at: usize,
}

impl PackedIndex {
    /// Opens a packed mix from `OUT/mix/NAME` (or its `.json` or `.mix`),
    /// checking every entry against the shards and masks.
    pub fn open(path: &Path) -> Result<PackedIndex, MixIndexError> {
        let Opened {
            report,
            out,
            map,
            file_path,
            dtype,
            vocab,
        } = Opened::open(path)?;
        let sources = report
            .sources
            .iter()
            .map(|s| open_source(&out, &s.shards, dtype, vocab))
            .collect::<Result<_, _>>()?;
        let mut index = PackedIndex {
            report,
            out,
            map,
            sources,
            counts: [0; 2],
            entries_at: 0,
        };
        index
            .check_layout()
            .map_err(|problem| MixIndexError::Corrupt {
                path: file_path,
                problem,
            })?;
        Ok(index)
    }

    /// Checks the index against its sidecar, shards and masks.
    fn check_layout(&mut self) -> Result<(), String> {
        let b = &self.map;
        let seq_len = Opened::check_header(b, &self.report, MAGIC, VERSION)?;
        require(b.len() >= HEADER_LEN, || "truncated header".into())?;
        require(u64_at(b, 24) as usize == self.sources.len(), || {
            "the source count differs from the sidecar".into()
        })?;
        let (n, v, e) = (u64_at(b, 32), u64_at(b, 40), u64_at(b, 48));
        let need =
            HEADER_LEN as u128 + 8 * (n as u128 + v as u128 + 1) + ENTRY_LEN as u128 * e as u128;
        require(need == b.len() as u128, || {
            format!("{} bytes, the header needs {need}", b.len())
        })?;
        self.counts = [n as usize, v as usize];
        self.entries_at = HEADER_LEN + 8 * (n + v + 1) as usize;
        let mut prev = 0;
        for i in 0..=(n + v) as usize {
            let at = u64_at(b, HEADER_LEN + 8 * i);
            require(at >= prev && at <= e && (i > 0 || at == 0), || {
                format!("sequence offsets out of order at {i}")
            })?;
            prev = at;
        }
        require(prev == e, || {
            "the last offset is not the entry count".into()
        })?;
        for seq in 0..(n + v) as usize {
            let entries = self.entries(seq);
            require(!entries.is_empty(), || format!("sequence {seq} is empty"))?;
            let mut total = 0u64;
            for en in entries {
                total += en.len as u64;
                self.check_entry(&en)
                    .map_err(|p| format!("sequence {seq}: {p}"))?;
            }
            require(total <= seq_len, || {
                format!("sequence {seq} holds {total} tokens, more than seq_len {seq_len}")
            })?;
        }
        Ok(())
    }

    fn check_entry(&self, e: &Entry) -> Result<(), String> {
        let src = self
            .sources
            .get(e.source as usize)
            .ok_or_else(|| format!("source {}", e.source))?;
        let docs = *src.first_doc.last().expect("at least 0");
        require((e.doc as u64) < docs, || {
            format!("document {} of {docs}", e.doc)
        })?;
        let (shard, doc) = src.locate(e.doc);
        let len = src.tokens[shard].seq_len(doc).map_err(|x| x.to_string())?;
        require(e.len >= 1 && e.len as usize <= len, || {
            format!("{} tokens of a {len}-token conversation", e.len)
        })
    }

    /// The entries of sequence `seq` (training first, then validation).
    fn entries(&self, seq: usize) -> Vec<Entry> {
        let b = &self.map;
        let (from, to) = (
            u64_at(b, HEADER_LEN + 8 * seq) as usize,
            u64_at(b, HEADER_LEN + 8 * (seq + 1)) as usize,
        );
        (from..to)
            .map(|k| {
                let at = self.entries_at + ENTRY_LEN * k;
                Entry {
                    doc: u32_at(b, at),
                    len: u32_at(b, at + 4),
                    source: u16::from_le_bytes([b[at + 8], b[at + 9]]),
                }
            })
            .collect()
    }

    fn seq_number(&self, split: Split, i: usize) -> Result<usize, MixIndexError> {
        let len = self.len(split);
        if i >= len {
            return Err(MixIndexError::OutOfRange {
                index: i,
                split,
                len,
            });
        }
        Ok(match split {
            Split::Train => i,
            Split::Valid => self.counts[0] + i,
        })
    }

    /// The sidecar.
    pub fn report(&self) -> &MixReport {
        &self.report
    }

    /// The build's output directory.
    pub fn out_dir(&self) -> &Path {
        &self.out
    }

    /// The most tokens a sequence holds.
    pub fn seq_len(&self) -> usize {
        self.report.seq_len as usize
    }

    /// Sequences in `split`.
    pub fn len(&self, split: Split) -> usize {
        match split {
            Split::Train => self.counts[0],
            Split::Valid => self.counts[1],
        }
    }

    /// Whether `split` holds no sequence.
    pub fn is_empty(&self, split: Split) -> bool {
        self.len(split) == 0
    }

    /// The conversations of sequence `i`.
    pub fn conversations(&self, split: Split, i: usize) -> Result<Vec<Entry>, MixIndexError> {
        Ok(self.entries(self.seq_number(split, i)?))
    }

    /// Source number of sequence `i` (of its first conversation).
    pub fn source_of(&self, split: Split, i: usize) -> Result<usize, MixIndexError> {
        Ok(self.conversations(split, i)?[0].source as usize)
    }

    /// The shard that holds a conversation, and its document number there.
    pub fn shard_of(&self, e: &Entry) -> (&ShardReader, usize) {
        let src = &self.sources[e.source as usize];
        let (shard, doc) = src.locate(e.doc);
        (&src.tokens[shard], doc)
    }

    /// The tokens, mask and conversation starts of sequence `i`.
    pub fn read(&self, split: Split, i: usize) -> Result<PackedSeq, MixIndexError> {
        let entries = self.conversations(split, i)?;
        let mut seq = PackedSeq {
            source: entries[0].source as usize,
            ids: Vec::with_capacity(self.seq_len()),
            mask: Vec::with_capacity(self.seq_len()),
            starts: Vec::with_capacity(entries.len()),
        };
        let mut bits = Vec::new();
        for e in entries {
            let src = &self.sources[e.source as usize];
            let (shard, doc) = src.locate(e.doc);
            seq.starts.push(seq.ids.len());
            let range = 0..e.len as usize;
            src.tokens[shard].read_range_into(doc, range.clone(), &mut seq.ids)?;
            bits.clear();
            src.masks[shard].read_range_into(doc, range, &mut bits)?;
            seq.mask.extend(bits.iter().map(|&b| b as u8));
        }
        Ok(seq)
    }
}

/// Opens a source's token shards and their masks, which must have the same
/// sequence lengths and hold only 0 and 1.
fn open_source(
    out: &Path,
    shards: &[super::report::MixShard],
    dtype: DType,
    vocab: u32,
) -> Result<SourceShards, MixIndexError> {
    let mut src = SourceShards {
        tokens: Vec::new(),
        masks: Vec::new(),
        first_doc: vec![0],
    };
    for sh in shards {
        let prefix = out.join(&sh.prefix);
        let tokens = ShardReader::open(&prefix)?.expect(dtype, vocab)?;
        let mask_prefix = with_suffix(&prefix, MASK);
        let mask = ShardReader::open(&mask_prefix)?.expect(DType::U8, 2)?;
        let same = tokens.len() == mask.len()
            && (0..tokens.len()).all(|i| tokens.seq_len(i).ok() == mask.seq_len(i).ok());
        if !same || tokens.len() != tokens.documents() {
            return Err(MixIndexError::Corrupt {
                path: mask_prefix,
                problem: "the mask's sequence lengths differ from its shard's".into(),
            });
        }
        src.first_doc
            .push(src.first_doc.last().expect("starts at 0") + tokens.len() as u64);
        src.tokens.push(tokens);
        src.masks.push(mask);
    }
    Ok(src)
}
