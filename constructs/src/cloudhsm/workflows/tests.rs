//! Structural checks on the generated ASL (as JSON, the form Step Functions receives).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::Value;

use super::*;

fn machines() -> Vec<(&'static str, Value)> {
    vec![
        ("initialization", initialization().to_json()),
        ("hsm_fleet", hsm_fleet().to_json()),
        ("key_store", key_store().to_json()),
        ("restored_cluster", restored_cluster().to_json()),
    ]
}

/// Every state at any depth, with whether it sits inside a Map item processor.
fn all_states(def: &Value) -> Vec<(String, Value, bool)> {
    fn walk(graph: &Value, in_map: bool, out: &mut Vec<(String, Value, bool)>) {
        for (name, st) in graph["States"].as_object().unwrap() {
            out.push((name.clone(), st.clone(), in_map));
            if let Some(p) = st.get("ItemProcessor") {
                walk(p, true, out);
            }
            for b in st
                .get("Branches")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                walk(b, in_map, out);
            }
        }
    }
    let mut v = Vec::new();
    walk(def, false, &mut v);
    v
}

/// Transitions of a top-level state (Next, Choice targets, Catch targets when `with_catch`).
fn successors(st: &Value, with_catch: bool) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(n) = st.get("Next").and_then(Value::as_str) {
        v.push(n.to_string());
    }
    if let Some(d) = st.get("Default").and_then(Value::as_str) {
        v.push(d.to_string());
    }
    for c in st
        .get("Choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        v.push(c["Next"].as_str().unwrap().to_string());
    }
    if with_catch {
        for c in st
            .get("Catch")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            v.push(c["Next"].as_str().unwrap().to_string());
        }
    }
    v
}

fn reachable(states: &BTreeMap<String, Value>, from: &str, with_catch: bool) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut q = VecDeque::from([from.to_string()]);
    while let Some(n) = q.pop_front() {
        if !seen.insert(n.clone()) {
            continue;
        }
        for s in successors(&states[&n], with_catch) {
            q.push_back(s);
        }
    }
    seen
}

fn top(def: &Value) -> BTreeMap<String, Value> {
    def["States"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn step_of(st: &Value) -> Option<&str> {
    st.pointer("/Parameters/Step").and_then(Value::as_str)
}

#[test]
fn only_the_three_substitution_variables_are_used() {
    for (name, def) in [
        ("initialization", initialization()),
        ("hsm_fleet", hsm_fleet()),
        ("key_store", key_store()),
        ("restored_cluster", restored_cluster()),
    ] {
        for v in def.substitution_variables() {
            assert!(
                [
                    "ClusterFunctionArn",
                    "KeyStoreFunctionArn",
                    "RespondFunctionArn"
                ]
                .contains(&v.as_str()),
                "{name}: unexpected variable {v}"
            );
        }
    }
}

#[test]
fn every_task_retries_transient_and_lambda_errors_with_backoff_and_jitter() {
    for (m, def) in machines() {
        for (name, st, _) in all_states(&def) {
            if st["Type"] != "Task" {
                continue;
            }
            let retry = st["Retry"]
                .as_array()
                .unwrap_or_else(|| panic!("{m}/{name}: no Retry"));
            let covers = |e: &str| {
                retry
                    .iter()
                    .find(|r| r["ErrorEquals"].as_array().unwrap().iter().any(|x| x == e))
            };
            for e in [
                "Transient",
                "Lambda.ServiceException",
                "Lambda.AWSLambdaException",
                "Lambda.SdkClientException",
                "Lambda.TooManyRequestsException",
            ] {
                let r = covers(e).unwrap_or_else(|| panic!("{m}/{name}: {e} not retried"));
                assert_eq!(r["JitterStrategy"], "FULL", "{m}/{name}");
                assert!(r["BackoffRate"].as_f64().unwrap() >= 2.0, "{m}/{name}");
                assert!(r["MaxAttempts"].as_u64().unwrap() <= 10, "{m}/{name}");
                assert!(r["MaxDelaySeconds"].as_u64().is_some(), "{m}/{name}");
            }
            // Only our error types that are safe to repeat are retried.
            for r in retry {
                for e in r["ErrorEquals"].as_array().unwrap() {
                    let e = e.as_str().unwrap();
                    assert!(
                        ![
                            "InvalidInput",
                            "ResourceFailed",
                            "WaitTimeout",
                            "Conflict",
                            "States.ALL"
                        ]
                        .contains(&e),
                        "{m}/{name} retries {e}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_task_has_a_catch_path_to_respond() {
    for (m, def) in machines() {
        let states = top(&def);
        for (name, st, in_map) in all_states(&def) {
            let ty = st["Type"].as_str().unwrap();
            if name == "Respond" || name == "ResponseNotDelivered" {
                continue;
            }
            if in_map {
                // Caught by the enclosing Map.
                continue;
            }
            if ty == "Task" || ty == "Map" || ty == "Parallel" {
                let catch = st["Catch"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{m}/{name}: no Catch"));
                let last = catch.last().unwrap();
                assert_eq!(
                    last["ErrorEquals"],
                    serde_json::json!(["States.ALL"]),
                    "{m}/{name}"
                );
                assert_eq!(last["Next"], "Respond", "{m}/{name}");
                assert_eq!(last["ResultPath"], "$.Error", "{m}/{name}");
            }
        }
        // Tasks inside a Map: the Map has the catch.
        for (name, st) in &states {
            if st["Type"] == "Map" {
                assert_eq!(st["Catch"][0]["Next"], "Respond", "{m}/{name}");
            }
        }
    }
}

#[test]
fn every_path_ends_in_respond() {
    for (m, def) in machines() {
        let states = top(&def);
        for (name, st) in &states {
            let ends =
                st.get("End").and_then(Value::as_bool).unwrap_or(false) || st["Type"] == "Fail";
            if ends {
                assert!(
                    name == "Respond" || name == "ResponseNotDelivered",
                    "{m}: {name} ends the execution without answering CloudFormation"
                );
            }
            assert_ne!(st["Type"], "Succeed", "{m}/{name}");
            if name != "Respond" && name != "ResponseNotDelivered" {
                assert!(
                    reachable(&states, name, false).contains("Respond"),
                    "{m}: {name} never reaches Respond"
                );
            }
        }
        assert_eq!(states["Respond"]["Resource"], RESPOND_FN);
        assert_eq!(
            states["Respond"]["Parameters"]["Execution.$"],
            "$$.Execution.Id"
        );
    }
}

#[test]
fn every_loop_is_bounded_by_a_status_step() {
    for (m, def) in machines() {
        let states = top(&def);
        for (name, st) in &states {
            // States on a cycle through `name` (catch edges leave loops, they never close one).
            let on_cycle: BTreeSet<String> = reachable(&states, name, false)
                .into_iter()
                .filter(|n| reachable(&states, n, false).contains(name.as_str()))
                .collect();
            if on_cycle.len() <= 1 && !successors(st, false).contains(name) {
                continue;
            }
            let bounded = on_cycle.iter().any(|n| {
                states[n]["Type"] == "Task"
                    && step_of(&states[n]).is_some_and(|s| STATUS_STEPS.contains(&s))
            });
            assert!(
                bounded,
                "{m}: loop through {name} ({on_cycle:?}) has no bounding status step"
            );
        }
        for (name, st) in &states {
            if st["Type"] == "Wait" {
                assert_eq!(st["SecondsPath"], "$.Poll.Wait", "{m}/{name}");
                let next = &states[st["Next"].as_str().unwrap()];
                assert!(STATUS_STEPS.contains(&step_of(next).unwrap()), "{m}/{name}");
                assert!(
                    next["Parameters"].get("For").is_some() || step_of(next) == Some("HsmsGone"),
                    "{m}/{name}"
                );
                assert_eq!(next["ResultPath"], "$.Poll", "{m}/{name}");
            }
        }
    }
}

#[test]
fn tasks_call_their_own_functions_steps() {
    for (m, def) in machines() {
        for (name, st, _) in all_states(&def) {
            if st["Type"] != "Task" {
                continue;
            }
            let resource = st["Resource"].as_str().unwrap();
            let step = step_of(&st).unwrap_or_else(|| panic!("{m}/{name}: no Step"));
            let ok = match resource {
                CLUSTER_FN => CLUSTER_STEPS.contains(&step),
                KEYSTORE_FN => KEYSTORE_STEPS.contains(&step),
                RESPOND_FN => step == "Respond",
                other => panic!("{m}/{name}: resource {other}"),
            };
            assert!(ok, "{m}/{name}: step {step} is not served by {resource}");
            assert_eq!(st["Parameters"]["Input.$"], "$", "{m}/{name}");
        }
    }
}

#[test]
fn no_secret_values_in_parameters() {
    fn check(m: &str, state: &str, v: &Value) {
        match v {
            Value::Object(o) => {
                for (k, val) in o {
                    let key = k.trim_end_matches(".$").to_ascii_lowercase();
                    if ["password", "pin", "secret", "credential", "privatekey"]
                        .iter()
                        .any(|w| key.contains(w))
                    {
                        assert!(
                            key.ends_with("secretarn") || key.ends_with("secretname"),
                            "{m}/{state}: parameter {k} looks like a secret value; pass an ARN"
                        );
                    }
                    if k.ends_with(".$") {
                        let path = val.as_str().unwrap().to_ascii_lowercase();
                        assert!(
                            !path.contains("secretstring") && !path.contains("password")
                                || path.ends_with("arn"),
                            "{m}/{state}: {k} reads {path}"
                        );
                    } else {
                        check(m, state, val);
                    }
                }
            }
            Value::String(s) => assert!(
                s.chars().all(|c| c.is_ascii_alphabetic()) || s.starts_with("${"),
                "{m}/{state}: literal parameter value {s:?}"
            ),
            Value::Array(a) => a.iter().for_each(|x| check(m, state, x)),
            _ => {}
        }
    }
    for (m, def) in machines() {
        for (name, st, _) in all_states(&def) {
            for key in ["Parameters", "ItemSelector"] {
                if let Some(p) = st.get(key) {
                    check(m, &name, p);
                }
            }
        }
    }
}

#[test]
fn initialization_paths() {
    let def = initialization().to_json();
    let s = top(&def);
    // External PKI without a certificate: answer (with the CSR) before InitializeCluster.
    assert_eq!(s["CertificatePending"]["Choices"][0]["Next"], "Respond");
    assert_eq!(s["CertificatePending"]["Default"], "InitializeCluster");
    // The CSR is signed right after the first HSM is ACTIVE (SignCsr fetches it itself).
    assert_eq!(s["FirstHsmActiveDone"]["Choices"][0]["Next"], "SignCsr");
    assert_eq!(s["Activate"]["Parameters"]["Step"], "RunClientCommand");
    let params = s["Activate"]["Parameters"]["Parameters"]
        .as_object()
        .unwrap();
    let keys: Vec<&str> = params.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "ClusterId.$",
            "AdminPasswordSecretArn.$",
            "TrustAnchorSecretArn.$"
        ]
    );
    // The trust anchor is stored before the client (which reads it from the secret) activates.
    assert!(reachable(&s, "StoreTrustAnchor", false).contains("Activate"));
    assert!(!reachable(&s, "Activate", false).contains("StoreTrustAnchor"));
    assert_eq!(s["RequestType"]["Default"], "DeleteAllHsms");
    assert_eq!(def["TimeoutSeconds"], 3540);
}

#[test]
fn fleet_deletes_then_creates_in_parallel() {
    let def = hsm_fleet().to_json();
    let s = top(&def);
    for (map, items, task) in [
        ("DeleteHsms", "$.Plan.Deletes", "DeleteHsm"),
        ("CreateHsms", "$.Plan.Creates", "CreateHsm"),
    ] {
        assert_eq!(s[map]["ItemsPath"], items);
        assert_eq!(s[map]["MaxConcurrency"], 0);
        assert_eq!(s[map]["ItemSelector"]["Item.$"], "$$.Map.Item.Value");
        assert_eq!(
            s[map]["ItemProcessor"]["States"][task]["Parameters"]["Step"],
            task
        );
    }
    assert_eq!(s["DeleteHsms"]["Next"], "CreateHsms");
    assert_eq!(s["CreateHsms"]["Next"], "FleetReady");
    assert_eq!(s["FleetReady"]["Parameters"]["For"], "Fleet");
    // Done → the client; a re-plan (DEGRADED or vanished HSM) → planning again; else wait.
    let exits = &s["FleetReadyDone"]["Choices"];
    assert_eq!(
        (exits[0]["Variable"].clone(), exits[0]["Next"].clone()),
        (json!("$.Poll.Done"), json!("AnyHsm"))
    );
    assert_eq!(
        (exits[1]["Variable"].clone(), exits[1]["Next"].clone()),
        (json!("$.Poll.Replan"), json!("PlanFleet"))
    );
    assert_eq!(s["FleetReadyDone"]["Default"], "FleetReadyWait");
    assert_eq!(s["FleetReadyWait"]["Next"], "FleetReady");
    assert_eq!(s["AnyHsm"]["Default"], "RefreshClientClientReady");
    // The client must be online in SSM before the command is sent.
    assert_eq!(
        s["RefreshClientClientReady"]["Parameters"]["Step"],
        "ClientStatus"
    );
    assert_eq!(
        s["RefreshClientClientReadyDone"]["Choices"][0]["Next"],
        "RefreshClient"
    );
}

#[test]
fn key_store_create_update_delete_paths() {
    let def = key_store().to_json();
    let s = top(&def);
    assert_eq!(
        s["RequestType"]["Choices"][0]["Next"],
        "EnsureKmsUserSecret"
    );
    assert_eq!(s["RequestType"]["Choices"][1]["Next"], "UpdateKeyStore");
    assert_eq!(s["RequestType"]["Default"], "KeyStoreKeys");
    // kmsuser verified (client command finished) before the store is created.
    assert_eq!(
        s["CreateKmsUserStatusDone"]["Choices"][0]["Next"],
        "CreateKeyStore"
    );
    assert_eq!(
        s["CreateKmsUser"]["Parameters"]["Parameters"]["KmsUserSecretArn.$"],
        "$.KmsUser.SecretArn"
    );
    // The initial password secret goes once connected.
    assert_eq!(
        s["ConnectedDone"]["Choices"][0]["Next"],
        "DeleteKmsUserSecret"
    );
    // Keys are checked before anything is disconnected.
    assert_eq!(s["KeyStoreKeys"]["Next"], "StoreToDelete");
    assert_eq!(s["StoreToDelete"]["Default"], "DisconnectKeyStore");
    assert!(reachable(&s, "DisconnectKeyStore", false).contains("DeleteKeyStore"));
    // The store is created only after kmsuser, and connected only after it is created.
    let from_secret = reachable(&s, "EnsureKmsUserSecret", false);
    assert!(from_secret.contains("CreateKmsUser") && from_secret.contains("CreateKeyStore"));
}

#[test]
fn restored_cluster_paths() {
    let def = restored_cluster().to_json();
    let s = top(&def);
    assert_eq!(s["RequestType"]["Choices"][0]["Next"], "RestoreCluster");
    assert_eq!(
        s["RequestType"]["Choices"][1]["Next"],
        "UpdateRestoredCluster"
    );
    assert_eq!(s["RequestType"]["Default"], "FindRestoredCluster");
    // Create: restore, then wait until ACTIVE (no initialization, no activation), then respond.
    assert_eq!(s["RestoreCluster"]["ResultPath"], "$.Restore");
    assert_eq!(s["RestoreCluster"]["Next"], "ClusterRestored");
    assert_eq!(s["ClusterRestored"]["Parameters"]["For"], "Restored");
    assert_eq!(
        s["ClusterRestored"]["Parameters"]["ClusterId.$"],
        "$.Restore.ClusterId"
    );
    assert_eq!(s["ClusterRestoredDone"]["Choices"][0]["Next"], "Respond");
    let create = reachable(&s, "RestoreCluster", false);
    assert!(!create.contains("InitializeCluster") && !create.contains("DeleteCluster"));
    // Update answers at once.
    assert_eq!(s["UpdateRestoredCluster"]["Next"], "Respond");
    // Delete: nothing found → respond; else HSMs first, then the cluster, then wait until gone.
    assert_eq!(s["ClusterToDelete"]["Choices"][0]["Next"], "Respond");
    assert_eq!(s["ClusterToDelete"]["Default"], "DeleteAllHsms");
    assert_eq!(
        s["DeleteAllHsms"]["Parameters"]["ClusterId.$"],
        "$.Restore.ClusterId"
    );
    assert_eq!(
        s["HsmsGone"]["Parameters"]["ClusterId.$"],
        "$.Restore.ClusterId"
    );
    assert_eq!(s["HsmsGoneDone"]["Choices"][0]["Next"], "DeleteCluster");
    assert_eq!(s["DeleteCluster"]["Next"], "ClusterGone");
    assert_eq!(s["ClusterGoneDone"]["Choices"][0]["Next"], "Respond");
}
