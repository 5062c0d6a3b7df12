//! LSH band tables: for each band, `(bucket key, document)` entries. They
//! stay in memory up to a byte budget; past it, each band's entries are
//! sorted and spilled to a run file, and clustering merges the runs.
//!
//! Memory: 12 bytes per document per band (a 64-bit key and a 32-bit
//! document number) until the budget is reached; the same on disk after.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes one entry takes.
pub const ENTRY_BYTES: usize = 12;

/// A sorted stream of one band's entries.
type Entries = Box<dyn Iterator<Item = io::Result<(u64, u32)>>>;

/// Band tables with spilling.
pub struct BandTables {
    bands: usize,
    budget: usize,
    mem: Vec<Vec<(u64, u32)>>,
    dir: PathBuf,
    runs: Vec<PathBuf>,
}

impl BandTables {
    /// Tables for `bands` bands, holding at most `budget` bytes in memory;
    /// runs are spilled under `dir`.
    pub fn new(bands: usize, budget: usize, dir: &Path) -> Self {
        BandTables {
            bands,
            budget: budget.max(ENTRY_BYTES * bands),
            mem: vec![Vec::new(); bands],
            dir: dir.to_path_buf(),
            runs: Vec::new(),
        }
    }

    /// Adds document `doc`'s bucket key in every band. Documents must come in
    /// increasing order.
    pub fn push(&mut self, doc: u32, keys: &[u64]) -> io::Result<()> {
        debug_assert_eq!(keys.len(), self.bands);
        for (band, &key) in self.mem.iter_mut().zip(keys) {
            band.push((key, doc));
        }
        if self.mem[0].len() * self.bands * ENTRY_BYTES >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Number of run files spilled so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    /// Writes every band's entries, sorted, to one run file: a header of
    /// per-band counts (u64), then each band's entries.
    fn spill(&mut self) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("lsh-run-{:05}.bin", self.runs.len()));
        let mut w = BufWriter::new(File::create(&path)?);
        for band in &mut self.mem {
            band.sort_unstable();
            w.write_all(&(band.len() as u64).to_le_bytes())?;
        }
        for band in &mut self.mem {
            for &(key, doc) in band.iter() {
                w.write_all(&key.to_le_bytes())?;
                w.write_all(&doc.to_le_bytes())?;
            }
            band.clear();
            band.shrink_to_fit();
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        self.runs.push(path);
        Ok(())
    }

    /// Calls `f` once per band and bucket that holds two or more documents,
    /// with the documents in increasing order. Removes the run files.
    pub fn for_each_bucket(mut self, mut f: impl FnMut(&[u32])) -> io::Result<()> {
        for band in &mut self.mem {
            band.sort_unstable();
        }
        let mut group: Vec<u32> = Vec::new();
        for b in 0..self.bands {
            let mut sources: Vec<Entries> = Vec::new();
            for run in &self.runs {
                sources.push(Box::new(RunReader::open(run, self.bands, b)?));
            }
            let mem = std::mem::take(&mut self.mem[b]);
            sources.push(Box::new(mem.into_iter().map(Ok)));
            let mut heap = BinaryHeap::new();
            for (i, s) in sources.iter_mut().enumerate() {
                if let Some(e) = s.next() {
                    let (k, d) = e?;
                    heap.push(Reverse((k, d, i)));
                }
            }
            let mut current: Option<u64> = None;
            while let Some(Reverse((key, doc, i))) = heap.pop() {
                if current != Some(key) {
                    if group.len() > 1 {
                        f(&group);
                    }
                    group.clear();
                    current = Some(key);
                }
                group.push(doc);
                if let Some(e) = sources[i].next() {
                    let (k, d) = e?;
                    heap.push(Reverse((k, d, i)));
                }
            }
            if group.len() > 1 {
                f(&group);
            }
            group.clear();
        }
        for run in &self.runs {
            std::fs::remove_file(run)?;
        }
        Ok(())
    }
}

/// Streams one band's entries out of a run file.
struct RunReader {
    r: BufReader<File>,
    left: u64,
}

impl RunReader {
    fn open(path: &Path, bands: usize, band: usize) -> io::Result<Self> {
        let mut f = File::open(path)?;
        let mut header = vec![0u8; bands * 8];
        f.read_exact(&mut header)?;
        let count =
            |b: usize| u64::from_le_bytes(header[b * 8..b * 8 + 8].try_into().expect("8 bytes"));
        let before: u64 = (0..band).map(count).sum();
        f.seek(SeekFrom::Start(
            (bands * 8) as u64 + before * ENTRY_BYTES as u64,
        ))?;
        Ok(RunReader {
            r: BufReader::with_capacity(1 << 16, f),
            left: count(band),
        })
    }
}

impl Iterator for RunReader {
    type Item = io::Result<(u64, u32)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut buf = [0u8; ENTRY_BYTES];
        Some(self.r.read_exact(&mut buf).map(|()| {
            (
                u64::from_le_bytes(buf[..8].try_into().expect("8 bytes")),
                u32::from_le_bytes(buf[8..].try_into().expect("4 bytes")),
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(budget: usize) -> (Vec<Vec<u32>>, usize) {
        let dir = tempfile::tempdir().unwrap();
        let mut t = BandTables::new(2, budget, dir.path());
        // band 0: docs 0, 3, 5 share key 7; band 1: docs 1, 2 share key 9.
        let keys = [[7, 100], [10, 9], [11, 9], [7, 101], [12, 102], [7, 103]];
        for (doc, k) in keys.iter().enumerate() {
            t.push(doc as u32, k).unwrap();
        }
        let runs = t.spilled_runs();
        let mut out = Vec::new();
        t.for_each_bucket(|g| out.push(g.to_vec())).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        (out, runs)
    }

    #[test]
    fn in_memory_and_spilled_give_the_same_buckets() {
        let (mem, runs) = buckets(1 << 20);
        assert_eq!(runs, 0);
        assert_eq!(mem, vec![vec![0, 3, 5], vec![1, 2]]);
        let (spilled, runs) = buckets(24);
        assert!(runs >= 2, "{runs} runs");
        assert_eq!(spilled, mem);
    }
}
