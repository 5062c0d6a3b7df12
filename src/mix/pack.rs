//! Packed (SFT) mixes of a build with chat sources: whole conversations,
//! blended by trained tokens and packed into sequences of at most `seq_len`.
//!
//! 1. Each source's conversations are read with their masks; a seeded draw
//!    holds out whole conversations for validation. A conversation longer
//!    than `seq_len` is dropped, or cut to `seq_len` tokens
//!    (`--too-long truncate`) when that keeps a trained token; both are
//!    counted.
//! 2. The blend takes conversations one at a time: the group (additional or
//!    not) furthest below its share of the trained (mask 1) tokens so far,
//!    then its source furthest below its weight, then that source's next
//!    conversation in a fresh seeded order for each epoch. It stops once the
//!    conversations hold `samples · seq_len` tokens.
//! 3. Every [`BLOCK`] conversations in blend order are packed by best-fit
//!    decreasing, and the block's sequences are shuffled with the seed, so
//!    every prefix of the stream keeps close to the ALMR. Validation
//!    conversations are packed per source.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;

use super::blend::WINDOW;
use super::plan::{self, lock, Catalog, MixOptions, Size, SourcePlan, TooLong};
use super::stream;
use crate::error::{Error, Result};
use crate::fsutil::{sha256_hex, write_atomic};
use crate::manifest::Manifest;
use crate::mixfile::index::DIR;
use crate::mixfile::packed::{self, Entry, MASK};
use crate::mixfile::report::{IndexFile, MixReport, MixSource, PackedSource, Packing};
use crate::shard::{with_suffix, ShardReader};

/// Conversations per packing block.
pub const BLOCK: usize = 4096;

/// Whether the build in `out` has chat shards; an error when it mixes them
/// with text shards.
pub fn is_chat_build(out: &Path) -> Result<bool> {
    let manifest = Manifest::load(out)?;
    let chat = manifest
        .shards
        .iter()
        .filter(|s| s.trained_tokens.is_some())
        .count();
    match (chat, manifest.shards.len()) {
        (0, _) => Ok(false),
        (c, n) if c == n => Ok(true),
        _ => Err(Error::Invalid(format!(
            "{}: the build has both chat and text sources; a mix is either packed conversations \
             (SFT) or windows of text (CPT): make one build for each",
            out.display()
        ))),
    }
}

/// A conversation as the packer sees it.
#[derive(Clone, Copy)]
struct Conv {
    doc: u32,
    /// Tokens it takes (its length, or `seq_len` when truncated).
    len: u32,
    /// Trained tokens among them.
    trained: u32,
}

/// One source's usable conversations.
struct Usable {
    train: Vec<Conv>,
    valid: Vec<Conv>,
    dropped: u64,
    truncated: u64,
}

/// Builds the packed mix `opts.name` over the chat build in `out`.
pub fn mix(out: &Path, opts: &MixOptions) -> Result<MixReport> {
    plan::check_name(opts)?;
    plan::check_overwrite(out, opts)?;
    let manifest = Manifest::load(out)?;
    let manifest_bytes = std::fs::read(out.join(crate::manifest::FILE_NAME))?;
    let catalog = plan::catalog(out, &manifest)?;
    plan::check_options(opts, &catalog)?;
    let mut sources: Vec<SourcePlan> = catalog
        .into_iter()
        .map(|c| plan::hold_out(c, opts))
        .collect();
    let usable = sources
        .iter()
        .map(|s| usable(out, s, opts))
        .collect::<Result<Vec<_>>>()?;
    for (s, u) in sources.iter_mut().zip(&usable) {
        s.train_tokens = u.train.iter().map(|c| c.trained as u64).sum();
    }
    let groups = [
        plan::group_weights(opts, &sources, true)?,
        plan::group_weights(opts, &sources, false)?,
    ];
    let share = [opts.almr, 1.0 - opts.almr];
    plan::check_groups(opts, &groups, &share)?;
    check_size(opts, &usable)?;
    let picked = blend(opts, &sources, &usable, &groups, &share)?;
    let train = pack_blocks(&picked, opts);
    let valid: Vec<Vec<Entry>> = (0..sources.len())
        .flat_map(|s| {
            pack(
                &usable[s]
                    .valid
                    .iter()
                    .map(|&c| (s as u16, c))
                    .collect::<Vec<_>>(),
                opts.seq_len,
            )
        })
        .collect();
    let _lock = lock(out, &opts.name)?;
    let sidecar = out.join(DIR).join(format!("{}.json", opts.name));
    if sidecar.exists() {
        std::fs::remove_file(&sidecar).map_err(Error::file("removing", &sidecar))?;
    }
    let path = PathBuf::from(DIR).join(format!("{}.mix", opts.name));
    let digest = packed::write(
        &out.join(&path),
        opts.seq_len,
        sources.len(),
        &train,
        &valid,
    )?;
    let facts = Facts {
        opts,
        sources: &sources,
        usable: &usable,
        groups: &groups,
        share: &share,
        picked: &picked,
        train: &train,
        valid: &valid,
        trained_by_doc: trained_by_doc(&sources, &usable),
    };
    let report = facts.report(IndexFile { path, digest }, sha256_hex(&manifest_bytes));
    write_atomic(&sidecar, report.to_json().as_bytes())
        .map_err(Error::file("writing", &sidecar))?;
    Ok(report)
}

/// Refuses an empty stream, and one that needs more than
/// [`plan::MAX_SAMPLES`] conversations (at their mean length), before
/// anything is allocated.
fn check_size(opts: &MixOptions, usable: &[Usable]) -> Result<()> {
    plan::check_samples(opts)?;
    let target = match opts.size {
        Size::Samples(n) => n.saturating_mul(opts.seq_len),
        Size::Tokens(t) => t,
    };
    let (convs, tokens) = usable
        .iter()
        .flat_map(|u| &u.train)
        .fold((0u64, 0u64), |(n, t), c| (n + 1, t + c.len as u64));
    let needed = match tokens {
        0 => 0,
        t => (target as u128 * convs as u128).div_ceil(t as u128),
    };
    match needed <= plan::MAX_SAMPLES as u128 {
        true => Ok(()),
        false => Err(Error::Invalid(format!(
            "{target} tokens need about {needed} conversations; a packed mix takes at most {}",
            plan::MAX_SAMPLES
        ))),
    }
}

/// A source's training and validation conversations that fit, with their
/// trained tokens, read from the masks.
fn usable(out: &Path, s: &SourcePlan, opts: &MixOptions) -> Result<Usable> {
    let trained = trained_tokens(out, &s.catalog, opts.seq_len)?;
    let mut u = Usable {
        train: Vec::new(),
        valid: Vec::new(),
        dropped: 0,
        truncated: 0,
    };
    let l = opts.seq_len as u32;
    let mut fit = |doc: u32, valid: bool| {
        let (len, (all, first)) = (s.catalog.lengths[doc as usize], trained[doc as usize]);
        let conv = match (len <= l, opts.too_long) {
            (true, _) => Conv {
                doc,
                len,
                trained: all,
            },
            (false, TooLong::Truncate) if first > 0 => {
                u.truncated += 1;
                Conv {
                    doc,
                    len: l,
                    trained: first,
                }
            }
            _ => {
                u.dropped += 1;
                return;
            }
        };
        match valid {
            true => u.valid.push(conv),
            false => u.train.push(conv),
        }
    };
    for &d in &s.lists.train {
        fit(d, false);
    }
    for &d in &s.lists.valid {
        fit(d, true);
    }
    Ok(u)
}

/// Per document: its trained tokens, and those in its first `seq_len`.
fn trained_tokens(out: &Path, c: &Catalog, seq_len: u64) -> Result<Vec<(u32, u32)>> {
    let mut per_doc = Vec::with_capacity(c.lengths.len());
    let mut bits = Vec::new();
    for sh in &c.shards {
        let mask = ShardReader::open(&with_suffix(&out.join(&sh.prefix), MASK))?;
        for d in 0..mask.len() {
            mask.read_into(d, {
                bits.clear();
                &mut bits
            })?;
            let all = bits.iter().filter(|&&b| b == 1).count() as u32;
            let first = bits
                .iter()
                .take(seq_len as usize)
                .filter(|&&b| b == 1)
                .count() as u32;
            per_doc.push((all, first));
        }
    }
    if per_doc.len() != c.lengths.len() {
        return Err(Error::Invalid(format!(
            "source {}: its masks list {} conversations, its shards {}",
            c.name,
            per_doc.len(),
            c.lengths.len()
        )));
    }
    Ok(per_doc)
}

/// The conversations of the training stream, in blend order.
fn blend(
    opts: &MixOptions,
    sources: &[SourcePlan],
    usable: &[Usable],
    groups: &[Vec<(usize, f64)>; 2],
    share: &[f64; 2],
) -> Result<Vec<(u16, Conv)>> {
    let target = match opts.size {
        Size::Samples(n) => n.saturating_mul(opts.seq_len),
        Size::Tokens(t) => t,
    };
    let mut taken = vec![Taken::default(); sources.len()];
    let mut group_trained = [0u64; 2];
    let (mut tokens, mut picked) = (0u64, Vec::new());
    while tokens < target {
        let total: u64 = group_trained.iter().sum();
        let g = furthest_below(share, &group_trained, total);
        let members = &groups[g];
        let weights: Vec<f64> = members.iter().map(|&(_, w)| w).collect();
        let counts: Vec<u64> = members.iter().map(|&(s, _)| taken[s].trained).collect();
        let s = members[furthest_below(&weights, &counts, group_trained[g])].0;
        let conv = taken[s].next(&usable[s].train, opts.seed, &sources[s].catalog.name)?;
        check_epochs(opts, &taken[s], &sources[s].catalog.name)?;
        taken[s].trained += conv.trained as u64;
        group_trained[g] += conv.trained as u64;
        tokens += conv.len as u64;
        picked.push((s as u16, conv));
    }
    Ok(picked)
}

/// The index of the member furthest below its share `w / Σw` of `total`:
/// the largest `w·total/Σw − count`, ties to the lowest; members with
/// weight 0 are never chosen.
fn furthest_below(weights: &[f64], counts: &[u64], total: u64) -> usize {
    let sum: f64 = weights.iter().sum();
    let mut best = (f64::NEG_INFINITY, 0);
    for (i, (&w, &c)) in weights.iter().zip(counts).enumerate() {
        let gap = w / sum * (total as f64 + 1.0) - c as f64;
        if w > 0.0 && gap > best.0 {
            best = (gap, i);
        }
    }
    best.1
}

/// Where a source's stream of training conversations stands.
#[derive(Clone, Default)]
struct Taken {
    order: Vec<usize>,
    next: usize,
    epochs: u64,
    trained: u64,
    conversations: u64,
}

impl Taken {
    /// The next conversation, starting a new seeded epoch when one ends.
    fn next(&mut self, convs: &[Conv], seed: u64, name: &str) -> Result<Conv> {
        if convs.is_empty() {
            return Err(Error::Invalid(format!(
                "source {name} has no conversation that fits --seq-len, so it cannot take its share"
            )));
        }
        if self.next == self.order.len() {
            self.order = (0..convs.len()).collect();
            self.order
                .shuffle(&mut stream::rng(seed, name, "sft-epoch", self.epochs));
            self.next = 0;
            self.epochs += 1;
        }
        self.next += 1;
        self.conversations += 1;
        Ok(convs[self.order[self.next - 1]])
    }
}

/// Refuses to repeat a source past `--max-epochs`.
fn check_epochs(opts: &MixOptions, t: &Taken, name: &str) -> Result<()> {
    let done = (t.epochs - 1) as f64 + t.next as f64 / t.order.len() as f64;
    match opts.max_epochs {
        Some(e) if done > e => Err(Error::Invalid(format!(
            "not enough data within --max-epochs {e}: source {name} would be repeated {done:.3} times"
        ))),
        _ => Ok(()),
    }
}

/// Packs the blend block by block, and shuffles each block's sequences.
fn pack_blocks(picked: &[(u16, Conv)], opts: &MixOptions) -> Vec<Vec<Entry>> {
    let mut out = Vec::new();
    for (b, block) in picked.chunks(BLOCK).enumerate() {
        let mut seqs = pack(block, opts.seq_len);
        seqs.shuffle(&mut stream::rng(opts.seed, "", "sft-block", b as u64));
        out.extend(seqs);
    }
    out
}

/// Best-fit decreasing: the longest conversation first, each into the
/// fullest sequence that still has room, else a new one.
fn pack(convs: &[(u16, Conv)], seq_len: u64) -> Vec<Vec<Entry>> {
    let mut order: Vec<usize> = (0..convs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(convs[i].1.len));
    let mut room: BTreeSet<(u64, usize)> = BTreeSet::new();
    let mut seqs: Vec<Vec<Entry>> = Vec::new();
    for i in order {
        let (source, c) = convs[i];
        let len = c.len as u64;
        let bin = match room.range((len, 0)..).next().copied() {
            Some(r) => {
                room.remove(&r);
                room.insert((r.0 - len, r.1));
                r.1
            }
            None => {
                seqs.push(Vec::new());
                room.insert((seq_len - len, seqs.len() - 1));
                seqs.len() - 1
            }
        };
        seqs[bin].push(Entry {
            source,
            doc: c.doc,
            len: c.len,
        });
    }
    seqs
}

/// What the sidecar of a packed mix is made from.
struct Facts<'a> {
    opts: &'a MixOptions,
    sources: &'a [SourcePlan],
    usable: &'a [Usable],
    groups: &'a [Vec<(usize, f64)>; 2],
    share: &'a [f64; 2],
    picked: &'a [(u16, Conv)],
    train: &'a [Vec<Entry>],
    valid: &'a [Vec<Entry>],
    /// Per source, per document: trained tokens as taken.
    trained_by_doc: Vec<Vec<u32>>,
}

impl Facts<'_> {
    fn report(&self, index: IndexFile, manifest_sha256: String) -> MixReport {
        let opts = self.opts;
        let l = opts.seq_len;
        let tokens_of =
            |seqs: &[Vec<Entry>]| -> u64 { seqs.iter().flatten().map(|e| e.len as u64).sum() };
        let trained: Vec<u64> = self.per_source(|c| c.trained as u64);
        let all_trained: u64 = trained.iter().sum();
        let additional: u64 = (0..self.sources.len())
            .filter(|&s| self.sources[s].catalog.additional)
            .map(|s| trained[s])
            .sum();
        let (achieved, deviation, window) = self.window_deviation();
        let tokens = tokens_of(self.train);
        MixReport {
            almr_version: env!("CARGO_PKG_VERSION").to_string(),
            name: opts.name.clone(),
            manifest_sha256,
            index,
            seq_len: l,
            seed: opts.seed,
            samples: self.train.len() as u64,
            tokens: self.train.len() as u64 * l,
            valid_samples: self.valid.len() as u64,
            target_almr: opts.almr,
            achieved_almr: match all_trained {
                0 => achieved,
                n => additional as f64 / n as f64,
            },
            max_window_deviation: deviation,
            window,
            max_epochs: opts.max_epochs,
            sources: (0..self.sources.len())
                .map(|s| self.source(s, &trained, all_trained))
                .collect(),
            packing: Some(Packing {
                method: "best_fit_decreasing".into(),
                block: BLOCK as u64,
                too_long: match opts.too_long {
                    TooLong::Drop => "drop".into(),
                    TooLong::Truncate => "truncate".into(),
                },
                conversations: self.picked.len() as u64,
                tokens,
                trained_tokens: all_trained,
                efficiency: ratio(tokens, self.train.len() as u64 * l),
                valid_efficiency: ratio(tokens_of(self.valid), self.valid.len() as u64 * l),
                sources: (0..self.sources.len())
                    .map(|s| self.packed_source(s, trained[s]))
                    .collect(),
            }),
        }
    }

    /// A sum over the picked conversations of each source.
    fn per_source(&self, f: impl Fn(&Conv) -> u64) -> Vec<u64> {
        let mut v = vec![0u64; self.sources.len()];
        for (s, c) in self.picked {
            v[*s as usize] += f(c);
        }
        v
    }

    /// The additional share of trained tokens, and its largest deviation
    /// from the target over windows of [`WINDOW`] sequences.
    fn window_deviation(&self) -> (f64, f64, u64) {
        let window = WINDOW.min(self.train.len().max(1));
        let trained = |e: &Entry| self.trained_of(e);
        let mut worst: f64 = 0.0;
        for chunk in self.train.chunks(window) {
            let (mut add, mut all) = (0u64, 0u64);
            for e in chunk.iter().flatten() {
                let t = trained(e);
                all += t;
                if self.sources[e.source as usize].catalog.additional {
                    add += t;
                }
            }
            if chunk.len() == window && all > 0 {
                worst = worst.max((add as f64 / all as f64 - self.opts.almr).abs());
            }
        }
        (self.opts.almr, worst, window as u64)
    }

    fn trained_of(&self, e: &Entry) -> u64 {
        self.trained_by_doc[e.source as usize][e.doc as usize] as u64
    }

    fn source(&self, s: usize, trained: &[u64], all_trained: u64) -> MixSource {
        let p = &self.sources[s];
        let c = &p.catalog;
        let g = if c.additional { 0 } else { 1 };
        let weight = self.groups[g]
            .iter()
            .find(|&&(i, _)| i == s)
            .map_or(0.0, |&(_, w)| w);
        let group_total: f64 = self.groups[g].iter().map(|&(_, w)| w).sum();
        let used: u64 = self
            .picked
            .iter()
            .filter(|(i, _)| *i as usize == s)
            .map(|(_, c)| c.len as u64)
            .sum();
        let convs = self.picked.iter().filter(|(i, _)| *i as usize == s).count() as u64;
        let u = &self.usable[s];
        let train_tokens: u64 = u.train.iter().map(|c| c.len as u64).sum();
        MixSource {
            name: c.name.clone(),
            language: c.language.clone(),
            additional: c.additional,
            shards: c.shards.clone(),
            documents: c.lengths.len() as u64,
            tokens: c.lengths.iter().map(|&l| l as u64).sum(),
            group_weight: weight,
            target_share: if weight > 0.0 {
                self.share[g] * weight / group_total
            } else {
                0.0
            },
            achieved_share: ratio(trained[s], all_trained),
            samples: convs,
            tokens_used: used,
            epochs: ratio(trained[s], p.train_tokens),
            epochs_started: (convs as f64 / u.train.len().max(1) as f64).ceil() as u64,
            train_documents: u.train.len() as u64,
            train_tokens,
            valid_share: p.valid_share,
            valid_documents: u.valid.len() as u64,
            valid_tokens: u.valid.iter().map(|c| c.len as u64).sum(),
            valid_samples: self
                .valid
                .iter()
                .filter(|q| q[0].source as usize == s)
                .count() as u64,
        }
    }

    fn packed_source(&self, s: usize, trained: u64) -> PackedSource {
        let u = &self.usable[s];
        PackedSource {
            name: self.sources[s].catalog.name.clone(),
            conversations: self.picked.iter().filter(|(i, _)| *i as usize == s).count() as u64,
            trained_tokens: trained,
            train_trained_tokens: self.sources[s].train_tokens,
            dropped_too_long: u.dropped,
            truncated: u.truncated,
        }
    }
}

/// Per source, per document: the trained tokens of its conversation as taken.
fn trained_by_doc(sources: &[SourcePlan], usable: &[Usable]) -> Vec<Vec<u32>> {
    sources
        .iter()
        .zip(usable)
        .map(|(s, u)| {
            let mut v = vec![0u32; s.catalog.lengths.len()];
            for c in u.train.iter().chain(&u.valid) {
                v[c.doc as usize] = c.trained;
            }
            v
        })
        .collect()
}

fn ratio(a: u64, b: u64) -> f64 {
    match b {
        0 => 0.0,
        b => a as f64 / b as f64,
    }
}
