//! File helpers: checksumming readers and writers, and atomic writes.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Size and SHA-256 of a file, as listed in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileDigest {
    /// Length in bytes.
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the contents.
    pub sha256: String,
}

/// A writer that hashes and counts everything written through it, so output
/// checksums cost no second pass over the file.
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Flushes and returns the inner writer with the digest of what was written.
    pub fn finish(mut self) -> io::Result<(W, FileDigest)> {
        self.inner.flush()?;
        let digest = FileDigest {
            bytes: self.bytes,
            sha256: hex(&self.hasher.finalize()),
        };
        Ok((self.inner, digest))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A buffered, hashing writer to a new file.
pub fn create_hashed(path: &Path) -> io::Result<HashingWriter<BufWriter<File>>> {
    let file = File::create(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    Ok(HashingWriter::new(BufWriter::with_capacity(1 << 20, file)))
}

/// Flushes a hashed file writer to disk and returns the file's digest.
pub fn finish_hashed(w: HashingWriter<BufWriter<File>>) -> io::Result<FileDigest> {
    let (buf, digest) = w.finish()?;
    buf.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(digest)
}

/// A reader that hashes and counts everything read through it, so a file's
/// checksum comes out of a pass that also decodes it.
pub struct HashingReader<R: Read> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Reads what is left of the input, and returns the digest of all of it.
    pub fn finish(mut self) -> io::Result<FileDigest> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(FileDigest {
            bytes: self.bytes,
            sha256: hex(&self.hasher.finalize()),
        })
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Size and SHA-256 of an existing file, read in one streaming pass.
pub fn digest_file(path: &Path) -> io::Result<FileDigest> {
    let file = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    HashingReader::new(file).finish()
}

/// Lower-case hex of a SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `data` to `path` atomically: to `path.partial` first, then renamed.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = partial_path(path);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Takes an exclusive lock on `path` (created if absent) without waiting,
/// and writes our pid into it; the lock lasts as long as the returned file
/// is open, and ends with the process however it ends. `Ok(Err(holder))`
/// when another process holds it: its pid, as it wrote it, or `""`.
pub fn lock_with_pid(path: &Path) -> io::Result<Result<File, String>> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    if file.try_lock().is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Ok(Err(holder.trim().to_string()));
    }
    file.set_len(0)?;
    writeln!(file, "{}", std::process::id())?;
    file.flush()?;
    Ok(Ok(file))
}

/// Names the holder of a lock from what [`lock_with_pid`] returned:
/// `almr (pid N)`, or `another almr process` when the pid is not known.
pub fn holder_name(pid: &str) -> String {
    match pid {
        "" => String::from("another almr process"),
        pid => format!("almr (pid {pid})"),
    }
}

/// `print!` that returns the write's error instead of panicking: a closed
/// pipe (`almr … | head`) is an error the caller can end quietly on, see
/// [`is_broken_pipe`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        std::io::Write::write_fmt(&mut std::io::stdout().lock(), format_args!($($arg)*))
    };
}

/// `println!` that returns the write's error, as [`out!`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        std::io::Write::write_fmt(&mut std::io::stdout().lock(), format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Whether `e`, or any error under it, is a write to a pipe whose reader
/// has gone: the end of a command's output, as `cat` and `rg` treat it.
pub fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Syncs a directory, so that the renames and new names in it are on disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The temporary name a file is written under before its final rename.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_writer_matches_digest_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        let mut w = create_hashed(&path).unwrap();
        w.write_all(b"abc").unwrap();
        let d = finish_hashed(w).unwrap();
        assert_eq!(d, digest_file(&path).unwrap());
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.bytes, 3);
    }

    #[test]
    fn atomic_write_leaves_no_partial() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        write_atomic(&path, b"{}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        assert!(!partial_path(&path).exists());
    }
}
