//! Our shards against shards that Megatron-LM's own `IndexedDatasetBuilder`
//! wrote for the same documents (fixtures/megatron, made by
//! `scripts/check_megatron.sh --rewrite-with-megatron`): byte for byte equal.

mod common;

use common::{build_to, root};

#[test]
fn shards_equal_megatron_written_bytes() {
    std::env::set_current_dir(root()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    build_to(&root().join("pipelines/tokenize_only.toml"), &out, 2);
    let megatron = root().join("fixtures/megatron");
    let mut compared = 0;
    for entry in std::fs::read_dir(&megatron).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let source = name.rsplit_once('-').unwrap().0;
        let ours = out.join("shards").join(source).join(&name);
        assert_eq!(
            std::fs::read(&ours).unwrap(),
            std::fs::read(&path).unwrap(),
            "{} differs from Megatron's {}",
            ours.display(),
            path.display()
        );
        compared += 1;
    }
    assert_eq!(compared, 5);
}
