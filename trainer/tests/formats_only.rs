//! The trainer builds against almr's formats only: none of the pipeline's
//! heavy dependencies is in its tree, dev-dependencies included.

use std::process::Command;

#[test]
fn the_trainer_tree_has_none_of_the_pipelines_dependencies() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "--locked", "-p", "almr-trainer"])
        .args([
            "--prefix",
            "none",
            "-e",
            "normal,build,dev",
            "--format",
            "{p}",
        ])
        .current_dir(root)
        .output()
        .expect("running cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree.lines().filter_map(|l| l.split(' ').next()).collect();
    assert!(names.contains(&"almr"), "{tree}");
    assert!(names.contains(&"candle-core"), "{tree}");
    let heavy = [
        "parquet",
        "arrow-array",
        "arrow-schema",
        "arrow-cast",
        "jsonschema",
        "plotters",
        "ferrous-opencc",
        "whatlang",
    ];
    let found: Vec<&&str> = heavy.iter().filter(|h| names.contains(h)).collect();
    assert!(found.is_empty(), "the trainer's tree has {found:?}");
}
