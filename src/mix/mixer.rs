//! `almr mix` end to end: plan the mix ([`MixPlan`]), write its index, then
//! assemble and write its sidecar.

use std::path::{Path, PathBuf};

use super::blend::WINDOW;
use super::plan::{lock, MixOptions, MixPlan, SourcePlan};
use super::{blend, stream};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::mixfile::index::{self, Record, SourceLists, DIR};
use crate::mixfile::report::{IndexFile, MixReport, MixSource};

/// Builds the mix `opts.name` over the build in `out` and writes
/// `OUT/mix/NAME.mix` and `OUT/mix/NAME.json`.
///
/// The sidecar is the mix's commit record: it is removed before an old mix
/// is overwritten and written last, so a kill leaves the old mix whole, no
/// mix, or the new one whole. One `almr mix` at a time writes a name.
pub fn mix(out: &Path, opts: &MixOptions) -> Result<MixReport> {
    if super::pack::is_chat_build(out)? {
        return super::pack::mix(out, opts);
    }
    let plan = MixPlan::new(out, opts)?;
    let _lock = lock(out, &opts.name)?;
    let sidecar = out.join(DIR).join(format!("{}.json", opts.name));
    if sidecar.exists() {
        std::fs::remove_file(&sidecar).map_err(Error::file("removing", &sidecar))?;
    }
    let written = write_index(out, &plan)?;
    let report = report(&plan, written);
    write_atomic(&sidecar, report.to_json().as_bytes())
        .map_err(Error::file("writing", &sidecar))?;
    Ok(report)
}

/// What writing the index learned that the sidecar reports.
struct Written {
    /// The index file and its digest.
    index: IndexFile,
    /// Per source: training epochs begun.
    epochs_started: Vec<u64>,
    /// Per source: validation samples.
    valid_samples: Vec<u64>,
}

/// Cuts every source's training and validation streams into samples and
/// writes them, training samples in blend order, to `OUT/mix/NAME.mix`.
fn write_index(out: &Path, plan: &MixPlan) -> Result<Written> {
    let (seq_len, seed) = (plan.opts.seq_len, plan.opts.seed);
    let mut streams: Vec<stream::TrainStream> = plan
        .sources
        .iter()
        .map(|s| {
            let c = &s.catalog;
            stream::train_stream(
                &s.lists.train,
                &c.lengths,
                s.samples,
                seq_len,
                seed,
                &c.name,
            )
        })
        .collect();
    let lists: Vec<SourceLists> = plan
        .sources
        .iter()
        .zip(&mut streams)
        .map(|(s, st)| SourceLists {
            train: std::mem::take(&mut st.docs),
            valid: s.lists.valid.clone(),
        })
        .collect();
    let mut next = vec![0usize; plan.sources.len()];
    let train = plan.order.iter().map(|&s| {
        let k = &mut next[s as usize];
        *k += 1;
        (s, streams[s as usize].samples[*k - 1])
    });
    let (valid, valid_samples) = valid_records(plan);

    let dir = out.join(DIR);
    std::fs::create_dir_all(&dir).map_err(Error::file("creating", &dir))?;
    let path = PathBuf::from(DIR).join(format!("{}.mix", plan.opts.name));
    let digest = index::write(
        &out.join(&path),
        seq_len,
        &lists,
        plan.order.len(),
        train,
        &valid,
    )?;
    Ok(Written {
        index: IndexFile { path, digest },
        epochs_started: streams.iter().map(|st| st.epochs_started).collect(),
        valid_samples,
    })
}

/// Every source's validation samples, source after source, and how many
/// each source has.
fn valid_records(plan: &MixPlan) -> (Vec<Record>, Vec<u64>) {
    let mut valid: Vec<Record> = Vec::new();
    let mut counts = Vec::new();
    for (s, src) in plan.sources.iter().enumerate() {
        let w = stream::windows(
            &src.lists.valid,
            &src.catalog.lengths,
            plan.opts.seq_len,
            u64::MAX,
        );
        counts.push(w.len() as u64);
        valid.extend(w.into_iter().map(|st| (s as u16, st)));
    }
    (valid, counts)
}

/// The sidecar of a written mix.
fn report(plan: &MixPlan, written: Written) -> MixReport {
    let opts = plan.opts;
    let is_additional: Vec<bool> = plan
        .order
        .iter()
        .map(|&s| plan.sources[s as usize].catalog.additional)
        .collect();
    let achieved = blend::achieved(&is_additional, opts.almr, WINDOW);
    let sources = (0..plan.sources.len())
        .map(|s| source_report(plan, s, &written))
        .collect();
    MixReport {
        almr_version: env!("CARGO_PKG_VERSION").to_string(),
        name: opts.name.clone(),
        manifest_sha256: plan.manifest_sha256.clone(),
        index: written.index,
        seq_len: opts.seq_len,
        seed: opts.seed,
        samples: plan.samples,
        tokens: plan.samples * opts.seq_len,
        valid_samples: written.valid_samples.iter().sum(),
        target_almr: opts.almr,
        achieved_almr: achieved.share,
        max_window_deviation: achieved.max_window_deviation,
        window: achieved.window,
        max_epochs: opts.max_epochs,
        sources,
        packing: None,
    }
}

/// How the mix uses source `s`.
fn source_report(plan: &MixPlan, s: usize, written: &Written) -> MixSource {
    let SourcePlan {
        catalog: c,
        lists,
        train_tokens,
        samples,
        valid_share,
    } = &plan.sources[s];
    let (group_weight, target_share) = plan.weight_and_target(s);
    let used = stream::tokens_needed(*samples, plan.opts.seq_len);
    MixSource {
        name: c.name.clone(),
        language: c.language.clone(),
        additional: c.additional,
        shards: c.shards.clone(),
        documents: c.lengths.len() as u64,
        tokens: c.lengths.iter().map(|&l| l as u64).sum(),
        group_weight,
        target_share,
        achieved_share: *samples as f64 / plan.samples as f64,
        samples: *samples,
        tokens_used: used,
        epochs: if *train_tokens > 0 {
            used as f64 / *train_tokens as f64
        } else {
            0.0
        },
        epochs_started: written.epochs_started[s],
        train_documents: lists.train.len() as u64,
        train_tokens: *train_tokens,
        valid_share: *valid_share,
        valid_documents: lists.valid.len() as u64,
        valid_tokens: c.tokens_of(&lists.valid),
        valid_samples: written.valid_samples[s],
    }
}
