//! `almr verify`: checks a build and its mixes against what they record.
//!
//! The manifest's numbers must add up. Every output file it lists is read
//! and compared with its recorded size and SHA-256; every shard is opened
//! against the manifest
//! (layout, dtype, each id below the vocabulary) with its provenance table
//! (one row per document, the same token counts); files under `shards/`
//! and `rejects/` that the manifest does not list are named. Every mix is
//! checked against its sidecar (the index's size and SHA-256) and its
//! build (the manifest it was made from), then opened, which checks its
//! layout against the shards.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::manifest::Manifest;
use crate::mix::MixReport;
use crate::provenance;
use crate::shard::{with_suffix, ShardReader};

/// What `almr verify` found.
#[derive(Debug, Serialize)]
pub struct Verification {
    /// The build's output directory.
    pub out: PathBuf,
    /// Output files checked against the manifest.
    pub files: usize,
    /// Shards opened and read through.
    pub shards: usize,
    /// Mixes checked.
    pub mixes: usize,
    /// Every problem, one line each; empty when all is well.
    pub problems: Vec<String>,
}

impl Verification {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the build in `out` and its mixes.
pub fn verify(out: &Path) -> Result<Verification> {
    let manifest = Manifest::load(out)?;
    let mut v = Verification {
        out: out.to_path_buf(),
        files: 0,
        shards: 0,
        mixes: 0,
        problems: Vec::new(),
    };
    let counts = manifest.check().into_iter();
    v.problems
        .extend(counts.map(|p| format!("manifest.json: {p}")));
    check_files(out, &manifest, &mut v);
    check_unlisted(out, &manifest, &mut v)?;
    check_shards(out, &manifest, &mut v);
    check_mixes(out, &mut v)?;
    Ok(v)
}

/// Each listed output file against its size and SHA-256.
fn check_files(out: &Path, manifest: &Manifest, v: &mut Verification) {
    for f in &manifest.outputs {
        v.files += 1;
        let path = out.join(&f.path);
        match fsutil::digest_file(&path) {
            Err(e) => v
                .problems
                .push(format!("{}: cannot be read: {e}", f.path.display())),
            Ok(d) if d != f.digest => v.problems.push(format!(
                "{}: {} bytes with sha256 {}, the manifest lists {} bytes with sha256 {}",
                f.path.display(),
                d.bytes,
                d.sha256,
                f.digest.bytes,
                f.digest.sha256
            )),
            Ok(_) => {}
        }
    }
}

/// Files under the build's folders that the manifest does not list.
fn check_unlisted(out: &Path, manifest: &Manifest, v: &mut Verification) -> Result<()> {
    let listed: std::collections::BTreeSet<&Path> =
        manifest.outputs.iter().map(|f| f.path.as_path()).collect();
    for top in ["shards", "rejects"] {
        let mut stack = vec![PathBuf::from(top)];
        while let Some(rel) = stack.pop() {
            let dir = out.join(&rel);
            if !dir.is_dir() {
                continue;
            }
            for e in std::fs::read_dir(&dir).map_err(Error::file("listing", &dir))? {
                let e = e.map_err(Error::file("listing", &dir))?;
                let path = rel.join(e.file_name());
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(path);
                } else if !listed.contains(path.as_path()) {
                    v.problems
                        .push(format!("{}: not listed in the manifest", path.display()));
                }
            }
        }
    }
    Ok(())
}

/// Each shard read through against the manifest and its provenance.
fn check_shards(out: &Path, manifest: &Manifest, v: &mut Verification) {
    let (dtype, vocab) = manifest.tokenizer.shard_facts();
    for sh in &manifest.shards {
        v.shards += 1;
        let prefix = out.join(&sh.prefix);
        let checked = ShardReader::open(&prefix)
            .and_then(|r| r.expect(dtype, vocab))
            .map_err(Error::from)
            .and_then(|r| read_through(&r, &with_suffix(&prefix, ".docs.parquet")).map(|()| r));
        match checked {
            Err(e) => v.problems.push(chain(&e)),
            Ok(r) if (r.documents() as u64, r.total_tokens()) != (sh.documents, sh.tokens) => {
                v.problems.push(format!(
                    "{}: {} documents and {} tokens, the manifest lists {} and {}",
                    sh.prefix.display(),
                    r.documents(),
                    r.total_tokens(),
                    sh.documents,
                    sh.tokens
                ))
            }
            Ok(_) => {}
        }
    }
}

/// Reads every document of a shard (each id checked) and compares the
/// provenance table's rows with it.
fn read_through(r: &ShardReader, docs: &Path) -> Result<()> {
    let rows = provenance::read_all(docs)?;
    if rows.len() != r.documents() {
        return Err(Error::Invalid(format!(
            "{}: {} rows for {} documents",
            docs.display(),
            rows.len(),
            r.documents()
        )));
    }
    let mut tokens = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        tokens.clear();
        r.read_into(i, &mut tokens)?;
        if row.doc_index != i as u64 || row.n_tokens != tokens.len() as u64 {
            return Err(Error::Invalid(format!(
                "{}: row {i} says document {} of {} tokens, the shard's document {i} has {}",
                docs.display(),
                row.doc_index,
                row.n_tokens,
                tokens.len()
            )));
        }
    }
    Ok(())
}

/// Each mix under `OUT/mix/` against its sidecar and its build.
fn check_mixes(out: &Path, v: &mut Verification) -> Result<()> {
    let dir = out.join(crate::mix::DIR);
    if !dir.is_dir() {
        return Ok(());
    }
    let mut sidecars = Vec::new();
    for e in std::fs::read_dir(&dir).map_err(Error::file("listing", &dir))? {
        let path = e.map_err(Error::file("listing", &dir))?.path();
        if path.extension().is_some_and(|x| x == "json") {
            sidecars.push(path);
        }
    }
    sidecars.sort();
    for sidecar in sidecars {
        v.mixes += 1;
        if let Err(e) = check_mix(out, &sidecar) {
            v.problems.push(chain(&e));
        }
    }
    Ok(())
}

fn check_mix(out: &Path, sidecar: &Path) -> Result<()> {
    let text = std::fs::read_to_string(sidecar).map_err(Error::file("reading", sidecar))?;
    let report: MixReport = serde_json::from_str(&text).map_err(|source| Error::JsonFile {
        path: sidecar.to_path_buf(),
        source,
    })?;
    let index = out.join(&report.index.path);
    let digest = fsutil::digest_file(&index)?;
    if digest != report.index.digest {
        return Err(Error::Invalid(format!(
            "{}: {} bytes with sha256 {}, the sidecar lists {} bytes with sha256 {}",
            index.display(),
            digest.bytes,
            digest.sha256,
            report.index.digest.bytes,
            report.index.digest.sha256
        )));
    }
    crate::mixfile::open_checked(sidecar)?;
    Ok(())
}

/// An error and its causes, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "problem: {p}")?;
        }
        let verdict = match self.ok() {
            true => "ok",
            false => "FAILED",
        };
        writeln!(
            f,
            "{verdict}: {} files, {} shards and {} mixes of {} checked; {} problems",
            self.files,
            self.shards,
            self.mixes,
            self.out.display(),
            self.problems.len()
        )
    }
}
