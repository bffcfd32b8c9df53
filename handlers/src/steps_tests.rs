//! Step behaviour against mocked AWS APIs (aws-smithy-mocks).

use aws_sdk_cloudhsmv2 as hsm;
use aws_sdk_kms as kms;
use aws_smithy_mocks::mock;
use serde_json::{json, Value};

use crate::call::Call;
use crate::error::StepError;
use crate::testing::{clients, meta};

const CLUSTER: &str = "cluster-igklspoyj5v";

fn event(props: Value) -> Value {
    let mut p = json!({"ClusterId": CLUSTER, "SubnetIds": ["subnet-aaaa1111", "subnet-bbbb2222"], "HsmsPerSubnet": "1"});
    for (k, v) in props.as_object().unwrap() {
        p[k.as_str()] = v.clone();
    }
    json!({
        "RequestType": "Create", "RequestId": "r-1", "ResponseURL": "http://127.0.0.1:1/x",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/hsm/g", "LogicalResourceId": "HsmFleet",
        "ResourceType": "Custom::HsmFleet", "ResourceProperties": p
    })
}

fn payload(step: &str, args: Value, state: Value) -> Value {
    let mut p = json!({"Step": step, "Input": state});
    for (k, v) in args.as_object().unwrap() {
        p[k.as_str()] = v.clone();
    }
    p
}

fn hsm_(id: &str, az: &str, eni: &str, state: hsm::types::HsmState) -> hsm::types::Hsm {
    hsm::types::Hsm::builder()
        .hsm_id(id)
        .availability_zone(az)
        .eni_id(eni)
        .cluster_id(CLUSTER)
        .state(state)
        .build()
        .unwrap()
}

fn cluster(
    state: hsm::types::ClusterState,
    hsms: Vec<hsm::types::Hsm>,
    csr: Option<&str>,
) -> hsm::operation::describe_clusters::DescribeClustersOutput {
    let mut b = hsm::types::Cluster::builder()
        .cluster_id(CLUSTER)
        .state(state)
        .vpc_id("vpc-1")
        .subnet_mapping("us-east-1a", "subnet-aaaa1111")
        .subnet_mapping("us-east-1b", "subnet-bbbb2222")
        .set_hsms(Some(hsms));
    if let Some(c) = csr {
        b = b.certificates(hsm::types::Certificates::builder().cluster_csr(c).build());
    }
    hsm::operation::describe_clusters::DescribeClustersOutput::builder()
        .clusters(b.build())
        .build()
}

use hsm::types::{ClusterState as CS, HsmState as HS};

#[tokio::test]
async fn create_hsm_ensures_a_count_and_never_duplicates_on_retry() {
    let describe = mock!(hsm::Client::describe_clusters).then_output(|| {
        cluster(
            CS::Active,
            vec![hsm_("hsm-a1", "us-east-1a", "eni-1", HS::Active)],
            None,
        )
    });
    let create = mock!(hsm::Client::create_hsm)
        .match_requests(|r| r.availability_zone() == Some("us-east-1a"))
        .then_output(|| {
            hsm::operation::create_hsm::CreateHsmOutput::builder()
                .hsm(hsm_("hsm-a2", "us-east-1a", "eni-2", HS::CreateInProgress))
                .build()
        });
    let c = clients(&[&describe, &create]);
    let item = |n: u32| json!({"Event": event(json!({})), "Item": {"AvailabilityZone": "us-east-1a", "SubnetId": "subnet-aaaa1111", "EnsureAtLeast": n}});
    // One live HSM already: "at least 1" is satisfied (e.g. a retry after a lost response).
    let p = payload("CreateHsm", json!({}), item(1));
    let out = crate::cluster::run(&c, "CreateHsm", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(out["Created"], 0);
    assert_eq!(create.num_calls(), 0);
    // "At least 3" with one live: exactly the two missing ones, in one iteration.
    let p = payload("CreateHsm", json!({}), item(3));
    let out = crate::cluster::run(&c, "CreateHsm", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(out["Created"], 2);
    assert_eq!(out["HsmIds"][0], "hsm-a2");
    assert_eq!(create.num_calls(), 2);
}

#[tokio::test]
async fn delete_hsm_follows_the_eni_when_aws_replaced_the_hsm() {
    let describe = mock!(hsm::Client::describe_clusters).then_output(|| {
        cluster(
            CS::Active,
            vec![hsm_("hsm-new", "us-east-1a", "eni-1", HS::Active)],
            None,
        )
    });
    let delete = mock!(hsm::Client::delete_hsm)
        .match_requests(|r| r.hsm_id() == Some("hsm-new"))
        .then_output(|| {
            hsm::operation::delete_hsm::DeleteHsmOutput::builder()
                .hsm_id("hsm-new")
                .build()
        });
    let c = clients(&[&describe, &delete]);
    let state = json!({"Event": event(json!({})), "Item": {"HsmId": "hsm-old", "EniId": "eni-1", "AvailabilityZone": "us-east-1a", "Reason": "extra"}});
    let p = payload("DeleteHsm", json!({}), state);
    let out = crate::cluster::run(&c, "DeleteHsm", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(out["HsmId"], "hsm-new");
    assert_eq!(delete.num_calls(), 1);
}

#[tokio::test]
async fn throttling_is_transient_and_invalid_requests_are_not() {
    let throttled = mock!(hsm::Client::describe_clusters).then_error(|| {
        hsm::operation::describe_clusters::DescribeClustersError::generic(meta(
            "ThrottlingException",
            "Rate exceeded",
        ))
    });
    let c = clients(&[&throttled]);
    let p = payload("PlanFleet", json!({}), json!({"Event": event(json!({}))}));
    let e = crate::cluster::run(&c, "PlanFleet", Call::new(&p))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StepError::Transient(m) if m.contains("ThrottlingException")),
        "{e:?}"
    );

    let internal = mock!(hsm::Client::describe_clusters).then_error(|| {
        hsm::operation::describe_clusters::DescribeClustersError::CloudHsmInternalFailureException(
            hsm::types::error::CloudHsmInternalFailureException::builder()
                .meta(meta("CloudHsmInternalFailureException", "boom"))
                .build(),
        )
    });
    let c = clients(&[&internal]);
    assert!(matches!(
        crate::cluster::run(&c, "PlanFleet", Call::new(&p)).await,
        Err(StepError::Transient(_))
    ));

    let describe =
        mock!(hsm::Client::describe_clusters).then_output(|| cluster(CS::Active, vec![], None));
    let rejected = mock!(hsm::Client::create_hsm).then_error(|| {
        hsm::operation::create_hsm::CreateHsmError::CloudHsmInvalidRequestException(
            hsm::types::error::CloudHsmInvalidRequestException::builder()
                .meta(meta("CloudHsmInvalidRequestException", "not activated"))
                .build(),
        )
    });
    let c = clients(&[&describe, &rejected]);
    let state = json!({"Event": event(json!({})), "Item": {"AvailabilityZone": "us-east-1a", "SubnetId": "subnet-aaaa1111", "EnsureAtLeast": 1}});
    let p = payload("CreateHsm", json!({}), state);
    let e = crate::cluster::run(&c, "CreateHsm", Call::new(&p))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StepError::InvalidInput(m) if m.contains("CloudHsmInvalidRequestException: not activated")),
        "{e:?}"
    );
}

/// DescribeClusters: an UNINITIALIZED cluster whose first HSM is ACTIVE and published this CSR.
fn uninitialized_with_first_hsm(csr: &str) -> aws_smithy_mocks::Rule {
    let csr = csr.to_string();
    mock!(hsm::Client::describe_clusters).then_output(move || {
        cluster(
            CS::Uninitialized,
            vec![hsm_("hsm-a1", "us-east-1a", "eni-1", HS::Active)],
            Some(&csr),
        )
    })
}

#[tokio::test]
async fn sign_csr_uses_the_csr_fetched_now_and_initialize_accepts_the_result() {
    let csr = crate::pki::tests::sample_csr();
    let describe = uninitialized_with_first_hsm(&csr);
    let c = clients(&[&describe]);
    let p = payload(
        "SignCsr",
        json!({}),
        json!({"Event": event(json!({"PkiMode": "BuiltIn"}))}),
    );
    let signed = crate::cluster::run(&c, "SignCsr", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(signed["Pending"], false);
    let pair = crate::pki::SignedPair {
        signed_cert: signed["SignedCert"].as_str().unwrap().into(),
        trust_anchor: signed["TrustAnchor"].as_str().unwrap().into(),
    };
    crate::pki::verify_pair(&csr, &pair).unwrap();
    assert!(!signed.to_string().contains("PRIVATE KEY"));

    // External without certificates: publish the CSR.
    let p = payload(
        "SignCsr",
        json!({}),
        json!({"Event": event(json!({"PkiMode": "External"}))}),
    );
    let out = crate::cluster::run(&c, "SignCsr", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(out["Pending"], true);
    assert_eq!(out["ClusterCsr"], csr.as_str());

    // External with a certificate for another CSR: a clear InvalidInput before InitializeCluster.
    let other =
        crate::pki::sign_with_throwaway_ca(&crate::pki::tests::sample_csr(), CLUSTER).unwrap();
    let p = payload(
        "SignCsr",
        json!({}),
        json!({"Event": event(json!({"PkiMode": "External",
        "ExternalSignedCertificate": other.signed_cert, "ExternalTrustAnchor": other.trust_anchor}))}),
    );
    let e = crate::cluster::run(&c, "SignCsr", Call::new(&p))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StepError::InvalidInput(m) if m.contains("current CSR")),
        "{e:?}"
    );

    let p = payload(
        "SignCsr",
        json!({}),
        json!({"Event": event(json!({"PkiMode": "AcmPrivateCa"}))}),
    );
    assert!(matches!(
        crate::cluster::run(&c, "SignCsr", Call::new(&p)).await,
        Err(StepError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn initialize_is_skipped_once_the_cluster_is_initialized() {
    let describe = mock!(hsm::Client::describe_clusters)
        .then_output(|| cluster(CS::Initialized, vec![], None));
    let init = mock!(hsm::Client::initialize_cluster).then_output(|| {
        hsm::operation::initialize_cluster::InitializeClusterOutput::builder().build()
    });
    let c = clients(&[&describe, &init]);
    let p = payload(
        "InitializeCluster",
        json!({}),
        json!({"Event": event(json!({})), "Signed": {"SignedCert": "x", "TrustAnchor": "y"}}),
    );
    let out = crate::cluster::run(&c, "InitializeCluster", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(out["Skipped"], true);
    assert_eq!(init.num_calls(), 0);
}

#[tokio::test]
async fn first_hsm_wait_fails_on_degraded_and_times_out_when_bounded() {
    let degraded = mock!(hsm::Client::describe_clusters).then_output(|| {
        cluster(
            CS::Uninitialized,
            vec![hsm_("hsm-a1", "us-east-1a", "eni-1", HS::Degraded)],
            None,
        )
    });
    let c = clients(&[&degraded]);
    let p = payload(
        "ClusterStatus",
        json!({"For": "FirstHsmActive"}),
        json!({"Event": event(json!({}))}),
    );
    let e = crate::cluster::run(&c, "ClusterStatus", Call::new(&p))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StepError::ResourceFailed(m) if m.contains("DEGRADED")),
        "{e:?}"
    );

    let creating = mock!(hsm::Client::describe_clusters).then_output(|| {
        cluster(
            CS::Uninitialized,
            vec![hsm_("hsm-a1", "us-east-1a", "eni-1", HS::CreateInProgress)],
            None,
        )
    });
    let c = clients(&[&creating]);
    let p = payload(
        "ClusterStatus",
        json!({"For": "FirstHsmActive"}),
        json!({"Event": event(json!({}))}),
    );
    let first = crate::cluster::run(&c, "ClusterStatus", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(
        (first["Done"].clone(), first["Wait"].clone()),
        (json!(false), json!(crate::cluster::FIRST_HSM.first))
    );
    let last = json!({"For": "FirstHsmActive", "Attempt": crate::cluster::FIRST_HSM.max_attempts - 1, "Wait": 30, "Done": false});
    let p = payload(
        "ClusterStatus",
        json!({"For": "FirstHsmActive"}),
        json!({"Event": event(json!({})), "Poll": last}),
    );
    let e = crate::cluster::run(&c, "ClusterStatus", Call::new(&p))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StepError::WaitTimeout(m) if m.contains("CREATE_IN_PROGRESS")),
        "{e:?}"
    );
}

#[tokio::test]
async fn command_status_treats_a_missing_invocation_as_not_yet_and_reports_failures() {
    use aws_sdk_ssm as ssm;
    let missing = mock!(ssm::Client::get_command_invocation).then_error(|| {
        ssm::operation::get_command_invocation::GetCommandInvocationError::InvocationDoesNotExist(
            ssm::types::error::InvocationDoesNotExist::builder()
                .meta(meta("InvocationDoesNotExist", ""))
                .build(),
        )
    });
    let c = clients(&[&missing]);
    let state = json!({"Event": event(json!({})), "Command": {"CommandId": "c-1", "InstanceId": "i-1", "Document": "ActivateCluster"}});
    let p = payload("CommandStatus", json!({"For": "Activate"}), state.clone());
    let out = crate::cluster::run(&c, "CommandStatus", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(out["Done"], false);

    let failed = mock!(ssm::Client::get_command_invocation).then_output(|| {
        ssm::operation::get_command_invocation::GetCommandInvocationOutput::builder()
            .status(ssm::types::CommandInvocationStatus::Failed)
            .status_details("Failed")
            .response_code(1)
            .standard_error_content("ERROR: cloudhsm-cli cluster activate failed (exit 1)")
            .build()
    });
    let c = clients(&[&failed]);
    let e = crate::cluster::run(&c, "CommandStatus", Call::new(&p))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StepError::ResourceFailed(m) if m.contains("ActivateCluster on i-1 ended Failed") && m.contains("cluster activate failed")),
        "{e:?}"
    );
}

#[tokio::test]
async fn run_client_command_sends_ids_only_and_optional_props() {
    use aws_sdk_ssm as ssm;
    let send = mock!(ssm::Client::send_command)
        .match_requests(|r| {
            let p = r.parameters().unwrap();
            r.document_name() == Some("Doc")
                && p["ClusterId"] == vec![CLUSTER.to_string()]
                && p.contains_key("TrustAnchorSecretArn")
        })
        .then_output(|| {
            ssm::operation::send_command::SendCommandOutput::builder()
                .command(ssm::types::Command::builder().command_id("c-1").build())
                .build()
        });
    let c = clients(&[&send]);
    let ev = event(
        json!({"TrustAnchorSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbC"}),
    );
    let p = payload(
        "RunClientCommand",
        json!({"Document": "Doc", "InstanceId": "i-1", "Parameters": {"ClusterId": CLUSTER}, "OptionalParameters": ["TrustAnchorSecretArn", "Missing"]}),
        json!({"Event": ev}),
    );
    let out = crate::cluster::run(&c, "RunClientCommand", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(out["CommandId"], "c-1");
    assert_eq!(send.num_calls(), 1);
    let bad = payload(
        "RunClientCommand",
        json!({"Document": "Doc", "InstanceId": "i-1", "Parameters": {"Password": "x"}}),
        json!({"Event": event(json!({}))}),
    );
    assert!(matches!(
        crate::cluster::run(&c, "RunClientCommand", Call::new(&bad)).await,
        Err(StepError::InvalidInput(_))
    ));
}

// ------------------------------------------------------------------------------ key store

fn ks_event() -> Value {
    json!({
        "RequestType": "Delete", "RequestId": "r-2", "ResponseURL": "http://127.0.0.1:1/x",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/hsm/g", "LogicalResourceId": "KeyStore",
        "ResourceType": "Custom::KeyStore", "PhysicalResourceId": "cks-1234567890abcdef0",
        "ResourceProperties": {"ClusterId": CLUSTER, "KeyStoreName": "hsm", "KmsUserSecretName": "hsm/kmsuser-initial",
                               "TrustAnchorSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ta-AbC",
                               "RetainOnDelete": "false"}
    })
}

fn store(
    state: kms::types::ConnectionStateType,
    code: Option<kms::types::ConnectionErrorCodeType>,
) -> kms::operation::describe_custom_key_stores::DescribeCustomKeyStoresOutput {
    let e = kms::types::CustomKeyStoresListEntry::builder()
        .custom_key_store_id("cks-1234567890abcdef0")
        .custom_key_store_name("hsm")
        .cloud_hsm_cluster_id(CLUSTER)
        .connection_state(state)
        .set_connection_error_code(code)
        .build();
    kms::operation::describe_custom_key_stores::DescribeCustomKeyStoresOutput::builder()
        .custom_key_stores(e)
        .build()
}

#[tokio::test]
async fn connect_wait_reconnects_on_transient_codes_and_fails_on_others() {
    use kms::types::{ConnectionErrorCodeType as Code, ConnectionStateType as St};
    let failed = mock!(kms::Client::describe_custom_key_stores)
        .then_output(|| store(St::Failed, Some(Code::NetworkErrors)));
    let disconnect = mock!(kms::Client::disconnect_custom_key_store).then_output(|| {
        kms::operation::disconnect_custom_key_store::DisconnectCustomKeyStoreOutput::builder()
            .build()
    });
    let c = clients(&[&failed, &disconnect]);
    let state =
        json!({"Event": ks_event(), "KeyStore": {"CustomKeyStoreId": "cks-1234567890abcdef0"}});
    let p = payload("KeyStoreStatus", json!({"For": "Connected"}), state);
    let out = crate::keystore::run(&c, "KeyStoreStatus", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(out["Done"], false);
    assert_eq!(out["Reconnects"], 1);
    assert_eq!(out["ConnectionErrorCode"], "NETWORK_ERRORS");
    assert_eq!(disconnect.num_calls(), 1);

    let not_found = mock!(kms::Client::describe_custom_key_stores)
        .then_output(|| store(St::Failed, Some(Code::UserNotFound)));
    let c = clients(&[&not_found, &disconnect]);
    let e = crate::keystore::run(&c, "KeyStoreStatus", Call::new(&p))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StepError::ResourceFailed(m) if m.contains("USER_NOT_FOUND") && m.contains("every HSM")),
        "{e:?}"
    );

    let connecting_after_disconnect = mock!(kms::Client::describe_custom_key_stores)
        .then_output(|| store(St::Disconnected, None));
    let connect = mock!(kms::Client::connect_custom_key_store).then_output(|| {
        kms::operation::connect_custom_key_store::ConnectCustomKeyStoreOutput::builder().build()
    });
    let c = clients(&[&connecting_after_disconnect, &connect]);
    let out = crate::keystore::run(&c, "KeyStoreStatus", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(out["Done"], false);
    assert_eq!(connect.num_calls(), 1);
}

#[tokio::test]
async fn delete_refuses_when_keys_remain_and_retains_on_request() {
    use kms::types::ConnectionStateType as St;
    let describe =
        mock!(kms::Client::describe_custom_key_stores).then_output(|| store(St::Connected, None));
    let list = mock!(kms::Client::list_keys).then_output(|| {
        kms::operation::list_keys::ListKeysOutput::builder()
            .keys(
                kms::types::KeyListEntry::builder()
                    .key_id("k-in-store")
                    .build(),
            )
            .keys(
                kms::types::KeyListEntry::builder()
                    .key_id("k-other")
                    .build(),
            )
            .build()
    });
    let describe_key = mock!(kms::Client::describe_key).then_compute_output(|req| {
        let id = req.key_id().unwrap().to_string();
        let mut m = kms::types::KeyMetadata::builder()
            .key_id(&id)
            .key_state(kms::types::KeyState::PendingDeletion);
        if id == "k-in-store" {
            m = m.custom_key_store_id("cks-1234567890abcdef0");
        }
        kms::operation::describe_key::DescribeKeyOutput::builder()
            .key_metadata(m.build().unwrap())
            .build()
    });
    let c = clients(&[&describe, &list, &describe_key]);
    let p = payload("KeyStoreKeys", json!({}), json!({"Event": ks_event()}));
    let e = crate::keystore::run(&c, "KeyStoreKeys", Call::new(&p))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StepError::Conflict(m) if m.contains("k-in-store (PendingDeletion)") && !m.contains("k-other")),
        "{e:?}"
    );

    let mut ev = ks_event();
    ev["ResourceProperties"]["RetainOnDelete"] = json!("true");
    let p = payload("KeyStoreKeys", json!({}), json!({"Event": ev}));
    let out = crate::keystore::run(&c, "KeyStoreKeys", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(out["Retain"], true);
}

#[tokio::test]
async fn kmsuser_secret_goes_straight_from_random_password_into_the_secret() {
    use aws_sdk_secretsmanager as sm;
    let missing = mock!(sm::Client::describe_secret).then_error(|| {
        sm::operation::describe_secret::DescribeSecretError::ResourceNotFoundException(
            sm::types::error::ResourceNotFoundException::builder()
                .meta(meta("ResourceNotFoundException", "no"))
                .build(),
        )
    });
    let random = mock!(sm::Client::get_random_password).then_output(|| {
        sm::operation::get_random_password::GetRandomPasswordOutput::builder()
            .random_password("Rand0mPassw0rdRand0mPassw0rdAbCd")
            .build()
    });
    let create = mock!(sm::Client::create_secret)
        .match_requests(|r| {
            r.name() == Some("hsm/kmsuser-initial")
                && r.secret_string() == Some("Rand0mPassw0rdRand0mPassw0rdAbCd")
                && r.kms_key_id() == Some("arn:aws:kms:us-east-1:123456789012:key/cmk")
        })
        .then_output(|| {
            sm::operation::create_secret::CreateSecretOutput::builder()
                .arn("arn:secret:hsm/kmsuser-initial-x")
                .build()
        });
    let c = clients(&[&missing, &random, &create]);
    let mut event = ks_event();
    event["ResourceProperties"]["SecretsKmsKeyArn"] =
        json!("arn:aws:kms:us-east-1:123456789012:key/cmk");
    let p = payload("EnsureKmsUserSecret", json!({}), json!({"Event": event}));
    let out = crate::keystore::run(&c, "EnsureKmsUserSecret", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(out["SecretArn"], "arn:secret:hsm/kmsuser-initial-x");
    assert_eq!(create.num_calls(), 1);
    assert!(
        !out.to_string().contains("Rand0m"),
        "the password never leaves the function"
    );
}

#[tokio::test]
async fn create_key_store_refuses_a_name_taken_by_another_cluster() {
    let other = mock!(kms::Client::describe_custom_key_stores).then_output(|| {
        let e = kms::types::CustomKeyStoresListEntry::builder()
            .custom_key_store_id("cks-0000000000000000a")
            .custom_key_store_name("hsm")
            .cloud_hsm_cluster_id("cluster-othercluster1")
            .build();
        kms::operation::describe_custom_key_stores::DescribeCustomKeyStoresOutput::builder()
            .custom_key_stores(e)
            .build()
    });
    let c = clients(&[&other]);
    let p = payload("CreateKeyStore", json!({}), json!({"Event": ks_event()}));
    let e = crate::keystore::run(&c, "CreateKeyStore", Call::new(&p))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StepError::Conflict(m) if m.contains("cluster-othercluster1")),
        "{e:?}"
    );
}

#[tokio::test]
async fn bridge_treats_an_existing_execution_as_started() {
    use aws_sdk_sfn as sfn;
    let exists = mock!(sfn::Client::start_execution)
        .match_requests(|r| {
            r.name() == Some("KeyStore-Delete-r-2") && r.input().unwrap().contains("\"Event\"")
        })
        .then_error(|| {
            sfn::operation::start_execution::StartExecutionError::ExecutionAlreadyExists(
                sfn::types::error::ExecutionAlreadyExists::builder()
                    .meta(meta("ExecutionAlreadyExists", "exists"))
                    .build(),
            )
        });
    let c = clients(&[&exists]);
    let mut ev = ks_event();
    ev["ResourceProperties"]["WorkflowArn"] =
        json!("arn:aws:states:us-east-1:123456789012:stateMachine:ks");
    let out = crate::bridge::handle(&c, &ev).await.unwrap();
    assert_eq!(out["Started"], "KeyStore-Delete-r-2");
    assert_eq!(exists.num_calls(), 1);
}

#[tokio::test]
async fn fleet_wait_replans_a_degraded_hsm_after_a_wait_and_bounds_the_replans() {
    let degraded = mock!(hsm::Client::describe_clusters).then_output(|| {
        cluster(
            CS::Active,
            vec![
                hsm_("hsm-a1", "us-east-1a", "eni-1", HS::Active),
                hsm_("hsm-b1", "us-east-1b", "eni-2", HS::Degraded),
            ],
            None,
        )
    });
    let c = clients(&[&degraded]);
    let check = |poll: Value| {
        let mut state = json!({"Event": event(json!({}))});
        if !poll.is_null() {
            state["Poll"] = poll;
        }
        payload("ClusterStatus", json!({"For": "Fleet"}), state)
    };
    // Right after the creates: not trusted yet, keep waiting.
    let p = check(Value::Null);
    let first = crate::cluster::run(&c, "ClusterStatus", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(
        (first["Done"].clone(), first["Replan"].clone()),
        (json!(false), json!(false))
    );
    // After a wait: back to planning, counted.
    let p = check(first);
    let second = crate::cluster::run(&c, "ClusterStatus", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(second["Replan"], true);
    assert_eq!(second["Replans"], 1);
    assert!(second["Reason"].as_str().unwrap().contains("hsm-b1"));
    // The first check after the new plan is not trusted either.
    let p = check(second);
    let third = crate::cluster::run(&c, "ClusterStatus", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(
        (third["Replan"].clone(), third["Replans"].clone()),
        (json!(false), json!(1))
    );
    // Out of re-plans: a clear failure naming the HSM and its state.
    let mut spent = third.clone();
    spent["Replans"] = json!(2);
    let p = check(spent);
    let e = crate::cluster::run(&c, "ClusterStatus", Call::new(&p))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StepError::ResourceFailed(m) if m.contains("hsm-b1") && m.contains("DEGRADED") && m.contains("re-planned 2 times")),
        "{e:?}"
    );
}

#[tokio::test]
async fn client_status_waits_until_the_instance_is_online_in_ssm() {
    use aws_sdk_ssm as ssm;
    let info = |ping: Option<ssm::types::PingStatus>| {
        let mut out = ssm::operation::describe_instance_information::DescribeInstanceInformationOutput::builder();
        if let Some(p) = ping {
            out = out.instance_information_list(
                ssm::types::InstanceInformation::builder()
                    .instance_id("i-1")
                    .ping_status(p)
                    .build(),
            );
        }
        out.build()
    };
    let check = |poll: Value| {
        let mut state = json!({"Event": event(json!({}))});
        if !poll.is_null() {
            state["Poll"] = poll;
        }
        payload(
            "ClientStatus",
            json!({"For": "ActivateClientReady", "InstanceId": "i-1"}),
            state,
        )
    };
    // Not registered yet (booting): wait, starting with the expected boot time.
    let booting = mock!(ssm::Client::describe_instance_information)
        .match_requests(|r| {
            r.filters()
                .iter()
                .any(|f| f.key() == "InstanceIds" && f.values() == ["i-1"])
        })
        .then_output(move || info(None));
    let p = check(Value::Null);
    let out = crate::cluster::run(&clients(&[&booting]), "ClientStatus", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(
        (out["Done"].clone(), out["Wait"].clone()),
        (json!(false), json!(crate::cluster::CLIENT_ONLINE.first))
    );
    // Online: done at once.
    let online = mock!(ssm::Client::describe_instance_information)
        .then_output(move || info(Some(ssm::types::PingStatus::Online)));
    let p = check(out);
    let out = crate::cluster::run(&clients(&[&online]), "ClientStatus", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(out["Done"], true);
    // Never online: the bounded wait ends naming the state and what the client needs.
    let lost = mock!(ssm::Client::describe_instance_information)
        .then_output(move || info(Some(ssm::types::PingStatus::ConnectionLost)));
    let last = json!({"For": "ActivateClientReady", "Attempt": crate::cluster::CLIENT_ONLINE.max_attempts - 1, "Wait": 15, "Done": false});
    let p = check(last);
    let e = crate::cluster::run(&clients(&[&lost]), "ClientStatus", Call::new(&p))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StepError::WaitTimeout(m) if m.contains("PingStatus ConnectionLost") && m.contains("ssmmessages")),
        "{e:?}"
    );
}

#[tokio::test]
async fn sign_csr_with_acm_private_ca_issues_once_and_takes_the_root_as_anchor() {
    use aws_sdk_acmpca as pca;
    let csr = crate::pki::tests::sample_csr();
    let describe = uninitialized_with_first_hsm(&csr);
    // What the CA issues: a certificate for this CSR, and the CA's own (root) certificate.
    let issued = crate::pki::sign_with_throwaway_ca(&csr, CLUSTER).unwrap();
    const CA: &str = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555";
    let ca = |kind: pca::types::CertificateAuthorityType| {
        move || {
            pca::operation::describe_certificate_authority::DescribeCertificateAuthorityOutput::builder()
                .certificate_authority(
                    pca::types::CertificateAuthority::builder()
                        .arn(CA)
                        .status(pca::types::CertificateAuthorityStatus::Active)
                        .r#type(kind.clone())
                        .certificate_authority_configuration(
                            pca::types::CertificateAuthorityConfiguration::builder()
                                .key_algorithm(pca::types::KeyAlgorithm::Rsa2048)
                                .signing_algorithm(pca::types::SigningAlgorithm::Sha256Withrsa)
                                .subject(pca::types::Asn1Subject::builder().common_name("Root").build())
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build()
        }
    };
    let root = mock!(pca::Client::describe_certificate_authority)
        .then_output(ca(pca::types::CertificateAuthorityType::Root));
    let csr3 = csr.clone();
    let issue = mock!(pca::Client::issue_certificate)
        .match_requests(move |r| {
            r.certificate_authority_arn() == Some(CA)
                && r.csr().map(|b| b.as_ref()) == Some(csr3.trim().as_bytes())
                && r.idempotency_token().is_some_and(|t| t.len() <= 36)
        })
        .then_output(|| {
            pca::operation::issue_certificate::IssueCertificateOutput::builder()
                .certificate_arn(format!("{CA}/certificate/abc"))
                .build()
        });
    let (cert, anchor) = (issued.signed_cert.clone(), issued.trust_anchor.clone());
    let get = mock!(pca::Client::get_certificate).then_output(move || {
        pca::operation::get_certificate::GetCertificateOutput::builder()
            .certificate(cert.clone())
            .certificate_chain(anchor.clone())
            .build()
    });
    let c = clients(&[&describe, &root, &issue, &get]);
    let p = payload(
        "SignCsr",
        json!({}),
        json!({"Event": event(json!({"PkiMode": "AcmPrivateCa", "AcmPcaArn": CA}))}),
    );
    let out = crate::cluster::run(&c, "SignCsr", Call::new(&p))
        .await
        .unwrap();
    assert_eq!(out["Pending"], false);
    assert_eq!(out["SignedCert"], issued.signed_cert.as_str());
    assert_eq!(
        out["TrustAnchor"].as_str().unwrap().trim(),
        issued.trust_anchor.trim()
    );
    assert_eq!(issue.num_calls(), 1);

    // A subordinate CA cannot provide the trust anchor: refused before anything is issued.
    let sub = mock!(pca::Client::describe_certificate_authority)
        .then_output(ca(pca::types::CertificateAuthorityType::Subordinate));
    let c = clients(&[&describe, &sub, &issue]);
    let e = crate::cluster::run(&c, "SignCsr", Call::new(&p))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StepError::InvalidInput(m) if m.contains("subordinate")),
        "{e:?}"
    );
    assert_eq!(issue.num_calls(), 1);
}
