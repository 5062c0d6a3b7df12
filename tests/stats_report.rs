//! `almr stats --html` through the command line, read as a user reads the
//! report: the records each source lost, coloured by stage with a key; a
//! length histogram per source and per language; each mix's ALMR chart with
//! its key; and each mix's validation split, with the numbers of the mix's
//! own report.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::root;

/// Runs `almr` and gives its stdout; fails the test if it fails.
fn almr(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_almr"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "almr {args:?}: {err}");
    String::from_utf8(out.stdout).unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The text from `start` to the next `end` after it.
fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let from = s.find(start).unwrap_or_else(|| panic!("no {start}"));
    let len = s[from..].find(end).unwrap_or_else(|| panic!("no {end}"));
    &s[from..from + len]
}

/// The texts of an SVG's `<text>` elements.
fn texts(svg: &str) -> Vec<&str> {
    (svg.split("<text").skip(1))
        .map(|t| t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()].trim())
        .collect()
}

/// The fill of every `<rect>` of an SVG, the white background left out.
fn bars(svg: &str) -> Vec<&str> {
    (svg.split("<rect").skip(1))
        .map(|r| between(r, "fill=\"", "\" ").trim_start_matches("fill=\""))
        .filter(|&f| f != "#FFFFFF")
        .collect()
}

/// The fill of the key's swatch for `name`: the last rect before its text.
fn swatch<'a>(svg: &'a str, name: &str) -> &'a str {
    let at = svg
        .find(&format!(">\n{name}\n</text>"))
        .unwrap_or_else(|| panic!("no key item {name}"));
    bars(&svg[..at]).last().unwrap()
}

/// The cells of each row of an HTML table, header row first.
fn rows(table: &str) -> Vec<Vec<&str>> {
    (table.split("<tr").skip(1))
        .map(|r| {
            (r.split("<t").skip(1))
                .map(|c| c[c.find('>').unwrap() + 1..c.find("</t").unwrap()].trim())
                .collect()
        })
        .collect()
}

/// Records each stage removed in the build, and from how many sources.
fn removed_by_stage(manifest: &serde_json::Value) -> BTreeMap<String, (u64, usize)> {
    let mut by: BTreeMap<String, (u64, usize)> = BTreeMap::new();
    for s in manifest["sources"].as_array().unwrap() {
        let mut mine: BTreeMap<String, u64> = BTreeMap::new();
        for (reason, n) in s["counts"]["rejected"]["by_reason"].as_object().unwrap() {
            let stage = reason.split('/').next().unwrap().to_string();
            *mine.entry(stage).or_default() += n.as_u64().unwrap();
        }
        let malformed = s["counts"]["malformed"]["total"].as_u64().unwrap();
        if malformed > 0 {
            mine.insert("malformed".into(), malformed);
        }
        for (stage, n) in mine {
            let e = by.entry(stage).or_default();
            (e.0, e.1) = (e.0 + n, e.1 + 1);
        }
    }
    by
}

/// The rejects chart per source: a key item per stage that removed
/// records, and a bar of the stage's colour for every source it removed
/// records from.
fn check_rejects(html: &str, manifest: &serde_json::Value) {
    let svg = between(
        between(html, "<section id=\"rejects\">", "</section>"),
        "<svg",
        "</svg>",
    );
    assert!(texts(svg).contains(&"Records removed per source, by stage"));
    let stages = removed_by_stage(manifest);
    assert!(
        stages.len() >= 3,
        "the fixture exercises few stages: {stages:?}"
    );
    let known = [
        "normalize",
        "language",
        "filter",
        "exact_dedup",
        "near_dedup",
        "malformed",
    ];
    let keyed: Vec<&str> = texts(svg)
        .into_iter()
        .filter(|t| known.contains(t))
        .collect();
    let order: Vec<&str> = known
        .into_iter()
        .filter(|k| stages.contains_key(*k))
        .collect();
    assert_eq!(keyed, order, "the key names the stages in pipeline order");
    let mut colours = Vec::new();
    for (stage, (_, sources)) in &stages {
        let c = swatch(svg, stage);
        let n = bars(svg).iter().filter(|&&f| f == c).count();
        assert_eq!(n, sources + 1, "{stage}: a bar per source, and the swatch");
        colours.push(c);
    }
    colours.sort();
    colours.dedup();
    assert_eq!(colours.len(), stages.len(), "one colour per stage");
}

/// A histogram per source and per language, each with its median and a
/// bar per non-empty bin of the JSON.
fn check_lengths(html: &str, stats: &serde_json::Value) {
    let section = between(html, "<section id=\"lengths\">", "</section>");
    for (attr, groups) in [("source", "sources"), ("language", "languages")] {
        for g in stats[groups].as_array().unwrap() {
            let name = g["name"].as_str().unwrap();
            let figure = between(
                section,
                &format!("<figure data-{attr}=\"{name}\">"),
                "</figure>",
            );
            let median = format!("{name}: median {} tokens", g["lengths"]["p50"]);
            assert!(texts(figure).contains(&median.as_str()), "{attr} {name}");
            let bins = g["length_histogram"].as_array().unwrap().len();
            assert!(bins > 1);
            assert_eq!(bars(figure).len(), bins, "{attr} {name}: a bar per bin");
        }
    }
}

/// Each mix's ALMR chart names the target and both deviations in its key.
fn check_almr(html: &str, mix: &serde_json::Value) {
    let name = mix["name"].as_str().unwrap();
    let figure = between(html, &format!("<figure data-mix=\"{name}\">"), "</figure>");
    let target = format!("target (ALMR {:.3})", mix["target_almr"].as_f64().unwrap());
    let window = format!("last {} samples", mix["window"]);
    for item in [target.as_str(), "all samples so far", window.as_str()] {
        assert!(texts(figure).contains(&item), "{name}: {item}");
    }
}

/// Each mix's validation table: per language, the documents, tokens and
/// windows of the mix's sidecar, then the totals.
fn check_validation(html: &str, out: &Path, name: &str) -> Vec<Vec<String>> {
    let sidecar = json(&out.join(format!("mix/{name}.json")));
    let section = between(html, "<section id=\"validation\">", "</section>");
    let table = between(section, &format!("<table data-mix=\"{name}\">"), "</table>");
    let rows = rows(table);
    assert_eq!(
        rows[0],
        ["language", "sources", "documents", "tokens", "windows"]
    );
    let mut want: Vec<Vec<String>> = Vec::new();
    for s in sidecar["sources"].as_array().unwrap() {
        let lang = s["language"].as_str().unwrap().to_string();
        let i = match want.iter().position(|r| r[0] == lang) {
            Some(i) => i,
            None => {
                want.push(vec![
                    lang,
                    String::new(),
                    "0".into(),
                    "0".into(),
                    "0".into(),
                ]);
                want.len() - 1
            }
        };
        let r = &mut want[i];
        r[1] = [r[1].as_str(), s["name"].as_str().unwrap()]
            .iter()
            .filter(|x| !x.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        for (col, key) in [
            (2, "valid_documents"),
            (3, "valid_tokens"),
            (4, "valid_samples"),
        ] {
            r[col] = (r[col].parse::<u64>().unwrap() + s[key].as_u64().unwrap()).to_string();
        }
    }
    let got: Vec<Vec<String>> = (rows[1..].iter())
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(got[..got.len() - 1], want[..], "{name}");
    let total = got.last().unwrap();
    assert_eq!(total[0], "all");
    assert_eq!(total[4], sidecar["valid_samples"].to_string(), "{name}");
    got
}

#[test]
fn the_html_report_shows_rejects_lengths_almr_and_validation_per_mix() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out_s = out.to_str().unwrap();
    almr(&["build", "tests/golden/neardup.toml", "--out", out_s]);
    let mix = |name: &str, almr_: &str, valid: &[&str]| {
        let mut args = vec!["mix", out_s, "--name", name, "--almr", almr_];
        args.extend(["--seq-len", "128", "--tokens", "64K"]);
        args.extend(valid);
        almr(&args);
    };
    mix("a", "0.3", &["--valid-share", "0.05"]);
    mix(
        "b",
        "0.5",
        &["--valid-share", "0.1", "--valid-share", "en=0.02"],
    );
    let report = dir.path().join("report.html");
    almr(&["stats", out_s, "--html", report.to_str().unwrap()]);
    let html = std::fs::read_to_string(&report).unwrap();
    let stats: serde_json::Value =
        serde_json::from_str(&almr(&["stats", out_s, "--json"])).unwrap();

    check_rejects(&html, &json(&out.join("manifest.json")));
    check_lengths(&html, &stats);
    for m in stats["mixes"].as_array().unwrap() {
        check_almr(&html, m);
    }
    let (a, b) = (
        check_validation(&html, &out, "a"),
        check_validation(&html, &out, "b"),
    );
    assert_ne!(a, b, "each mix shows its own split");
}
