//! Tables of fixed-width entries of `K` little-endian u64s: the sorted runs
//! and the lists the stages hand each other (hashes, band keys, drops,
//! edges). Written in one go; read through a memory map; merged k ways.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// An entry: `K` u64s.
pub type Entry<const K: usize> = [u64; K];

/// Writes `entries` to `path`.
pub fn write<const K: usize>(path: &Path, entries: &[Entry<K>]) -> Result<()> {
    let file = File::create(path).map_err(Error::file("creating", path))?;
    let mut w = BufWriter::new(file);
    for e in entries {
        for v in e {
            w.write_all(&v.to_le_bytes())
                .map_err(Error::file("writing", path))?;
        }
    }
    w.into_inner()
        .map_err(|e| Error::file("writing", path)(e.into_error()))?
        .sync_all()
        .map_err(Error::file("writing", path))
}

/// A table read through a memory map.
pub struct Table<const K: usize> {
    map: Option<memmap2::Mmap>,
    len: usize,
}

impl<const K: usize> Table<K> {
    /// Opens `path`; fails when its size is not a whole number of entries.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(Error::file("reading", path))?;
        let bytes = file.metadata().map_err(Error::file("reading", path))?.len() as usize;
        if !bytes.is_multiple_of(8 * K) {
            return Err(Error::Invalid(format!(
                "{}: {bytes} bytes is not a whole number of {}-byte entries",
                path.display(),
                8 * K
            )));
        }
        let map = match bytes {
            0 => None,
            // SAFETY: the file is a finished output of an earlier task, in
            // the work directory that only almr writes; nothing modifies
            // it while mapped.
            _ => Some(unsafe { memmap2::Mmap::map(&file) }.map_err(Error::file("reading", path))?),
        };
        Ok(Table {
            map,
            len: bytes / (8 * K),
        })
    }

    /// A table of no entries.
    pub fn empty() -> Self {
        Table { map: None, len: 0 }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Entry `i`.
    pub fn get(&self, i: usize) -> Entry<K> {
        let bytes = &self.map.as_ref().expect("a non-empty table")[i * 8 * K..(i + 1) * 8 * K];
        std::array::from_fn(|k| {
            u64::from_le_bytes(bytes[k * 8..k * 8 + 8].try_into().expect("8 bytes"))
        })
    }

    /// The first entry not below `at` in a sorted table.
    pub fn lower_bound(&self, at: &Entry<K>) -> usize {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.get(mid) < *at {
                true => lo = mid + 1,
                false => hi = mid,
            }
        }
        lo
    }

    /// Entries `from..to`.
    pub fn range(&self, from: usize, to: usize) -> impl Iterator<Item = Entry<K>> + '_ {
        (from..to.min(self.len)).map(|i| self.get(i))
    }

    /// Every entry.
    pub fn iter(&self) -> impl Iterator<Item = Entry<K>> + '_ {
        self.range(0, self.len)
    }
}

/// Merges sorted streams into one sorted stream; equal entries come in
/// stream order.
pub fn merge<const K: usize, I: Iterator<Item = Entry<K>>>(
    streams: Vec<I>,
) -> impl Iterator<Item = Entry<K>> {
    let mut streams = streams;
    let mut heap = BinaryHeap::new();
    for (i, s) in streams.iter_mut().enumerate() {
        if let Some(e) = s.next() {
            heap.push(Reverse((e, i)));
        }
    }
    std::iter::from_fn(move || {
        let Reverse((e, i)) = heap.pop()?;
        if let Some(next) = streams[i].next() {
            heap.push(Reverse((next, i)));
        }
        Some(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_round_trip_and_merge_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write(&a, &[[1, 0], [3, 1], [5, 0]]).unwrap();
        write(&b, &[[2, 9], [3, 0]]).unwrap();
        let (ta, tb) = (Table::<2>::open(&a).unwrap(), Table::<2>::open(&b).unwrap());
        assert_eq!(ta.lower_bound(&[3, 0]), 1);
        assert_eq!(ta.lower_bound(&[9, 0]), 3);
        let merged: Vec<_> = merge(vec![ta.iter(), tb.iter()]).collect();
        assert_eq!(merged, [[1, 0], [2, 9], [3, 0], [3, 1], [5, 0]]);
        std::fs::write(&a, [0u8; 12]).unwrap();
        assert!(Table::<2>::open(&a).is_err());
    }
}
