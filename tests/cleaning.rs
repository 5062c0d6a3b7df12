//! The cleaning steps with their default settings: real text survives, junk
//! goes, every record is accounted for, and `almr explain` can say why.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use almr::manifest::Manifest;
use common::{build_to, read_rejects, root, LLAMA3};

/// A pipeline with every step (no `steps` key) over the given sources.
fn pipeline(dir: &Path, sources: &[(&str, &str, &str, &str)]) -> PathBuf {
    let mut s = format!(
        "output = \"unused\"\n[tokenizer]\npath = {:?}\neos = \"<|end_of_text|>\"\n",
        root().join(LLAMA3).display().to_string()
    );
    for (name, lang, path, extra) in sources {
        s.push_str(&format!(
            "[[source]]\nname = {name:?}\nlanguage = {lang:?}\nadditional = {}\npaths = [{:?}]\n{extra}\n",
            *lang == "zh",
            root().join(path).display().to_string()
        ));
    }
    let p = dir.join("pipeline.toml");
    std::fs::write(&p, s).unwrap();
    p
}

fn source<'m>(m: &'m Manifest, name: &str) -> &'m almr::manifest::Counts {
    &m.sources.iter().find(|s| s.name == name).unwrap().counts
}

#[test]
fn defaults_keep_real_text_and_drop_junk() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(
        dir.path(),
        &[
            (
                "zh_real",
                "zh",
                "fixtures/zh/*.jsonl.gz",
                "format = \"jsonl\"\nid_field = \"id\"",
            ),
            (
                "en_real",
                "en",
                "fixtures/en/*.jsonl.zst",
                "format = \"jsonl\"\nid_field = \"id\"",
            ),
            (
                "en_real_more",
                "en",
                "fixtures/en/*.parquet",
                "format = \"parquet\"\ntext_field = \"content\"\nid_field = \"page_id\"",
            ),
            (
                "zh_junk",
                "zh",
                "fixtures/quality/junk_zh.jsonl",
                "format = \"jsonl\"\nid_field = \"id\"",
            ),
            (
                "en_junk",
                "en",
                "fixtures/quality/junk_en.jsonl",
                "format = \"jsonl\"\nid_field = \"id\"",
            ),
        ],
    );
    let out = dir.path().join("out");
    let m = build_to(&p, &out, 2).manifest;
    assert!(m.check().is_empty(), "{:?}", m.check());

    let share = |kept: u64, read: u64| kept as f64 / read as f64;
    let zh = source(&m, "zh_real");
    let zh_kept = share(zh.kept, zh.read);
    let (en, en_more) = (source(&m, "en_real"), source(&m, "en_real_more"));
    let en_kept = share(en.kept + en_more.kept, en.read + en_more.read);
    // Junk rejected, per language, without the junk that is code: the
    // defaults keep code (tests/code_math.rs).
    let kept_junk: Vec<String> = ["zh_junk", "en_junk"]
        .iter()
        .flat_map(|s| {
            let shard = m.shards.iter().find(|sh| sh.source == *s);
            shard.into_iter().flat_map(|sh| {
                let docs = almr::shard::with_suffix(&out.join(&sh.prefix), ".docs.parquet");
                (0..sh.documents).map(move |i| almr::provenance::read_row(&docs, i).unwrap().id)
            })
        })
        .collect();
    println!("junk kept: {kept_junk:?}");
    let dropped = |file: &str| {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        let (mut n, mut kept) = (0, 0);
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["category"] != "code_in_prose" {
                n += 1;
                kept += usize::from(kept_junk.iter().any(|id| v["id"] == id.as_str()));
            }
        }
        assert!(n >= 50, "{file}: {n}");
        share((n - kept) as u64, n as u64)
    };
    let zh_dropped = dropped("fixtures/quality/junk_zh.jsonl");
    let en_dropped = dropped("fixtures/quality/junk_en.jsonl");
    println!("real kept: zh {zh_kept:.3} en {en_kept:.3}; junk rejected: zh {zh_dropped:.3} en {en_dropped:.3}");
    assert!(zh.read >= 200 && en.read + en_more.read >= 100);
    assert!(
        zh_kept >= 0.9,
        "only {zh_kept:.3} of real Chinese documents kept: {:?}",
        zh.rejected
    );
    assert!(
        en_kept >= 0.9,
        "only {en_kept:.3} of real English documents kept"
    );
    assert!(
        zh_dropped >= 0.95,
        "only {zh_dropped:.3} of Chinese junk rejected"
    );
    assert!(
        en_dropped >= 0.95,
        "only {en_dropped:.3} of English junk rejected"
    );

    // Every rejected record has its row; the tables agree with the counts.
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    for o in m.outputs.iter().filter(|o| o.path.starts_with("rejects")) {
        for row in read_rejects(&out.join(&o.path)) {
            let stage = o.path.file_stem().unwrap().to_str().unwrap();
            if stage != "read" {
                *by_reason.entry(format!("{stage}/{}", row.2)).or_default() += 1;
            }
        }
    }
    assert_eq!(by_reason, m.totals.rejected.by_reason);
}

#[test]
fn exact_dedup_keeps_the_first_occurrence_across_sources() {
    let dir = tempfile::tempdir().unwrap();
    let text = "党和国家领导人江泽民、李鹏、乔石、朱镕基等与万名首都各界群众和劳动模范代表一起，在激昂奋进的音乐声中辞旧迎新。今晚的长安街流光溢彩，火树银花；人民大会堂里灯火辉煌，充满欢乐祥和的喜庆气氛。这场新年音乐会由中国交响乐团、上海交响乐团和北京交响乐团首次联袂演出。";
    let line = |id: &str, t: &str| format!("{{\"id\":{id:?},\"text\":{t:?}}}\n");
    std::fs::write(dir.path().join("a.jsonl"), line("a1", text) + &line("a2", "另一篇完全不同的文章，讲述了农民在冬季兴修水利、改善农田灌溉条件的故事，他们的努力让来年的丰收有了保障。") + &line("a3", text)).unwrap();
    std::fs::write(dir.path().join("b.jsonl"), line("b1", text)).unwrap();
    let p = pipeline(
        dir.path(),
        &[
            (
                "first",
                "zh",
                dir.path().join("a.jsonl").to_str().unwrap(),
                "format = \"jsonl\"\nid_field = \"id\"",
            ),
            (
                "second",
                "zh",
                dir.path().join("b.jsonl").to_str().unwrap(),
                "format = \"jsonl\"\nid_field = \"id\"",
            ),
        ],
    );
    // Relax the quality filters: this test is about dedup.
    let relaxed = std::fs::read_to_string(&p).unwrap().replace(
        "format = \"jsonl\"",
        "format = \"jsonl\"\nfilter.gopher_quality.enabled = false",
    );
    std::fs::write(&p, relaxed).unwrap();
    let out = dir.path().join("out");
    let m = build_to(&p, &out, 2).manifest;
    assert_eq!(source(&m, "first").kept, 2);
    assert_eq!(
        source(&m, "first").rejected.by_reason["exact_dedup/duplicate"],
        1
    );
    assert_eq!(source(&m, "second").kept, 0);
    let rows = read_rejects(&out.join("rejects/exact_dedup.parquet"));
    let ids: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
    assert_eq!(ids, ["a3", "b1"]);

    let fates = almr::explain::explain(&out, "b1").unwrap();
    match &fates[..] {
        [almr::explain::Fate::Dropped {
            stage,
            reason,
            detail,
            ..
        }] => {
            assert_eq!(
                (stage.as_str(), reason.as_str()),
                ("exact_dedup", "duplicate")
            );
            assert!(detail.starts_with("duplicate of a1 (first, "), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &almr::explain::explain(&out, "a1").unwrap()[..],
        [almr::explain::Fate::Kept { doc_index: 0, .. }]
    ));
    assert!(almr::explain::explain(&out, "zzz").is_err());
}

#[test]
fn pii_is_redacted_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let text = "The office moved last spring. Write to press@example.org or call +44 20 7946 0958 for the new schedule, and the archive server at 10.1.2.3 keeps the older files for anyone who needs them. The staff thanks everyone who helped with the move and hopes to see you at the opening of the new reading room, which has more seats and better light than the old one.";
    std::fs::write(
        dir.path().join("a.jsonl"),
        format!("{{\"id\":\"x\",\"text\":{text:?}}}\n"),
    )
    .unwrap();
    let p = pipeline(
        dir.path(),
        &[(
            "en",
            "en",
            dir.path().join("a.jsonl").to_str().unwrap(),
            "format = \"jsonl\"\nid_field = \"id\"",
        )],
    );
    let out = dir.path().join("out");
    let m = build_to(&p, &out, 1).manifest;
    let c = source(&m, "en");
    assert_eq!(c.kept, 1, "{:?}", c.rejected);
    assert_eq!(
        (
            c.changes["pii_email"],
            c.changes["pii_phone"],
            c.changes["pii_ip"]
        ),
        (1, 1, 1)
    );
    let r = almr::inspect::inspect(&out.join(&m.shards[0].prefix), Some(0), None).unwrap();
    let t = r.document.unwrap().text;
    assert!(
        t.contains("Write to <EMAIL> or call <PHONE>")
            && t.contains("server at <IP_ADDRESS> keeps"),
        "{t}"
    );
}
