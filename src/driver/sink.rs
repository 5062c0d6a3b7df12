//! Cutting a source's documents into shards of at most `max_shard_tokens`,
//! each with its provenance table, optionally shuffled with a seed.

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::Source;
use crate::error::{Context, Result};
use crate::fsutil::FileDigest;
use crate::provenance::{DocRow, ProvenanceWriter};
use crate::read::Format;
use crate::shard::{with_suffix, DType, ShardSummary, ShardWriter};

pub use crate::mixfile::packed::MASK;

/// A finished shard with its provenance table.
pub struct StagedShard {
    /// The shard prefix.
    pub prefix: PathBuf,
    /// Documents in the shard.
    pub documents: u64,
    /// Tokens in the shard.
    pub tokens: u64,
    /// Digest of `PREFIX.bin`.
    pub bin: FileDigest,
    /// Digest of `PREFIX.idx`.
    pub idx: FileDigest,
    /// Digest of `PREFIX.docs.parquet`.
    pub docs: FileDigest,
    /// The loss mask of a chat shard.
    pub mask: Option<StagedMask>,
}

/// A chat shard's `PREFIX.mask.{bin,idx}`.
#[derive(Clone)]
pub struct StagedMask {
    /// Digest of `PREFIX.mask.bin`.
    pub bin: FileDigest,
    /// Digest of `PREFIX.mask.idx`.
    pub idx: FileDigest,
    /// Tokens with mask 1: those the loss counts.
    pub trained: u64,
}

/// A kept document's token ids, and for a conversation its loss mask.
pub struct Tokens {
    /// The ids.
    pub ids: Vec<u32>,
    /// One bit per id for a conversation: 1 where the loss counts.
    pub mask: Option<Vec<u8>>,
}

/// Cuts one source's documents into shards of at most `max_shard_tokens`.
pub struct ShardSink<'a> {
    dir: PathBuf,
    source: &'a Source,
    dtype: DType,
    open: Option<OpenShard>,
    done: Vec<StagedShard>,
    /// A dry run's sink: it writes nothing and gives no shards.
    dry_run: bool,
}

struct OpenShard {
    prefix: PathBuf,
    writer: ShardWriter,
    mask: Option<(ShardWriter, u64)>,
    rows: RowSink,
}

/// Provenance rows: streamed in input order, or held until the shard is
/// shuffled (memory then grows with the shard's document count).
enum RowSink {
    Stream(Box<ProvenanceWriter>),
    Hold(Vec<DocRow>),
}

impl<'a> ShardSink<'a> {
    /// Shards for `source` under `staging/shards/NAME/`; none at all for a
    /// dry run.
    pub fn new(staging: &Path, source: &'a Source, dtype: DType, dry_run: bool) -> Self {
        ShardSink {
            dir: staging.join("shards").join(&source.name),
            source,
            dtype,
            open: None,
            done: Vec::new(),
            dry_run,
        }
    }

    /// Appends one document (token ids, EOS included, and a conversation's
    /// mask) and its provenance.
    pub fn push(&mut self, tokens: &Tokens, file: &str, line: u64, id: String) -> Result<()> {
        if self.dry_run {
            return Ok(());
        }
        let ids = &tokens.ids;
        if let Some(open) = &self.open {
            let tokens = open.writer.tokens();
            if tokens > 0 && tokens + ids.len() as u64 > self.source.max_shard_tokens {
                self.close()?;
            }
        }
        if self.open.is_none() {
            std::fs::create_dir_all(&self.dir)?;
            let prefix = shard_prefix(&self.dir, &self.source.name, self.done.len());
            let docs = with_suffix(&prefix, ".docs.parquet");
            let mask = match self.source.format {
                Format::Chat => Some((
                    ShardWriter::create(&with_suffix(&prefix, MASK), DType::U8)?,
                    0,
                )),
                _ => None,
            };
            self.open = Some(OpenShard {
                writer: ShardWriter::create(&prefix, self.dtype)?,
                mask,
                rows: match self.source.shuffle_seed {
                    Some(_) => RowSink::Hold(Vec::new()),
                    None => RowSink::Stream(Box::new(ProvenanceWriter::create(&docs)?)),
                },
                prefix,
            });
        }
        let open = self.open.as_mut().expect("opened above");
        let row = DocRow {
            doc_index: open.writer.documents(),
            source: self.source.name.clone(),
            file: file.to_string(),
            line,
            id,
            n_tokens: ids.len() as u64,
        };
        let prefix = &open.prefix;
        open.writer
            .push(ids)
            .with_context(|| format!("writing shard {}", prefix.display()))?;
        if let Some((writer, trained)) = &mut open.mask {
            let bits: Vec<u32> = tokens.mask.iter().flatten().map(|&b| b as u32).collect();
            if bits.len() != ids.len() {
                return Err(crate::error::Error::Internal(format!(
                    "{file}:{line}: {} mask bits for {} tokens",
                    bits.len(),
                    ids.len()
                )));
            }
            *trained += bits.iter().map(|&b| b as u64).sum::<u64>();
            writer
                .push(&bits)
                .with_context(|| format!("writing the mask of shard {}", prefix.display()))?;
        }
        match &mut open.rows {
            RowSink::Stream(w) => w.push(row)?,
            RowSink::Hold(rows) => rows.push(row),
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let docs_path = with_suffix(&open.prefix, ".docs.parquet");
        let finishing = || format!("finishing shard {}", open.prefix.display());
        let (order, docs) = match open.rows {
            RowSink::Stream(w) => (None, w.finish()?),
            RowSink::Hold(rows) => {
                let seed = self.source.shuffle_seed.expect("held rows mean a shuffle");
                let order = shuffled(seed, self.done.len(), rows.len());
                let mut w = ProvenanceWriter::create(&docs_path)?;
                for (k, &i) in order.iter().enumerate() {
                    let mut row = rows[i as usize].clone();
                    row.doc_index = k as u64;
                    w.push(row)?;
                }
                (Some(order), w.finish()?)
            }
        };
        let summary = finish(open.writer, order.as_deref()).with_context(finishing)?;
        let mask = match open.mask {
            Some((writer, trained)) => {
                let m = finish(writer, order.as_deref()).with_context(finishing)?;
                Some(StagedMask {
                    bin: m.bin,
                    idx: m.idx,
                    trained,
                })
            }
            None => None,
        };
        self.done.push(StagedShard {
            prefix: summary.prefix,
            documents: summary.documents,
            tokens: summary.tokens,
            bin: summary.bin,
            idx: summary.idx,
            docs,
            mask,
        });
        Ok(())
    }

    /// Closes the last shard and returns them all.
    pub fn finish(mut self) -> Result<Vec<StagedShard>> {
        self.close()?;
        Ok(self.done)
    }
}

/// The prefix of `source`'s shard number `n` in its directory `dir`
/// (`OUT/shards/NAME/`).
pub fn shard_prefix(dir: &Path, source: &str, n: usize) -> PathBuf {
    dir.join(format!("{source}-{n:05}"))
}

/// The order of shard number `shard`'s `n` documents under `seed`: the
/// document written `order[k]`-th goes to position `k`.
pub fn shuffled(seed: u64, shard: usize, n: usize) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(shard as u64);
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.shuffle(&mut rng);
    order
}

/// Finishes a shard, in `order` when it is shuffled.
fn finish(writer: ShardWriter, order: Option<&[u32]>) -> std::io::Result<ShardSummary> {
    match order {
        Some(order) => writer.finish_permuted(order),
        None => writer.finish(),
    }
}
