//! One source through the chain: read in batches, run the steps, tokenize,
//! and send every record to its shard or its rejects table, counted.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use indicatif::ProgressBar;
use rayon::prelude::*;

use super::late::{DocKey, Ledger};
use super::limit::Picker;
use super::sink::{ShardSink, StagedShard, Tokens};
use super::{BuildOptions, MAX_WARNINGS};
use crate::chain::{Chain, Stage};
use crate::config::Source;
use crate::error::{Error, Result, TokenizerError};
use crate::fsutil::FileDigest;
use crate::manifest::{Counts, InputFile, Limit};
use crate::read::chat;
use crate::read::{self, Item, Malformed, MalformedReason, ReadSettings, Record};
use crate::rejects::{RejectRow, RejectTables};
use crate::step::{CorpusStep, DocStep, Dropped, Notes, OrderedStep, Seen, Sketch};
use crate::text::snippet;
use crate::tokenize::chat::ChatEncoder;
use crate::tokenize::DocTokenizer;

/// Items per batch handed to the thread pool.
const BATCH_ITEMS: usize = 4096;
/// Text bytes per batch, whichever limit comes first.
const BATCH_BYTES: usize = 8 << 20;
/// Characters of text kept in a reject row's detail.
pub const SNIPPET_CHARS: usize = 80;

/// A source's place in the build: its index, and the index of its first input
/// file among all inputs.
#[derive(Clone, Copy)]
pub struct SourceAt {
    /// Index of the source in the pipeline.
    pub index: usize,
    /// Index of its first input file in the build's list of inputs.
    pub first_file: usize,
}

/// What one source produced.
pub struct BuiltSource {
    /// Its input files, with their counts.
    pub files: Vec<InputFile>,
    /// Its shards.
    pub shards: Vec<StagedShard>,
}

/// Runs sources through the chain; holds what every source shares.
pub struct Driver<'a> {
    tokenizer: &'a DocTokenizer,
    chat: Option<&'a ChatEncoder<'a>>,
    pool: &'a rayon::ThreadPool,
    staging: &'a Path,
    opts: &'a BuildOptions,
    bar: &'a ProgressBar,
    progress: Arc<AtomicU64>,
    chain: &'a mut Chain,
    ledger: Option<Ledger>,
    warned: u64,
    defer: bool,
}

/// The source being built, and the display names of its files.
pub struct SourceRun<'s> {
    /// Its place in the build.
    pub at: SourceAt,
    /// The source.
    pub source: &'s Source,
    /// Its files as reject rows and provenance name them.
    pub labels: Vec<String>,
}

/// A batch of items from one source: `(file index, item)`.
type Batch = Vec<(usize, Item)>;

/// A record that is still a document, with the notes the steps made on it.
pub struct Doc {
    /// Index of its file among the source's files.
    pub file: usize,
    /// The record, its text as the steps left it.
    pub record: Record,
    /// What the steps changed.
    pub notes: Notes,
    /// Where it met the ordered step, when the driver defers its decision.
    pub reached: Option<Reached>,
}

/// A document as it met the ordered step whose decision is deferred: its
/// key, and what its reject row would show if an earlier document had
/// the same key.
pub struct Reached {
    /// The step's key of the text.
    pub key: u128,
    /// The notes of the steps before it.
    pub notes: Notes,
    /// The text's snippet at that point.
    pub snippet: String,
}

/// A record on its way through the chain.
enum Work {
    Live(Doc),
    Dropped(Doc, Dropped),
    Bad(usize, Malformed),
}

/// A record once through the chain.
pub enum Outcome {
    /// Kept, with its tokens and a sketch for each corpus step.
    Kept(Doc, Tokens, Vec<Sketch>),
    /// Dropped by a step.
    Dropped(Doc, Dropped),
    /// Could not be read.
    Bad(usize, Malformed),
    /// The tokenizer failed on its text.
    Failed(Doc, TokenizerError),
}

impl<'a> Driver<'a> {
    /// A driver for the steps of `chain`; `ledger` remembers the documents
    /// its corpus steps see, when it has any; `chat` encodes conversations.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tokenizer: &'a DocTokenizer,
        chat: Option<&'a ChatEncoder<'a>>,
        pool: &'a rayon::ThreadPool,
        staging: &'a Path,
        opts: &'a BuildOptions,
        bar: &'a ProgressBar,
        chain: &'a mut Chain,
        ledger: Option<Ledger>,
    ) -> Self {
        Driver {
            tokenizer,
            chat,
            pool,
            staging,
            opts,
            bar,
            progress: Arc::new(AtomicU64::new(0)),
            chain,
            ledger,
            warned: 0,
            defer: false,
        }
    }

    /// A driver that does not decide the ordered steps: each document that
    /// reaches one goes on with its key noted in [`Doc::reached`], so that
    /// a scale-out plan decides them across tasks.
    pub fn deferring(mut self) -> Self {
        self.defer = true;
        self
    }

    /// The number of malformed records seen, and the ledger.
    pub fn finish(self) -> (u64, Option<Ledger>) {
        (self.warned, self.ledger)
    }

    /// Reads, processes and shards every file of `source`.
    pub fn build_source(
        &mut self,
        source: &Source,
        files: &[PathBuf],
        at: SourceAt,
        rejects: &mut RejectTables,
    ) -> Result<BuiltSource> {
        let run = SourceRun {
            at,
            source,
            labels: files.iter().map(|f| f.display().to_string()).collect(),
        };
        let mut counts = vec![Counts::default(); files.len()];
        let dry_run = self.opts.trial.dry_run;
        let mut sink = ShardSink::new(self.staging, source, self.tokenizer.dtype(), dry_run);
        let digests = self.stream_source(&run, files, |d, outcome, run| {
            d.account(outcome, run, &mut counts, &mut sink, rejects)
        })?;
        let shards = sink.finish()?;
        let files = files
            .iter()
            .zip(digests)
            .zip(counts)
            .map(|((path, digest), counts)| {
                Ok(InputFile {
                    source: source.name.clone(),
                    path: path.clone(),
                    bytes: digest.bytes,
                    sha256: digest.sha256,
                    counts,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(BuiltSource { files, shards })
    }

    /// Reads the files of `run`'s source in a thread and hands each record,
    /// once through the chain, to `each`, in order. Returns the files'
    /// digests.
    pub fn stream_source(
        &mut self,
        run: &SourceRun,
        files: &[PathBuf],
        mut each: impl FnMut(&mut Self, Outcome, &SourceRun) -> Result<()>,
    ) -> Result<Vec<FileDigest>> {
        let settings = run.source.read_settings();
        let limit = self.opts.trial.limit.as_ref();
        std::thread::scope(|scope| -> Result<_> {
            let (tx, rx) = mpsc::sync_channel::<Batch>(2);
            let progress = Arc::clone(&self.progress);
            let reader = scope.spawn(|| read_batches(&settings, files, progress, tx, limit));
            for batch in rx {
                for outcome in self.process(batch, run) {
                    each(self, outcome, run)?;
                }
                self.bar.set_position(self.progress.load(Ordering::Relaxed));
            }
            reader.join().map_err(|_| {
                Error::Internal(format!("the reader of source {} failed", run.source.name))
            })?
        })
    }

    /// Runs the chain over a batch: each run of per-document steps in
    /// parallel, each ordered step in order, and the last run together with
    /// tokenizing and sketching. The order of the batch is kept.
    fn process(&mut self, batch: Batch, run: &SourceRun) -> Vec<Outcome> {
        let mut work: Vec<Work> = batch
            .into_iter()
            .map(|(file, item)| match item {
                Item::Doc(record) => Work::Live(Doc {
                    file,
                    record,
                    notes: Notes::default(),
                    reached: None,
                }),
                Item::Bad(m) => Work::Bad(file, m),
            })
            .collect();
        let mut from = 0;
        while let Some(k) = self.next_ordered(from) {
            work = self.run_docs(work, from, k, run);
            work = self.run_ordered(work, k, run);
            from = k + 1;
        }
        self.run_last(work, from, run)
    }

    /// The first ordered stage at or after `from`.
    fn next_ordered(&self, from: usize) -> Option<usize> {
        let stages = &self.chain.stages[from..];
        let k = stages.iter().position(|s| matches!(s, Stage::Ordered(_)))?;
        Some(from + k)
    }

    /// The per-document steps of stages `from..to`, as built for this source.
    fn doc_steps(&self, from: usize, to: usize, run: &SourceRun) -> Vec<&dyn DocStep> {
        let stages = &self.chain.stages[from..to];
        stages
            .iter()
            .filter_map(|s| match s {
                Stage::Doc(per_source) => Some(per_source[run.at.index].as_ref()),
                Stage::Ordered(_) => None,
            })
            .collect()
    }

    fn run_docs(&self, work: Vec<Work>, from: usize, to: usize, run: &SourceRun) -> Vec<Work> {
        let steps = self.doc_steps(from, to, run);
        self.pool.install(|| {
            work.into_par_iter()
                .map(|w| match w {
                    Work::Live(mut doc) => match apply(&steps, &mut doc) {
                        Ok(()) => Work::Live(doc),
                        Err(dropped) => Work::Dropped(doc, dropped),
                    },
                    other => other,
                })
                .collect()
        })
    }

    fn run_ordered(&mut self, work: Vec<Work>, k: usize, run: &SourceRun) -> Vec<Work> {
        let Stage::Ordered(step) = &mut self.chain.stages[k] else {
            return work;
        };
        if self.defer {
            return defer(step.as_ref(), work);
        }
        let mut check = |doc: &Doc| {
            let seen = Seen {
                text: &doc.record.text,
                id: &doc.record.id,
                source: &run.source.name,
                file: &run.labels[doc.file],
                line: doc.record.line,
            };
            step.check(&seen).map_err(|rejection| Dropped {
                stage: step.name(),
                rejection,
            })
        };
        work.into_iter()
            .map(|w| match w {
                Work::Live(doc) => match check(&doc) {
                    Ok(()) => Work::Live(doc),
                    Err(dropped) => Work::Dropped(doc, dropped),
                },
                other => other,
            })
            .collect()
    }

    /// The per-document steps from stage `from` on, then tokenizing and the
    /// corpus steps' sketches, in parallel.
    fn run_last(&self, work: Vec<Work>, from: usize, run: &SourceRun) -> Vec<Outcome> {
        let steps = self.doc_steps(from, self.chain.stages.len(), run);
        let corpus: Vec<&dyn CorpusStep> = self.chain.corpus.iter().map(|c| c.as_ref()).collect();
        let (tokenizer, chat) = (self.tokenizer, self.chat);
        let (source, language) = (run.source, run.source.language.as_str());
        let finish = |mut doc: Doc| -> Outcome {
            if let Err(dropped) = apply(&steps, &mut doc) {
                return Outcome::Dropped(doc, dropped);
            }
            match tokens(tokenizer, chat, &doc.record, source) {
                Ok(tokens) => {
                    let text = &doc.record.text;
                    let sketches = corpus.iter().map(|c| c.sketch(text, language)).collect();
                    Outcome::Kept(doc, tokens, sketches)
                }
                Err(e) => Outcome::Failed(doc, e),
            }
        };
        self.pool.install(|| {
            work.into_par_iter()
                .map(|w| match w {
                    Work::Live(doc) => finish(doc),
                    Work::Dropped(doc, dropped) => Outcome::Dropped(doc, dropped),
                    Work::Bad(file, m) => Outcome::Bad(file, m),
                })
                .collect()
        })
    }

    /// Counts one processed record and sends it to its shard or rejects table.
    fn account(
        &mut self,
        outcome: Outcome,
        run: &SourceRun,
        counts: &mut [Counts],
        sink: &mut ShardSink,
        rejects: &mut RejectTables,
    ) -> Result<()> {
        let (file, notes) = match &outcome {
            Outcome::Kept(doc, ..) | Outcome::Dropped(doc, _) | Outcome::Failed(doc, _) => {
                (doc.file, Some(&doc.notes))
            }
            Outcome::Bad(file, _) => (*file, None),
        };
        let c = &mut counts[file];
        c.read += 1;
        for (k, v) in notes.into_iter().flat_map(Notes::iter) {
            if v > 0 {
                *c.changes.entry(k.to_string()).or_default() += v;
            }
        }
        match outcome {
            Outcome::Kept(doc, tokens, sketches) => {
                self.keep(doc, &tokens, &sketches, run, c, sink)
            }
            Outcome::Failed(doc, e) => {
                let at = format!("{}:{}", run.labels[doc.file], doc.record.line);
                Err(Error::from(e).context(at))
            }
            Outcome::Dropped(doc, dropped) => {
                c.rejected
                    .add(&format!("{}/{}", dropped.stage, dropped.rejection.reason));
                rejects.push(RejectRow {
                    detail: format!(
                        "{} | {}",
                        dropped.rejection.detail,
                        snippet(&doc.record.text, SNIPPET_CHARS)
                    ),
                    id: doc.record.id,
                    source: run.source.name.clone(),
                    file: run.labels[doc.file].clone(),
                    line: doc.record.line,
                    stage: dropped.stage.into(),
                    reason: dropped.rejection.reason,
                })
            }
            Outcome::Bad(file, m) => self.malformed(file, m, run, c, rejects),
        }
    }

    /// A kept document: counted, told to the corpus steps, and written.
    fn keep(
        &mut self,
        doc: Doc,
        tokens: &Tokens,
        sketches: &[Sketch],
        run: &SourceRun,
        c: &mut Counts,
        sink: &mut ShardSink,
    ) -> Result<()> {
        let text = &doc.record.text;
        c.kept += 1;
        c.tokens += tokens.ids.len() as u64;
        c.text_bytes += text.len() as u64;
        if let Some(ledger) = &mut self.ledger {
            for (step, sketch) in self.chain.corpus.iter_mut().zip(sketches) {
                step.add(sketch)?;
            }
            let key = DocKey {
                source: run.at.index as u32,
                file: (run.at.first_file + doc.file) as u32,
                line: doc.record.line,
            };
            let snippet = snippet(text, SNIPPET_CHARS);
            ledger.push(key, text.len(), tokens.ids.len(), &doc.record.id, &snippet)?;
        }
        sink.push(
            tokens,
            &run.labels[doc.file],
            doc.record.line,
            doc.record.id,
        )
    }

    /// A record that could not be read: an error with `--strict`, else
    /// counted, maybe warned about, and written to the rejects.
    fn malformed(
        &mut self,
        file: usize,
        m: Malformed,
        run: &SourceRun,
        c: &mut Counts,
        rejects: &mut RejectTables,
    ) -> Result<()> {
        let reason = m.reason.as_str();
        if self.opts.strict {
            return Err(Error::Malformed {
                file: run.labels[file].clone(),
                line: m.line,
                reason,
                detail: m.detail,
            });
        }
        let at = format!("{}:{}", run.labels[file], m.line);
        c.malformed.add(reason);
        self.warned += 1;
        if self.opts.verbose && (self.opts.all_warnings || self.warned <= MAX_WARNINGS) {
            self.bar
                .suspend(|| eprintln!("warning: {at}: {reason}: {}", m.detail));
        }
        rejects.push(RejectRow {
            id: m.id.unwrap_or_else(|| at.clone()),
            source: run.source.name.clone(),
            file: run.labels[file].clone(),
            line: m.line,
            stage: read::STAGE.into(),
            reason: reason.into(),
            detail: m.detail,
        })
    }
}

/// Notes each live document's key of the ordered `step` in
/// [`Doc::reached`] and lets it go on.
fn defer(step: &dyn OrderedStep, mut work: Vec<Work>) -> Vec<Work> {
    for w in &mut work {
        if let Work::Live(doc) = w {
            doc.reached = Some(Reached {
                key: step.key(&doc.record.text),
                notes: doc.notes.clone(),
                snippet: snippet(&doc.record.text, SNIPPET_CHARS),
            });
        }
    }
    work
}

/// A record's tokens: its text and EOS, or a conversation rendered with the
/// chat template, and its mask.
fn tokens(
    tokenizer: &DocTokenizer,
    chat: Option<&ChatEncoder>,
    record: &Record,
    source: &Source,
) -> Result<Tokens, TokenizerError> {
    match (&record.turns, chat) {
        (Some(turns), Some(chat)) => {
            let e = chat.encode(turns, &source.mask)?;
            Ok(Tokens {
                ids: e.ids,
                mask: Some(e.mask),
            })
        }
        _ => Ok(Tokens {
            ids: tokenizer.encode(&record.text)?,
            mask: None,
        }),
    }
}

/// Runs `steps` over one document; the first that rejects it drops it. A
/// conversation's turns are changed turn by turn and judged as a whole.
fn apply(steps: &[&dyn DocStep], doc: &mut Doc) -> Result<(), Dropped> {
    let record = &mut doc.record;
    let mut contents: Option<Vec<String>> = record.turns.as_mut().map(|turns| {
        turns
            .iter_mut()
            .map(|t| std::mem::take(&mut t.content))
            .collect()
    });
    let mut result = Ok(());
    for step in steps {
        let done = match &mut contents {
            Some(contents) => step.apply_turns(contents, &mut doc.notes),
            None => step.apply(&mut record.text, &mut doc.notes),
        };
        if let Err(rejection) = done {
            result = Err(Dropped {
                stage: step.name(),
                rejection,
            });
            break;
        }
    }
    if let (Some(turns), Some(contents)) = (&mut record.turns, contents) {
        for (turn, content) in turns.iter_mut().zip(contents) {
            turn.content = content;
        }
        record.text = chat::joined(turns);
    }
    result
}

/// Reader thread: checks each file's integrity in a first pass (which also
/// gives its digest), then streams the files that pass into batches. A file
/// that fails contributes its one malformed item instead of its records.
/// Under `--limit` only the items the [`Picker`] takes go on, and only the
/// files read are digested.
fn read_batches(
    settings: &ReadSettings,
    files: &[PathBuf],
    progress: Arc<AtomicU64>,
    tx: mpsc::SyncSender<Batch>,
    limit: Option<&Limit>,
) -> Result<Vec<FileDigest>> {
    let mut digests = Vec::with_capacity(files.len());
    let mut batch: Batch = Vec::new();
    let mut bytes = 0usize;
    let mut picker = Picker::new(limit);
    for (f, path) in files.iter().enumerate() {
        if picker.full() {
            break; // the first N are read: later files are not opened
        }
        let checked = read::check(path, settings);
        digests.push(checked.digest);
        let (items, passed): (read::ItemStream, bool) = match checked.failure {
            Some(m) => (Box::new(std::iter::once(Item::Bad(m))), false),
            None => (read::open(path, settings, Arc::clone(&progress)), true),
        };
        for item in items {
            if passed {
                fails_after_check(path, &item)?;
            }
            let Some(item) = picker.offer(f, path, item) else {
                continue; // held for the sample
            };
            if let Item::Doc(r) = &item {
                bytes += r.text.len();
            }
            batch.push((f, item));
            if batch.len() >= BATCH_ITEMS || bytes >= BATCH_BYTES {
                if tx.send(std::mem::take(&mut batch)).is_err() {
                    return Ok(digests); // the consumer stopped on an error
                }
                bytes = 0;
            }
            if picker.full() {
                break;
            }
        }
    }
    batch.extend(picker.into_held());
    if !batch.is_empty() {
        let _ = tx.send(batch);
    }
    Ok(digests)
}

/// A file that passed its integrity check and then fails to read: it
/// changed, or its disk failed, while the build read it. Its records may
/// already be staged, so the build stops and publishes nothing.
fn fails_after_check(path: &Path, item: &Item) -> Result<()> {
    match item {
        Item::Bad(m)
            if matches!(
                m.reason,
                MalformedReason::ReadError | MalformedReason::UnreadableFile
            ) =>
        {
            Err(Error::Invalid(format!(
                "{}:{}: the file passed its integrity check, then failed to read ({}): \
                 it changed, or its disk failed, while the build read it; nothing is published",
                path.display(),
                m.line,
                m.detail
            )))
        }
        _ => Ok(()),
    }
}
