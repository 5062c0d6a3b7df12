//! Byte-level BPE model: turns one pre-tokenized piece into token ids.
//!
//! A piece starts as one token per byte. Merging follows `tokenizers`'
//! `Word::merge_all`: apply the pair with the lowest merge rank, the leftmost
//! one on ties, until no pair has a merge. Pairs are keyed by the two token
//! ids, as in `tokenizers`, not by their bytes: a token that several merges
//! can build would otherwise come out differently. Short pieces, nearly all of
//! them, are merged by a scan over a small array; long ones with a heap.
//!
//! There is no cache of pieces already seen: with one, Llama-3 ran 20 %
//! slower and Qwen3 no faster (`docs/benchmarks.md`). Most repeated pieces are
//! short and merge in a few steps, or are whole vocabulary entries.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use foldhash::{HashMap, HashMapExt};
use serde_json::Value;

/// Pieces up to this many bytes are merged by scanning, longer ones with a heap.
const SCAN_MAX: usize = 64;

/// GPT-2's table from bytes to the chars that byte-level vocabularies use.
fn byte_chars() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut shifted = 0;
    for (b, slot) in table.iter_mut().enumerate() {
        let printable = (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
        *slot = if printable {
            char::from(b as u8)
        } else {
            shifted += 1;
            char::from_u32(255 + shifted).expect("below U+0200")
        };
    }
    table
}

/// A byte-level BPE model read from a `tokenizer.json` `model` object.
pub struct ByteBpe {
    /// The id of each single byte.
    byte_id: [u32; 256],
    /// (left id, right id) → (rank, merged id).
    merges: HashMap<u64, (u32, u32)>,
    /// Whole pieces found in the vocabulary skip merging (`ignore_merges`).
    whole: Option<HashMap<Box<[u8]>, u32>>,
}

#[inline(always)]
fn pair_key(a: u32, b: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(b)
}

impl ByteBpe {
    /// Reads a BPE `model` object; `Err` says what the fast path cannot do
    /// exactly as `tokenizers` does.
    pub fn from_model(m: &Value) -> Result<ByteBpe, String> {
        if m["type"] != "BPE" {
            return Err(format!("model type {} is not BPE", m["type"]));
        }
        if !m["dropout"].is_null() {
            return Err("BPE dropout is set".into());
        }
        if !m["unk_token"].is_null() {
            return Err("BPE has an unknown token".into());
        }
        if m["byte_fallback"] == true {
            return Err("BPE byte fallback is on".into());
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if !(m[key].is_null() || m[key] == "") {
                return Err(format!("BPE {key} is set"));
            }
        }
        let chars = byte_chars();
        // Every char of the table is below U+0144.
        let mut byte_of = [None; 0x144];
        for (b, &c) in (0..=255u8).zip(&chars) {
            byte_of[c as usize] = Some(b);
        }
        let vocab: HashMap<&str, u32> = m["vocab"]
            .as_object()
            .ok_or("BPE has no vocab")?
            .iter()
            .map(|(tok, id)| {
                let id = id.as_u64().and_then(|id| u32::try_from(id).ok());
                Ok((
                    tok.as_str(),
                    id.ok_or_else(|| format!("bad id for {tok:?}"))?,
                ))
            })
            .collect::<Result<_, String>>()?;
        let id_of = |tok: &str| -> Result<u32, String> {
            vocab
                .get(tok)
                .copied()
                .ok_or_else(|| format!("{tok:?} is not in the vocab"))
        };
        let mut byte_id = [0; 256];
        for (b, id) in byte_id.iter_mut().enumerate() {
            *id = id_of(chars[b].encode_utf8(&mut [0; 4]))?;
        }
        let whole = (m["ignore_merges"] == true).then(|| {
            vocab
                .iter()
                .filter_map(|(tok, &id)| {
                    let bytes: Option<Box<[u8]>> =
                        tok.chars().map(|c| *byte_of.get(c as usize)?).collect();
                    Some((bytes?, id))
                })
                .collect()
        });
        let list = m["merges"].as_array().ok_or("BPE has no merges")?;
        let mut merges = HashMap::with_capacity(list.len());
        let mut joined = String::new();
        for (rank, merge) in list.iter().enumerate() {
            let (a, b) = match merge {
                Value::String(s) => s.split_once(' '),
                Value::Array(p) if p.len() == 2 => p[0].as_str().zip(p[1].as_str()),
                _ => None,
            }
            .ok_or_else(|| format!("merge {rank} is not a pair: {merge}"))?;
            joined.clear();
            joined.push_str(a);
            joined.push_str(b);
            let merged = id_of(&joined)?;
            let rank = u32::try_from(rank).map_err(|_| "too many merges")?;
            // Later duplicates win, as in `tokenizers`.
            merges.insert(pair_key(id_of(a)?, id_of(b)?), (rank, merged));
        }
        Ok(ByteBpe {
            byte_id,
            merges,
            whole,
        })
    }

    /// Appends the ids of one piece of bytes to `out`.
    #[inline]
    pub fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        if let [b] = piece {
            out.push(self.byte_id[usize::from(*b)]);
            return;
        }
        if let Some(&id) = self.whole.as_ref().and_then(|w| w.get(piece)) {
            out.push(id);
            return;
        }
        if piece.len() <= SCAN_MAX {
            self.merge_by_scan(piece, out);
        } else {
            self.merge_by_heap(piece, out);
        }
    }

    /// (rank, merged id) of a pair, rank `u32::MAX` when it has no merge.
    #[inline(always)]
    fn merge_of(&self, a: u32, b: u32) -> (u32, u32) {
        self.merges
            .get(&pair_key(a, b))
            .copied()
            .unwrap_or((u32::MAX, 0))
    }

    /// Merges a short piece by finding the best pair with a linear scan.
    fn merge_by_scan(&self, piece: &[u8], out: &mut Vec<u32>) {
        // (id, rank of the pair with the next part, id that pair merges to),
        // on the stack: most pieces are a few bytes long.
        let mut buf = [(0, u32::MAX, 0); SCAN_MAX];
        let mut n = piece.len();
        for (part, &b) in buf.iter_mut().zip(piece) {
            part.0 = self.byte_id[usize::from(b)];
        }
        for i in 0..n - 1 {
            (buf[i].1, buf[i].2) = self.merge_of(buf[i].0, buf[i + 1].0);
        }
        loop {
            let parts = &mut buf[..n];
            let (at, best) = parts.iter().enumerate().fold((0, u32::MAX), |acc, (i, p)| {
                if p.1 < acc.1 {
                    (i, p.1)
                } else {
                    acc
                }
            });
            if best == u32::MAX {
                break;
            }
            parts[at].0 = parts[at].2;
            parts.copy_within(at + 2.., at + 1);
            n -= 1;
            (buf[at].1, buf[at].2) = if at + 1 < n {
                self.merge_of(buf[at].0, buf[at + 1].0)
            } else {
                (u32::MAX, 0)
            };
            if at > 0 {
                (buf[at - 1].1, buf[at - 1].2) = self.merge_of(buf[at - 1].0, buf[at].0);
            }
        }
        out.extend(buf[..n].iter().map(|p| p.0));
    }

    /// Merges a long piece with a heap of candidate pairs over a linked list,
    /// skipping candidates that earlier merges made stale.
    fn merge_by_heap(&self, piece: &[u8], out: &mut Vec<u32>) {
        let n = piece.len();
        let mut id: Vec<u32> = piece
            .iter()
            .map(|&b| self.byte_id[usize::from(b)])
            .collect();
        // Neighbours in the list; `usize::MAX` and `n` mark the two ends.
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut next: Vec<usize> = (1..=n).collect();
        let mut alive = vec![true; n];
        let mut heap = BinaryHeap::new();
        let push = |heap: &mut BinaryHeap<_>, pos: usize, a: u32, b: u32| {
            let (rank, merged) = self.merge_of(a, b);
            if rank != u32::MAX {
                heap.push(Reverse((rank, pos, merged)));
            }
        };
        for i in 0..n - 1 {
            push(&mut heap, i, id[i], id[i + 1]);
        }
        while let Some(Reverse((rank, pos, merged))) = heap.pop() {
            if !alive[pos]
                || next[pos] >= n
                || self.merge_of(id[pos], id[next[pos]]) != (rank, merged)
            {
                continue;
            }
            let gone = next[pos];
            id[pos] = merged;
            alive[gone] = false;
            next[pos] = next[gone];
            if next[pos] < n {
                prev[next[pos]] = pos;
                push(&mut heap, pos, id[pos], id[next[pos]]);
            }
            if prev[pos] < n {
                push(&mut heap, prev[pos], id[prev[pos]], id[pos]);
            }
        }
        let mut i = 0;
        while i < n {
            out.push(id[i]);
            i = next[i];
        }
    }
}
