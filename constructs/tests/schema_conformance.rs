//! The typed resources agree with the CloudFormation registry schemas bundled with cfn-lint:
//! every type exists and every attribute a typed handle may `Fn::GetAtt` is a property of the
//! type. (Property names are checked by cfn-lint over every synthesized template.)

use std::path::{Path, PathBuf};

use constructs::cfn::resources::*;
use constructs::cfn::ResourceProps;
use serde_json::Value;

fn schemas_dir() -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../.tools/venv/lib/python3.11/site-packages/cfnlint/data/schemas");
    d.exists().then_some(d)
}

fn schema(dir: &Path, providers: &Value, ty: &str) -> Value {
    let file = providers[ty]
        .as_str()
        .unwrap_or_else(|| panic!("{ty} is not a registry type"));
    serde_json::from_str(
        &std::fs::read_to_string(dir.join("resources").join(format!("{file}.json"))).unwrap(),
    )
    .unwrap()
}

fn check<P: ResourceProps>(dir: &Path, providers: &Value) {
    let s = schema(dir, providers, P::TYPE);
    let props = s["properties"].as_object().unwrap();
    for attr in P::ATTRIBUTES {
        assert!(
            props.contains_key(*attr),
            "{}: attribute {attr} is not in the registry schema",
            P::TYPE
        );
    }
}

#[test]
fn typed_resources_match_registry_schemas() {
    let Some(dir) = schemas_dir() else {
        eprintln!("\n!!!!!!!! cfn-lint's schemas are not installed (.tools/venv): SKIPPING. Run tools/setup (CI does). !!!!!!!!\n");
        return;
    };
    let providers: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("providers/us-east-1.json")).unwrap(),
    )
    .unwrap();
    check::<CloudHsmCluster>(&dir, &providers);
    check::<SecurityGroup>(&dir, &providers);
    check::<SecurityGroupIngress>(&dir, &providers);
    check::<SecurityGroupEgress>(&dir, &providers);
    check::<Instance>(&dir, &providers);
    check::<Role>(&dir, &providers);
    check::<Policy>(&dir, &providers);
    check::<InstanceProfile>(&dir, &providers);
    check::<Function>(&dir, &providers);
    check::<Permission>(&dir, &providers);
    check::<StateMachine>(&dir, &providers);
    check::<Secret>(&dir, &providers);
    check::<KmsKey>(&dir, &providers);
    check::<KmsAlias>(&dir, &providers);
    check::<LogGroup>(&dir, &providers);
    check::<SsmDocument>(&dir, &providers);
    // The cluster's Ref is its ARN (primary identifier), which the IAM scoping relies on.
    let c = schema(&dir, &providers, "AWS::CloudHSM::Cluster");
    assert_eq!(
        c["primaryIdentifier"],
        serde_json::json!(["/properties/Arn"])
    );
}
