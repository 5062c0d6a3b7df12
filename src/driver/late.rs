//! Late drops: documents a corpus step drops after they were written to
//! their shards.
//!
//! While the build runs, the [`Ledger`] remembers each document the corpus
//! steps see: where it came from (24 bytes in memory) and, in a file of the
//! build's scratch directory, its id and the snippet of its text that a
//! reject row shows. At the end, [`drop_late`] asks the corpus steps for
//! their decisions, rewrites each shard that holds a dropped document
//! without it, corrects the counts of its input file, and writes its reject
//! row, which names the document kept in its place. Nothing is decoded back
//! from tokens.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::sink::{StagedMask, StagedShard, MASK};
use crate::chain::Chain;
use crate::config::Pipeline;
use crate::error::{Error, Result};
use crate::manifest::InputFile;
use crate::provenance::{self, DocRow, ProvenanceWriter};
use crate::rejects::{RejectRow, RejectTables};
use crate::shard::{self, with_suffix};
use crate::step::LateDrop;

/// Where a document came from: enough to find its provenance row again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DocKey {
    /// Index of the source in the pipeline.
    pub source: u32,
    /// Index of the input file in the build's list of inputs.
    pub file: u32,
    /// Line or row.
    pub line: u64,
}

/// The documents the corpus steps have seen, numbered as they were added.
pub struct Ledger {
    docs: Vec<Entry>,
    labels: BufWriter<File>,
    path: PathBuf,
}

/// What the ledger holds of one document in memory.
#[derive(Clone, Copy)]
struct Entry {
    key: DocKey,
    text_bytes: u32,
    tokens: u32,
}

/// A document's id and snippet, as its reject row shows them.
struct Label {
    id: String,
    snippet: String,
}

impl Ledger {
    /// An empty ledger whose labels go to a file in `scratch`.
    pub fn new(scratch: &Path) -> io::Result<Ledger> {
        std::fs::create_dir_all(scratch)?;
        let path = scratch.join("labels.bin");
        Ok(Ledger {
            docs: Vec::new(),
            labels: BufWriter::new(File::create(&path)?),
            path,
        })
    }

    /// Records the next document, of `text_bytes` bytes of text and
    /// `tokens` tokens.
    pub fn push(
        &mut self,
        key: DocKey,
        text_bytes: usize,
        tokens: usize,
        id: &str,
        snippet: &str,
    ) -> io::Result<()> {
        for s in [id, snippet] {
            let len = u32::try_from(s.len()).map_err(io::Error::other)?;
            self.labels.write_all(&len.to_le_bytes())?;
            self.labels.write_all(s.as_bytes())?;
        }
        self.docs.push(Entry {
            key,
            text_bytes: u32::try_from(text_bytes).unwrap_or(u32::MAX),
            tokens: u32::try_from(tokens).unwrap_or(u32::MAX),
        });
        Ok(())
    }

    /// The labels of the documents in `wanted`, read in one pass.
    fn labels(&mut self, wanted: &BTreeSet<u64>) -> io::Result<HashMap<u64, Label>> {
        self.labels.flush()?;
        let mut r = BufReader::new(File::open(&self.path)?);
        let mut found = HashMap::new();
        let next = |r: &mut BufReader<File>| -> io::Result<String> {
            let mut len = [0u8; 4];
            r.read_exact(&mut len)?;
            let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
            r.read_exact(&mut buf)?;
            String::from_utf8(buf).map_err(io::Error::other)
        };
        let last = wanted.last().copied().unwrap_or(0);
        for doc in 0..self.docs.len() as u64 {
            if doc > last {
                break;
            }
            let (id, snippet) = (next(&mut r)?, next(&mut r)?);
            if wanted.contains(&doc) {
                found.insert(doc, Label { id, snippet });
            }
        }
        Ok(found)
    }
}

/// The corpus steps' decisions, with what the reject rows need.
struct Decisions<'a> {
    /// Each dropped document by key: the step's name and its decision.
    dropped: HashMap<DocKey, (&'static str, LateDrop)>,
    ledger: &'a Ledger,
    labels: HashMap<u64, Label>,
}

/// Asks the corpus steps of `chain` which documents to drop, and takes them
/// out of the staged shards: rewrites the shards, corrects the counts of the
/// input files and writes the reject rows. A shard left empty is deleted.
/// A dry run, which staged no shards, gets the same counts and rows.
pub fn drop_late(
    chain: &mut Chain,
    mut ledger: Ledger,
    pipeline: &Pipeline,
    built: &mut [Vec<StagedShard>],
    inputs: &mut [InputFile],
    rejects: &mut RejectTables,
    dry_run: bool,
) -> Result<()> {
    let mut by_doc: BTreeMap<u64, (&'static str, LateDrop)> = BTreeMap::new();
    for step in std::mem::take(&mut chain.corpus) {
        let name = step.name();
        for drop in step.decide()? {
            by_doc.entry(drop.doc).or_insert((name, drop));
        }
    }
    let wanted: BTreeSet<u64> = by_doc.values().flat_map(|(_, d)| [d.doc, d.kept]).collect();
    let labels = ledger.labels(&wanted)?;
    let mut decisions = Decisions {
        dropped: HashMap::new(),
        ledger: &ledger,
        labels,
    };
    if dry_run {
        return by_doc
            .values()
            .try_for_each(|(stage, drop)| decisions.count(stage, drop, inputs, rejects));
    }
    let key_of = |doc: u64| ledger.docs[doc as usize].key;
    decisions.dropped = by_doc.into_values().map(|d| (key_of(d.1.doc), d)).collect();
    if decisions.dropped.is_empty() {
        return Ok(());
    }
    let file_index: HashMap<(String, String), u32> = inputs
        .iter()
        .enumerate()
        .map(|(i, f)| ((f.source.clone(), f.path.display().to_string()), i as u32))
        .collect();
    for (source, shards) in built.iter_mut().enumerate() {
        let name = &pipeline.sources[source].name;
        let key = |row: &DocRow| -> Result<DocKey> {
            let file = *file_index
                .get(&(name.clone(), row.file.clone()))
                .ok_or_else(|| {
                    Error::Internal(format!("provenance names an unknown input {}", row.file))
                })?;
            Ok(DocKey {
                source: source as u32,
                file,
                line: row.line,
            })
        };
        for shard in shards.iter_mut() {
            decisions.apply(shard, &key, inputs, rejects)?;
        }
        shards.retain(|s| s.documents > 0);
    }
    Ok(())
}

impl Decisions<'_> {
    /// Takes the dropped documents out of one shard, if it holds any.
    fn apply(
        &self,
        shard: &mut StagedShard,
        key: &dyn Fn(&DocRow) -> Result<DocKey>,
        inputs: &mut [InputFile],
        rejects: &mut RejectTables,
    ) -> Result<()> {
        let docs_path = with_suffix(&shard.prefix, ".docs.parquet");
        let rows = provenance::read_all(&docs_path)?;
        let in_order = rows.len() as u64 == shard.documents
            && rows
                .iter()
                .enumerate()
                .all(|(i, r)| r.doc_index == i as u64);
        if !in_order {
            return Err(Error::Internal(format!(
                "{}: does not list the shard's {} documents in order",
                docs_path.display(),
                shard.documents
            )));
        }
        let mut keep = vec![true; rows.len()];
        for row in &rows {
            let Some((stage, drop)) = self.dropped.get(&key(row)?) else {
                continue;
            };
            keep[row.doc_index as usize] = false;
            let text_bytes = self.ledger.docs[drop.doc as usize].text_bytes as u64;
            let input = &mut inputs[key(row)?.file as usize];
            input
                .counts
                .drop_kept(stage, drop.reason, row.n_tokens, text_bytes);
            rejects.push(self.reject_row(row, stage, drop, inputs))?;
        }
        if keep.iter().all(|&k| k) {
            return Ok(());
        }
        let summary = shard::keep_documents(&shard.prefix, |i| keep[i])?;
        let mask = match &shard.mask {
            Some(m) => Some(rewrite_mask(&shard.prefix, &keep, m)?),
            None => None,
        };
        let kept_rows = rows.into_iter().filter(|r| keep[r.doc_index as usize]);
        let docs = match summary.documents {
            0 => {
                std::fs::remove_file(&docs_path)?;
                shard.docs.clone()
            }
            _ => rewrite_provenance(&docs_path, kept_rows)?,
        };
        *shard = StagedShard {
            prefix: shard.prefix.clone(),
            documents: summary.documents,
            tokens: summary.tokens,
            bin: summary.bin,
            idx: summary.idx,
            docs,
            mask,
        };
        Ok(())
    }

    /// A dry run's late drop, which no shard holds: the counts of its input
    /// file corrected, and its reject row written.
    fn count(
        &self,
        stage: &'static str,
        drop: &LateDrop,
        inputs: &mut [InputFile],
        rejects: &mut RejectTables,
    ) -> Result<()> {
        let doc = self.ledger.docs[drop.doc as usize];
        let input = &mut inputs[doc.key.file as usize];
        let row = DocRow {
            doc_index: 0,
            source: input.source.clone(),
            file: input.path.display().to_string(),
            line: doc.key.line,
            id: self.labels.get(&drop.doc).map_or("", |l| &l.id).to_string(),
            n_tokens: doc.tokens as u64,
        };
        let (tokens, bytes) = (row.n_tokens, doc.text_bytes as u64);
        input.counts.drop_kept(stage, drop.reason, tokens, bytes);
        rejects.push(self.reject_row(&row, stage, drop, inputs))
    }

    /// The reject row of a dropped document, naming the one kept in its place.
    fn reject_row(
        &self,
        row: &DocRow,
        stage: &str,
        drop: &LateDrop,
        inputs: &[InputFile],
    ) -> RejectRow {
        let kept_key = self.ledger.docs[drop.kept as usize].key;
        let kept_input = &inputs[kept_key.file as usize];
        let label = |doc: u64| self.labels.get(&doc);
        let kept = format!(
            "{} ({}, {}:{})",
            label(drop.kept).map_or("", |l| &l.id),
            kept_input.source,
            kept_input.path.display(),
            kept_key.line,
        );
        RejectRow {
            id: row.id.clone(),
            source: row.source.clone(),
            file: row.file.clone(),
            line: row.line,
            stage: stage.into(),
            reason: drop.reason.into(),
            detail: late_detail(drop, &kept, label(drop.doc).map_or("", |l| &l.snippet)),
        }
    }
}

/// The detail of a late drop's reject row: how it relates to the kept
/// document, described as [`crate::step::Seen::describe`] does, the
/// evidence, and the dropped document's snippet.
pub fn late_detail(drop: &LateDrop, kept: &str, snippet: &str) -> String {
    format!("{} {kept}, {} | {snippet}", drop.relation, drop.measure)
}

/// Writes `rows`, numbered afresh, over the provenance table at `path`.
fn rewrite_provenance(
    path: &Path,
    rows: impl Iterator<Item = DocRow>,
) -> Result<crate::fsutil::FileDigest> {
    let tmp = with_suffix(path, ".rewrite");
    let mut w = ProvenanceWriter::create(&tmp)?;
    for (k, mut row) in rows.enumerate() {
        row.doc_index = k as u64;
        w.push(row)?;
    }
    let digest = w.finish()?;
    std::fs::rename(&tmp, path)?;
    Ok(digest)
}

/// Rewrites a chat shard's mask keeping the same documents as its tokens,
/// and counts the trained tokens left.
fn rewrite_mask(prefix: &Path, keep: &[bool], old: &StagedMask) -> Result<StagedMask> {
    let mask = with_suffix(prefix, MASK);
    let reader = shard::ShardReader::open(&mask)?;
    let (mut bits, mut dropped) = (Vec::new(), 0u64);
    for i in (0..reader.len()).filter(|&i| !keep[i]) {
        bits.clear();
        reader.read_into(i, &mut bits)?;
        dropped += bits.iter().map(|&b| b as u64).sum::<u64>();
    }
    drop(reader);
    let summary = shard::keep_documents(&mask, |i| keep[i])?;
    Ok(StagedMask {
        bin: summary.bin,
        idx: summary.idx,
        trained: old.trained - dropped,
    })
}
