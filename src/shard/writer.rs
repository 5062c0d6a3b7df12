//! Streaming writer for one `MMIDIDX` shard.
//!
//! Tokens go straight to `PREFIX.bin`; only the per-document lengths (4 bytes
//! a document) stay in memory until the index is written by [`ShardWriter::finish`].

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{bin_path, idx_path, DType, MAGIC, VERSION};
use crate::fsutil::{create_hashed, finish_hashed, FileDigest, HashingWriter};

/// What one finished shard holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSummary {
    /// The shard prefix (without `.bin`/`.idx`).
    pub prefix: PathBuf,
    /// Number of documents.
    pub documents: u64,
    /// Number of tokens, EOS included.
    pub tokens: u64,
    /// Digest of `PREFIX.bin`.
    pub bin: FileDigest,
    /// Digest of `PREFIX.idx`.
    pub idx: FileDigest,
}

/// Writes documents to a new shard.
pub struct ShardWriter {
    prefix: PathBuf,
    dtype: DType,
    bin: HashingWriter<BufWriter<File>>,
    lengths: Vec<i32>,
    tokens: u64,
    scratch: Vec<u8>,
}

impl ShardWriter {
    /// Creates `PREFIX.bin` for tokens of type `dtype` (an integer type).
    pub fn create(prefix: &Path, dtype: DType) -> io::Result<Self> {
        if !dtype.is_integer() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{dtype:?} cannot hold token ids"),
            ));
        }
        Ok(ShardWriter {
            prefix: prefix.to_path_buf(),
            dtype,
            bin: create_hashed(&bin_path(prefix))?,
            lengths: Vec::new(),
            tokens: 0,
            scratch: Vec::new(),
        })
    }

    /// Appends one document's token ids (EOS included).
    pub fn push(&mut self, ids: &[u32]) -> io::Result<()> {
        let len = i32::try_from(ids.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a document of {} tokens does not fit an i32 length",
                    ids.len()
                ),
            )
        })?;
        self.scratch.clear();
        encode_ids(ids, self.dtype, &mut self.scratch)?;
        self.bin.write_all(&self.scratch)?;
        self.lengths.push(len);
        self.tokens += ids.len() as u64;
        Ok(())
    }

    /// Documents written so far.
    pub fn documents(&self) -> u64 {
        self.lengths.len() as u64
    }

    /// Tokens written so far.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// Finishes `.bin`, writes `.idx`, and returns the summary.
    pub fn finish(self) -> io::Result<ShardSummary> {
        let bin = finish_hashed(self.bin)?;
        let idx = write_idx_file(&self.prefix, self.dtype, &self.lengths)?;
        Ok(ShardSummary {
            prefix: self.prefix,
            documents: self.lengths.len() as u64,
            tokens: self.tokens,
            bin,
            idx,
        })
    }

    /// Like [`finish`](Self::finish), but reorders the documents so that the
    /// document written `order[k]`-th ends up at position `k`. The tokens are
    /// copied once more, through a memory map of the first `.bin`.
    pub fn finish_permuted(self, order: &[u32]) -> io::Result<ShardSummary> {
        let n = self.lengths.len();
        let mut seen = vec![false; n];
        let is_permutation = order.len() == n
            && order
                .iter()
                .all(|&i| (i as usize) < n && !std::mem::replace(&mut seen[i as usize], true));
        if !is_permutation {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "shard order is not a permutation of its documents",
            ));
        }
        finish_hashed(self.bin)?;
        let bin = bin_path(&self.prefix);
        let unshuffled = crate::fsutil::partial_path(&bin);
        std::fs::rename(&bin, &unshuffled)?;
        let file = File::open(&unshuffled)?;
        // SAFETY: the file was written by this writer and is private to the
        // build's staging directory; nothing else modifies it while mapped.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        let size = self.dtype.size();
        let mut offsets = Vec::with_capacity(n);
        let mut at = 0usize;
        for &len in &self.lengths {
            offsets.push(at);
            at += len as usize * size;
        }
        let mut out = create_hashed(&bin)?;
        let mut lengths = Vec::with_capacity(n);
        for &i in order {
            let (start, len) = (offsets[i as usize], self.lengths[i as usize]);
            out.write_all(&map[start..start + len as usize * size])?;
            lengths.push(len);
        }
        let bin_digest = finish_hashed(out)?;
        drop(map);
        std::fs::remove_file(&unshuffled)?;
        let idx = write_idx_file(&self.prefix, self.dtype, &lengths)?;
        Ok(ShardSummary {
            prefix: self.prefix,
            documents: n as u64,
            tokens: self.tokens,
            bin: bin_digest,
            idx,
        })
    }
}

fn write_idx_file(prefix: &Path, dtype: DType, lengths: &[i32]) -> io::Result<FileDigest> {
    let mut w = create_hashed(&idx_path(prefix))?;
    write_index(&mut w, dtype, lengths)?;
    finish_hashed(w)
}

/// Writes a whole `.idx` for documents of the given lengths (one sequence per
/// document, stored back to back).
pub fn write_index(w: &mut impl Write, dtype: DType, lengths: &[i32]) -> io::Result<()> {
    let n = lengths.len() as u64;
    w.write_all(MAGIC)?;
    w.write_all(&VERSION.to_le_bytes())?;
    w.write_all(&[dtype.code()])?;
    w.write_all(&n.to_le_bytes())?;
    w.write_all(&(n + 1).to_le_bytes())?;
    for &len in lengths {
        w.write_all(&len.to_le_bytes())?;
    }
    let mut pointer = 0i64;
    for &len in lengths {
        w.write_all(&pointer.to_le_bytes())?;
        pointer += len as i64 * dtype.size() as i64;
    }
    for i in 0..=n as i64 {
        w.write_all(&i.to_le_bytes())?;
    }
    Ok(())
}

/// Appends `ids` to `out` as little-endian values of `dtype`.
fn encode_ids(ids: &[u32], dtype: DType, out: &mut Vec<u8>) -> io::Result<()> {
    if let Some(&bad) = ids.iter().find(|&&id| id as u64 > dtype.max_id()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("token id {bad} does not fit dtype {dtype:?}"),
        ));
    }
    out.reserve(ids.len() * dtype.size());
    for &id in ids {
        match dtype {
            DType::U8 | DType::I8 => out.push(id as u8),
            DType::U16 | DType::I16 => out.extend_from_slice(&(id as u16).to_le_bytes()),
            DType::I32 => out.extend_from_slice(&(id as i32).to_le_bytes()),
            DType::I64 => out.extend_from_slice(&(id as i64).to_le_bytes()),
            DType::F32 | DType::F64 => unreachable!("checked in ShardWriter::create"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_out_of_range_are_refused() {
        let mut out = Vec::new();
        assert!(encode_ids(&[65535], DType::U16, &mut out).is_ok());
        assert!(encode_ids(&[65536], DType::U16, &mut out).is_err());
    }

    #[test]
    fn float_dtypes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ShardWriter::create(&dir.path().join("s"), DType::F32).is_err());
    }

    #[test]
    fn bad_permutations_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ShardWriter::create(&dir.path().join("s"), DType::U16).unwrap();
        w.push(&[1, 2]).unwrap();
        w.push(&[3]).unwrap();
        assert!(w.finish_permuted(&[0, 0]).is_err());
    }
}
