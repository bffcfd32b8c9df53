//! The synth-time PKI choices (for embedders) render as before: a literal `PkiMode`, only the
//! properties of that mode, and an unconditional acm-pca grant on the given CA only.

use constructs::cloudhsm::*;
use constructs::tree::{App, Stack};
use serde_json::{json, Value};

fn template(pki: Pki) -> Value {
    let mut stack = Stack::new("Static");
    let mut root = stack.root();
    let inputs = HsmInputs::new(
        "vpc-0123456789abcdef0",
        &["subnet-0123456789abcdef0"],
        "subnet-0123456789abcdef0",
    );
    let mut props = CloudHsmDeploymentProps::new(inputs, placeholder_code("s"));
    props.pki = pki;
    CloudHsmDeployment::new(&mut root, "Hsm", props);
    let mut app = App::new();
    app.add_stack(stack);
    let out = app.synth().unwrap_or_else(|e| panic!("{e}"));
    out.stacks[0].template.clone()
}

fn of_type<'a>(t: &'a Value, ty: &str) -> &'a Value {
    t["Resources"]
        .as_object()
        .unwrap()
        .values()
        .find(|r| r["Type"] == ty)
        .unwrap()
}

fn acm_pca_statements(t: &Value) -> Vec<Value> {
    let (_, role) = t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.starts_with("HsmFunctionsClusterRole"))
        .unwrap();
    role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s.to_string().contains("acm-pca:"))
        .cloned()
        .collect()
}

#[test]
fn static_acm_private_ca_grants_on_that_ca_only() {
    let arn = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555";
    let t = template(Pki::AcmPrivateCa { arn: arn.into() });
    let p = &of_type(&t, "Custom::ClusterInitialization")["Properties"];
    assert_eq!(p["PkiMode"], "AcmPrivateCa");
    assert_eq!(p["AcmPcaArn"], arn);
    assert_eq!(p.get("ExternalSignedCertificate"), None);
    assert_eq!(
        acm_pca_statements(&t),
        [
            json!({"Effect": "Allow", "Action": ["acm-pca:DescribeCertificateAuthority", "acm-pca:IssueCertificate", "acm-pca:GetCertificate", "acm-pca:GetCertificateAuthorityCertificate"], "Resource": arn})
        ]
    );
    // No PKI parameters, conditions or rules in a template that fixes the choice.
    assert_eq!(t.get("Parameters"), None);
    assert_eq!(t.get("Rules"), None);
}

#[test]
fn static_built_in_and_external_have_no_acm_pca_grant() {
    let t = template(Pki::BuiltIn);
    assert_eq!(
        of_type(&t, "Custom::ClusterInitialization")["Properties"]["PkiMode"],
        "BuiltIn"
    );
    assert!(acm_pca_statements(&t).is_empty());
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let t = template(Pki::External {
        signed_certificate: pem.into(),
        trust_anchor: pem.into(),
    });
    let p = &of_type(&t, "Custom::ClusterInitialization")["Properties"];
    assert_eq!(p["PkiMode"], "External");
    assert_eq!(p["ExternalSignedCertificate"], pem);
    assert_eq!(p["ExternalTrustAnchor"], pem);
    assert_eq!(p.get("AcmPcaArn"), None);
    assert!(acm_pca_statements(&t).is_empty());
}
