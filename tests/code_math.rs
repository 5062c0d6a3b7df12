//! The default filters keep code and math (issue 17, item 4): real source
//! files, docstrings with formulas and LaTeX (`fixtures/code_math/`) are
//! kept, and the hand-written junk (`fixtures/quality/`) is still rejected.
//! The same build with the settings this change turned off gives the
//! figures from before it; `docs/cleaning.md` quotes both, from
//!
//!     cargo test --release --test code_math -- --nocapture

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;

use almr::manifest::Manifest;
use common::{build_to, root, LLAMA3};

const CODE_MATH: &str = "fixtures/code_math/code_math.jsonl.gz";
const JUNK_ZH: &str = "fixtures/quality/junk_zh.jsonl";
const JUNK_EN: &str = "fixtures/quality/junk_en.jsonl";

/// The settings from before: C4's `{` rule on, no hard-wrapped lines, and
/// every line of code or a formula judged as prose.
const BEFORE: &str = "filter.c4.reject_curly_bracket = true\n\
                      filter.c4.allow_wrapped_lines = false\n\
                      filter.code.set_aside = false\n";

/// The junk category that is code: junk only while code is.
const CODE_JUNK: &str = "code_in_prose";

/// (id, group) of every record of a JSON-lines fixture: the group is the
/// `kind` of a code/math document or the `category` of a junk one.
fn groups(path: &str) -> Vec<(String, String)> {
    let file = std::fs::File::open(root().join(path)).unwrap();
    let reader: Box<dyn BufRead> = match path.ends_with(".gz") {
        true => Box::new(BufReader::new(flate2::read::GzDecoder::new(file))),
        false => Box::new(BufReader::new(file)),
    };
    reader
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
            let group = v.get("kind").or_else(|| v.get("category")).unwrap();
            (
                v["id"].as_str().unwrap().to_string(),
                group.as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Ids of the documents a source kept.
fn kept_ids(m: &Manifest, out: &Path, source: &str) -> HashSet<String> {
    m.shards
        .iter()
        .filter(|sh| sh.source == source)
        .flat_map(|sh| {
            let docs = almr::shard::with_suffix(&out.join(&sh.prefix), ".docs.parquet");
            (0..sh.documents).map(move |i| almr::provenance::read_row(&docs, i).unwrap().id)
        })
        .collect()
}

/// Per group: (documents, kept).
type Tally = BTreeMap<String, (usize, usize)>;

fn tally(records: &[(String, String)], kept: &HashSet<String>) -> Tally {
    let mut t = Tally::new();
    for (id, group) in records {
        let e = t.entry(group.clone()).or_default();
        e.0 += 1;
        e.1 += usize::from(kept.contains(id));
    }
    t
}

/// Kept share over the groups that `pick` selects.
fn kept_share(t: &Tally, pick: impl Fn(&str) -> bool) -> f64 {
    let (n, k) = t
        .iter()
        .filter(|(g, _)| pick(g))
        .fold((0, 0), |(n, k), (_, &(gn, gk))| (n + gn, k + gk));
    k as f64 / n as f64
}

struct Figures {
    code: Tally,
    junk_zh: Tally,
    junk_en: Tally,
}

/// Builds the three fixtures through every step with the default settings
/// plus `extra` under each source.
fn build(extra: &str) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let mut s = format!(
        "output = \"unused\"\n[tokenizer]\npath = {:?}\neos = \"<|end_of_text|>\"\n",
        root().join(LLAMA3).display().to_string()
    );
    for (name, lang, path) in [
        ("code_math", "en", CODE_MATH),
        ("junk_zh", "zh", JUNK_ZH),
        ("junk_en", "en", JUNK_EN),
    ] {
        s.push_str(&format!(
            "[[source]]\nname = {name:?}\nlanguage = {lang:?}\nadditional = {}\npaths = [{:?}]\nformat = \"jsonl\"\nid_field = \"id\"\n{extra}",
            lang == "zh",
            root().join(path).display().to_string()
        ));
    }
    let p = dir.path().join("pipeline.toml");
    std::fs::write(&p, s).unwrap();
    let out = dir.path().join("out");
    let m = build_to(&p, &out, 2).manifest;
    assert!(m.check().is_empty(), "{:?}", m.check());
    Figures {
        code: tally(&groups(CODE_MATH), &kept_ids(&m, &out, "code_math")),
        junk_zh: tally(&groups(JUNK_ZH), &kept_ids(&m, &out, "junk_zh")),
        junk_en: tally(&groups(JUNK_EN), &kept_ids(&m, &out, "junk_en")),
    }
}

fn report(label: &str, f: &Figures) -> (f64, f64, f64) {
    let code = kept_share(&f.code, |_| true);
    let zh = 1.0 - kept_share(&f.junk_zh, |g| g != CODE_JUNK);
    let en = 1.0 - kept_share(&f.junk_en, |g| g != CODE_JUNK);
    println!(
        "{label}: code/math kept {code:.3} {:?}; junk rejected (without {CODE_JUNK}): zh {zh:.3}, en {en:.3}; {CODE_JUNK} kept: zh {:?}, en {:?}",
        f.code, f.junk_zh[CODE_JUNK], f.junk_en[CODE_JUNK]
    );
    (code, zh, en)
}

#[test]
fn defaults_keep_code_and_math_and_still_reject_junk() {
    let after = build("");
    let (code, zh, en) = report("defaults", &after);
    assert!(after.code.values().map(|v| v.0).sum::<usize>() >= 100);
    assert!(code >= 0.95, "only {code:.3} of code and math kept");
    assert!(zh >= 0.95, "only {zh:.3} of Chinese junk rejected");
    assert!(en >= 0.95, "only {en:.3} of English junk rejected");
    // Code in a Chinese source is still not Chinese.
    assert_eq!(after.junk_zh[CODE_JUNK].1, 0);

    let before = build(BEFORE);
    let (code, zh, en) = report("before", &before);
    assert!(code < 0.05, "{code:.3}");
    assert!(zh >= 0.95 && en >= 0.95, "{zh:.3} {en:.3}");
}
