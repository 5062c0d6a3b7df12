//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use almr::build::{build, BuildOptions, BuildOutcome};

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
            mem_budget: almr::build::DEFAULT_MEM_BUDGET,
        },
    )
    .unwrap_or_else(|e| panic!("build of {} failed: {e:#}", pipeline.display()))
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
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let s = |n: &str| batch.column_by_name(n).unwrap().as_string::<i32>().clone();
        let (file, reason, id) = (s("file"), s("reason"), s("id"));
        let line = batch
            .column_by_name("line")
            .unwrap()
            .as_primitive::<Int64Type>()
            .clone();
        for i in 0..batch.num_rows() {
            rows.push((
                file.value(i).to_string(),
                line.value(i),
                reason.value(i).to_string(),
                id.value(i).to_string(),
            ));
        }
    }
    rows
}
