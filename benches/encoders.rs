//! Tokenizer throughput worker for `scripts/bench_encoders.py`: almr's own
//! encoder against the `tokenizers` crate, in Rust, on the same texts.
//!
//! cargo bench --bench encoders -- TOKENIZER_JSON TEXTS_JSON
//!
//! TEXTS_JSON is a JSON array of strings. The worker loads them, says
//! `{"ready": ...}` on stdout, then answers each command line on stdin with
//! one JSON line:
//!
//! * `run ENCODER THREADS`: loads a new encoder (`almr` or `tokenizers`,
//!   untimed, so its piece cache starts empty), encodes every text on a rayon
//!   pool of THREADS threads and reports the wall and CPU seconds of the
//!   encoding alone and the number of tokens;
//! * `dump ENCODER PATH`: writes every text's ids to PATH, for the script to
//!   compare: per text a little-endian u32 count, then its ids as u32.

use std::io::{BufRead, Write};
use std::time::Instant;

use almr::tokenize::fast::FastTokenizer;
use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;
use serde_json::{json, Value};
use tokenizers::Tokenizer;

/// One of the two encoders, freshly loaded.
enum Encoder {
    Almr(FastTokenizer),
    Tokenizers(Tokenizer),
}

impl Encoder {
    fn load(name: &str, path: &str) -> Result<Encoder> {
        Ok(match name {
            "almr" => {
                let json: Value = serde_json::from_slice(&std::fs::read(path)?)?;
                Encoder::Almr(FastTokenizer::from_json(&json).map_err(|e| anyhow!("{e}"))?)
            }
            "tokenizers" => {
                Encoder::Tokenizers(Tokenizer::from_file(path).map_err(|e| anyhow!("{e}"))?)
            }
            other => bail!("unknown encoder {other:?}"),
        })
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Encoder::Almr(t) => t
                .encode(text)
                .ok_or_else(|| anyhow!("almr declined a text that holds special-token text")),
            Encoder::Tokenizers(t) => Ok(t
                .encode_fast(text, false)
                .map_err(|e| anyhow!("{e}"))?
                .get_ids()
                .to_vec()),
        }
    }
}

/// User plus system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<f64> = rest
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // utime and stime are fields 14 and 15 of the line; with the state
    // letter skipped, they sit at 10 and 11 here.
    match fields.get(10..12) {
        Some([u, s]) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}

fn run(texts: &[String], encoder: &str, path: &str, threads: usize) -> Result<Value> {
    let enc = Encoder::load(encoder, path)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let (c0, t0) = (cpu_seconds(), Instant::now());
    let tokens = pool.install(|| {
        texts
            .par_iter()
            .map(|t| Ok(enc.encode(t)?.len()))
            .sum::<Result<usize>>()
    })?;
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    Ok(json!({"wall": wall, "cpu": cpu, "tokens": tokens}))
}

fn dump(texts: &[String], encoder: &str, path: &str, out: &str) -> Result<Value> {
    let enc = Encoder::load(encoder, path)?;
    let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
    let mut tokens = 0;
    for t in texts {
        let ids = enc.encode(t)?;
        tokens += ids.len();
        w.write_all(&(ids.len() as u32).to_le_bytes())?;
        for id in ids {
            w.write_all(&id.to_le_bytes())?;
        }
    }
    w.flush()?;
    Ok(json!({"tokens": tokens}))
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; the two paths are the other arguments.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [tokenizer, texts_path] = args.as_slice() else {
        bail!("usage: cargo bench --bench encoders -- TOKENIZER_JSON TEXTS_JSON");
    };
    let texts: Vec<String> =
        serde_json::from_slice(&std::fs::read(texts_path).with_context(|| texts_path.clone())?)?;
    let bytes: usize = texts.iter().map(String::len).sum();
    println!(
        "{}",
        json!({"ready": true, "texts": texts.len(), "bytes": bytes})
    );
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["run", encoder, threads] => run(&texts, encoder, tokenizer, threads.parse()?),
            ["dump", encoder, out] => dump(&texts, encoder, tokenizer, out),
            _ => Err(anyhow!("unknown command {line:?}")),
        }
        .unwrap_or_else(|e| json!({"error": e.to_string()}));
        println!("{answer}");
    }
    Ok(())
}
