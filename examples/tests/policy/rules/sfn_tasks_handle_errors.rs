//! Every Task of every state machine retries transient errors and catches the rest
//! (architecture.md: `Transient` retried with backoff, everything else caught → respond FAILED).
//! A Task inside a Map or Parallel is covered by the enclosing state's Catch.

use serde_json::{json, Value};

fn visit(states: &Value, sm: &str, covered: bool, out: &mut Vec<String>) {
    for (name, s) in states.as_object().into_iter().flatten() {
        if s["Type"] == "Task" {
            let retries: Vec<&Value> = s["Retry"].as_array().into_iter().flatten().collect();
            let retries_transient = retries.iter().any(|r| {
                r["ErrorEquals"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|e| e == "Transient")
            });
            let jitter = retries.iter().all(|r| r["JitterStrategy"] == "FULL");
            let catches = s["Catch"]
                .as_array()
                .map(|c| !c.is_empty())
                .unwrap_or(false);
            let is_respond = name.contains("Respond");
            if !retries_transient {
                out.push(format!("{sm}/{name}: Task without a Retry on `Transient`"));
            }
            if !jitter {
                out.push(format!(
                    "{sm}/{name}: every Retry should use JitterStrategy FULL"
                ));
            }
            // The Respond task is the end of the Catch path; everything else must be caught.
            if !catches && !is_respond && !covered {
                out.push(format!("{sm}/{name}: Task without a Catch"));
            }
        }
        let inner_covered = covered || s["Catch"].as_array().is_some_and(|c| !c.is_empty());
        for b in s["Branches"].as_array().into_iter().flatten() {
            visit(&b["States"], sm, inner_covered, out);
        }
        if let Some(p) = s.get("ItemProcessor") {
            visit(&p["States"], sm, inner_covered, out);
        }
    }
}

pub fn check(t: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (id, r) in crate::resources(t) {
        if r["Type"] == "AWS::StepFunctions::StateMachine" {
            visit(
                &r["Properties"]["Definition"]["States"],
                id,
                false,
                &mut out,
            );
        }
    }
    out
}

#[test]
fn flags_unprotected_task() {
    let t = json!({"Resources": {"M": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {"Definition": {"States": {
        "A": {"Type": "Task", "Retry": [{"ErrorEquals": ["Transient"], "JitterStrategy": "FULL"}], "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "R"}]},
        "P": {"Type": "Parallel", "Branches": [{"States": {"B": {"Type": "Task"}}}]},
        "M": {"Type": "Map", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "R"}], "ItemProcessor": {"States": {
            "C": {"Type": "Task", "Retry": [{"ErrorEquals": ["Transient"], "JitterStrategy": "FULL"}]}}}}
    }}}}}});
    assert_eq!(
        check(&t),
        [
            "M/B: Task without a Retry on `Transient`",
            "M/B: Task without a Catch"
        ]
    );
}
