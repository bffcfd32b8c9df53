//! Policy-as-code: rules over every synthesized template, one rule per file (like cfn-lint's
//! rules). Each rule returns findings (`<logical id>: <what is wrong>`); every rule also has a test
//! on a template that breaks it, so no rule can pass vacuously.

#[path = "../common/mod.rs"]
mod common;
mod rules;

use serde_json::Value;

pub type Rule = (&'static str, fn(&Value) -> Vec<String>);

/// Resources of the template (id, resource).
pub fn resources(t: &Value) -> Vec<(&String, &Value)> {
    t["Resources"]
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default()
}

/// Identity-policy statements (roles' inline policies and IAM::Policy documents), with the owner.
pub fn identity_statements(t: &Value) -> Vec<(&String, &Value)> {
    let mut out = Vec::new();
    for (id, r) in resources(t) {
        let docs: Vec<&Value> = match r["Type"].as_str() {
            Some("AWS::IAM::Role") => r["Properties"]["Policies"]
                .as_array()
                .map(|p| p.iter().map(|x| &x["PolicyDocument"]).collect())
                .unwrap_or_default(),
            Some("AWS::IAM::Policy") => vec![&r["Properties"]["PolicyDocument"]],
            _ => vec![],
        };
        for d in docs {
            for s in d["Statement"].as_array().into_iter().flatten() {
                // A conditional statement (`Fn::If [cond, statement, AWS::NoValue]`): check
                // every branch that is a statement.
                match s["Fn::If"].as_array() {
                    Some(branches) => out.extend(
                        branches
                            .iter()
                            .skip(1)
                            .filter(|b| b.get("Effect").is_some())
                            .map(|b| (id, b)),
                    ),
                    None => out.push((id, s)),
                }
            }
        }
    }
    out
}

pub fn as_list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        Value::Null => vec![],
        other => vec![other],
    }
}

#[test]
fn every_rule_passes_on_every_example() {
    let mut failures = Vec::new();
    for app in examples::APPS {
        let t = common::synth(app);
        for (name, rule) in rules::ALL {
            for f in rule(&t) {
                failures.push(format!("{app}: {name}: {f}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "policy findings:\n{}",
        failures.join("\n")
    );
}
