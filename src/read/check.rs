//! The integrity pass over an input file, made before any of its records is
//! read: a file whose check fails contributes no documents.
//!
//! One pass over the raw bytes gives the file's SHA-256 (for the manifest)
//! and, for a compressed file, decompresses it to the end: gzip's CRC and
//! length, and zstd's frame checksums, are only known there, after the
//! records they cover. A Parquet file has every page of its text and id
//! columns decoded. Only a file that passes is then read for its records.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::{compression_of, Compression, Format, Item, Malformed, MalformedReason, ReadSettings};
use crate::fsutil::{FileDigest, HashingReader};

/// What the integrity pass found.
#[derive(Debug)]
pub struct Checked {
    /// Size and SHA-256 of the file (of what could be read of it).
    pub digest: FileDigest,
    /// Why the file fails its check, as the one malformed item it
    /// contributes instead of its records; `None` when it passes.
    pub failure: Option<Malformed>,
}

/// Checks `path` as `settings` will read it.
pub fn check(path: &Path, settings: &ReadSettings) -> Checked {
    let result = match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(io::Error::other("not a regular file")),
        Ok(_) if settings.format == Format::Parquet => check_parquet(path, settings),
        Ok(_) => check_stream(path),
        Err(e) => Err(e),
    };
    result.unwrap_or_else(|e| Checked {
        digest: no_digest(),
        failure: Some(Malformed {
            line: 0,
            id: None,
            reason: MalformedReason::UnreadableFile,
            detail: format!("cannot read the file: {e}"),
        }),
    })
}

/// A JSONL or text file: hashed, and decompressed to the end (counting
/// lines, to say where a failure shows).
fn check_stream(path: &Path) -> io::Result<Checked> {
    let mut raw = HashingReader::new(File::open(path)?);
    let kind = compression_of(path);
    let decoded = match kind {
        Compression::None => count_lines(&mut raw),
        Compression::Gzip => count_lines(&mut flate2::read::MultiGzDecoder::new(BufReader::new(
            &mut raw,
        ))),
        Compression::Zstd => match zstd::Decoder::new(&mut raw) {
            Ok(mut d) => count_lines(&mut d),
            Err(e) => Err((0, e)),
        },
    };
    let failure = decoded.err().map(|(lines, e)| {
        let what = match kind {
            Compression::None => "the file could not be read to its end",
            Compression::Gzip => "the gzip stream is corrupt or truncated",
            Compression::Zstd => "the zstd stream is corrupt or truncated",
        };
        integrity_failure(lines + 1, format!("{what} ({e}) after line {lines}"), lines)
    });
    let digest = raw.finish().unwrap_or_else(|_| no_digest());
    Ok(Checked { digest, failure })
}

/// The digest of a file that cannot be read: no bytes, no checksum.
fn no_digest() -> FileDigest {
    FileDigest {
        bytes: 0,
        sha256: String::new(),
    }
}

/// A Parquet file: hashed, then its columns decoded through the reader
/// that will read it.
fn check_parquet(path: &Path, settings: &ReadSettings) -> io::Result<Checked> {
    let digest = HashingReader::new(File::open(path)?).finish()?;
    let label = path.display().to_string();
    let progress = Arc::new(AtomicU64::new(0));
    let fields = settings.fields.clone();
    let reader = match super::ParquetReader::open(path, label, fields, progress) {
        Ok(r) => r,
        Err(e) => {
            // The file was read: its digest stands beside the failure.
            let failure = Malformed {
                line: 0,
                id: None,
                reason: MalformedReason::UnreadableFile,
                detail: format!("not a readable Parquet file: {e}"),
            };
            return Ok(Checked {
                digest,
                failure: Some(failure),
            });
        }
    };
    for (rows, item) in reader.enumerate() {
        if let Item::Bad(m) = &item {
            if m.reason == MalformedReason::ReadError {
                let detail = format!("a page fails to decode: {}", m.detail);
                let failure = integrity_failure(m.line, detail, rows as u64);
                return Ok(Checked {
                    digest,
                    failure: Some(failure),
                });
            }
        }
    }
    Ok(Checked {
        digest,
        failure: None,
    })
}

/// The one item a file that fails its check contributes.
fn integrity_failure(line: u64, what: String, records: u64) -> Malformed {
    Malformed {
        line,
        id: None,
        reason: MalformedReason::ReadError,
        detail: format!(
            "{what}; the file fails its integrity check and contributes no records \
             (the {records} records before the error are withdrawn)"
        ),
    }
}

/// Reads `r` to its end, counting newlines; on an error, the lines before it.
fn count_lines(r: &mut dyn Read) -> Result<u64, (u64, io::Error)> {
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(lines),
            Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((lines, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::read::{Fields, TextUnit};

    fn settings(format: Format) -> ReadSettings {
        ReadSettings {
            format,
            fields: Fields {
                text: "text".into(),
                id: None,
            },
            text_unit: TextUnit::Line,
            chat_schema: Default::default(),
        }
    }

    fn gzip(lines: usize) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for i in 0..lines {
            writeln!(
                enc,
                "{{\"text\": \"line {i} of a test file with some words\"}}"
            )
            .unwrap();
        }
        enc.finish().unwrap()
    }

    #[test]
    fn a_clean_gzip_file_passes_with_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl.gz");
        std::fs::write(&path, gzip(100)).unwrap();
        let c = check(&path, &settings(Format::Jsonl));
        assert!(c.failure.is_none(), "{:?}", c.failure);
        assert_eq!(c.digest, crate::fsutil::digest_file(&path).unwrap());
    }

    #[test]
    fn flipped_or_truncated_gzip_fails_as_one_read_error() {
        let dir = tempfile::tempdir().unwrap();
        let good = gzip(2000);
        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        for b in &mut flipped[mid..mid + 10] {
            *b ^= 0x5a;
        }
        let truncated = good[..good.len() - 7].to_vec();
        for (name, bytes) in [("flipped", flipped), ("truncated", truncated)] {
            let path = dir.path().join(format!("{name}.jsonl.gz"));
            std::fs::write(&path, &bytes).unwrap();
            let c = check(&path, &settings(Format::Jsonl));
            let m = c.failure.unwrap_or_else(|| panic!("{name} passed"));
            assert_eq!(m.reason, MalformedReason::ReadError, "{name}");
            assert!(m.detail.contains("gzip"), "{name}: {}", m.detail);
            assert_eq!(c.digest.bytes, bytes.len() as u64, "{name}");
        }
    }

    #[test]
    fn truncated_zstd_fails() {
        let dir = tempfile::tempdir().unwrap();
        let data = zstd::encode_all(&b"{\"text\": \"x\"}\n".repeat(500)[..], 3).unwrap();
        let path = dir.path().join("a.jsonl.zst");
        std::fs::write(&path, &data[..data.len() - 5]).unwrap();
        let m = check(&path, &settings(Format::Jsonl)).failure.unwrap();
        assert!(m.detail.contains("zstd"), "{}", m.detail);
    }

    #[test]
    fn a_parquet_page_that_fails_to_decode_fails_the_file() {
        use arrow_array::{ArrayRef, RecordBatch, StringArray};
        use parquet::basic::{Compression as Codec, ZstdLevel};
        use parquet::file::properties::WriterProperties;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.parquet");
        let texts: Vec<String> = (0..20_000)
            .map(|i| format!("document {i} with words"))
            .collect();
        let col: ArrayRef = std::sync::Arc::new(StringArray::from(texts));
        let batch = RecordBatch::try_from_iter([("text", col)]).unwrap();
        let props = WriterProperties::builder()
            .set_compression(Codec::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(4096))
            .build();
        let file = File::create(&path).unwrap();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        assert!(check(&path, &settings(Format::Parquet)).failure.is_none());
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        for b in &mut bytes[mid..mid + 16] {
            *b ^= 0x5a;
        }
        std::fs::write(&path, &bytes).unwrap();
        let m = check(&path, &settings(Format::Parquet)).failure.unwrap();
        assert_eq!(m.reason, MalformedReason::ReadError);
        assert!(m.detail.contains("page fails to decode"), "{}", m.detail);
    }

    #[test]
    fn a_directory_or_missing_file_is_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        for path in [dir.path().to_path_buf(), dir.path().join("none.jsonl")] {
            let m = check(&path, &settings(Format::Jsonl)).failure.unwrap();
            assert_eq!(m.reason, MalformedReason::UnreadableFile);
        }
    }
}
