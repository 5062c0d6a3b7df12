//! What each `almr` command does with its arguments: call the library and
//! print what it returns.

use std::path::Path;

use anyhow::Result;

use almr::driver::build;
use almr::mix::Split;

use super::args::{BuildArgs, ExportKind, MixArgs, SchemaKind};
use super::Ui;

/// `almr build`.
pub(crate) fn build_command(args: &BuildArgs, ui: Ui) -> Result<()> {
    let mut opts = args.options();
    opts.verbose &= !ui.quiet;
    opts.all_warnings = ui.verbose;
    let outcome = build(&args.pipeline, &opts)?;
    match (&outcome.dry_run, args.json) {
        (Some(report), true) => print_json(report)?,
        (Some(report), false) => almr::out!("{report}")?,
        (None, true) => almr::out!("{}", outcome.manifest.to_json())?,
        (None, false) => almr::out!("{outcome}")?,
    }
    if let (Some(limit), None, false) = (&outcome.manifest.limit, &outcome.dry_run, args.json) {
        almr::outln!(
            "limited build: it read {limit}, not the full corpus (its manifest's `limit` says so)"
        )?;
    }
    Ok(())
}

/// `almr plan`.
pub(crate) fn plan(
    pipeline: &Path,
    work: &Path,
    opts: &almr::scale::PlanOptions,
    emit: Option<almr::scale::slurm::Emit>,
    emit_opts: &almr::scale::slurm::EmitOptions,
) -> Result<()> {
    let plan = almr::scale::make_plan(pipeline, work, opts)?;
    let bytes: u64 = plan.files.iter().map(|f| f.bytes).sum();
    almr::outln!(
        "{}: {} files, {bytes} bytes, in {} map tasks; {} exact, {} bands tasks",
        work.join(almr::scale::plan::FILE_NAME).display(),
        plan.files.len(),
        plan.map.len(),
        plan.exact_tasks,
        plan.band_tasks
    )?;
    if let Some(how) = emit {
        let exe = std::env::current_exe()?;
        let script = almr::scale::slurm::emit(work, &plan, how, &exe, emit_opts)?;
        almr::outln!("run it: {}", script.display())?;
    }
    Ok(())
}

/// `almr run`.
pub(crate) fn run_plan(
    work: &Path,
    one: Option<(almr::scale::Stage, usize)>,
    local: bool,
    jobs: usize,
    threads: Option<usize>,
    ui: Ui,
) -> Result<()> {
    let opts = almr::scale::RunOptions {
        threads,
        verbose: !ui.quiet,
    };
    match (one, local) {
        (Some((stage, task)), false) => {
            if !almr::scale::run_task(work, stage, task, &opts)? && !ui.quiet {
                eprintln!("{} {task}: already done", stage.name());
            }
        }
        _ => {
            let ran = almr::scale::run_local(work, jobs, !ui.quiet)?;
            almr::outln!("{ran} tasks run; the plan in {} is done", work.display())?;
        }
    }
    Ok(())
}

/// `almr status`.
pub(crate) fn status(work: &Path, array: Option<almr::scale::Stage>, json: bool) -> Result<()> {
    let s = almr::scale::status::status(work)?;
    match (array, json) {
        (Some(stage), _) => almr::outln!("{}", s.array(stage))?,
        (None, true) => print_json(&s)?,
        (None, false) => almr::out!("{s}")?,
    }
    Ok(())
}

/// `almr schema`.
pub(crate) fn schema(which: SchemaKind, markdown: bool) -> Result<()> {
    match (which, markdown) {
        (SchemaKind::Pipeline, true) => almr::out!("{}", almr::config::reference_markdown())?,
        (_, true) => anyhow::bail!("--markdown: only the pipeline file has a key reference"),
        (_, false) => almr::out!("{}", which.schema())?,
    }
    Ok(())
}

/// Prints `value` as pretty JSON.
fn print_json(value: &impl serde::Serialize) -> Result<()> {
    almr::outln!("{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

/// `almr inspect`.
pub(crate) fn inspect(
    prefix: &Path,
    doc: Option<usize>,
    tokenizer: Option<&Path>,
    json: bool,
) -> Result<()> {
    let report = almr::inspect::inspect(prefix, doc, tokenizer)?;
    if json {
        return print_json(&report);
    }
    almr::out!("{report}")?;
    Ok(())
}

/// `almr explain`.
pub(crate) fn explain(out: &Path, id: &str, json: bool) -> Result<()> {
    let fates = almr::explain::explain(out, id)?;
    if json {
        return print_json(&fates);
    }
    for fate in fates {
        almr::outln!("{fate}")?;
    }
    Ok(())
}

/// `almr mix`.
pub(crate) fn mix(args: &MixArgs, ui: Ui) -> Result<()> {
    let report = almr::mix::mix(&args.out, &args.options())?;
    let exported = match args.export {
        Some(ExportKind::Megatron) => Some(almr::mix::export::write_megatron(&report, &args.out)?),
        None => None,
    };
    for warning in report
        .valid_warnings()
        .iter()
        .filter(|_| !ui.quiet && !args.json)
    {
        eprintln!("warning: {warning}");
    }
    if args.json {
        almr::out!("{}", report.to_json())?;
        return Ok(());
    }
    almr::out!("{}", report.table(&args.out))?;
    if let Some(p) = exported {
        almr::outln!("Megatron weights: {} (use --data-args-path)", p.display())?;
    }
    Ok(())
}

/// `almr stats`.
pub(crate) fn stats(out: &Path, json: bool, html: Option<&Path>) -> Result<()> {
    let stats = almr::stats::stats(out)?;
    if let Some(path) = html {
        almr::stats::html::write(&stats, path)?;
    }
    if json {
        return print_json(&stats);
    }
    almr::out!("{stats}")?;
    if let Some(path) = html {
        almr::outln!("report: {}", path.display())?;
    }
    Ok(())
}

/// `almr verify`.
pub(crate) fn verify(out: &Path, json: bool) -> Result<()> {
    let v = almr::verify::verify(out)?;
    match json {
        true => print_json(&v)?,
        false => almr::out!("{v}")?,
    }
    if !v.ok() {
        anyhow::bail!("{}: {} problems", out.display(), v.problems.len());
    }
    Ok(())
}

/// `almr sample`.
pub(crate) fn sample(mix: &Path, n: usize, seed: u64, valid: bool, json: bool) -> Result<()> {
    let split = if valid { Split::Valid } else { Split::Train };
    let samples = almr::sample::sample(mix, split, n, seed)?;
    if json {
        return print_json(&samples);
    }
    for s in samples {
        almr::outln!("{s}")?;
    }
    Ok(())
}
