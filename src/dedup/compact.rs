//! Removing near-duplicates from the staged shards of a build.

use std::collections::HashMap;

use anyhow::{Context, Result};

use super::near::{DocKey, Removal};
use crate::config::Pipeline;
use crate::manifest::InputFile;
use crate::provenance::{self, DocRow, ProvenanceWriter};
use crate::read;
use crate::rejects::{RejectRow, RejectTables};
use crate::shard::sink::StagedShard;
use crate::shard::{with_suffix, ShardReader, ShardWriter};
use crate::tokenize::DocTokenizer;

/// Removes near-duplicates from the staged shards: rewrites each shard that
/// holds one without it, counts it as rejected in its input file, and writes
/// its reject row, which names the kept document. A shard left empty is
/// deleted.
pub fn remove_near_duplicates(
    removals: &[Removal],
    built: &mut [Vec<StagedShard>],
    inputs: &mut [InputFile],
    pipeline: &Pipeline,
    tokenizer: &DocTokenizer,
    rejects: &mut RejectTables,
) -> Result<()> {
    if removals.is_empty() {
        return Ok(());
    }
    let removed: HashMap<DocKey, &Removal> = removals.iter().map(|r| (r.removed, r)).collect();
    let mut kept_ids: HashMap<DocKey, String> =
        removals.iter().map(|r| (r.kept, String::new())).collect();
    let file_index: HashMap<(String, String), u32> = inputs
        .iter()
        .enumerate()
        .map(|(i, f)| ((f.source.clone(), f.path.display().to_string()), i as u32))
        .collect();
    let key_of = |source: u32, row: &DocRow| -> Result<DocKey> {
        let name = pipeline.sources[source as usize].name.clone();
        let file = *file_index
            .get(&(name, row.file.clone()))
            .with_context(|| format!("provenance names an unknown input {}", row.file))?;
        Ok(DocKey {
            source,
            file,
            line: row.line,
        })
    };
    // First pass: the ids of the kept documents, and which shards change.
    let mut touched = Vec::new();
    for (source, shards) in built.iter().enumerate() {
        for (k, shard) in shards.iter().enumerate() {
            let mut hit = false;
            for row in provenance::read_all(&with_suffix(&shard.prefix, ".docs.parquet"))? {
                let key = key_of(source as u32, &row)?;
                if let Some(id) = kept_ids.get_mut(&key) {
                    *id = row.id;
                } else if removed.contains_key(&key) {
                    hit = true;
                }
            }
            if hit {
                touched.push((source, k));
            }
        }
    }
    // Second pass: rewrite the shards that hold removed documents.
    for &(source, k) in &touched {
        let shard = &mut built[source][k];
        let rows = provenance::read_all(&with_suffix(&shard.prefix, ".docs.parquet"))?;
        let reader = ShardReader::open(&shard.prefix)?;
        let tmp = with_suffix(&shard.prefix, ".compact");
        let mut writer = ShardWriter::create(&tmp, reader.dtype())?;
        let mut prov = ProvenanceWriter::create(&with_suffix(&tmp, ".docs.parquet"))?;
        let mut ids = Vec::new();
        for mut row in rows {
            ids.clear();
            reader.read_into(row.doc_index as usize, &mut ids)?;
            let key = key_of(source as u32, &row)?;
            let Some(r) = removed.get(&key) else {
                row.doc_index = writer.documents();
                writer.push(&ids)?;
                prov.push(row)?;
                continue;
            };
            let c = &mut inputs[key.file as usize].counts;
            c.kept -= 1;
            c.tokens -= ids.len() as u64;
            c.text_bytes -= r.text_bytes;
            c.rejected.add("near_dedup/near_duplicate");
            let kept = &inputs[r.kept.file as usize];
            let snippet = tokenizer
                .decode(&ids[..ids.len().min(48)])
                .unwrap_or_default();
            rejects.push(RejectRow {
                id: row.id,
                source: row.source,
                file: row.file,
                line: row.line,
                stage: "near_dedup".into(),
                reason: "near_duplicate".into(),
                detail: format!(
                    "near duplicate of {} ({}, {}:{}), estimated Jaccard {:.2} | {}",
                    kept_ids[&r.kept],
                    kept.source,
                    kept.path.display(),
                    r.kept.line,
                    r.jaccard,
                    read::snippet(&snippet, 80)
                ),
            })?;
        }
        drop(reader);
        let summary = writer.finish()?;
        let docs = prov.finish()?;
        for suffix in [".bin", ".idx", ".docs.parquet"] {
            std::fs::rename(
                with_suffix(&tmp, suffix),
                with_suffix(&shard.prefix, suffix),
            )?;
        }
        *shard = StagedShard {
            prefix: shard.prefix.clone(),
            documents: summary.documents,
            tokens: summary.tokens,
            bin: summary.bin,
            idx: summary.idx,
            docs,
        };
    }
    for shards in built.iter_mut() {
        for s in shards.iter().filter(|s| s.documents == 0) {
            for suffix in [".bin", ".idx", ".docs.parquet"] {
                std::fs::remove_file(with_suffix(&s.prefix, suffix))?;
            }
        }
        shards.retain(|s| s.documents > 0);
    }
    Ok(())
}
