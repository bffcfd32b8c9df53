//! Whole-template snapshots of the three examples (review changes with `cargo insta review`).

mod common;

#[test]
fn dev_template() {
    insta::assert_json_snapshot!("dev", common::synth("dev"));
}

#[test]
fn production_template() {
    insta::assert_json_snapshot!("production", common::synth("production"));
}

#[test]
fn embedded_template() {
    insta::assert_json_snapshot!("embedded", common::synth("embedded"));
}

/// Logical ids are a pure function of construct paths: renaming or moving a construct replaces
/// resources in a deployed stack. This list changes only on purpose.
#[test]
fn logical_ids_are_stable() {
    let app = examples::build("production", &examples::AppOptions::for_tests()).unwrap();
    let out = app.synth().unwrap();
    insta::assert_json_snapshot!("production_logical_ids", out.stacks[0].logical_ids);
}

#[test]
fn synthesis_is_deterministic() {
    let a = serde_json::to_string(&common::synth("production")).unwrap();
    let b = serde_json::to_string(&common::synth("production")).unwrap();
    assert_eq!(a, b);
}

#[test]
fn restore_template() {
    insta::assert_json_snapshot!("restore", common::synth("restore"));
}
