//! The `almr` command line.

mod cli;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use cli::args::Command;
use cli::commands::{
    build_command, explain, inspect, mix, plan, run_plan, sample, schema, stats, status, verify,
};
use cli::Ui;

/// Turn raw zh/en corpora into Megatron-compatible token shards for Llama-3
/// continual pre-training.
#[derive(Parser)]
#[command(name = "almr", version, about, long_about = None)]
struct Cli {
    /// Print nothing on stderr but errors: no progress bars, no warnings.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print every warning: each malformed record, not only the first ten.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.command.json();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`almr … | head`): done, as
        // for `cat` and `rg`.
        Err(e) if almr::fsutil::is_broken_pipe(e.as_ref()) => ExitCode::SUCCESS,
        Err(e) if json => {
            let causes: Vec<String> = e.chain().skip(1).map(|c| c.to_string()).collect();
            let error = serde_json::json!({ "error": format!("{e:#}"), "message": e.to_string(), "causes": causes });
            eprintln!("{error}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let ui = Ui {
        quiet: cli.quiet,
        verbose: cli.verbose,
    };
    match cli.command {
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "almr", &mut std::io::stdout());
        }
        Command::Build(args) => build_command(&args, ui)?,
        Command::Plan {
            pipeline,
            work,
            tasks,
            exact_tasks,
            band_tasks,
            out,
            strict,
            emit,
            parallel,
            sbatch,
            jobs,
        } => {
            let opts = almr::scale::PlanOptions {
                tasks,
                exact_tasks,
                band_tasks,
                out,
                strict,
            };
            let emit_opts = almr::scale::slurm::EmitOptions {
                parallel,
                sbatch,
                jobs,
            };
            plan(&pipeline, &work, &opts, emit, &emit_opts)?
        }
        Command::Run {
            work,
            stage,
            task,
            local,
            jobs,
            threads,
        } => run_plan(&work, stage.zip(task), local, jobs, threads, ui)?,
        Command::Status { work, array, json } => status(&work, array, json)?,
        Command::Inspect {
            prefix,
            doc,
            tokenizer,
            json,
        } => inspect(&prefix, doc, tokenizer.as_deref(), json)?,
        Command::Explain { out, id, json } => explain(&out, &id, json)?,
        Command::Mix(args) => mix(&args, ui)?,
        Command::Stats { out, json, html } => stats(&out, json, html.as_deref())?,
        Command::Sample {
            mix,
            n,
            seed,
            valid,
            json,
        } => sample(&mix, n, seed, valid, json)?,
        Command::Verify { out, json } => verify(&out, json)?,
        Command::Schema { which, markdown } => schema(which, markdown)?,
    }
    Ok(())
}
