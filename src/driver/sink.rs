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
use crate::shard::{with_suffix, DType, ShardWriter};

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
}

/// Cuts one source's documents into shards of at most `max_shard_tokens`.
pub struct ShardSink<'a> {
    dir: PathBuf,
    source: &'a Source,
    dtype: DType,
    open: Option<OpenShard>,
    done: Vec<StagedShard>,
}

struct OpenShard {
    prefix: PathBuf,
    writer: ShardWriter,
    rows: RowSink,
}

/// Provenance rows: streamed in input order, or held until the shard is
/// shuffled (memory then grows with the shard's document count).
enum RowSink {
    Stream(Box<ProvenanceWriter>),
    Hold(Vec<DocRow>),
}

impl<'a> ShardSink<'a> {
    /// Shards for `source` under `staging/shards/NAME/`.
    pub fn new(staging: &Path, source: &'a Source, dtype: DType) -> Self {
        ShardSink {
            dir: staging.join("shards").join(&source.name),
            source,
            dtype,
            open: None,
            done: Vec::new(),
        }
    }

    /// Appends one document (token ids, EOS included) and its provenance.
    pub fn push(&mut self, ids: &[u32], file: &str, line: u64, id: String) -> Result<()> {
        if let Some(open) = &self.open {
            let tokens = open.writer.tokens();
            if tokens > 0 && tokens + ids.len() as u64 > self.source.max_shard_tokens {
                self.close()?;
            }
        }
        if self.open.is_none() {
            std::fs::create_dir_all(&self.dir)?;
            let prefix = self
                .dir
                .join(format!("{}-{:05}", self.source.name, self.done.len()));
            let docs = with_suffix(&prefix, ".docs.parquet");
            self.open = Some(OpenShard {
                writer: ShardWriter::create(&prefix, self.dtype)?,
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
        let (summary, docs) = match open.rows {
            RowSink::Stream(w) => (open.writer.finish().with_context(finishing)?, w.finish()?),
            RowSink::Hold(rows) => {
                let seed = self.source.shuffle_seed.expect("held rows mean a shuffle");
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(self.done.len() as u64);
                let mut order: Vec<u32> = (0..rows.len() as u32).collect();
                order.shuffle(&mut rng);
                let summary = open
                    .writer
                    .finish_permuted(&order)
                    .with_context(finishing)?;
                let mut w = ProvenanceWriter::create(&docs_path)?;
                for (k, &i) in order.iter().enumerate() {
                    let mut row = rows[i as usize].clone();
                    row.doc_index = k as u64;
                    w.push(row)?;
                }
                (summary, w.finish()?)
            }
        };
        self.done.push(StagedShard {
            prefix: summary.prefix,
            documents: summary.documents,
            tokens: summary.tokens,
            bin: summary.bin,
            idx: summary.idx,
            docs,
        });
        Ok(())
    }

    /// Closes the last shard and returns them all.
    pub fn finish(mut self) -> Result<Vec<StagedShard>> {
        self.close()?;
        Ok(self.done)
    }
}
