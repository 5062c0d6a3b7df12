//! `almr mix` on the fixture build: ALMR on every prefix, identical bytes,
//! disjoint validation, the Python reader, upsampling and its limit.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use almr::mix::{mix, MixIndex, MixOptions, Size, Split};
use common::{build_to, root};

/// The default pipeline built once for every test in this file.
fn build() -> &'static Path {
    static OUT: OnceLock<tempfile::TempDir> = OnceLock::new();
    OUT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        build_to(&root().join("pipelines/default.toml"), dir.path(), 2);
        dir
    })
    .path()
}

fn options(name: &str, almr: f64, seq_len: u64, samples: u64) -> MixOptions {
    MixOptions {
        name: name.into(),
        almr,
        seq_len,
        seed: 1234,
        size: Size::Samples(samples),
        weights: Default::default(),
        valid_share: 0.05,
        valid_shares: Default::default(),
        max_epochs: None,
        too_long: Default::default(),
        force: false,
    }
}

fn stem(name: &str) -> PathBuf {
    build().join("mix").join(name)
}

#[test]
fn almr_is_within_one_sample_on_every_prefix() {
    for (k, almr) in [0.1, 0.2, 0.33, 0.5, 0.9].into_iter().enumerate() {
        let name = format!("prefix{k}");
        let report = mix(build(), &options(&name, almr, 128, 3000)).unwrap();
        let index = MixIndex::open(&stem(&name)).unwrap();
        assert_eq!(index.len(Split::Train), 3000);
        let mut additional = 0u64;
        for i in 0..index.len(Split::Train) {
            let s = index.source_of(Split::Train, i).unwrap();
            additional += report.sources[s].additional as u64;
            let off = (additional as f64 - almr * (i + 1) as f64).abs();
            assert!(
                off <= 1.0,
                "ALMR {almr}: prefix {} is {off} samples off",
                i + 1
            );
        }
        assert_eq!(report.achieved_almr, additional as f64 / 3000.0);
        assert!(
            report.max_window_deviation <= 1.0 / 1000.0 + 1e-12,
            "{report:?}"
        );
        assert_eq!(report.window, 1000);
        let samples: u64 = report.sources.iter().map(|s| s.samples).sum();
        assert_eq!(samples, report.samples);
        assert_eq!(report.tokens, 3000 * 128);
        for s in &report.sources {
            assert!(
                (s.achieved_share - s.target_share).abs() <= 1.0 / 3000.0 + 1e-9,
                "{}: {} against {}",
                s.name,
                s.achieved_share,
                s.target_share
            );
            assert_eq!(
                s.tokens_used,
                if s.samples > 0 {
                    s.samples * 128 + 1
                } else {
                    0
                }
            );
            assert_eq!(s.train_documents + s.valid_documents, s.documents);
        }
    }
}

#[test]
fn the_same_mix_twice_gives_identical_bytes() {
    let files = |name: &str| {
        ["mix", "json"].map(|ext| std::fs::read(stem(name).with_extension(ext)).unwrap())
    };
    mix(build(), &options("twice", 0.3, 256, 2000)).unwrap();
    let first = files("twice");
    let mut again = options("twice", 0.3, 256, 2000);
    again.force = true;
    mix(build(), &again).unwrap();
    assert!(first == files("twice"), "a rebuilt mix differs");
    let mut other = again.clone();
    other.seed = 99;
    mix(build(), &other).unwrap();
    assert!(
        first[0] != files("twice")[0],
        "another seed gives the same index"
    );
}

/// A name may hold dots (`almr0.5`): the mix opens by its stem, not as
/// `almr0.json`, in both readers, and its files are named in full.
#[test]
fn a_mix_named_with_a_dot_opens_by_its_stem() {
    let report = mix(build(), &options("almr0.5", 0.5, 64, 200)).unwrap();
    assert!(build().join("mix/almr0.5.mix").exists());
    assert_eq!(
        almr::mixfile::mix_file(&stem("almr0.5"), "json"),
        build().join("mix/almr0.5.json")
    );
    let index = MixIndex::open(&stem("almr0.5")).unwrap();
    assert_eq!(index.report(), &report);
    assert_eq!(
        almr::mixfile::open_checked(&stem("almr0.5")).unwrap(),
        report
    );
}

#[test]
fn an_existing_mix_is_overwritten_only_with_force() {
    let files = |name: &str| {
        ["mix", "json"].map(|ext| std::fs::read(stem(name).with_extension(ext)).unwrap())
    };
    mix(build(), &options("kept", 0.3, 128, 300)).unwrap();
    let first = files("kept");
    let mut other = options("kept", 0.5, 128, 300);
    let e = mix(build(), &other).unwrap_err().to_string();
    for part in ["kept.json", "--force", "training run"] {
        assert!(e.contains(part), "{part}: {e}");
    }
    assert!(first == files("kept"), "a refused mix changed the files");
    // The sidecar is the mix's commit record: an index without one is what
    // a killed `almr mix` left, and is overwritten without --force.
    std::fs::remove_file(stem("kept").with_extension("json")).unwrap();
    mix(build(), &options("kept", 0.3, 128, 300)).unwrap();
    assert!(first == files("kept"), "the same options give the same mix");
    other.force = true;
    let report = mix(build(), &other).unwrap();
    assert_eq!(report.target_almr, 0.5);
    assert!(first[1] != files("kept")[1]);
}

fn docs_of(index: &MixIndex, split: Split) -> BTreeSet<(usize, usize, usize)> {
    let mut docs = BTreeSet::new();
    for i in 0..index.len(split) {
        for sp in index.spans(split, i).unwrap() {
            docs.insert((sp.source, sp.shard, sp.document));
        }
    }
    docs
}

#[test]
fn validation_and_training_documents_are_disjoint() {
    // 8 epochs of zh_news: every training document is used.
    let report = mix(build(), &options("disjoint", 0.5, 64, 8000)).unwrap();
    let index = MixIndex::open(&stem("disjoint")).unwrap();
    let train = docs_of(&index, Split::Train);
    let valid = docs_of(&index, Split::Valid);
    assert!(!valid.is_empty());
    assert!(
        train.is_disjoint(&valid),
        "{:?}",
        train.intersection(&valid)
    );
    for (s, src) in report.sources.iter().enumerate() {
        let t = train.iter().filter(|d| d.0 == s).count() as u64;
        assert_eq!(t, src.train_documents, "{}", src.name);
        assert!(src.epochs > 1.0, "{}: {}", src.name, src.epochs);
        if src.valid_samples > 0 {
            assert!(valid.iter().any(|d| d.0 == s));
        }
    }
    // A validation sample reads whole held-out documents in order.
    let mut tokens = Vec::new();
    index.read(Split::Valid, 0, &mut tokens).unwrap();
    let sp = &index.spans(Split::Valid, 0).unwrap()[0];
    assert_eq!(sp.start, 0);
    let doc = index.shard(sp).get(sp.document).unwrap();
    let n = doc.len().min(65);
    assert_eq!(tokens[..n], doc[..n]);
}

#[test]
fn upsampled_epochs_are_reshuffled_and_reported() {
    let report = mix(build(), &options("epochs", 0.33, 512, 2000)).unwrap();
    for s in &report.sources {
        let expect = (s.samples * 512 + 1) as f64 / s.train_tokens as f64;
        assert!((s.epochs - expect).abs() < 1e-12);
        assert_eq!(s.epochs_started, s.epochs.ceil() as u64, "{}", s.name);
    }
    // The samples of zh_news (source 0) that start in its first epoch come
    // first in the stream and cover every one of its training documents.
    let index = MixIndex::open(&stem("epochs")).unwrap();
    let src = &report.sources[0];
    let first_epoch = src.train_tokens.div_ceil(512) as usize;
    let mut docs = BTreeSet::new();
    let mut taken = 0;
    for i in 0..index.len(Split::Train) {
        if taken < first_epoch && index.source_of(Split::Train, i).unwrap() == 0 {
            docs.extend(
                index
                    .spans(Split::Train, i)
                    .unwrap()
                    .iter()
                    .map(|sp| sp.document),
            );
            taken += 1;
        }
    }
    assert_eq!(docs.len() as u64, src.train_documents);
    let refused = Command::new(env!("CARGO_BIN_EXE_almr"))
        .args([
            "mix",
            build().to_str().unwrap(),
            "--name",
            "limit",
            "--almr",
            "0.33",
        ])
        .args(["--seq-len", "512", "--samples", "2000", "--max-epochs", "2"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("source zh_news") && err.contains("tokens are missing"),
        "{err}"
    );
    assert!(!stem("limit").with_extension("json").exists());
}

#[test]
fn the_python_reader_agrees_with_mix_index() {
    mix(build(), &options("python", 0.33, 300, 1500)).unwrap();
    let index = MixIndex::open(&stem("python")).unwrap();
    for (split, name) in [(Split::Train, "train"), (Split::Valid, "valid")] {
        let picks: Vec<usize> = (0..index.len(split)).step_by(7).collect();
        assert!(!picks.is_empty());
        let out = Command::new("python3")
            .arg(root().join("tests/read_mix.py"))
            .arg(stem("python"))
            .arg(name)
            .args(picks.iter().map(|i| i.to_string()))
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), picks.len());
        let mut tokens = Vec::new();
        for (line, &i) in lines.iter().zip(&picks) {
            index.read(split, i, &mut tokens).unwrap();
            assert_eq!(tokens.len(), 301);
            let theirs: Vec<u32> = serde_json::from_value(line["tokens"].clone()).unwrap();
            assert_eq!(theirs, tokens, "{name} sample {i}");
            assert_eq!(line["source"], index.source_of(split, i).unwrap());
        }
    }
}

#[test]
fn megatron_weights_give_the_same_shares() {
    let report = mix(build(), &options("megatron", 0.4, 256, 1000)).unwrap();
    let path = almr::mix::export::write_megatron(&report, build()).unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut total = 0.0;
    for s in &report.sources {
        let w: f64 = words
            .chunks(2)
            .filter(|p| p[1].contains(&format!("/shards/{}/", s.name)))
            .map(|p| p[0].parse::<f64>().unwrap())
            .sum();
        assert!((w - s.achieved_share).abs() < 1e-9, "{}", s.name);
        total += w;
    }
    assert!((total - 1.0).abs() < 1e-9);
    assert!(words.chunks(2).all(|p| Path::new(p[1]).is_absolute()));
}

#[test]
fn bad_options_and_a_corrupt_index_are_errors() {
    let mut o = options("bad", 0.3, 128, 100);
    o.weights.insert("zh_news".into(), 1.0);
    let e = mix(build(), &o).unwrap_err().to_string();
    assert!(e.contains("zh_tech"), "{e}");
    o.weights.insert("zh_tech".into(), 0.0);
    o.weights.insert("zh_news".into(), 0.0);
    let e = mix(build(), &o).unwrap_err().to_string();
    assert!(e.contains("additional sources"), "{e}");
    o.weights.insert("nope".into(), 1.0);
    let e = mix(build(), &o).unwrap_err().to_string();
    assert!(e.contains("no such source"), "{e}");
    let e = mix(build(), &options("../x", 0.3, 128, 100))
        .unwrap_err()
        .to_string();
    assert!(e.contains("--name"), "{e}");

    mix(build(), &options("corrupt", 0.3, 128, 100)).unwrap();
    let file = stem("corrupt").with_extension("mix");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.truncate(bytes.len() - 3);
    std::fs::write(&file, &bytes).unwrap();
    let e = MixIndex::open(&stem("corrupt")).err().unwrap();
    assert!(format!("{e:#}").contains("not a valid mix index"), "{e:#}");
}

#[test]
fn stats_add_up_and_the_html_report_is_self_contained() {
    // A build of its own: the other tests write mixes while this one reads.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    build_to(&root().join("pipelines/default.toml"), out, 2);
    mix(out, &options("stats", 0.33, 256, 1500)).unwrap();
    let stats = almr::stats::stats(out).unwrap();
    let manifest = almr::manifest::Manifest::load(out).unwrap();
    let tokens: u64 = stats.languages.iter().map(|l| l.counts.tokens).sum();
    assert_eq!(tokens, manifest.totals.tokens);
    assert_eq!(
        stats
            .languages
            .iter()
            .map(|l| l.name.as_str())
            .collect::<Vec<_>>(),
        ["zh", "en"]
    );
    for (g, src) in stats.sources.iter().zip(&manifest.sources) {
        assert_eq!(g.counts, src.counts);
        let binned: u64 = g.length_histogram.iter().map(|b| b.documents).sum();
        assert_eq!(binned, src.counts.kept);
        let l = &g.lengths;
        assert!(l.min <= l.p10 && l.p10 <= l.p50 && l.p50 <= l.p90 && l.p90 <= l.max);
    }
    let m = stats.mixes.iter().find(|m| m.name == "stats").unwrap();
    assert_eq!(m.target_almr, 0.33);
    assert_eq!(m.curve.last().unwrap().samples, 1500);
    assert!((m.curve.last().unwrap().cumulative - m.achieved_almr).abs() < 1e-12);

    let html = almr::stats::html::render(&stats).unwrap();
    let charts = html.matches("<svg").count();
    assert!(charts >= 3 + stats.mixes.len(), "{charts} charts");
    for external in ["src=", "href=", "<script", "@import", "url("] {
        assert!(!html.contains(external), "the report refers to {external}");
    }
    assert!(html.contains("Records removed, by reason"));
}

#[test]
fn sample_decodes_text_with_the_provenance_of_its_documents() {
    mix(build(), &options("sample", 0.5, 200, 400)).unwrap();
    let drawn = almr::sample::sample(&stem("sample"), Split::Train, 4, 7).unwrap();
    assert_eq!(drawn.len(), 4);
    let again = almr::sample::sample(&stem("sample"), Split::Train, 4, 7).unwrap();
    assert_eq!(
        drawn.iter().map(|s| s.index).collect::<Vec<_>>(),
        again.iter().map(|s| s.index).collect::<Vec<_>>()
    );
    let tokenizer = almr::tokenize::load(&build().join("tokenizer.json")).unwrap();
    for s in &drawn {
        assert_eq!(s.tokens.len(), 201);
        let covered: usize = s.documents.iter().map(|d| d.end - d.start).sum();
        assert_eq!(covered, 201);
        assert_eq!(
            s.text,
            almr::tokenize::decode(&tokenizer, &s.tokens).unwrap()
        );
        for d in &s.documents {
            assert_eq!(d.provenance.source, s.source);
            assert_eq!(d.provenance.n_tokens as usize, d.doc_tokens);
            assert!(
                root().join(&d.provenance.file).exists() || Path::new(&d.provenance.file).exists()
            );
        }
    }
    let valid = almr::sample::sample(&stem("sample"), Split::Valid, 1000, 0).unwrap();
    assert_eq!(
        valid.len(),
        MixIndex::open(&stem("sample")).unwrap().len(Split::Valid)
    );
}
