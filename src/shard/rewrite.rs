//! Rewriting a shard in place, keeping chosen documents.

use std::path::Path;

use super::{with_suffix, ShardError, ShardReader, ShardSummary, ShardWriter};

/// Rewrites the shard `PREFIX` keeping, in order, the documents for which
/// `keep(i)` is true. The new files are written next to the old ones under a
/// temporary prefix and renamed over them when complete. A shard left with
/// no document is deleted, and its summary says 0 documents.
pub fn keep_documents(
    prefix: &Path,
    keep: impl Fn(usize) -> bool,
) -> Result<ShardSummary, ShardError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| ShardError::Io { path, cause }
    };
    let reader = ShardReader::open(prefix)?;
    let tmp = with_suffix(prefix, ".rewrite");
    let mut writer = ShardWriter::create(&tmp, reader.dtype()).map_err(io(&tmp))?;
    let mut ids = Vec::new();
    for i in (0..reader.len()).filter(|&i| keep(i)) {
        ids.clear();
        reader.read_into(i, &mut ids)?;
        writer.push(&ids).map_err(io(&tmp))?;
    }
    drop(reader);
    let mut summary = writer.finish().map_err(io(&tmp))?;
    for suffix in [".bin", ".idx"] {
        let (from, to) = (with_suffix(&tmp, suffix), with_suffix(prefix, suffix));
        match summary.documents {
            0 => std::fs::remove_file(&from)
                .and_then(|()| std::fs::remove_file(&to))
                .map_err(io(&to))?,
            _ => std::fs::rename(&from, &to).map_err(io(&to))?,
        }
    }
    summary.prefix = prefix.to_path_buf();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::DType;

    #[test]
    fn keeps_the_chosen_documents_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("s");
        let mut w = ShardWriter::create(&prefix, DType::U16).unwrap();
        for doc in [&[1u32, 2][..], &[3], &[4, 5, 6]] {
            w.push(doc).unwrap();
        }
        w.finish().unwrap();
        let s = keep_documents(&prefix, |i| i != 1).unwrap();
        assert_eq!((s.documents, s.tokens), (2, 5));
        let r = ShardReader::open(&prefix).unwrap();
        assert_eq!(
            (r.get(0).unwrap(), r.get(1).unwrap()),
            (vec![1, 2], vec![4, 5, 6])
        );
        assert!(!with_suffix(&prefix, ".rewrite.bin").exists());
        let s = keep_documents(&prefix, |_| false).unwrap();
        assert_eq!(s.documents, 0);
        assert!(!with_suffix(&prefix, ".bin").exists());
        assert!(!with_suffix(&prefix, ".idx").exists());
    }
}
