//! The exact stage: task `e` merges every map task's `exact.bin` over its
//! share of the key space (the top 64 bits cut into E equal ranges). Of the
//! records with one key, the first in pipeline order is kept; each other
//! is a duplicate. Writes `drops.bin`: `(duplicate, first)` global record
//! numbers, sorted. Memory: one entry per map task, and the drops.

use std::path::Path;

use serde_json::json;

use super::runs::{self, Table};
use super::task::Context;
use super::Stage;
use crate::error::Result;

/// The drops file of an exact task.
pub const DROPS: &str = "drops.bin";

/// Runs exact task `ctx.task` into `dir`.
pub fn run(ctx: &Context, dir: &Path) -> Result<serde_json::Value> {
    let offsets = ctx.record_offsets()?;
    let tables = (0..ctx.plan.map.len())
        .map(|t| Table::<3>::open(&ctx.dir_of(Stage::Map, t).join("exact.bin")))
        .collect::<Result<Vec<_>>>()?;
    let (lo, hi) = key_range(ctx.task, ctx.plan.exact_tasks);
    let streams: Vec<_> = tables
        .iter()
        .zip(&offsets)
        .map(|(table, &offset)| {
            let from = table.lower_bound(&[lo, 0, 0]);
            let to = match hi {
                Some(hi) => table.lower_bound(&[hi, 0, 0]),
                None => table.len(),
            };
            table
                .range(from, to)
                .map(move |[h, l, r]| [h, l, r + offset])
        })
        .collect();
    let mut drops: Vec<[u64; 2]> = Vec::new();
    let mut first: Option<([u64; 2], u64)> = None;
    let mut keys = 0u64;
    for [h, l, r] in runs::merge(streams) {
        match first {
            Some((key, f)) if key == [h, l] => drops.push([r, f]),
            _ => {
                first = Some(([h, l], r));
                keys += 1;
            }
        }
    }
    ctx.half_way()?;
    drops.sort_unstable();
    runs::write(&dir.join(DROPS), &drops)?;
    Ok(json!({ "keys": keys, "duplicates": drops.len() }))
}

/// The range of top-64-bit key values of task `task` of `tasks`: `[lo, hi)`,
/// `hi` `None` for the last.
fn key_range(task: usize, tasks: usize) -> (u64, Option<u64>) {
    let at = |t: usize| ((t as u128) << 64) / tasks as u128;
    let hi = match task + 1 == tasks {
        true => None,
        false => Some(at(task + 1) as u64),
    };
    (at(task) as u64, hi)
}

/// Every exact duplicate, `(duplicate, first)`, sorted.
pub fn all_drops(ctx: &Context) -> Result<Vec<[u64; 2]>> {
    let mut all = Vec::new();
    for t in 0..ctx.plan.exact_tasks {
        let table = Table::<2>::open(&ctx.dir_of(Stage::Exact, t).join(DROPS))?;
        all.extend(table.iter());
    }
    all.sort_unstable();
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ranges_tile_the_key_space() {
        assert_eq!(key_range(0, 1), (0, None));
        assert_eq!(key_range(0, 2), (0, Some(1 << 63)));
        assert_eq!(key_range(1, 2), (1 << 63, None));
    }
}
