//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use almr::driver::{build, BuildOptions, BuildOutcome};

/// The repository root (tests run with it as the working directory).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Llama-3 tokenizer fixture.
pub const LLAMA3: &str = "fixtures/tokenizers/llama3/tokenizer.json";

/// Builds `pipeline` into `out` with the given thread count.
pub fn build_to(pipeline: &Path, out: &Path, threads: usize) -> BuildOutcome {
    build(
        pipeline,
        &BuildOptions {
            out: Some(out.to_path_buf()),
            threads: Some(threads),
            strict: false,
            verbose: false,
            all_warnings: false,
            mem_budget: almr::driver::DEFAULT_MEM_BUDGET,
            trial: Default::default(),
        },
    )
    .unwrap_or_else(|e| panic!("build of {} failed: {e:#}", pipeline.display()))
}

/// The number of generation directories in a build's output: 1 after a
/// build, 0 after a failed first build (nothing staged is left behind).
pub fn generations(out: &Path) -> usize {
    match std::fs::read_dir(out.join(almr::driver::GENERATIONS)) {
        Ok(d) => d.count(),
        Err(_) => 0,
    }
}

/// Writes a pipeline file with one source per `(name, format, paths, extra)`.
pub fn write_pipeline(dir: &Path, sources: &[(&str, &str, Vec<PathBuf>, &str)]) -> PathBuf {
    let mut s = format!(
        "output = {:?}\nsteps = []\n[tokenizer]\npath = {:?}\neos = \"<|end_of_text|>\"\n",
        dir.join("out").display().to_string(),
        root().join(LLAMA3).display().to_string()
    );
    for (name, format, paths, extra) in sources {
        let paths: Vec<String> = paths
            .iter()
            .map(|p| format!("{:?}", p.display().to_string()))
            .collect();
        s.push_str(&format!(
            "[[source]]\nname = {name:?}\nlanguage = \"en\"\nadditional = false\nformat = {format:?}\npaths = [{}]\n{extra}\n",
            paths.join(", ")
        ));
    }
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, s).unwrap();
    path
}

/// Reads every row of a rejects table as (file, line, reason, id).
pub fn read_rejects(path: &Path) -> Vec<(String, i64, String, String)> {
    almr::rejects::read_all(path)
        .unwrap()
        .into_iter()
        .map(|r| (r.file, r.line as i64, r.reason, r.id))
        .collect()
}
