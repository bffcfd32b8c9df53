//! The ASL builder: serialization and validation.

use constructs::sfn::*;
use serde_json::json;

fn poll_machine() -> StateMachineDefinition {
    StateMachineDefinition::builder("CreateHsm")
        .comment("create then poll")
        .timeout_seconds(3300)
        .state(
            Task::lambda("CreateHsm", "${ClusterFunctionArn}")
                .payload(json!({"Step": "CreateHsm", "Event.$": "$.Event"}))
                .result_selector(json!({"Hsm.$": "$.Payload"}))
                .result_path("$.Hsm")
                .retry(Retry::transient())
                .catch(Catch::on(["InvalidInput"], "Failed"))
                .catch(Catch::all("Failed"))
                .next("Status"),
        )
        .state(
            Task::lambda("Status", "${ClusterFunctionArn}")
                .payload(json!({"Step": "ClusterStatus", "Poll.$": "$.Poll"}))
                .result_path("$.Poll")
                .next("Ready?"),
        )
        .state(
            Choice::new("Ready?")
                .when(Condition::boolean_equals("$.Poll.Done", true), "Done")
                .default("Wait"),
        )
        .state(Wait::seconds_path("Wait", "$.Poll.Wait").next("Status"))
        .state(Succeed::new("Done"))
        .state(
            Fail::new("Failed")
                .error_path("$.Error.Error")
                .cause_path("$.Error.Cause"),
        )
        .build()
        .expect("valid")
}

#[test]
fn serializes_lambda_task_in_asl_key_order() {
    let def = poll_machine();
    let v = def.to_json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["Comment", "StartAt", "States", "TimeoutSeconds"]);
    let states: Vec<&str> = v["States"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        states,
        ["CreateHsm", "Status", "Ready?", "Wait", "Done", "Failed"]
    );
    assert_eq!(
        v["States"]["CreateHsm"],
        json!({
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {
                "FunctionName": "${ClusterFunctionArn}",
                "Payload": {"Step": "CreateHsm", "Event.$": "$.Event"}
            },
            "ResultSelector": {"Hsm.$": "$.Payload"},
            "ResultPath": "$.Hsm",
            "Retry": [
                {"ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"],
                 "IntervalSeconds": 2, "MaxAttempts": 6, "BackoffRate": 2, "MaxDelaySeconds": 60, "JitterStrategy": "FULL"},
                {"ErrorEquals": ["Transient"], "IntervalSeconds": 2, "MaxAttempts": 6, "BackoffRate": 2, "MaxDelaySeconds": 60, "JitterStrategy": "FULL"}
            ],
            "Catch": [
                {"ErrorEquals": ["InvalidInput"], "ResultPath": "$.Error", "Next": "Failed"},
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.Error", "Next": "Failed"}
            ],
            "Next": "Status"
        })
    );
    assert_eq!(
        v["States"]["Ready?"],
        json!({"Type": "Choice", "Choices": [{"Variable": "$.Poll.Done", "BooleanEquals": true, "Next": "Done"}], "Default": "Wait"})
    );
    assert_eq!(
        v["States"]["Wait"],
        json!({"Type": "Wait", "SecondsPath": "$.Poll.Wait", "Next": "Status"})
    );
    assert_eq!(v["States"]["Done"], json!({"Type": "Succeed"}));
    assert_eq!(
        v["States"]["Failed"],
        json!({"Type": "Fail", "ErrorPath": "$.Error.Error", "CausePath": "$.Error.Cause"})
    );
    // Deterministic: same definition, same bytes.
    assert_eq!(poll_machine().to_json().to_string(), v.to_string());
    assert_eq!(def.substitution_variables(), ["ClusterFunctionArn"]);
}

#[test]
fn payload_path_and_no_service_retry() {
    let t = Task::lambda("T", "arn:fn")
        .payload_path("$.Input")
        .no_service_retry();
    let v = t.to_json();
    assert_eq!(
        v["Parameters"],
        json!({"FunctionName": "arn:fn", "Payload.$": "$.Input"})
    );
    assert!(v.get("Retry").is_none());
    assert_eq!(v["End"], true);
}

#[test]
fn serializes_map_parallel_pass_and_conditions() {
    let def = StateMachineDefinition::builder("Plan")
        .state(
            Pass::new("Plan")
                .result(json!({"Items": [1, 2]}))
                .result_path("$.Plan")
                .next("Each"),
        )
        .state(
            Map::new("Each")
                .items_path("$.Plan.Items")
                .item_selector(json!({"Item.$": "$$.Map.Item.Value", "Event.$": "$.Event"}))
                .max_concurrency(0)
                .item_processor(Graph::new("One").state(Task::new("One", "${Fn}").discard_result()))
                .result_path("$.Created")
                .catch(Catch::all("Cleanup"))
                .next("Both"),
        )
        .state(
            Parallel::new("Both")
                .branch(Graph::new("A").state(Wait::seconds("A", 5)))
                .branch(Graph::new("B").state(Wait::timestamp("B", "2026-01-01T00:00:00Z")))
                .discard_result()
                .next("Check"),
        )
        .state(
            Choice::new("Check")
                .when(
                    Condition::and([
                        Condition::string_equals("$.Event.RequestType", "Delete"),
                        Condition::not(Condition::is_present("$.Error", true)),
                        Condition::or([
                            Condition::numeric_greater_than_equals("$.N", 2.0),
                            Condition::numeric_equals("$.N", 0.5),
                            Condition::string_matches("$.Id", "cluster-*"),
                            Condition::string_equals_path("$.A", "$.B"),
                            Condition::is_null("$.X", false),
                            Condition::numeric_greater_than("$.N", 1.0),
                        ]),
                    ]),
                    "Cleanup",
                )
                .default("Cleanup"),
        )
        .state(
            Fail::new("Cleanup")
                .error("ResourceFailed")
                .cause("cleanup"),
        )
        .build()
        .expect("valid");
    let v = def.to_json();
    assert_eq!(
        v["States"]["Each"]["ItemProcessor"],
        json!({"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "One",
               "States": {"One": {"Type": "Task", "Resource": "${Fn}", "ResultPath": null, "End": true}}})
    );
    assert_eq!(v["States"]["Each"]["MaxConcurrency"], 0);
    assert_eq!(
        v["States"]["Both"]["Branches"][1]["States"]["B"]["Timestamp"],
        "2026-01-01T00:00:00Z"
    );
    assert_eq!(v["States"]["Both"]["ResultPath"], serde_json::Value::Null);
    let rule = &v["States"]["Check"]["Choices"][0];
    assert_eq!(rule["Next"], "Cleanup");
    assert_eq!(
        rule["And"][0],
        json!({"Variable": "$.Event.RequestType", "StringEquals": "Delete"})
    );
    assert_eq!(
        rule["And"][1],
        json!({"Not": {"Variable": "$.Error", "IsPresent": true}})
    );
    assert_eq!(
        rule["And"][2]["Or"][0],
        json!({"Variable": "$.N", "NumericGreaterThanEquals": 2})
    );
    assert_eq!(
        rule["And"][2]["Or"][1],
        json!({"Variable": "$.N", "NumericEquals": 0.5})
    );
    assert_eq!(
        rule["And"][2]["Or"][3],
        json!({"Variable": "$.A", "StringEqualsPath": "$.B"})
    );
    assert_eq!(v["States"]["Plan"]["Result"], json!({"Items": [1, 2]}));
    assert!(def.find_state("One").is_some());
    assert_eq!(def.substitution_variables(), ["Fn"]);
}

fn errors(b: DefinitionBuilder) -> Vec<String> {
    b.build().expect_err("must be invalid").lines()
}

#[test]
fn unknown_next_is_named_with_fix() {
    let e = errors(StateMachineDefinition::builder("A").state(Pass::new("A").next("B")));
    assert_eq!(e, ["state `A`: transition to `B`, which is not a state of the state machine (transitions cannot leave a branch or item processor); add a state named `B` or fix the name"]);
}

#[test]
fn start_at_must_exist() {
    let e = errors(StateMachineDefinition::builder("Nope").state(Succeed::new("A")));
    assert!(e.contains(&"StartAt `Nope` of the state machine is not a state of the state machine; add a state with that name or fix StartAt".to_string()), "{e:?}");
    assert!(e.contains(&"state `A`: unreachable from StartAt `Nope` of the state machine; remove it or add a transition to it".to_string()), "{e:?}");
}

#[test]
fn names_unique_across_branches() {
    let e = errors(
        StateMachineDefinition::builder("P")
            .state(
                Parallel::new("P")
                    .branch(Graph::new("X").state(Succeed::new("X")))
                    .next("X"),
            )
            .state(Succeed::new("X")),
    );
    assert_eq!(e, ["state `X`: the name is used by 2 states; state names must be unique across the whole machine, branches and item processors included — rename all but one"]);
}

#[test]
fn transitions_cannot_leave_a_branch() {
    let e = errors(
        StateMachineDefinition::builder("P")
            .state(
                Parallel::new("P")
                    .branch(Graph::new("X").state(Pass::new("X").next("Out")))
                    .next("Out"),
            )
            .state(Succeed::new("Out")),
    );
    assert_eq!(e, ["state `X`: transition to `Out`, which is not a state of branch 0 of `P` (transitions cannot leave a branch or item processor); add a state named `Out` or fix the name"]);
}

#[test]
fn unreachable_state_reported() {
    let e = errors(
        StateMachineDefinition::builder("A")
            .state(Succeed::new("A"))
            .state(Succeed::new("Orphan")),
    );
    assert_eq!(e, ["state `Orphan`: unreachable from StartAt `A` of the state machine; remove it or add a transition to it"]);
}

#[test]
fn choice_needs_default_unless_exhaustive() {
    let e = errors(
        StateMachineDefinition::builder("C")
            .state(Choice::new("C").when(Condition::string_equals("$.x", "a"), "Done"))
            .state(Succeed::new("Done")),
    );
    assert_eq!(e, ["state `C`: Choice has no Default and its rules are not exhaustive (an unmatched input fails the execution with States.NoChoiceMatched); add `.default(\"<state>\")`"]);
    // true/false on the same variable is exhaustive.
    StateMachineDefinition::builder("C")
        .state(
            Choice::new("C")
                .when(Condition::boolean_equals("$.x", true), "Done")
                .when(Condition::boolean_equals("$.x", false), "Done"),
        )
        .state(Succeed::new("Done"))
        .build()
        .expect("exhaustive choice is valid");
}

#[test]
fn states_all_must_be_last_and_alone() {
    let e = errors(
        StateMachineDefinition::builder("T")
            .state(
                Task::new("T", "arn:x")
                    .retry(Retry::all())
                    .retry(Retry::on(["Transient"]))
                    .catch(Catch::on(["States.ALL", "X"], "F"))
                    .next("F"),
            )
            .state(Fail::new("F")),
    );
    assert_eq!(
        e,
        [
            "state `T`: Retry[0] uses `States.ALL` but is not the last Retry entry; move it to the end",
            "state `T`: Catch[0]: `States.ALL` must appear alone in ErrorEquals; move the other errors to an earlier Catch entry",
        ]
    );
}

#[test]
fn paths_and_templates_checked() {
    let e = errors(
        StateMachineDefinition::builder("T").state(
            Task::lambda("T", "arn:x")
                .payload(json!({"Event": "$.Event", "Bad.$": 3}))
                .result_path("Hsm")
                .retry(Retry::on(["Transient"]).backoff_rate(0.5)),
        ),
    );
    assert_eq!(
        e,
        [
            "state `T`: ResultPath `Hsm` is not a JSONPath; start it with `$` (e.g. `$.Hsm`)",
            "state `T`: Parameters: `Event` holds the path `$.Event` as a literal string; rename the key to `Event.$` to read the path",
            "state `T`: Parameters: `Bad.$` ends in `.$` so its value must be a path or intrinsic (`$.…`, `$$.…`, `States.…`), got 3; drop the `.$` to pass a literal (`Bad`)",
            "state `T`: Retry[1]: BackoffRate 0.5 is below 1.0; use 1.0 or more",
        ]
    );
}

#[test]
fn fail_error_and_error_path_exclusive_and_map_needs_processor() {
    let e = errors(
        StateMachineDefinition::builder("M")
            .state(Map::new("M").next("F"))
            .state(Fail::new("F").error("E").error_path("$.E")),
    );
    assert_eq!(
        e,
        [
            "state `M`: Map has no ItemProcessor; add `.item_processor(Graph::new(..).state(..))`",
            "state `F`: Fail has both Error and ErrorPath; keep one",
        ]
    );
}

#[test]
fn all_errors_reported_together_in_display() {
    let err = StateMachineDefinition::builder("A")
        .state(Pass::new("A").next("B"))
        .state(Succeed::new("Z"))
        .build()
        .unwrap_err();
    assert_eq!(err.0.len(), 2);
    let text = err.to_string();
    assert!(
        text.starts_with("invalid state machine definition (2 problem(s)):\n"),
        "{text}"
    );
}

#[test]
fn placeholder_workflows_are_valid() {
    use constructs::cloudhsm::workflows;
    for def in [
        workflows::initialization(),
        workflows::hsm_fleet(),
        workflows::key_store(),
    ] {
        def.validate().expect("valid");
    }
}
