//! Without its `sweep` feature (on by default: `sweep run` makes mixes
//! through almr's pipeline), the trainer builds against almr's formats
//! only: none of the pipeline's heavy dependencies is in its tree,
//! dev-dependencies included. plotters, which draws both `almr stats
//! --html` and `almr-train report --html`, is the trainer's own dependency,
//! not one it gets through almr.

use std::process::Command;

/// `cargo tree -p almr-trainer --no-default-features ARGS`, every kind of
/// edge, one package a line.
fn cargo_tree(args: &[&str]) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "--locked", "-p", "almr-trainer"])
        .arg("--no-default-features")
        .args(["-e", "normal,build,dev", "--format", "{p}"])
        .args(args)
        .current_dir(root)
        .output()
        .expect("running cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_trainer_tree_has_none_of_the_pipelines_dependencies() {
    let tree = cargo_tree(&["--prefix", "none"]);
    let names: Vec<&str> = tree.lines().filter_map(|l| l.split(' ').next()).collect();
    assert!(names.contains(&"almr"), "{tree}");
    assert!(names.contains(&"candle-core"), "{tree}");
    let heavy = [
        "parquet",
        "arrow-array",
        "arrow-schema",
        "arrow-cast",
        "jsonschema",
        "ferrous-opencc",
        "whatlang",
    ];
    let found: Vec<&&str> = heavy.iter().filter(|h| names.contains(h)).collect();
    assert!(found.is_empty(), "the trainer's tree has {found:?}");
}

#[test]
fn plotters_comes_to_the_trainer_directly_not_through_almr() {
    // The inverted tree: plotters at depth 0, what depends on it at 1.
    let tree = cargo_tree(&["-i", "plotters", "--prefix", "depth"]);
    let dependents: Vec<&str> = (tree.lines())
        .filter_map(|l| l.strip_prefix('1'))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(dependents, ["almr-trainer"], "{tree}");
}
