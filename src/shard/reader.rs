//! Memory-mapped reader for `MMIDIDX` shards, ours or Megatron-LM's.
//!
//! Opening checks the whole index against the `.bin` size, so later reads
//! cannot go out of bounds; each sequence is then read in O(1).

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::{bin_path, idx_path, DType, HEADER_LEN, MAGIC, VERSION};

/// Why a shard could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// The file could not be opened or mapped. The message holds the cause,
    /// so it is not also given as the error's source (a chain would print
    /// it twice).
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The index is not a valid `MMIDIDX` index for this `.bin`.
    #[error("{path}: {message}")]
    Corrupt {
        /// The index file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A sequence index past the end.
    #[error("sequence {index} is out of range: the shard has {len}")]
    OutOfRange {
        /// The index asked for.
        index: usize,
        /// Number of sequences.
        len: usize,
    },
    /// A token id at or past the vocabulary size its build recorded.
    #[error("{}: token {id} in sequence {index} is not below the vocabulary size {vocab}", prefix.display())]
    BadToken {
        /// The shard prefix.
        prefix: PathBuf,
        /// The sequence.
        index: usize,
        /// The token id.
        id: u32,
        /// The vocabulary size.
        vocab: u32,
    },
    /// A token range past the end of its sequence.
    #[error("tokens {start}..{end} of sequence {index}: it has {len}")]
    BadRange {
        /// The sequence.
        index: usize,
        /// First token asked for.
        start: usize,
        /// One past the last.
        end: usize,
        /// Tokens in the sequence.
        len: usize,
    },
}

/// A read-only, memory-mapped shard.
pub struct ShardReader {
    prefix: PathBuf,
    idx: Mmap,
    bin: Mmap,
    dtype: DType,
    sequences: usize,
    documents: usize,
    tokens: u64,
    /// Ids read must lie below this, once [`ShardReader::expect`] set it.
    vocab: Option<u32>,
}

fn map(path: &Path) -> Result<Mmap, ShardError> {
    let io = |cause| ShardError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let file = File::open(path).map_err(io)?;
    // SAFETY: shards are immutable once their build completes; the map is
    // read-only and the index is validated against the file sizes first.
    unsafe { Mmap::map(&file) }.map_err(io)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

impl ShardReader {
    /// Opens `PREFIX.idx` and `PREFIX.bin` and validates the index.
    pub fn open(prefix: &Path) -> Result<Self, ShardError> {
        let idx_file = idx_path(prefix);
        let idx = map(&idx_file)?;
        let bin = map(&bin_path(prefix))?;
        let corrupt = |message: String| ShardError::Corrupt {
            path: idx_file.clone(),
            message,
        };
        if idx.len() < HEADER_LEN || &idx[..9] != MAGIC {
            return Err(corrupt("not an MMIDIDX index (bad magic)".into()));
        }
        let version = u64_at(&idx, 9);
        if version != VERSION {
            return Err(corrupt(format!(
                "index version {version}, expected {VERSION}"
            )));
        }
        let dtype = DType::from_code(idx[17])
            .filter(|d| d.is_integer())
            .ok_or_else(|| corrupt(format!("unknown or non-integer dtype code {}", idx[17])))?;
        let sequences = u64_at(&idx, 18);
        let doc_count = u64_at(&idx, 26);
        let expected = (sequences as u128) * 12 + (doc_count as u128) * 8 + HEADER_LEN as u128;
        if expected != idx.len() as u128 {
            return Err(corrupt(format!(
                "{sequences} sequences and {doc_count} document indices need {expected} bytes, the file has {}",
                idx.len()
            )));
        }
        if doc_count == 0 {
            return Err(corrupt(
                "document_count 0: an index lists at least document index 0".into(),
            ));
        }
        let (sequences, doc_count) = (sequences as usize, doc_count as usize);
        let reader = ShardReader {
            prefix: prefix.to_path_buf(),
            idx,
            bin,
            dtype,
            sequences,
            documents: doc_count.saturating_sub(1),
            tokens: 0,
            vocab: None,
        };
        let tokens = reader.check_sequences().map_err(corrupt)?;
        reader.check_documents(doc_count).map_err(corrupt)?;
        Ok(ShardReader { tokens, ..reader })
    }

    /// Checks that the sequences lie end to end in the `.bin`, from its
    /// start to its end, as Megatron's writer lays them out: a wrong dtype
    /// code or a damaged length or pointer shows as a gap or an overlap.
    /// Returns the number of tokens.
    fn check_sequences(&self) -> Result<u64, String> {
        let size = self.dtype.size() as i128;
        let (mut tokens, mut at) = (0u64, 0i128);
        for i in 0..self.sequences {
            let (len, ptr) = (self.raw_len(i), self.raw_pointer(i));
            if len < 0 || ptr as i128 != at {
                return Err(format!(
                    "sequence {i} (pointer {ptr}, length {len}) does not follow the one before it at byte {at} \
                     (is the dtype code, {}, right?)",
                    self.dtype.numpy_name()
                ));
            }
            at += len as i128 * size;
            tokens += len as u64;
        }
        if at != self.bin.len() as i128 {
            return Err(format!(
                "{tokens} tokens of {} bytes need a {at}-byte .bin, it has {} bytes \
                 (is the dtype code right?)",
                self.dtype.size(),
                self.bin.len()
            ));
        }
        Ok(tokens)
    }

    /// Checks the document indices: 0 first, then never decreasing, within
    /// the sequences, and the last one at the end.
    fn check_documents(&self, doc_count: usize) -> Result<(), String> {
        let mut prev = 0i64;
        for d in 0..doc_count {
            let v = i64_at(&self.idx, HEADER_LEN + self.sequences * 12 + d * 8);
            let last = d + 1 == doc_count && v != self.sequences as i64;
            if v < prev || v as u64 > self.sequences as u64 || (d == 0 && v != 0) || last {
                return Err(format!("document index {d} = {v} is out of order"));
            }
            prev = v;
        }
        Ok(())
    }

    /// Checks the shard against what its build's manifest says: the token
    /// dtype now, and from now on that every id read lies below `vocab`.
    pub fn expect(self, dtype: DType, vocab: u32) -> Result<Self, ShardError> {
        if self.dtype != dtype {
            return Err(ShardError::Corrupt {
                path: idx_path(&self.prefix),
                message: format!(
                    "dtype {} (code {}), the build's manifest says {} (code {})",
                    self.dtype.numpy_name(),
                    self.dtype.code(),
                    dtype.numpy_name(),
                    dtype.code()
                ),
            });
        }
        Ok(ShardReader {
            vocab: Some(vocab),
            ..self
        })
    }

    /// Checks the ids appended to `out` from `from` on against the
    /// vocabulary, when one is set.
    fn check_ids(&self, i: usize, out: &[u32], from: usize) -> Result<(), ShardError> {
        let Some(vocab) = self.vocab else {
            return Ok(());
        };
        match out[from..].iter().find(|&&id| id >= vocab) {
            Some(&id) => Err(ShardError::BadToken {
                prefix: self.prefix.clone(),
                index: i,
                id,
                vocab,
            }),
            None => Ok(()),
        }
    }

    fn raw_len(&self, i: usize) -> i32 {
        i32_at(&self.idx, HEADER_LEN + i * 4)
    }

    fn raw_pointer(&self, i: usize) -> i64 {
        i64_at(&self.idx, HEADER_LEN + self.sequences * 4 + i * 8)
    }

    /// The shard prefix.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// Token element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Number of sequences (one per document in shards almr writes).
    pub fn len(&self) -> usize {
        self.sequences
    }

    /// Whether the shard holds no sequences.
    pub fn is_empty(&self) -> bool {
        self.sequences == 0
    }

    /// Number of documents (`document_count - 1`).
    pub fn documents(&self) -> usize {
        self.documents
    }

    /// Total tokens over all sequences.
    pub fn total_tokens(&self) -> u64 {
        self.tokens
    }

    /// Length in tokens of sequence `i`.
    pub fn seq_len(&self, i: usize) -> Result<usize, ShardError> {
        self.check(i)?;
        Ok(self.raw_len(i) as usize)
    }

    /// The document-index table: sequence boundaries of each document.
    pub fn document_indices(&self) -> Vec<i64> {
        let base = HEADER_LEN + self.sequences * 12;
        (0..=self.documents)
            .map(|d| i64_at(&self.idx, base + d * 8))
            .collect()
    }

    fn check(&self, i: usize) -> Result<(), ShardError> {
        if i < self.sequences {
            Ok(())
        } else {
            Err(ShardError::OutOfRange {
                index: i,
                len: self.sequences,
            })
        }
    }

    /// Appends the tokens of sequence `i` to `out`.
    pub fn read_into(&self, i: usize, out: &mut Vec<u32>) -> Result<(), ShardError> {
        self.check(i)?;
        let start = self.raw_pointer(i) as usize;
        let len = self.raw_len(i) as usize;
        let bytes = &self.bin[start..start + len * self.dtype.size()];
        let from = out.len();
        decode_into(bytes, self.dtype, out);
        self.check_ids(i, out, from)
    }

    /// Appends tokens `range` of sequence `i` to `out`.
    pub fn read_range_into(
        &self,
        i: usize,
        range: std::ops::Range<usize>,
        out: &mut Vec<u32>,
    ) -> Result<(), ShardError> {
        let len = self.seq_len(i)?;
        if range.start > range.end || range.end > len {
            return Err(ShardError::BadRange {
                index: i,
                start: range.start,
                end: range.end,
                len,
            });
        }
        let size = self.dtype.size();
        let start = self.raw_pointer(i) as usize + range.start * size;
        let bytes = &self.bin[start..start + range.len() * size];
        let from = out.len();
        decode_into(bytes, self.dtype, out);
        self.check_ids(i, out, from)
    }

    /// The tokens of sequence `i`.
    pub fn get(&self, i: usize) -> Result<Vec<u32>, ShardError> {
        let mut out = Vec::new();
        self.read_into(i, &mut out)?;
        Ok(out)
    }
}

/// Decodes little-endian token values of `dtype` into `out`. Negative values
/// (impossible for token ids) wrap, as numpy's cast to uint32 would.
fn decode_into(bytes: &[u8], dtype: DType, out: &mut Vec<u32>) {
    let size = dtype.size();
    out.reserve(bytes.len() / size);
    for c in bytes.chunks_exact(size) {
        out.push(match dtype {
            DType::U8 => c[0] as u32,
            DType::I8 => c[0] as i8 as u32,
            DType::U16 => u16::from_le_bytes([c[0], c[1]]) as u32,
            DType::I16 => i16::from_le_bytes([c[0], c[1]]) as u32,
            DType::I32 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u32,
            DType::I64 => i64::from_le_bytes(c.try_into().expect("8 bytes")) as u32,
            DType::F32 | DType::F64 => unreachable!("rejected when the shard is opened"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::ShardWriter;
    use super::*;

    fn write(dir: &Path, dtype: DType, docs: &[&[u32]]) -> PathBuf {
        let prefix = dir.join("s");
        let mut w = ShardWriter::create(&prefix, dtype).unwrap();
        for d in docs {
            w.push(d).unwrap();
        }
        w.finish().unwrap();
        prefix
    }

    #[test]
    fn round_trip_each_dtype() {
        let dir = tempfile::tempdir().unwrap();
        for dtype in [DType::U16, DType::I32, DType::I64, DType::U8] {
            let prefix = write(dir.path(), dtype, &[&[1, 2, 3], &[], &[200]]);
            let r = ShardReader::open(&prefix).unwrap();
            assert_eq!(r.dtype(), dtype);
            assert_eq!((r.len(), r.documents(), r.total_tokens()), (3, 3, 4));
            assert_eq!(r.get(0).unwrap(), [1, 2, 3]);
            assert!(r.get(1).unwrap().is_empty());
            assert_eq!(r.get(2).unwrap(), [200]);
            let mut part = vec![9];
            r.read_range_into(0, 1..3, &mut part).unwrap();
            assert_eq!(part, [9, 2, 3]);
            assert!(r.read_range_into(0, 2..4, &mut part).is_err());
            assert!(matches!(r.get(3), Err(ShardError::OutOfRange { .. })));
            assert_eq!(r.document_indices(), [0, 1, 2, 3]);
        }
    }

    #[test]
    fn permuted_finish_reorders_documents() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("p");
        let mut w = ShardWriter::create(&prefix, DType::I32).unwrap();
        for d in [&[10u32, 11][..], &[20], &[30, 31, 32]] {
            w.push(d).unwrap();
        }
        let s = w.finish_permuted(&[2, 0, 1]).unwrap();
        assert_eq!((s.documents, s.tokens), (3, 6));
        let r = ShardReader::open(&prefix).unwrap();
        assert_eq!(r.get(0).unwrap(), [30, 31, 32]);
        assert_eq!(r.get(1).unwrap(), [10, 11]);
        assert_eq!(r.get(2).unwrap(), [20]);
        assert!(!crate::fsutil::partial_path(&bin_path(&prefix)).exists());
    }

    #[test]
    fn truncated_bin_is_reported_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = write(dir.path(), DType::U16, &[&[1, 2, 3]]);
        std::fs::write(bin_path(&prefix), [0u8; 4]).unwrap();
        let e = ShardReader::open(&prefix).err().unwrap();
        assert!(
            e.to_string().contains("need a 6-byte .bin, it has 4"),
            "{e}"
        );
    }

    #[test]
    fn a_wrong_dtype_code_or_a_gap_between_sequences_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = write(dir.path(), DType::I32, &[&[1, 2, 3], &[4, 5]]);
        let idx = idx_path(&prefix);
        let good = std::fs::read(&idx).unwrap();
        let mut flipped = good.clone();
        flipped[17] = DType::U16.code();
        std::fs::write(&idx, &flipped).unwrap();
        let e = ShardReader::open(&prefix).err().unwrap();
        assert!(e.to_string().contains("does not follow"), "{e}");
        // The second pointer moved by one token: a gap.
        let mut gap = good.clone();
        let at = HEADER_LEN + 2 * 4 + 8;
        gap[at..at + 8].copy_from_slice(&16i64.to_le_bytes());
        std::fs::write(&idx, &gap).unwrap();
        assert!(ShardReader::open(&prefix).is_err());
        std::fs::write(&idx, &good).unwrap();
        let r = ShardReader::open(&prefix).unwrap();
        let e = r.expect(DType::U16, 100).err().unwrap();
        assert!(
            e.to_string().contains("the build's manifest says uint16"),
            "{e}"
        );
        let r = ShardReader::open(&prefix)
            .unwrap()
            .expect(DType::I32, 5)
            .unwrap();
        assert_eq!(r.get(0).unwrap(), [1, 2, 3]);
        let e = r.get(1).err().unwrap();
        assert!(e.to_string().contains("token 5 in sequence 1"), "{e}");
    }

    #[test]
    fn bad_magic_and_short_index_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = write(dir.path(), DType::U16, &[&[1]]);
        let idx = idx_path(&prefix);
        let mut bytes = std::fs::read(&idx).unwrap();
        bytes.truncate(bytes.len() - 1);
        std::fs::write(&idx, &bytes).unwrap();
        assert!(ShardReader::open(&prefix).is_err());
        std::fs::write(&idx, b"NOTANIDX").unwrap();
        let e = ShardReader::open(&prefix).err().unwrap();
        assert!(e.to_string().contains("magic"), "{e}");
    }
}
