//! Token shards in Megatron-LM's `MMIDIDX` indexed-dataset format.
//!
//! A shard `PREFIX` is `PREFIX.bin` (the token ids of every document,
//! concatenated, no header, no padding) plus `PREFIX.idx`, little-endian:
//!
//! | field | type |
//! |---|---|
//! | magic | the 9 bytes `MMIDIDX\0\0` |
//! | version | u64 = 1 |
//! | dtype code | u8 (see [`DType`]) |
//! | sequence_count | u64 |
//! | document_count | u64 (documents + 1) |
//! | sequence_lengths | i32 × sequence_count |
//! | sequence_pointers | i64 × sequence_count (byte offsets into `.bin`) |
//! | document_indices | i64 × document_count (0, 1, …, N) |
//!
//! The full spec is `schemas/mmidx.md`.

mod reader;
mod rewrite;
mod writer;

use serde::{Deserialize, Serialize};

pub use self::reader::{ShardError, ShardReader};
pub use self::rewrite::keep_documents;
pub use self::writer::{write_index, ShardSummary, ShardWriter};

/// The 9 magic bytes that open every `.idx` file.
pub const MAGIC: &[u8; 9] = b"MMIDIDX\x00\x00";
/// The only index version Megatron-LM writes.
pub const VERSION: u64 = 1;
/// Bytes before the sequence lengths: magic, version, dtype, two counts.
pub const HEADER_LEN: usize = 9 + 8 + 1 + 8 + 8;

/// Element type of a `.bin` file, with Megatron's dtype codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// code 1
    U8,
    /// code 2
    I8,
    /// code 3
    I16,
    /// code 4
    I32,
    /// code 5
    I64,
    /// code 6
    F64,
    /// code 7
    F32,
    /// code 8
    U16,
}

impl DType {
    /// Megatron's choice: u16 for vocabularies under 65500 ids, else i32.
    pub fn for_vocab_size(vocab_size: usize) -> DType {
        if vocab_size < 65500 {
            DType::U16
        } else {
            DType::I32
        }
    }

    /// The dtype code stored in the index.
    pub fn code(self) -> u8 {
        match self {
            DType::U8 => 1,
            DType::I8 => 2,
            DType::I16 => 3,
            DType::I32 => 4,
            DType::I64 => 5,
            DType::F64 => 6,
            DType::F32 => 7,
            DType::U16 => 8,
        }
    }

    /// The dtype for an index code, if the code is known.
    pub fn from_code(code: u8) -> Option<DType> {
        Some(match code {
            1 => DType::U8,
            2 => DType::I8,
            3 => DType::I16,
            4 => DType::I32,
            5 => DType::I64,
            6 => DType::F64,
            7 => DType::F32,
            8 => DType::U16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::U8 | DType::I8 => 1,
            DType::I16 | DType::U16 => 2,
            DType::I32 | DType::F32 => 4,
            DType::I64 | DType::F64 => 8,
        }
    }

    /// Whether token ids can be stored in this type.
    pub fn is_integer(self) -> bool {
        !matches!(self, DType::F32 | DType::F64)
    }

    /// The largest token id this type holds.
    pub fn max_id(self) -> u64 {
        match self {
            DType::U8 => u8::MAX as u64,
            DType::I8 => i8::MAX as u64,
            DType::I16 => i16::MAX as u64,
            DType::U16 => u16::MAX as u64,
            DType::I32 => i32::MAX as u64,
            DType::I64 => i64::MAX as u64,
            DType::F32 | DType::F64 => 0,
        }
    }

    /// numpy's name for the type, as Megatron's Python code sees it.
    pub fn numpy_name(self) -> &'static str {
        match self {
            DType::U8 => "uint8",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::F64 => "float64",
            DType::F32 => "float32",
            DType::U16 => "uint16",
        }
    }
}

/// `PREFIX.bin`
pub fn bin_path(prefix: &std::path::Path) -> std::path::PathBuf {
    with_suffix(prefix, ".bin")
}

/// `PREFIX.idx`
pub fn idx_path(prefix: &std::path::Path) -> std::path::PathBuf {
    with_suffix(prefix, ".idx")
}

/// `PREFIX` + `suffix`, keeping any dots already in the prefix.
pub fn with_suffix(prefix: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut s = prefix.as_os_str().to_os_string();
    s.push(suffix);
    s.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_codes_round_trip() {
        for code in 1..=8 {
            assert_eq!(DType::from_code(code).unwrap().code(), code);
        }
        assert_eq!(DType::from_code(0), None);
        assert_eq!(DType::from_code(9), None);
    }

    #[test]
    fn megatron_dtype_choice() {
        assert_eq!(DType::for_vocab_size(32000), DType::U16);
        assert_eq!(DType::for_vocab_size(65499), DType::U16);
        assert_eq!(DType::for_vocab_size(65500), DType::I32);
        assert_eq!(DType::for_vocab_size(128256), DType::I32);
    }

    #[test]
    fn suffixes_keep_dots() {
        let p = std::path::Path::new("out/shards/en.wiki/00000");
        assert_eq!(
            bin_path(p),
            std::path::Path::new("out/shards/en.wiki/00000.bin")
        );
        assert_eq!(
            idx_path(p),
            std::path::Path::new("out/shards/en.wiki/00000.idx")
        );
    }
}
