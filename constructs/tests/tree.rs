//! The construct tree: CDK-compatible logical ids, paths, validation across the tree.

use constructs::cfn::resources::{LogGroup, Role, SecurityGroupIngress};
use constructs::cfn::{Expr, Parameter, ParameterType, Value};
use constructs::tree::*;

#[test]
fn logical_ids_follow_cdk() {
    // Known CDK output: `new s3.Bucket(stack, 'MyBucket')` → MyBucketF68F3FF0.
    assert_eq!(
        logical_id_for(&["MyBucket", "Resource"]),
        "MyBucketF68F3FF0"
    );
    // One component: used as is, non-alphanumerics stripped, no hash.
    assert_eq!(logical_id_for(&["VpcId"]), "VpcId");
    assert_eq!(logical_id_for(&["Vpc-Id"]), "VpcId");
    // `Default` is invisible (in the human part and in the hash).
    assert_eq!(
        logical_id_for(&["MyBucket", "Default", "Resource"]),
        "MyBucketF68F3FF0"
    );
    // Consecutive duplicates collapse in the human part; the hash still sees them.
    let id = logical_id_for(&["Pipeline", "Pipeline", "Role"]);
    assert!(id.starts_with("PipelineRole"), "{id}");
    assert_eq!(id.len(), "PipelineRole".len() + 8);
    assert_ne!(id, logical_id_for(&["Pipeline", "Role"]));
    // Long paths: human part capped at 240.
    let (a, b) = ("A".repeat(200), "B".repeat(200));
    assert_eq!(logical_id_for(&[&a, &b]).len(), 248);
}

#[test]
fn logical_id_depends_on_path_only_not_on_creation_order() {
    let build = |reverse: bool| {
        let mut stack = Stack::new("S");
        let mut root = stack.root();
        let mut ids = Vec::new();
        let names = if reverse { ["B", "A"] } else { ["A", "B"] };
        for n in names {
            let mut c = root.construct(n, "t.C");
            ids.push((
                n,
                c.resource("Resource", LogGroup::default())
                    .logical_id()
                    .to_string(),
            ));
        }
        ids.sort();
        ids
    };
    assert_eq!(build(false), build(true));
}

#[test]
fn paths_tree_and_metadata() {
    let mut stack = Stack::new("Demo");
    let mut root = stack.root();
    let mut a = root.construct("App", "t.App");
    let mut b = a.construct("Logs", "t.Logs");
    assert_eq!(b.path(), "Demo/App/Logs");
    let g = b.resource(
        "Resource",
        LogGroup {
            retention_in_days: Some(7.into()),
            ..Default::default()
        },
    );
    assert_eq!(g.path(), "Demo/App/Logs/Resource");
    let mut app = App::new();
    app.add_stack(stack);
    let out = app.synth().unwrap();
    let t = &out.stacks[0].template;
    let r = &t["Resources"][g.logical_id()];
    assert_eq!(r["Metadata"]["aws:cdk:path"], "Demo/App/Logs/Resource");
    assert_eq!(r["Properties"]["RetentionInDays"], 7);
    let node = &out.tree["tree"]["children"]["Demo"]["children"]["App"]["children"]["Logs"]
        ["children"]["Resource"];
    assert_eq!(
        node["attributes"]["aws:cdk:cloudformation:type"],
        "AWS::Logs::LogGroup"
    );
    assert_eq!(node["attributes"]["aws:cdk:logicalId"], g.logical_id());
    assert_eq!(
        out.stacks[0].logical_ids[g.logical_id()],
        "Demo/App/Logs/Resource"
    );
}

#[test]
fn all_errors_collected_with_paths() {
    let mut stack = Stack::new("S");
    let mut root = stack.root();
    root.construct("Twice", "t");
    root.construct("Twice", "t");
    let mut c = root.construct("C", "t");
    let role = c.resource(
        "Role",
        Role {
            description: Some(Value::from_expr(Expr::reference("Nowhere"))),
            ..Default::default()
        },
    );
    c.resource(
        "Ingress",
        SecurityGroupIngress {
            group_id: Some(role.get_att("NotAnAttribute")),
            ip_protocol: Some("tcp".into()),
            ..Default::default()
        },
    );
    c.resource(
        "Logs",
        LogGroup {
            log_group_name: Some(Value::if_else("Missing", "a".into(), "b".into())),
            ..Default::default()
        },
    );
    c.error("props are wrong: fix them");
    let err = stack.validate().unwrap_err();
    let lines = err.lines();
    let role_id = logical_id_for(&["C", "Role"]);
    let expected = [
        "[S/Twice] there is already a construct with id `Twice` in this scope; ids must be unique among siblings".to_string(),
        "[S/C] props are wrong: fix them".to_string(),
        "[S/C/Role] references `Nowhere`, which is neither a parameter nor a resource of this stack".to_string(),
        format!("[S/C/Ingress] Fn::GetAtt `{role_id}.NotAnAttribute`: `NotAnAttribute` is not an attribute of that resource (known: Arn, RoleId)"),
        "[S/C/Logs] uses condition `Missing`, which is not defined; add it with `scope.condition(..)`".to_string(),
    ];
    for e in &expected {
        assert!(lines.contains(e), "missing {e:?} in {lines:#?}");
    }
    assert_eq!(lines.len(), expected.len(), "{lines:#?}");
}

#[test]
fn invalid_stack_name_and_duplicate_stacks() {
    let mut app = App::new();
    app.add_stack(Stack::new("1bad_name"));
    app.add_stack(Stack::new("Ok"));
    app.add_stack(Stack::new("Ok"));
    let lines = app.synth().unwrap_err().lines();
    assert_eq!(
        lines,
        [
            "[1bad_name] stack name `1bad_name` is invalid: use 1-128 characters, letters, digits and hyphens, starting with a letter",
            "[Ok] two stacks have this name; stack names must be unique in an app",
        ]
    );
}

#[test]
fn parameters_known_values_and_defaults() {
    let mut stack = Stack::new("S");
    let mut root = stack.root();
    let subnets = root.parameter::<Vec<String>>(
        "SubnetIds",
        Parameter::new(ParameterType::subnet_ids()).default("subnet-1, subnet-2"),
    );
    let n = root.parameter::<i64>("N", Parameter::new(ParameterType::Number).default("3"));
    let none = root.parameter::<String>("Vpc", Parameter::new(ParameterType::vpc_id()));
    assert_eq!(
        root.known_value(subnets.value().expr()),
        Some(serde_json::json!(["subnet-1", "subnet-2"]))
    );
    assert_eq!(
        root.known_value(n.value().expr()),
        Some(serde_json::json!(3))
    );
    assert_eq!(root.known_value(none.value().expr()), None);
    stack.set_parameter_default("Vpc", "vpc-12345678").unwrap();
    assert_eq!(
        stack.known_value(none.value().expr()),
        Some(serde_json::json!("vpc-12345678"))
    );
    assert_eq!(
        stack.set_parameter_default("Nope", "x").unwrap_err(),
        "stack `S` has no parameter `Nope`"
    );
}

#[test]
fn removal_policy_dependencies_conditions_render() {
    let mut stack = Stack::new("S");
    let mut root = stack.root();
    let cond = root.condition("On", Expr::equals(Expr::str("a"), Expr::str("a")));
    let a = root.resource("A", LogGroup::default());
    let b = root.resource("B", LogGroup::default());
    let c = root.resource("C", LogGroup::default());
    root.add_dependency(&a, &c);
    root.add_dependency(&a, &b);
    root.add_dependency(&a, &b);
    root.set_removal_policy(&b, RemovalPolicy::Retain);
    root.set_condition(&c, &cond);
    root.add_property_override(&c, "Tags.Deep", serde_json::json!(1));
    let t = stack.synth_template().unwrap().to_json();
    assert_eq!(
        t["Resources"]["A"]["DependsOn"],
        serde_json::json!(["B", "C"])
    );
    assert_eq!(t["Resources"]["B"]["DeletionPolicy"], "Retain");
    assert_eq!(t["Resources"]["B"]["UpdateReplacePolicy"], "Retain");
    assert_eq!(t["Resources"]["C"]["Condition"], "On");
    assert_eq!(t["Resources"]["C"]["Properties"]["Tags"]["Deep"], 1);
    assert_eq!(
        t["Conditions"]["On"],
        serde_json::json!({"Fn::Equals": ["a", "a"]})
    );
}

#[test]
fn renames_keep_deployed_ids_and_unused_renames_fail() {
    let mut stack = Stack::new("S");
    let old = logical_id_for(&["Old", "Logs"]);
    stack.rename_logical_id(&logical_id_for(&["New", "Logs"]), &old);
    let mut root = stack.root();
    let mut moved = root.construct("New", "t");
    let logs = moved.resource("Logs", LogGroup::default());
    let role = root.resource(
        "Role",
        Role {
            description: Some(logs.reference()),
            ..Default::default()
        },
    );
    assert_eq!(logs.logical_id(), old);
    let t = stack.synth_template().unwrap().to_json();
    assert_eq!(
        t["Resources"][role.logical_id()]["Properties"]["Description"],
        serde_json::json!({"Ref": old})
    );

    let mut other = Stack::new("T");
    other.rename_logical_id("Nothing", "Something");
    other.rename_logical_id("X", "not valid!");
    assert_eq!(
        other.validate().unwrap_err().lines(),
        [
            "[T] rename `X` → `not valid!`: a logical id is 1-255 letters and digits",
            "[T] the rename `Nothing` → `Something` matched no element; remove it or fix the old id",
        ]
    );
}
