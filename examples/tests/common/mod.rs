//! Shared helpers: synthesize an example app with a placeholder asset.
#![allow(dead_code)]

use serde_json::Value;

pub fn synth(app: &str) -> Value {
    let built = examples::build(app, &examples::AppOptions::for_tests()).expect("known app");
    let out = built.synth().unwrap_or_else(|e| panic!("{e}"));
    out.stacks[0].template.clone()
}

pub fn resources_of_type<'a>(t: &'a Value, ty: &str) -> Vec<(&'a String, &'a Value)> {
    t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == ty)
        .collect()
}

pub fn one_of_type<'a>(t: &'a Value, ty: &str) -> (&'a String, &'a Value) {
    let v = resources_of_type(t, ty);
    assert_eq!(v.len(), 1, "expected one {ty}, found {}", v.len());
    v[0]
}
