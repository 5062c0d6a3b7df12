//! `--export megatron`: the Megatron-LM `--data-path` weight list that gives
//! a mix's token shares.
//!
//! Megatron-LM takes `--data-path W1 PREFIX1 W2 PREFIX2 …` (or the same text
//! in a file given to `--data-args-path`) and blends its datasets by those
//! weights with the same greedy rule almr uses. Its GPTDataset samples are
//! also `seq_length + 1` tokens overlapping by one, so sample shares are
//! token shares. Each shard gets its source's achieved share of the stream,
//! split among the source's shards by their tokens.
//!
//! Megatron cannot hold out almr's validation documents: it splits each
//! dataset by document ranges (`--split`), so the exported list trains on
//! every document of every shard.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::mixfile::MixReport;

/// The weight list, one line, with shard prefixes under `out`.
pub fn megatron_data_path(report: &MixReport, out: &Path) -> String {
    let mut line = String::new();
    for s in &report.sources {
        if s.samples == 0 || s.tokens == 0 {
            continue;
        }
        for sh in &s.shards {
            if sh.tokens == 0 {
                continue;
            }
            let w = s.achieved_share * sh.tokens as f64 / s.tokens as f64;
            if !line.is_empty() {
                line.push(' ');
            }
            write!(line, "{w:.12} {}", out.join(&sh.prefix).display()).expect("string write");
        }
    }
    line.push('\n');
    line
}

/// Writes `OUT/mix/NAME.megatron.txt`, for `--data-args-path`, and returns
/// its path. Prefixes are absolute.
pub fn write_megatron(report: &MixReport, out: &Path) -> Result<PathBuf> {
    let abs = std::fs::canonicalize(out).map_err(Error::file("resolving", out))?;
    let path = out
        .join(super::DIR)
        .join(format!("{}.megatron.txt", report.name));
    write_atomic(&path, megatron_data_path(report, &abs).as_bytes())
        .map_err(Error::file("writing", &path))?;
    Ok(path)
}
