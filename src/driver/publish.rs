//! The staging directory a build writes into, and the move of its files into
//! the output directory when the build is complete.

use std::path::{Path, PathBuf};

use crate::error::{Context, Error, Result};
use crate::fsutil;
use crate::manifest::{Manifest, FILE_NAME};

/// Name of the staging directory inside the output directory.
pub const STAGING: &str = ".almr-staging";

/// Creates `out` and a fresh, empty `out/.almr-staging` (with its `rejects/`)
/// and returns the staging directory. A stale one from a killed build is
/// removed first.
pub fn prepare(out: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out).map_err(Error::file("creating", out))?;
    let staging = out.join(STAGING);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(Error::file("removing stale", &staging))?;
    }
    std::fs::create_dir_all(staging.join("rejects"))?;
    Ok(staging)
}

/// Moves the staged files into `out`, replacing an earlier build's, and writes
/// the manifest last.
pub fn publish(staging: &Path, out: &Path, manifest: &Manifest) -> Result<()> {
    let manifest_path = out.join(FILE_NAME);
    if manifest_path.exists() {
        std::fs::remove_file(&manifest_path)?;
    }
    for entry in std::fs::read_dir(staging)? {
        let entry = entry?;
        let target = out.join(entry.file_name());
        if target.is_dir() {
            std::fs::remove_dir_all(&target)?;
        } else if target.exists() {
            std::fs::remove_file(&target)?;
        }
        std::fs::rename(entry.path(), &target)
            .with_context(|| format!("moving {} into place", target.display()))?;
    }
    std::fs::remove_dir(staging)?;
    fsutil::write_atomic(&manifest_path, manifest.to_json().as_bytes())
        .map_err(Error::file("writing", &manifest_path))
}
