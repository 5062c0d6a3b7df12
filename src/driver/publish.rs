//! The output directory: who owns it, who is writing it, and the one atomic
//! switch that publishes a build.
//!
//! ```text
//! OUT/.almr-output            marker: almr owns OUT
//! OUT/.almr.lock              held (flock) by the build writing OUT; holds its pid
//! OUT/.generations/G/         one complete build: manifest.json, tokenizer.json, shards/, rejects/
//! OUT/.current -> .generations/G
//! OUT/manifest.json -> .current/manifest.json   (and tokenizer.json, shards, rejects)
//! OUT/mix/                    mixes, made later by `almr mix`
//! ```
//!
//! A build writes a new generation directory, which no reader sees, and
//! publishes it by renaming a new `.current` link over the old one: one
//! `rename(2)`. A kill at any moment leaves `.current` naming either the
//! old complete build or the new one. The next build removes generations
//! that `.current` does not name.
//!
//! almr writes into `OUT` only if it is absent, empty, or an almr output
//! (its marker or a `manifest.json`); anything else is an error that names
//! the directory.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::manifest::{Manifest, FILE_NAME};

/// The marker file that says almr owns the directory.
pub const MARKER: &str = ".almr-output";
/// The lock file of the build writing the directory.
pub const LOCK: &str = ".almr.lock";
/// The directory of generations.
pub const GENERATIONS: &str = ".generations";
/// The link to the published generation.
pub const CURRENT: &str = ".current";
/// The names a build publishes, each a link through [`CURRENT`].
/// `tokenizer_config.json` is there only when the tokenizer has one or the
/// build has chat sources.
const PUBLISHED: [&str; 5] = [
    FILE_NAME,
    "tokenizer.json",
    "tokenizer_config.json",
    "shards",
    "rejects",
];
/// Entries that do not count against an empty directory's ownership: the
/// leftovers of an earlier almr version's killed build.
const LEGACY_STAGING: &str = ".almr-staging";

/// A build's hold on its output directory: the lock, and the new
/// generation it writes into.
#[derive(Debug)]
pub struct Output {
    out: PathBuf,
    generation: PathBuf,
    _lock: File,
}

/// Checks that almr may write `out`, takes its lock, removes what killed
/// builds left, and creates a fresh generation directory (with its
/// `rejects/`) to write the build into.
pub fn prepare(out: &Path) -> Result<Output> {
    if out.as_os_str().is_empty() {
        return Err(Error::Invalid(
            "the output directory is empty: set `output` in the pipeline or pass --out".into(),
        ));
    }
    claim(out)?;
    let lock = lock(out)?;
    remove_stale(out)?;
    let generation = out.join(GENERATIONS).join(generation_name());
    std::fs::create_dir_all(generation.join("rejects"))
        .map_err(Error::file("creating", &generation))?;
    Ok(Output {
        out: out.to_path_buf(),
        generation,
        _lock: lock,
    })
}

impl Output {
    /// The directory the build writes into.
    pub fn staging(&self) -> &Path {
        &self.generation
    }

    /// Writes the manifest into the new generation, then publishes it with
    /// one rename of [`CURRENT`], and removes the generation it replaced.
    /// A failure before the switch (a full disk) removes the new generation
    /// and leaves the old one published.
    pub fn publish(self, manifest: &Manifest) -> Result<()> {
        let old = current_generation(&self.out);
        let name = self.generation.file_name().unwrap_or_default();
        let ours = Path::new(GENERATIONS).join(name);
        if let Err(e) = self.switch(manifest, &ours) {
            if current_generation(&self.out).as_ref() != Some(&ours) {
                self.abandon();
            }
            return Err(e);
        }
        if let Some(old) = old.filter(|o| *o != ours) {
            let old = self.out.join(old);
            std::fs::remove_dir_all(&old).map_err(Error::file("removing", &old))?;
        }
        Ok(())
    }

    /// The manifest, synced, then the links, then the switch to `ours`.
    fn switch(&self, manifest: &Manifest, ours: &Path) -> Result<()> {
        let path = self.generation.join(FILE_NAME);
        fsutil::write_atomic(&path, manifest.to_json().as_bytes())
            .map_err(Error::file("writing", &path))?;
        fsutil::sync_dir(&self.generation).map_err(Error::file("syncing", &self.generation))?;
        self.link_published()?;
        replace_link(ours, &self.out.join(CURRENT))
    }

    /// Removes the unpublished generation (after a failed build).
    pub fn abandon(self) {
        // Best effort: the build's error is what the user needs to see; the
        // next build removes what is left.
        let _ = std::fs::remove_dir_all(&self.generation);
    }

    /// Makes each published name a link through [`CURRENT`]. An earlier
    /// almr's build, with real files under these names, is taken down
    /// manifest first, so that a kill leaves no manifest over a mixture.
    fn link_published(&self) -> Result<()> {
        for name in PUBLISHED {
            let path = self.out.join(name);
            let target = Path::new(CURRENT).join(name);
            if !self.generation.join(name).exists() {
                if path.is_symlink() {
                    std::fs::remove_file(&path).map_err(Error::file("removing", &path))?;
                }
                continue;
            }
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() => {
                    if std::fs::read_link(&path).ok().as_deref() != Some(&target) {
                        replace_link(&target, &path)?;
                    }
                }
                Ok(m) if m.is_dir() => {
                    std::fs::remove_dir_all(&path).map_err(Error::file("removing", &path))?
                }
                Ok(_) => std::fs::remove_file(&path).map_err(Error::file("removing", &path))?,
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(Error::file("reading", &path)(e)),
            }
            if !path.is_symlink() {
                symlink(&target, &path).map_err(Error::file("linking", &path))?;
            }
        }
        Ok(())
    }
}

/// Points the link `path` at `target` in one rename: the link is made under
/// a temporary name first.
fn replace_link(target: &Path, path: &Path) -> Result<()> {
    let tmp = fsutil::partial_path(path);
    let _ = std::fs::remove_file(&tmp);
    symlink(target, &tmp).map_err(Error::file("linking", &tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::file("publishing", path))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    fsutil::sync_dir(dir).map_err(Error::file("syncing", dir))
}

/// Makes sure almr may write `out`: it is created (with the marker) when
/// absent or empty, and must be an almr output otherwise.
fn claim(out: &Path) -> Result<()> {
    match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            std::fs::create_dir_all(out).map_err(Error::file("creating", out))?;
        }
        Err(e) => return Err(Error::file("reading", out)(e)),
        Ok(_) if !out.is_dir() => {
            return Err(Error::Invalid(format!(
                "{} exists and is not a directory; give a new or empty directory as the output",
                out.display()
            )))
        }
        Ok(_) => {}
    }
    let entries = entries(out)?;
    let owned = |e: &String| e == MARKER || e == FILE_NAME || e == GENERATIONS;
    if entries.iter().any(owned) {
        return Ok(());
    }
    let foreign: Vec<&String> = entries.iter().filter(|e| *e != LEGACY_STAGING).collect();
    if !foreign.is_empty() {
        return Err(not_ours(out, &foreign));
    }
    let marker = out.join(MARKER);
    let note =
        "written by almr: this directory is a build output, and almr may replace its contents\n";
    fsutil::write_atomic(&marker, note.as_bytes()).map_err(Error::file("writing", &marker))
}

/// The names in `dir`, sorted.
fn entries(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).map_err(Error::file("listing", dir))? {
        let e = e.map_err(Error::file("listing", dir))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

fn not_ours(out: &Path, foreign: &[&String]) -> Error {
    let shown: Vec<&str> = foreign.iter().take(5).map(|s| s.as_str()).collect();
    let more = match foreign.len() {
        n if n > 5 => format!(" and {} more", n - 5),
        _ => String::new(),
    };
    Error::Invalid(format!(
        "{} is not empty and is not an almr output (it holds {}{more}); almr will not \
         write into it: give a new or empty directory as the output",
        out.display(),
        shown.join(", "),
    ))
}

/// Takes the lock on `out`, without waiting, and writes our pid into it.
fn lock(out: &Path) -> Result<File> {
    let path = out.join(LOCK);
    match fsutil::lock_with_pid(&path).map_err(Error::file("locking", &path))? {
        Ok(file) => Ok(file),
        Err(holder) => Err(Error::Invalid(format!(
            "{} is being written by {}, which holds {}; wait for it to finish or stop it",
            out.display(),
            fsutil::holder_name(&holder),
            path.display()
        ))),
    }
}

/// Removes what killed builds left: generations `.current` does not name,
/// a half-made link, and an earlier almr version's staging directory.
fn remove_stale(out: &Path) -> Result<()> {
    let current = current_generation(out);
    let generations = out.join(GENERATIONS);
    match std::fs::symlink_metadata(&generations) {
        Ok(m) if !m.is_dir() => {
            return Err(Error::Invalid(format!(
                "{} is not a directory almr made (a link or a file): almr will not remove \
                 anything through it; remove it yourself",
                generations.display()
            )))
        }
        _ => {}
    }
    if generations.is_dir() {
        for name in entries(&generations)? {
            let path = generations.join(&name);
            if current.as_deref() != Some(&Path::new(GENERATIONS).join(&name)) {
                std::fs::remove_dir_all(&path).map_err(Error::file("removing stale", &path))?;
            }
        }
    }
    for stale in [
        fsutil::partial_path(&out.join(CURRENT)),
        out.join(LEGACY_STAGING),
    ] {
        if stale.is_dir() && !stale.is_symlink() {
            std::fs::remove_dir_all(&stale).map_err(Error::file("removing stale", &stale))?;
        } else if stale.symlink_metadata().is_ok() {
            std::fs::remove_file(&stale).map_err(Error::file("removing stale", &stale))?;
        }
    }
    Ok(())
}

/// The generation `OUT/.current` names, when it names one the way almr
/// makes the link: `.generations/NAME`. Anything else (a link a user made,
/// an absolute path, `..`) is never followed to remove what it names.
fn current_generation(out: &Path) -> Option<PathBuf> {
    let link = std::fs::read_link(out.join(CURRENT)).ok()?;
    let mut parts = link.components();
    let ours = matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(Component::Normal(g)), Some(Component::Normal(_)), None) if g == GENERATIONS
    );
    ours.then_some(link)
}

/// A name no earlier generation has: the time and our pid.
fn generation_name() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}.{:09}-{}",
        now.as_secs(),
        now.subsec_nanos(),
        std::process::id()
    )
}
