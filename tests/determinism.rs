//! Same inputs and config give the same bytes, whatever the thread count;
//! shard cutting and seeded shuffles behave as configured.

mod common;

use std::path::Path;

use almr::provenance;
use almr::shard::{with_suffix, ShardReader};
use common::{build_to, root, write_pipeline};

fn shard_files(out: &Path) -> Vec<(String, Vec<u8>)> {
    let m = almr::manifest::Manifest::load(out).unwrap();
    let mut files = Vec::new();
    for s in &m.shards {
        for suffix in [".bin", ".idx", ".docs.parquet"] {
            let p = with_suffix(&s.prefix, suffix);
            files.push((
                p.display().to_string(),
                std::fs::read(out.join(&p)).unwrap(),
            ));
        }
    }
    files
}

#[test]
fn one_and_two_threads_give_identical_bytes() {
    std::env::set_current_dir(root()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pipeline = root().join("pipelines/tokenize_only.toml");
    let a = build_to(&pipeline, &dir.path().join("t1"), 1);
    let b = build_to(&pipeline, &dir.path().join("t2"), 2);
    let (fa, fb) = (shard_files(&a.out), shard_files(&b.out));
    assert_eq!(fa.len(), 12);
    assert_eq!(fa, fb);
    assert_eq!(a.manifest.to_json(), b.manifest.to_json());
}

#[test]
fn every_step_gives_identical_bytes_for_one_and_two_threads() {
    std::env::set_current_dir(root()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pipeline = root().join("pipelines/default.toml");
    let a = build_to(&pipeline, &dir.path().join("t1"), 1);
    let b = build_to(&pipeline, &dir.path().join("t2"), 2);
    assert!(a.manifest.totals.rejected.total > 0);
    assert_eq!(shard_files(&a.out), shard_files(&b.out));
    assert_eq!(a.manifest.to_json(), b.manifest.to_json());
    for o in a
        .manifest
        .outputs
        .iter()
        .filter(|o| o.path.starts_with("rejects"))
    {
        assert_eq!(
            std::fs::read(a.out.join(&o.path)).unwrap(),
            std::fs::read(b.out.join(&o.path)).unwrap(),
            "{}",
            o.path.display()
        );
    }
}

fn corpus(dir: &Path, n: usize) -> std::path::PathBuf {
    let path = dir.join("docs.jsonl");
    let body: String = (0..n)
        .map(|i| {
            format!(
                "{{\"id\":\"d{i}\",\"text\":\"document number {i} {}\"}}\n",
                "word ".repeat(i % 7)
            )
        })
        .collect();
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn shards_are_cut_at_max_shard_tokens_without_splitting_documents() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path(), 200);
    let pipeline = write_pipeline(
        dir.path(),
        &[(
            "s",
            "jsonl",
            vec![input],
            "id_field = \"id\"\nmax_shard_tokens = 300",
        )],
    );
    let out = dir.path().join("out");
    let m = build_to(&pipeline, &out, 2).manifest;
    assert!(m.shards.len() > 3, "{} shards", m.shards.len());
    let mut next_id = 0;
    for s in &m.shards {
        assert!(
            s.tokens <= 300,
            "{} has {} tokens",
            s.prefix.display(),
            s.tokens
        );
        let docs = with_suffix(&out.join(&s.prefix), ".docs.parquet");
        for i in 0..s.documents {
            assert_eq!(
                provenance::read_row(&docs, i).unwrap().id,
                format!("d{next_id}")
            );
            next_id += 1;
        }
    }
    assert_eq!(next_id, 200);
    assert!(m.check().is_empty());
}

#[test]
fn seeded_shuffle_is_reproducible_and_keeps_provenance_aligned() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path(), 100);
    let build = |name: &str, extra: &str| {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let p = write_pipeline(&sub, &[("s", "jsonl", vec![input.clone()], extra)]);
        build_to(&p, &sub.join("out"), 2)
    };
    let plain = build("plain", "id_field = \"id\"");
    let a = build("a", "id_field = \"id\"\nshuffle_seed = 7");
    let b = build("b", "id_field = \"id\"\nshuffle_seed = 7");
    let c = build("c", "id_field = \"id\"\nshuffle_seed = 8");
    assert_eq!(shard_files(&a.out), shard_files(&b.out));
    assert_ne!(shard_files(&a.out), shard_files(&c.out));

    let ids = |out: &Path| -> Vec<String> {
        let prefix = out.join("shards/s/s-00000");
        let docs = with_suffix(&prefix, ".docs.parquet");
        (0..100)
            .map(|i| provenance::read_row(&docs, i).unwrap().id)
            .collect()
    };
    let (plain_ids, shuffled_ids) = (ids(&plain.out), ids(&a.out));
    assert_ne!(plain_ids, shuffled_ids);
    let mut sorted = shuffled_ids.clone();
    sorted.sort();
    let mut want = plain_ids.clone();
    want.sort();
    assert_eq!(sorted, want);

    // Document k of the shuffled shard holds the tokens of the plain shard's
    // document with the same id.
    let rp = ShardReader::open(&plain.out.join("shards/s/s-00000")).unwrap();
    let rs = ShardReader::open(&a.out.join("shards/s/s-00000")).unwrap();
    for (k, id) in shuffled_ids.iter().enumerate() {
        let j = plain_ids.iter().position(|x| x == id).unwrap();
        assert_eq!(rs.get(k).unwrap(), rp.get(j).unwrap());
    }
}
