//! `near_dedup`: MinHash LSH across every source.
//!
//! A [`CorpusStep`]. While the build runs, each surviving document gets a
//! signature (its sketch, in parallel) and, in pipeline order, a number, its
//! band keys in the [`BandTables`] and its signature in a file. At the end,
//! documents that share a bucket in any band are candidate pairs; a pair
//! whose estimated Jaccard similarity reaches `min_jaccard` is joined in a
//! [`UnionFind`]. Each cluster keeps its first document in pipeline order
//! (sources in order, files sorted, lines in order); the others are dropped,
//! and their reject rows name the kept document.
//!
//! Memory per document: 4 bytes of union-find and 4 for the similarity that
//! joined it, plus 12 bytes per band in the band tables until `--mem-budget`
//! is reached (spilled to disk after). Signatures (4 bytes per permutation)
//! go to a file and are read back through a memory map.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cluster::UnionFind;
use super::lsh::BandTables;
use super::minhash::{estimated_jaccard, MinHasher, ShingleUnit};
use crate::step::{CorpusStep, LateDrop, Sketch};

/// Settings of the `near_dedup` step (`[near_dedup]`, for all sources).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NearDedupConfig {
    /// Shingle unit. `char` (the default) for every language: a typo or a
    /// changed character breaks `ngram` character shingles but a whole
    /// word n-gram window, so English copies with 1–3 % of their characters
    /// edited keep a word-5-gram Jaccard of only 0.25–0.6 and slip through
    /// (datatrove's default catches none). `auto` takes characters for zh,
    /// ja and ko sources and words for the others; `word` always words.
    pub unit: ShingleUnit,
    /// Shingle size in units.
    #[schemars(range(min = 1))]
    pub ngram: usize,
    /// LSH bands. With `rows` they set the similarity at which a pair becomes
    /// a candidate with probability ½: about (1/bands)^(1/rows), 0.55 for
    /// 20 × 5 (datatrove's 14 × 8: 0.72; NeMo Curator's 20 × 13: 0.79).
    #[schemars(range(min = 1))]
    pub bands: usize,
    /// Rows (permutations) per band.
    #[schemars(range(min = 1))]
    pub rows: usize,
    /// A candidate pair is a near-duplicate when its estimated Jaccard
    /// similarity (share of equal MinHash values) reaches this. 0 joins
    /// every candidate pair unverified, as datatrove does.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub min_jaccard: f64,
    /// Seed of the hash permutations.
    pub seed: u64,
}

impl Default for NearDedupConfig {
    fn default() -> Self {
        NearDedupConfig {
            unit: ShingleUnit::Char,
            ngram: 5,
            bands: 20,
            rows: 5,
            min_jaccard: 0.5,
            seed: 0x616c_6d72,
        }
    }
}

/// Signatures and band tables of the documents seen so far.
pub struct NearDedup {
    config: NearDedupConfig,
    hasher: MinHasher,
    tables: BandTables,
    sig_path: PathBuf,
    sigs: BufWriter<File>,
    docs: u32,
}

impl NearDedup {
    /// Starts a near-dedup pass that keeps at most `mem_budget` bytes of band
    /// tables in memory and spills under `dir`.
    pub fn new(config: &NearDedupConfig, mem_budget: usize, dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let sig_path = dir.join("signatures.bin");
        Ok(NearDedup {
            hasher: MinHasher::new(config.bands * config.rows, config.seed),
            tables: BandTables::new(config.bands, mem_budget, dir),
            sigs: BufWriter::new(File::create(&sig_path)?),
            sig_path,
            config: config.clone(),
            docs: 0,
        })
    }

    /// The shingle unit for a source in `language`.
    pub fn unit_for(&self, language: &str) -> ShingleUnit {
        match self.config.unit {
            ShingleUnit::Auto if matches!(language, "zh" | "ja" | "ko") => ShingleUnit::Char,
            ShingleUnit::Auto => ShingleUnit::Word,
            unit => unit,
        }
    }

    /// The signature of `text` (thread-safe; call it in parallel).
    pub fn signature(&self, text: &str, unit: ShingleUnit) -> Vec<u32> {
        self.hasher
            .signature(&MinHasher::shingles(text, unit, self.config.ngram))
    }

    /// Adds the next document in pipeline order.
    pub fn add(&mut self, signature: &[u32]) -> io::Result<()> {
        let keys = band_keys(signature, self.config.rows);
        self.tables.push(self.docs, &keys)?;
        for v in signature {
            self.sigs.write_all(&v.to_le_bytes())?;
        }
        self.docs = self
            .docs
            .checked_add(1)
            .ok_or_else(|| io::Error::other("near_dedup handles at most 2^32 documents"))?;
        Ok(())
    }

    /// Clusters the documents and returns the drops, in document order.
    pub fn finish(self) -> io::Result<Vec<LateDrop>> {
        let NearDedup {
            config,
            hasher,
            tables,
            sig_path,
            sigs,
            docs,
        } = self;
        sigs.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        let k = hasher.len();
        let file = File::open(&sig_path)?;
        // SAFETY: the file was written above, is private to the build's
        // staging directory and is not modified while mapped.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        let sig = |d: u32| -> Vec<u32> {
            map[d as usize * k * 4..(d as usize + 1) * k * 4]
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect()
        };
        let mut uf = UnionFind::new(docs as usize);
        let mut joined_at = vec![0f32; docs as usize];
        tables.for_each_bucket(|group| {
            let first = sig(group[0]);
            for &d in &group[1..] {
                if uf.find(d) == uf.find(group[0]) {
                    continue;
                }
                let j = estimated_jaccard(&first, &sig(d));
                if j >= config.min_jaccard {
                    uf.union(group[0], d);
                    joined_at[d as usize] = j as f32;
                }
            }
        })?;
        drop(map);
        std::fs::remove_file(&sig_path)?;
        Ok((0..docs)
            .filter_map(|d| {
                let root = uf.find(d);
                (root != d).then(|| late_drop(d as u64, root as u64, joined_at[d as usize]))
            })
            .collect())
    }
}

/// A signature's bucket key in each band of `rows` rows.
pub fn band_keys(signature: &[u32], rows: usize) -> Vec<u64> {
    signature
        .chunks(rows)
        .enumerate()
        .map(|(band, rows)| {
            let bytes: Vec<u8> = rows.iter().flat_map(|v| v.to_le_bytes()).collect();
            xxhash_rust::xxh3::xxh3_64_with_seed(&bytes, band as u64)
        })
        .collect()
}

/// The drop of document `doc`, a near duplicate of `kept`, joined to its
/// cluster at estimated Jaccard similarity `joined`.
pub fn late_drop(doc: u64, kept: u64, joined: f32) -> LateDrop {
    LateDrop {
        doc,
        kept,
        reason: "near_duplicate",
        relation: "near duplicate of",
        measure: format!("estimated Jaccard {:.2}", joined as f64),
    }
}

impl CorpusStep for NearDedup {
    fn name(&self) -> &'static str {
        "near_dedup"
    }

    fn sketch(&self, text: &str, language: &str) -> Sketch {
        self.signature(text, self.unit_for(language))
    }

    fn add(&mut self, sketch: &Sketch) -> io::Result<()> {
        NearDedup::add(self, sketch)
    }

    fn decide(self: Box<Self>) -> io::Result<Vec<LateDrop>> {
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_copies_are_removed_and_point_at_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let base = "新华社北京十二月三十一日电，党和国家领导人与首都各界群众一起欣赏了新年音乐会的精彩节目。\
                    音乐会在雄壮的管弦乐中拉开帷幕，舒展优美的乐曲声使人们仿佛看到五星红旗冉冉升起。";
        let copy = base.replacen("精彩", "精美", 1);
        let other = "大连港年吞吐量突破七千万吨，比上年同期增加六百万吨，港口建设取得新的进展，集装箱业务增长迅速。";
        for budget in [1 << 20, 1] {
            let mut nd = NearDedup::new(&NearDedupConfig::default(), budget, dir.path()).unwrap();
            for t in [base, other, &copy] {
                let s = nd.signature(t, ShingleUnit::Char);
                nd.add(&s).unwrap();
            }
            let dropped = nd.finish().unwrap();
            assert_eq!(dropped.len(), 1, "budget {budget}");
            assert_eq!((dropped[0].doc, dropped[0].kept), (2, 0));
            let j: f64 = dropped[0].measure["estimated Jaccard ".len()..]
                .parse()
                .unwrap();
            assert!(j > 0.7, "{}", dropped[0].measure);
        }
    }
}
