//! The CloudFormation model: intrinsics, parameters, template rendering, IAM documents.

use constructs::cfn::resources::{CustomResource, Instance, MetadataOptions};
use constructs::cfn::*;
use constructs::iam::{self, PolicyDocument, Statement};
use serde_json::json;

#[test]
fn intrinsics_render_as_cloudformation() {
    let cases: Vec<(Expr, serde_json::Value)> = vec![
        (Expr::reference("Vpc"), json!({"Ref": "Vpc"})),
        (
            Expr::Pseudo(Pseudo::AccountId),
            json!({"Ref": "AWS::AccountId"}),
        ),
        (Expr::NoValue, json!({"Ref": "AWS::NoValue"})),
        (
            Expr::get_att("Cluster", "ClusterId"),
            json!({"Fn::GetAtt": ["Cluster", "ClusterId"]}),
        ),
        (
            Expr::sub("a-${AWS::Region}"),
            json!({"Fn::Sub": "a-${AWS::Region}"}),
        ),
        (
            Expr::sub_with("${X}", [("X", Expr::reference("P"))]),
            json!({"Fn::Sub": ["${X}", {"X": {"Ref": "P"}}]}),
        ),
        (
            Expr::join(",", [Expr::str("a"), Expr::reference("B")]),
            json!({"Fn::Join": [",", ["a", {"Ref": "B"}]]}),
        ),
        (
            Expr::if_("C", Expr::str("y"), Expr::NoValue),
            json!({"Fn::If": ["C", "y", {"Ref": "AWS::NoValue"}]}),
        ),
        (
            Expr::select(1, Expr::reference("L")),
            json!({"Fn::Select": ["1", {"Ref": "L"}]}),
        ),
        (
            Expr::split(",", Expr::reference("S")),
            json!({"Fn::Split": [",", {"Ref": "S"}]}),
        ),
        (Expr::base64(Expr::str("x")), json!({"Fn::Base64": "x"})),
        (Expr::get_azs(Expr::str("")), json!({"Fn::GetAZs": ""})),
        (
            Expr::import_value(Expr::str("E")),
            json!({"Fn::ImportValue": "E"}),
        ),
        (
            Expr::find_in_map("M", Expr::str("a"), Expr::str("b")),
            json!({"Fn::FindInMap": ["M", "a", "b"]}),
        ),
        (
            Expr::equals(Expr::reference("P"), Expr::str("true")),
            json!({"Fn::Equals": [{"Ref": "P"}, "true"]}),
        ),
        (
            Expr::and([Expr::Condition("A".into()), Expr::Condition("B".into())]),
            json!({"Fn::And": [{"Condition": "A"}, {"Condition": "B"}]}),
        ),
        (
            Expr::or([Expr::Condition("A".into())]),
            json!({"Fn::Or": [{"Condition": "A"}]}),
        ),
        (
            Expr::not(Expr::Condition("A".into())),
            json!({"Fn::Not": [{"Condition": "A"}]}),
        ),
        (
            Expr::contains(Expr::lit(json!(["0"])), Expr::reference("N")),
            json!({"Fn::Contains": [["0"], {"Ref": "N"}]}),
        ),
        (
            Expr::each_member_equals(
                Expr::ValueOfAll("AWS::EC2::Subnet::Id".into(), "VpcId".into()),
                Expr::reference("Vpc"),
            ),
            json!({"Fn::EachMemberEquals": [{"Fn::ValueOfAll": ["AWS::EC2::Subnet::Id", "VpcId"]}, {"Ref": "Vpc"}]}),
        ),
    ];
    for (e, want) in cases {
        assert_eq!(e.to_json(), want, "{e:?}");
    }
}

#[test]
fn concat_is_minimal() {
    assert_eq!(
        Expr::concat([Expr::str("a"), Expr::str("b")]).to_json(),
        json!("ab")
    );
    assert_eq!(
        Expr::concat([Expr::reference("X")]).to_json(),
        json!({"Ref": "X"})
    );
    assert_eq!(
        Expr::concat([
            Expr::str("a"),
            Expr::str("b"),
            Expr::reference("X"),
            Expr::concat([Expr::str("c"), Expr::reference("Y")])
        ])
        .to_json(),
        json!({"Fn::Join": ["", ["ab", {"Ref": "X"}, "c", {"Ref": "Y"}]]})
    );
}

#[test]
fn references_found_in_sub_and_nested() {
    let e = Expr::object([
        (
            "A",
            Expr::sub("${Res.Arn}/${Param}/${AWS::Region}/${!Literal}"),
        ),
        ("B", Expr::list([Expr::get_att("Other", "Id")])),
        (
            "C",
            Expr::sub_with("${Local}", [("Local", Expr::reference("Third"))]),
        ),
    ]);
    let mut refs = Vec::new();
    e.references(&mut refs);
    assert_eq!(refs, ["Res", "Param", "Other", "Third"]);
}

#[test]
fn parameter_types_and_constraints() {
    assert_eq!(
        ParameterType::subnet_ids().as_str(),
        "List<AWS::EC2::Subnet::Id>"
    );
    assert_eq!(ParameterType::vpc_id().as_str(), "AWS::EC2::VPC::Id");
    assert_eq!(
        ParameterType::ssm_image_id().as_str(),
        "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    );
    assert_eq!(
        ParameterType::CommaDelimitedList.as_str(),
        "CommaDelimitedList"
    );
    let p = Parameter::new(ParameterType::Number)
        .description("n")
        .default("1")
        .min_value(0.0)
        .max_value(28.0)
        .constraint_description("0-28");
    assert_eq!(
        p.to_json(),
        json!({"Type": "Number", "Description": "n", "Default": "1", "MinValue": 0, "MaxValue": 28, "ConstraintDescription": "0-28"})
    );
    let s = Parameter::new(ParameterType::String)
        .allowed_values(["a", "b"])
        .allowed_pattern("^[ab]$")
        .length(Some(1), Some(1));
    assert_eq!(
        s.to_json(),
        json!({"Type": "String", "AllowedValues": ["a", "b"], "AllowedPattern": "^[ab]$", "MinLength": 1, "MaxLength": 1})
    );
}

#[test]
fn typed_properties_serialize_pascal_case_and_skip_none() {
    let i = Instance {
        instance_type: Some("t3.micro".into()),
        metadata_options: Some(MetadataOptions {
            http_tokens: Some("required".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&i).unwrap(),
        json!({"InstanceType": "t3.micro", "MetadataOptions": {"HttpTokens": "required"}})
    );
    let cr = CustomResource::new("Custom::X", Value::from_expr(Expr::get_att("Fn", "Arn")))
        .timeout(300)
        .property("A", "b");
    assert_eq!(
        cr.render(),
        json!({"ServiceToken": {"Fn::GetAtt": ["Fn", "Arn"]}, "ServiceTimeout": "300", "A": "b"})
    );
}

#[test]
fn template_sections_in_order_and_yaml_round_trips() {
    let mut t = Template {
        description: Some("d".into()),
        ..Default::default()
    };
    t.outputs.insert(
        "O".into(),
        Output {
            value: Expr::reference("P"),
            description: None,
            export_name: None,
            condition: None,
        },
    );
    t.parameters
        .insert("P".into(), Parameter::new(ParameterType::String));
    t.conditions.insert(
        "C".into(),
        Expr::equals(Expr::reference("P"), Expr::str("x")),
    );
    let v = t.to_json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "AWSTemplateFormatVersion",
            "Description",
            "Parameters",
            "Conditions",
            "Outputs"
        ]
    );
    let back: serde_json::Value = serde_yaml::from_str(&t.to_yaml_string()).unwrap();
    assert_eq!(back, v);
    assert!(t.to_json_string().ends_with("}\n"));
}

#[test]
fn iam_documents_and_problems() {
    let doc = PolicyDocument::new(vec![
        Statement::allow(&["secretsmanager:GetSecretValue"]).on(Expr::reference("Secret")),
        Statement::allow(&["ec2:DescribeSubnets", "ec2:DescribeVpcs"])
            .on_any_resource("no resource-level permissions"),
    ]);
    assert_eq!(
        doc.to_expr().to_json(),
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": {"Ref": "Secret"}},
            {"Effect": "Allow", "Action": ["ec2:DescribeSubnets", "ec2:DescribeVpcs"], "Resource": "*"}
        ]})
    );
    assert!(doc.problems().is_empty());
    let bad = PolicyDocument::new(vec![
        Statement::allow(&["s3:*"]).on(Expr::str("*")),
        Statement::allow(&["nonsense"]),
    ]);
    assert_eq!(
        bad.problems(),
        [
            "action `s3:*` grants a whole service; list the actions needed",
            "the statement for s3:* is on `*` without a reason; use `.on_any_resource(reason)` or scope it",
            "action `nonsense` is not of the form `service:Action`",
            "the statement for nonsense has no resources; scope it with `.on(arn)`",
        ]
    );
    assert_eq!(
        iam::arn("ssm", "document/X").to_json(),
        json!({"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:document/X"})
    );
    let inv = iam::grant_invoke(&[Value::from_expr(Expr::get_att("F", "Arn"))]);
    assert_eq!(
        inv.to_expr().to_json()["Resource"],
        json!([{"Fn::GetAtt": ["F", "Arn"]}, {"Fn::Sub": ["${Arn}:*", {"Arn": {"Fn::GetAtt": ["F", "Arn"]}}]}])
    );
}
