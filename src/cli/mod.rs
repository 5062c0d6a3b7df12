//! The `almr` binary's own modules: [`args`] (what clap parses) and
//! [`commands`] (what each command does). `src/main.rs` parses and
//! dispatches; the work is in the library.

pub mod args;
pub mod commands;

/// How much goes to stderr besides errors.
#[derive(Clone, Copy)]
pub struct Ui {
    /// Errors only: no progress bars, no warnings.
    pub quiet: bool,
    /// Every warning.
    pub verbose: bool,
}
