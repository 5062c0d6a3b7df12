//! The `.idx` bytes of a tiny shard, against a layout worked out by hand from
//! Megatron-LM's `MMIDIDX` format (design.md).

use almr::shard::{bin_path, idx_path, DType, ShardWriter};

#[test]
fn idx_bytes_match_the_hand_computed_layout() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("tiny");
    let mut w = ShardWriter::create(&prefix, DType::I32).unwrap();
    w.push(&[128000, 9906, 128001]).unwrap(); // 3 tokens
    w.push(&[128001]).unwrap(); // 1 token
    let summary = w.finish().unwrap();
    assert_eq!((summary.documents, summary.tokens), (2, 4));

    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        // magic "MMIDIDX\0\0"
        0x4D, 0x4D, 0x49, 0x44, 0x49, 0x44, 0x58, 0x00, 0x00,
        // version = 1 (u64)
        0x01, 0, 0, 0, 0, 0, 0, 0,
        // dtype code 4 = int32 (u8)
        0x04,
        // sequence_count = 2 (u64)
        0x02, 0, 0, 0, 0, 0, 0, 0,
        // document_count = 3 (u64, documents + 1)
        0x03, 0, 0, 0, 0, 0, 0, 0,
        // sequence_lengths: 3, 1 (i32)
        0x03, 0, 0, 0,
        0x01, 0, 0, 0,
        // sequence_pointers: 0, 12 bytes (i64)
        0x00, 0, 0, 0, 0, 0, 0, 0,
        0x0C, 0, 0, 0, 0, 0, 0, 0,
        // document_indices: 0, 1, 2 (i64)
        0x00, 0, 0, 0, 0, 0, 0, 0,
        0x01, 0, 0, 0, 0, 0, 0, 0,
        0x02, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(std::fs::read(idx_path(&prefix)).unwrap(), expected);

    // .bin: the ids as little-endian int32, no header, no padding.
    #[rustfmt::skip]
    let bin: Vec<u8> = vec![
        0x00, 0xF4, 0x01, 0x00, // 128000
        0xB2, 0x26, 0x00, 0x00, // 9906 = 0x26B2
        0x01, 0xF4, 0x01, 0x00, // 128001
        0x01, 0xF4, 0x01, 0x00, // 128001
    ];
    assert_eq!(std::fs::read(bin_path(&prefix)).unwrap(), bin);
}

#[test]
fn u16_shards_use_dtype_code_8_and_two_byte_pointers() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("small");
    let mut w = ShardWriter::create(&prefix, DType::U16).unwrap();
    w.push(&[1, 2]).unwrap();
    w.push(&[3]).unwrap();
    w.finish().unwrap();
    let idx = std::fs::read(idx_path(&prefix)).unwrap();
    assert_eq!(idx[17], 8);
    // second pointer: 2 tokens × 2 bytes
    let ptr1 = i64::from_le_bytes(idx[34 + 8 + 8..34 + 8 + 16].try_into().unwrap());
    assert_eq!(ptr1, 4);
    assert_eq!(
        std::fs::read(bin_path(&prefix)).unwrap(),
        [1, 0, 2, 0, 3, 0]
    );
}
