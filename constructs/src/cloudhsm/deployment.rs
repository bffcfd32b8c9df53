//! `CloudHsmDeployment`: the whole CloudHSM deployment as one construct.
//!
//! Tree (ids below the construct's own id):
//! `Preflight`, `Cluster`, `Secrets/{Key,AdminPassword,TrustAnchor}`,
//! `Client/{SecurityGroup,ClusterIngress,Role,InstanceProfile,Instance}`,
//! `Documents/{ActivateCluster,RefreshClientConfig,CreateKmsUser}`,
//! `Functions/<Group>/{Role,LogGroup,Function}`, `Workflows/<Name>/{Role,LogGroup,StateMachine}`,
//! `Initialization`, `HsmFleet`, `KeyStore`.
//!
//! Order on create: Preflight → Cluster → Initialization → HsmFleet → KeyStore (reverse on delete).
//!
//! Restored from a backup ([`ClusterSource::Backup`]): `RestoredCluster` (`Custom::RestoredCluster`,
//! CreateCluster with SourceBackupId: the native `AWS::CloudHSM::Cluster` has no such property)
//! replaces `Cluster`; no `Initialization` (the cluster is ACTIVE once created), no
//! `Secrets/{AdminPassword,TrustAnchor}` (the given secrets are used), no `ActivateCluster`
//! document; the client's rule to the HSMs is `Client/ClusterEgress` (a separate resource: an
//! inline rule would close a dependency cycle through the workflow's functions). Order: Preflight →
//! RestoredCluster → HsmFleet (its first HSM restores the backup) → KeyStore.

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::props::*;
use super::{client_documents, workflows};
use crate::cfn::resources::*;
use crate::cfn::{Expr, Pseudo, Value};
use crate::iam::{self, PolicyDocument, Principal, Statement};
use crate::sfn::StateMachineDefinition;
use crate::tree::{ConditionHandle, Handle, RemovalPolicy, Scope};

/// Ports the CloudHSM client uses to reach the HSMs.
pub const HSM_PORTS: (i64, i64) = (2223, 2225);

/// The Lambda function groups (the `Handler` of each function).
pub const FUNCTION_GROUPS: [&str; 5] = ["bridge", "preflight", "cluster", "keystore", "respond"];

/// The deployed pieces, with typed handles for your own resources.
#[derive(Debug, Clone)]
pub struct CloudHsmDeployment {
    pub path: String,
    /// The native cluster (None when restored from a backup).
    pub cluster: Option<Handle<CloudHsmCluster>>,
    /// The cluster restored from a backup (`Custom::RestoredCluster`), else None.
    pub restored_cluster: Option<Handle<CustomResource>>,
    /// The stack's own secrets (None when restored: the given secrets are used).
    pub admin_password: Option<Handle<Secret>>,
    pub trust_anchor: Option<Handle<Secret>>,
    pub kms_key: Option<Handle<KmsKey>>,
    pub client_security_group: Handle<SecurityGroup>,
    pub client_instance: Handle<Instance>,
    pub client_role: Handle<Role>,
    pub functions: IndexMap<String, Handle<Function>>,
    pub state_machines: IndexMap<String, Handle<StateMachine>>,
    pub preflight: Handle<CustomResource>,
    /// None when restored from a backup (already initialized and activated).
    pub initialization: Option<Handle<CustomResource>>,
    pub hsm_fleet: Handle<CustomResource>,
    pub key_store: Option<Handle<CustomResource>>,
    pub key_store_condition: Option<ConditionHandle>,
    refs: ClusterRefs,
}

/// What the rest of the stack uses of the cluster and its secrets, whichever the source.
#[derive(Debug, Clone)]
struct ClusterRefs {
    cluster_id: Value<String>,
    cluster_arn: Value<String>,
    cluster_security_group_id: Value<String>,
    admin_password_secret_arn: Value<String>,
    trust_anchor_secret_arn: Value<String>,
}

impl CloudHsmDeployment {
    /// The cluster id (`cluster-…`).
    pub fn cluster_id(&self) -> Value<String> {
        self.refs.cluster_id.clone()
    }
    /// The cluster ARN.
    pub fn cluster_arn(&self) -> Value<String> {
        self.refs.cluster_arn.clone()
    }
    /// The security group CloudHSM created for the HSM ENIs.
    pub fn cluster_security_group_id(&self) -> Value<String> {
        self.refs.cluster_security_group_id.clone()
    }
    pub fn admin_password_secret_arn(&self) -> Value<String> {
        self.refs.admin_password_secret_arn.clone()
    }
    pub fn trust_anchor_secret_arn(&self) -> Value<String> {
        self.refs.trust_anchor_secret_arn.clone()
    }
    pub fn client_instance_id(&self) -> Value<String> {
        self.client_instance.reference()
    }
    pub fn client_security_group_id(&self) -> Value<String> {
        self.client_security_group.get_att("GroupId")
    }
    /// The CSR (PEM) an External-PKI initialization waits to have signed; empty otherwise
    /// (always empty for a restored cluster).
    pub fn cluster_csr(&self) -> Value<String> {
        match &self.initialization {
            Some(i) => i.get_att("ClusterCsr"),
            None => "".into(),
        }
    }
    /// The key store id and the condition it exists under (None when disabled).
    pub fn key_store_id(&self) -> Option<(Value<String>, Option<ConditionHandle>)> {
        self.key_store
            .as_ref()
            .map(|k| (k.reference(), self.key_store_condition.clone()))
    }

    /// Lets `source_security_group_id` reach the HSMs (TCP 2223–2225) with an ingress rule on
    /// the cluster's security group, created in `scope` under `id`.
    pub fn allow_hsm_access_from(
        &self,
        scope: &mut Scope<'_>,
        id: &str,
        source_security_group_id: Value<String>,
        description: &str,
    ) -> Handle<SecurityGroupIngress> {
        scope.resource(
            id,
            SecurityGroupIngress {
                group_id: Some(self.cluster_security_group_id()),
                ip_protocol: Some("tcp".into()),
                from_port: Some(HSM_PORTS.0.into()),
                to_port: Some(HSM_PORTS.1.into()),
                source_security_group_id: Some(source_security_group_id),
                description: Some(description.into()),
                ..Default::default()
            },
        )
    }

    /// Statements that let a principal read the admin password (and decrypt it with the
    /// customer-managed key when there is one).
    pub fn grant_admin_password_read(&self) -> Vec<Statement> {
        let mut out = vec![iam::grant_secret_read(&[self.admin_password_secret_arn()])];
        if self.restored_cluster.is_some() {
            // The given secret may be encrypted with another stack's key.
            out.push(given_secrets_key_use());
        } else if let Some(k) = &self.kms_key {
            out.push(iam::grant_key_use_via(
                k.get_att("Arn"),
                "secretsmanager",
                &["kms:Decrypt"],
            ));
        }
        out
    }

    /// Builds the deployment under `scope`/`id`. Invalid props are recorded as synthesis errors
    /// (with this construct's path) and reported together by `App::synth`.
    pub fn new(
        scope: &mut Scope<'_>,
        id: &str,
        props: CloudHsmDeploymentProps,
    ) -> CloudHsmDeployment {
        let mut me = scope.construct(id, "constructs.cloudhsm.CloudHsmDeployment");
        validate_props(&mut me, &props);
        let p = &props;
        let inputs = &p.inputs;
        let key_store_condition = match &inputs.key_store {
            KeyStore::When { condition, .. } => Some(condition.clone()),
            _ => None,
        };
        let key_store_on = !matches!(inputs.key_store, KeyStore::Disabled);
        // "true"/"false" as the handlers receive it.
        let key_store_flag: Value<String> = match &inputs.key_store {
            KeyStore::Disabled => "false".into(),
            KeyStore::Enabled => "true".into(),
            KeyStore::When { condition, .. } => condition.if_else("true".into(), "false".into()),
        };
        let stack_tags = || vec![Tag::new("CloudHsmStack", Value::pseudo(Pseudo::StackName))];
        // Restored from a backup: (backup id, admin password secret ARN, trust anchor secret ARN).
        let restore = match &p.source {
            ClusterSource::New => None,
            ClusterSource::Backup {
                backup_id,
                admin_password_secret_arn,
                trust_anchor_secret_arn,
            } => Some((
                backup_id.clone(),
                admin_password_secret_arn.clone(),
                trust_anchor_secret_arn.clone(),
            )),
        };

        // ---- Secrets (and the optional customer-managed key) ------------------------------
        let mut secrets = me.construct("Secrets", "constructs.cloudhsm.Secrets");
        let kms_key = match p.encryption {
            Encryption::AwsManaged => None,
            Encryption::CustomerManagedKey => Some(customer_managed_key(&mut secrets)),
        };
        let key_arn = kms_key.as_ref().map(|k| k.get_att("Arn"));
        let (admin_password, trust_anchor) = if restore.is_none() {
            let admin_password = secrets.resource(
            "AdminPassword",
            Secret {
                description: Some(Value::sub("CloudHSM admin (crypto officer) password of stack ${AWS::StackName}; read on the client at run time only")),
                generate_secret_string: Some(GenerateSecretString {
                    password_length: Some(32.into()),
                    exclude_punctuation: Some(true.into()),
                    include_space: Some(false.into()),
                    require_each_included_type: Some(true.into()),
                    ..Default::default()
                }),
                kms_key_id: key_arn.clone(),
                tags: Some(stack_tags()),
                ..Default::default()
            },
        );
            let trust_anchor = secrets.resource(
            "TrustAnchor",
            Secret {
                description: Some(Value::sub(
                    "Trust anchor (issuing CA certificate, PEM) of the CloudHSM cluster of stack ${AWS::StackName}; retained after the stack is deleted",
                )),
                // A public certificate, not a secret; the initialization workflow overwrites it.
                secret_string: Some("PENDING: written by the cluster initialization workflow".into()),
                kms_key_id: key_arn.clone(),
                tags: Some(stack_tags()),
                ..Default::default()
            },
        );
            // Deleted with the stack (architecture contract); a later restore from backup needs the
            // password, so copy it out first if you keep backups beyond the stack.
            secrets.set_removal_policy(&admin_password, RemovalPolicy::Destroy);
            secrets.set_removal_policy(&trust_anchor, RemovalPolicy::Retain);
            (Some(admin_password), Some(trust_anchor))
        } else {
            (None, None)
        };
        let (admin_arn, anchor_arn): (Value<String>, Value<String>) =
            match (&admin_password, &trust_anchor, &restore) {
                (Some(a), Some(t), _) => (a.reference(), t.reference()),
                (_, _, Some((_, a, t))) => (a.clone(), t.clone()),
                _ => unreachable!("either the stack's secrets or the given ones"),
            };
        // Statements to decrypt the secrets: the stack's key, or (restored) any key of the
        // account through Secrets Manager (the given secrets may use another stack's key).
        let secrets_key_use = |actions: &[&str]| -> Option<Statement> {
            match (&restore, &key_arn) {
                (Some(_), _) => Some(given_secrets_key_use()),
                (None, Some(k)) => {
                    Some(iam::grant_key_use_via(k.clone(), "secretsmanager", actions))
                }
                (None, None) => None,
            }
        };

        // ---- Lambda functions -------------------------------------------------------------
        let code = me.file_asset(p.code.clone());
        let mut fn_scope = me.construct("Functions", "constructs.cloudhsm.Functions");
        let mut functions: IndexMap<String, Handle<Function>> = IndexMap::new();
        let mut fn_logs: IndexMap<String, Handle<LogGroup>> = IndexMap::new();
        let mut fn_roles: IndexMap<String, Handle<Role>> = IndexMap::new();
        for group in FUNCTION_GROUPS
            .into_iter()
            .filter(|g| key_store_on || *g != "keystore")
        {
            let id = group_id(group);
            let mut f = fn_scope.construct(&id, "constructs.cloudhsm.HandlerFunction");
            let log = f.resource(
                "LogGroup",
                LogGroup {
                    retention_in_days: Some(i64::from(p.log_retention_days).into()),
                    kms_key_id: key_arn.clone(),
                    ..Default::default()
                },
            );
            f.set_removal_policy(&log, RemovalPolicy::Destroy);
            // The role's statements are filled in once every resource it needs exists.
            let role = f.resource("Role", Role::default());
            let function = f.resource(
                "Function",
                Function {
                    description: Some(format!("CloudHSM deployment: `{group}` steps").into()),
                    code: Some(FunctionCode {
                        s3_bucket: Some(code.bucket.clone()),
                        s3_key: Some(code.key.clone()),
                    }),
                    handler: Some(group.into()),
                    runtime: Some("provided.al2023".into()),
                    architectures: Some(vec![p.architecture.as_str().into()]),
                    role: Some(role.get_att("Arn")),
                    timeout: Some(function_timeout(group).into()),
                    memory_size: Some(256.into()),
                    logging_config: Some(LoggingConfig {
                        log_group: Some(log.reference()),
                        log_format: Some("JSON".into()),
                        ..Default::default()
                    }),
                    tags: Some(stack_tags()),
                    ..Default::default()
                },
            );
            if group == "keystore" {
                if let Some(c) = &key_store_condition {
                    f.set_condition(&log, c);
                    f.set_condition(&role, c);
                    f.set_condition(&function, c);
                }
            }
            functions.insert(group.into(), function);
            fn_logs.insert(group.into(), log);
            fn_roles.insert(group.into(), role);
        }
        let fn_arn = |g: &str| functions[g].get_att("Arn");

        // ---- Preflight (synchronous custom resource) --------------------------------------
        let preflight = me.custom_resource(
            "Preflight",
            CustomResource::new("Custom::Preflight", fn_arn("preflight"))
                .timeout(300)
                .property("VpcId", inputs.vpc_id.clone())
                .property("SubnetIds", inputs.subnet_ids.clone())
                .property("HsmsPerSubnet", inputs.hsms_per_subnet.clone())
                .property("ClientSubnetId", inputs.client_subnet_id.clone())
                .property("KeyStoreEnabled", key_store_flag.clone())
                .property("HsmType", inputs.hsm_type.clone()),
        );

        // ---- Workflow substitutions -----------------------------------------------------------
        let mut substitutions: IndexMap<&str, (Value<String>, bool)> = IndexMap::new();
        substitutions.insert("ClusterFunctionArn", (fn_arn("cluster"), false));
        substitutions.insert("RespondFunctionArn", (fn_arn("respond"), false));
        // Without a key store there is no function: workflows that mention it get an ARN that
        // names no function (they only call it when KeyStoreEnabled is true).
        let no_function = || {
            Value::sub("arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:key-store-disabled")
        };
        let keystore_arn = match (&key_store_condition, key_store_on) {
            (_, false) => no_function(),
            (Some(c), true) => c.if_else(fn_arn("keystore"), no_function()),
            (None, true) => fn_arn("keystore"),
        };
        substitutions.insert("KeyStoreFunctionArn", (keystore_arn, true));
        let definitions = |first: (&'static str, StateMachineDefinition)| {
            let mut v = vec![first, ("HsmFleet", workflows::hsm_fleet())];
            if key_store_on {
                v.push(("KeyStore", workflows::key_store()));
            }
            v
        };
        let workflow_env = WorkflowEnv {
            substitutions: &substitutions,
            keystore_function: key_store_on.then(|| fn_arn("keystore")),
            key_store_condition: key_store_condition.clone(),
            key_arn: key_arn.clone(),
            log_retention_days: p.log_retention_days,
        };

        // ---- Cluster ----------------------------------------------------------------------
        // Restored: its workflow must exist first (the custom resource names it).
        let mut early_state_machines = None;
        let (cluster, restored_cluster, cluster_id, cluster_sg, cluster_arn) =
            if let Some((backup_id, _, _)) = &restore {
                let machines = build_workflows(
                    &mut me,
                    definitions(("RestoredCluster", workflows::restored_cluster())),
                    &workflow_env,
                );
                let rc = me.custom_resource(
                    "RestoredCluster",
                    CustomResource::new("Custom::RestoredCluster", fn_arn("bridge"))
                        .timeout(3600)
                        .property("WorkflowArn", machines["RestoredCluster"].reference())
                        .property("BackupId", backup_id.clone())
                        .property("VpcId", inputs.vpc_id.clone())
                        .property("SubnetIds", inputs.subnet_ids.clone())
                        .property("HsmType", inputs.hsm_type.clone())
                        .property("ClusterMode", inputs.cluster_mode.clone())
                        .property("BackupRetentionDays", inputs.backup_retention_days.clone()),
                );
                me.add_dependency(&rc, &preflight);
                early_state_machines = Some(machines);
                let id: Value<String> = rc.get_att("ClusterId");
                let arn = Value::from_expr(iam::arn_with("cloudhsm", "cluster/", id.clone()));
                let sg = rc.get_att("SecurityGroupId");
                (None, Some(rc), id, sg, arn)
            } else {
                let mut cluster_scope = me.construct("Cluster", "constructs.cloudhsm.Cluster");
                let cluster = cluster_scope.resource(
                    "Resource",
                    CloudHsmCluster {
                        hsm_type: Some(inputs.hsm_type.clone()),
                        mode: Some(inputs.cluster_mode.clone()),
                        subnet_ids: Some(inputs.subnet_ids.clone()),
                        backup_retention_policy: Some(BackupRetentionPolicy {
                            r#type: Some("DAYS".into()),
                            value: Some(Value::from_expr(
                                inputs.backup_retention_days.expr().clone(),
                            )),
                        }),
                        tags: Some(vec![
                            Tag::new("CloudHsmStack", Value::pseudo(Pseudo::StackName)),
                            Tag::new("Name", Value::sub("${AWS::StackName}-cluster")),
                        ]),
                        ..Default::default()
                    },
                );
                cluster_scope.add_dependency(&cluster, &preflight);
                let id = cluster.get_att("ClusterId");
                let sg = cluster.get_att("SecurityGroup");
                let arn = cluster.reference();
                (Some(cluster), None, id, sg, arn)
            };

        // ---- Client -----------------------------------------------------------------------
        let mut client = me.construct("Client", "constructs.cloudhsm.Client");
        let client_sg = client.resource(
            "SecurityGroup",
            SecurityGroup {
                group_description: Some("CloudHSM administration client".into()),
                vpc_id: Some(inputs.vpc_id.clone()),
                security_group_egress: Some({
                    let mut rules = vec![SecurityGroupRule {
                        ip_protocol: Some("tcp".into()),
                        from_port: Some(443.into()),
                        to_port: Some(443.into()),
                        cidr_ip: Some("0.0.0.0/0".into()),
                        description: Some(
                            "HTTPS to AWS APIs (SSM, Secrets Manager, S3 for packages)".into(),
                        ),
                        ..Default::default()
                    }];
                    // Restored: `ClusterEgress` below (an inline rule would make the instance
                    // depend on the restore workflow, whose functions' roles name the instance).
                    if restore.is_none() {
                        rules.push(SecurityGroupRule {
                            ip_protocol: Some("tcp".into()),
                            from_port: Some(HSM_PORTS.0.into()),
                            to_port: Some(HSM_PORTS.1.into()),
                            destination_security_group_id: Some(cluster_sg.clone()),
                            description: Some("CloudHSM client to the HSMs".into()),
                            ..Default::default()
                        });
                    }
                    rules
                }),
                tags: Some(vec![Tag::new(
                    "Name",
                    Value::sub("${AWS::StackName}-hsm-client"),
                )]),
                ..Default::default()
            },
        );
        let ingress = client.resource(
            "ClusterIngress",
            SecurityGroupIngress {
                group_id: Some(cluster_sg.clone()),
                ip_protocol: Some("tcp".into()),
                from_port: Some(HSM_PORTS.0.into()),
                to_port: Some(HSM_PORTS.1.into()),
                source_security_group_id: Some(client_sg.get_att("GroupId")),
                description: Some("CloudHSM administration client".into()),
                ..Default::default()
            },
        );
        let egress = restore.as_ref().map(|_| {
            client.resource(
                "ClusterEgress",
                SecurityGroupEgress {
                    group_id: Some(client_sg.get_att("GroupId")),
                    ip_protocol: Some("tcp".into()),
                    from_port: Some(HSM_PORTS.0.into()),
                    to_port: Some(HSM_PORTS.1.into()),
                    destination_security_group_id: Some(cluster_sg.clone()),
                    description: Some("CloudHSM client to the HSMs".into()),
                    ..Default::default()
                },
            )
        });
        let kmsuser_secret_pattern =
            iam::arn("secretsmanager", "secret:${AWS::StackName}/kmsuser-*");
        let mut client_statements = vec![
            iam::grant_secret_read(&[admin_arn.clone(), anchor_arn.clone()]),
            Statement::allow(&["secretsmanager:GetSecretValue"]).on(kmsuser_secret_pattern.clone()),
            Statement::allow(&["cloudhsm:DescribeClusters"])
                .on_any_resource("cloudhsm:DescribeClusters has no resource-level permissions"),
        ];
        client_statements.extend(secrets_key_use(&["kms:Decrypt"]));
        let client_role = client.resource(
            "Role",
            Role {
                assume_role_policy_document: Some(PolicyDocument::assume_role("ec2.amazonaws.com").to_expr()),
                description: Some("CloudHSM administration client: SSM-managed, reads the stack's CloudHSM secrets".into()),
                managed_policy_arns: Some(vec![iam::managed_policy("AmazonSSMManagedInstanceCore")]),
                policies: Some(vec![InlinePolicy {
                    policy_name: Some("CloudHsmClient".into()),
                    policy_document: Some(PolicyDocument::new(client_statements).to_expr()),
                }]),
                tags: Some(stack_tags()),
                ..Default::default()
            },
        );
        let profile = client.resource(
            "InstanceProfile",
            InstanceProfile {
                roles: Some(vec![client_role.reference()]),
                ..Default::default()
            },
        );
        let instance = client.resource(
            "Instance",
            Instance {
                image_id: Some(format!("{{{{resolve:ssm:{AL2023_AMI_PARAMETER}}}}}").into()),
                instance_type: Some(inputs.client_instance_type.clone()),
                iam_instance_profile: Some(profile.reference()),
                network_interfaces: Some(vec![InstanceNetworkInterface {
                    device_index: Some("0".into()),
                    subnet_id: Some(inputs.client_subnet_id.clone()),
                    group_set: Some(vec![client_sg.get_att("GroupId")].into()),
                    associate_public_ip_address: Some(false.into()),
                    delete_on_termination: Some(true.into()),
                    ..Default::default()
                }]),
                metadata_options: Some(MetadataOptions {
                    http_endpoint: Some("enabled".into()),
                    http_tokens: Some("required".into()),
                    http_put_response_hop_limit: Some(1.into()),
                    ..Default::default()
                }),
                block_device_mappings: Some(vec![BlockDeviceMapping {
                    device_name: Some("/dev/xvda".into()),
                    ebs: Some(Ebs {
                        volume_size: Some(8.into()),
                        volume_type: Some("gp3".into()),
                        encrypted: Some(true.into()),
                        kms_key_id: key_arn.clone(),
                        delete_on_termination: Some(true.into()),
                    }),
                }]),
                user_data: Some(Value::from_expr(Expr::base64(
                    Expr::str(client_user_data()),
                ))),
                monitoring: Some(false.into()),
                propagate_tags_to_volume_on_creation: Some(true.into()),
                tags: Some(vec![
                    Tag::new("Name", Value::sub("${AWS::StackName}-hsm-client")),
                    Tag::new("CloudHsmStack", Value::pseudo(Pseudo::StackName)),
                ]),
                ..Default::default()
            },
        );

        // ---- SSM documents ----------------------------------------------------------------
        let docs = client_documents();
        let mut doc_scope = me.construct("Documents", "constructs.cloudhsm.Documents");
        let mut document = |id: &str, content: Json| {
            doc_scope.resource(
                id,
                SsmDocument {
                    content: Some(content),
                    document_type: Some("Command".into()),
                    document_format: Some("JSON".into()),
                    target_type: Some("/AWS::EC2::Instance".into()),
                    tags: Some(stack_tags()),
                    ..Default::default()
                },
            )
        };
        // A restored cluster is already activated.
        let activate_doc = restore
            .is_none()
            .then(|| document("ActivateCluster", docs.activate_cluster.clone()));
        let refresh_doc = document("RefreshClientConfig", docs.refresh_client_config.clone());
        let kmsuser_doc = document("CreateKmsUser", docs.create_kms_user.clone());
        if let Some(c) = &key_store_condition {
            doc_scope.set_condition(&kmsuser_doc, c);
        }
        let doc_arn = |d: &Handle<SsmDocument>| iam::arn_with("ssm", "document/", d.reference());

        // ---- State machines ---------------------------------------------------------------
        let state_machines = match early_state_machines {
            Some(m) => m,
            None => build_workflows(
                &mut me,
                definitions(("Initialization", workflows::initialization())),
                &workflow_env,
            ),
        };

        // ---- Function roles (least privilege per group) -------------------------------------
        let sm_arns: Vec<Value<String>> = state_machines
            .iter()
            .map(|(n, h)| match (&key_store_condition, n.as_str()) {
                (Some(c), "KeyStore") => c.if_or_none(h.reference()),
                _ => h.reference(),
            })
            .collect();
        let instance_arn = iam::arn_with("ec2", "instance/", instance.reference());
        let cluster_actions = match &cluster {
            Some(c) => Statement::allow(&[
                "cloudhsm:CreateHsm",
                "cloudhsm:DeleteHsm",
                "cloudhsm:InitializeCluster",
            ])
            .on(c.reference()),
            // The restored cluster's id is known only after the workflow (whose functions use
            // this role) created it: scoping to it would be a dependency cycle.
            None => Statement::allow(&[
                "cloudhsm:CreateHsm",
                "cloudhsm:DeleteHsm",
                "cloudhsm:TagResource",
                "cloudhsm:ListTags",
                "cloudhsm:ModifyCluster",
                "cloudhsm:DeleteCluster",
            ])
            .on(iam::arn("cloudhsm", "cluster/*")),
        };
        let anchor_access: &[&str] = if restore.is_none() {
            &[
                "secretsmanager:PutSecretValue",
                "secretsmanager:GetSecretValue",
                "secretsmanager:DescribeSecret",
            ]
        } else {
            // The given anchor is read (never rewritten: it belongs to the backup's stack).
            &[
                "secretsmanager:GetSecretValue",
                "secretsmanager:DescribeSecret",
            ]
        };
        let mut send_command = Statement::allow(&["ssm:SendCommand"]);
        if let Some(d) = &activate_doc {
            send_command = send_command.on(doc_arn(d));
        }
        let mut cluster_statements = vec![
            cluster_actions,
            Statement::allow(&["cloudhsm:DescribeClusters", "cloudhsm:DescribeBackups"])
                .on_any_resource("cloudhsm:Describe* actions have no resource-level permissions"),
            Statement::allow(anchor_access).on(anchor_arn.clone()),
            send_command
                .on(doc_arn(&refresh_doc))
                .on(match &key_store_condition {
                    Some(c) => c.if_or_none(Value::<String>::from_expr(doc_arn(&kmsuser_doc))).into_expr(),
                    None => doc_arn(&kmsuser_doc),
                })
                .on(instance_arn),
            Statement::allow(&["ssm:GetCommandInvocation", "ssm:ListCommandInvocations", "ssm:DescribeInstanceInformation"])
                .on_any_resource("SSM command-status and instance-information reads have no resource-level permissions"),
            // CloudHSM creates and deletes the HSM ENIs with the caller's EC2 permissions.
            Statement::allow(&["ec2:CreateNetworkInterface"])
                .on(iam::arn("ec2", "subnet/*"))
                .on(iam::arn("ec2", "security-group/*"))
                .on(iam::arn("ec2", "network-interface/*")),
            Statement::allow(&["ec2:DeleteNetworkInterface", "ec2:CreateTags"]).on(iam::arn("ec2", "network-interface/*")),
            Statement::allow(&["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"])
                .on_any_resource("ec2:Describe* actions have no resource-level permissions"),
        ];
        if restore.is_some() {
            cluster_statements.extend(restore_statements());
        }
        // Statements that exist only when a condition holds (rendered as Fn::If … AWS::NoValue).
        let mut conditional_statements: IndexMap<&str, Vec<(ConditionHandle, Statement)>> =
            IndexMap::new();
        // IssueCertificate and GetCertificate are authorized on the CA (certificates are its
        // sub-resources), Describe/GetCertificateAuthorityCertificate too. The step checks the
        // CA is an ACTIVE root before issuing.
        let acm_pca = |arn: &Value<String>| {
            Statement::allow(&[
                "acm-pca:DescribeCertificateAuthority",
                "acm-pca:IssueCertificate",
                "acm-pca:GetCertificate",
                "acm-pca:GetCertificateAuthorityCertificate",
            ])
            .on(arn.clone())
        };
        match &p.pki {
            Pki::AcmPrivateCa { arn } => cluster_statements.push(acm_pca(arn)),
            Pki::FromParameters(pp) => conditional_statements
                .entry("cluster")
                .or_default()
                .push((pp.acm_pca_arn_given.clone(), acm_pca(&pp.acm_pca_arn))),
            Pki::BuiltIn | Pki::External { .. } => {}
        }
        let mut keystore_statements = vec![
            Statement::allow(&[
                "kms:CreateCustomKeyStore",
                "kms:ConnectCustomKeyStore",
                "kms:DisconnectCustomKeyStore",
                "kms:DeleteCustomKeyStore",
                "kms:UpdateCustomKeyStore",
                "kms:DescribeCustomKeyStores",
                "kms:ListKeys",
            ])
            .on_any_resource(
                "KMS custom key store actions and kms:ListKeys have no resource-level permissions",
            ),
            Statement::allow(&["kms:DescribeKey"]).on(iam::arn("kms", "key/*")),
            Statement::allow(&["cloudhsm:DescribeClusters"])
                .on_any_resource("cloudhsm:DescribeClusters has no resource-level permissions"),
            Statement::allow(&[
                "secretsmanager:CreateSecret",
                "secretsmanager:DeleteSecret",
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetSecretValue",
                "secretsmanager:TagResource",
            ])
            .on(kmsuser_secret_pattern),
            Statement::allow(&["secretsmanager:GetSecretValue"]).on(anchor_arn.clone()),
            Statement::allow(&["secretsmanager:GetRandomPassword"]).on_any_resource(
                "secretsmanager:GetRandomPassword has no resource-level permissions",
            ),
        ];
        if let Some(k) = &key_arn {
            let use_key = ["kms:Decrypt", "kms:GenerateDataKey"];
            cluster_statements.push(iam::grant_key_use_via(
                k.clone(),
                "secretsmanager",
                &use_key,
            ));
            keystore_statements.push(iam::grant_key_use_via(
                k.clone(),
                "secretsmanager",
                &use_key,
            ));
        }
        if restore.is_some() {
            // The given secrets may be encrypted with the backup's stack's key.
            cluster_statements.extend(secrets_key_use(&["kms:Decrypt"]));
            keystore_statements.extend(secrets_key_use(&["kms:Decrypt"]));
        }
        let mut role_statements: IndexMap<&str, Vec<Statement>> = IndexMap::new();
        role_statements.insert("bridge", vec![iam::grant_start_execution(&sm_arns)]);
        role_statements.insert(
            "preflight",
            vec![Statement::allow(&[
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcs",
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeNetworkInterfaces",
                "cloudhsm:DescribeClusters",
            ])
            .on_any_resource(
                "ec2:Describe* and cloudhsm:DescribeClusters have no resource-level permissions",
            )],
        );
        role_statements.insert("cluster", cluster_statements);
        if key_store_on {
            role_statements.insert("keystore", keystore_statements);
        }
        role_statements.insert("respond", vec![]);
        for (group, mut statements) in role_statements {
            statements.insert(0, iam::grant_log_write(&[fn_logs[group].get_att("Arn")]));
            let conditional = conditional_statements
                .shift_remove(group)
                .unwrap_or_default();
            let doc = PolicyDocument::new(statements);
            let problems = doc
                .problems()
                .into_iter()
                .chain(conditional.iter().flat_map(|(_, s)| s.problems()));
            for problem in problems.collect::<Vec<_>>() {
                me.error(format!("IAM policy of the `{group}` function: {problem}"));
            }
            let role = &fn_roles[group];
            let rendered = Role {
                assume_role_policy_document: Some(
                    PolicyDocument::assume_role("lambda.amazonaws.com").to_expr(),
                ),
                description: Some(format!("CloudHSM deployment: `{group}` function").into()),
                policies: Some(vec![InlinePolicy {
                    policy_name: Some("Steps".into()),
                    policy_document: Some(with_conditional_statements(doc.to_expr(), &conditional)),
                }]),
                tags: Some(stack_tags()),
                ..Default::default()
            };
            me.stack().replace_properties(role, &rendered);
        }

        // ---- Workflow custom resources ------------------------------------------------------
        let bridge = fn_arn("bridge");
        // Restored: already initialized and activated.
        let initialization = activate_doc.as_ref().map(|activate_doc| {
            let mut init = CustomResource::new("Custom::ClusterInitialization", bridge.clone())
                .timeout(3600)
                .property("WorkflowArn", state_machines["Initialization"].reference())
                .property("ClusterId", cluster_id.clone())
                .property("SubnetIds", inputs.subnet_ids.clone())
                .property("ClientInstanceId", instance.reference())
                .property("AdminPasswordSecretArn", admin_arn.clone())
                .property("TrustAnchorSecretArn", anchor_arn.clone())
                .property("ActivateDocument", activate_doc.reference())
                .property("PkiMode", p.pki.mode());
            match &p.pki {
                Pki::BuiltIn => {}
                Pki::AcmPrivateCa { arn } => init = init.property("AcmPcaArn", arn.clone()),
                // All four, empty when not given (the handler treats "" as absent).
                Pki::FromParameters(pp) => {
                    init = init
                        .property("AcmPcaArn", pp.acm_pca_arn.clone())
                        .property(
                            "ExternalSignedCertificate",
                            pp.external_signed_certificate.clone(),
                        )
                        .property("ExternalTrustAnchor", pp.external_trust_anchor.clone())
                }
                Pki::External {
                    signed_certificate,
                    trust_anchor,
                } => {
                    init = init
                        .property("ExternalSignedCertificate", signed_certificate.clone())
                        .property("ExternalTrustAnchor", trust_anchor.clone())
                }
            }
            let initialization = me.custom_resource("Initialization", init);
            // The client must reach the HSMs before activation.
            me.add_dependency(&initialization, &ingress);
            initialization
        });
        // Changes (UNINITIALIZED → ACTIVE) when an External-PKI initialization finishes, so the
        // fleet runs again and adds the HSMs it deferred (more than one HSM can only be created
        // in an ACTIVE cluster). A restored cluster is ACTIVE from the start.
        let cluster_state: Value<String> = match &initialization {
            Some(i) => i.get_att("ClusterState"),
            None => "ACTIVE".into(),
        };

        let hsm_fleet = me.custom_resource(
            "HsmFleet",
            CustomResource::new("Custom::HsmFleet", bridge.clone())
                .timeout(3600)
                .property("WorkflowArn", state_machines["HsmFleet"].reference())
                .property("ClusterId", cluster_id.clone())
                .property("SubnetIds", inputs.subnet_ids.clone())
                .property("HsmsPerSubnet", inputs.hsms_per_subnet.clone())
                .property("ClientInstanceId", instance.reference())
                .property("RefreshDocument", refresh_doc.reference())
                // A replaced client gets the trust anchor with its configuration.
                .property("TrustAnchorSecretArn", anchor_arn.clone())
                .property("KeyStoreEnabled", key_store_flag.clone())
                .property("ClusterState", cluster_state),
        );
        // The fleet follows the initialization through its `ClusterState` GetAtt (no DependsOn);
        // a restored cluster's fleet follows the cluster (its ClusterId GetAtt) and waits for the
        // client's network path (RefreshClient reaches the HSMs).
        if let Some(e) = &egress {
            me.add_dependency(&hsm_fleet, &ingress);
            me.add_dependency(&hsm_fleet, e);
        }

        let key_store = if key_store_on {
            let name = p
                .key_store_name
                .clone()
                .unwrap_or_else(|| Value::pseudo(Pseudo::StackName));
            let mut ks_props = CustomResource::new("Custom::KeyStore", bridge);
            if let Some(k) = &key_arn {
                // The initial kmsuser password is encrypted with the same key as the others.
                ks_props = ks_props.property("SecretsKmsKeyArn", k.clone());
            }
            let ks = me.custom_resource(
                "KeyStore",
                ks_props
                    .timeout(3600)
                    .property("WorkflowArn", state_machines["KeyStore"].reference())
                    .property("ClusterId", cluster_id.clone())
                    .property("KeyStoreName", name)
                    .property("TrustAnchorSecretArn", anchor_arn.clone())
                    .property("AdminPasswordSecretArn", admin_arn.clone())
                    .property("ClientInstanceId", instance.reference())
                    .property("CreateKmsUserDocument", kmsuser_doc.reference())
                    .property(
                        "KmsUserSecretName",
                        Value::sub("${AWS::StackName}/kmsuser-initial"),
                    )
                    .property(
                        "RetainOnDelete",
                        if p.retain_key_store_on_delete {
                            "true"
                        } else {
                            "false"
                        },
                    ),
            );
            me.add_dependency(&ks, &hsm_fleet);
            if let Some(c) = &key_store_condition {
                me.set_condition(&ks, c);
            }
            Some(ks)
        } else {
            None
        };

        let path = me.path();
        CloudHsmDeployment {
            path,
            cluster,
            restored_cluster,
            admin_password,
            trust_anchor,
            kms_key,
            client_security_group: client_sg,
            client_instance: instance,
            client_role,
            functions,
            state_machines,
            preflight,
            initialization,
            hsm_fleet,
            key_store,
            key_store_condition,
            refs: ClusterRefs {
                cluster_id,
                cluster_arn,
                cluster_security_group_id: cluster_sg,
                admin_password_secret_arn: admin_arn,
                trust_anchor_secret_arn: anchor_arn,
            },
        }
    }
}

/// kms:Decrypt through Secrets Manager on the account's keys: the secrets given to a restored
/// deployment may be encrypted with the customer-managed key of the stack that made the backup.
fn given_secrets_key_use() -> Statement {
    iam::grant_key_use_via(
        Value::from_expr(iam::arn("kms", "key/*")),
        "secretsmanager",
        &["kms:Decrypt"],
    )
}

/// What the workflows' state machines are built from.
struct WorkflowEnv<'a> {
    substitutions: &'a IndexMap<&'a str, (Value<String>, bool)>,
    /// The key store function's ARN, when the stack may have one.
    keystore_function: Option<Value<String>>,
    key_store_condition: Option<ConditionHandle>,
    key_arn: Option<Value<String>>,
    log_retention_days: u32,
}

/// `Workflows/<Name>/{LogGroup,Role,StateMachine}` for each definition.
fn build_workflows(
    me: &mut Scope<'_>,
    definitions: Vec<(&str, StateMachineDefinition)>,
    env: &WorkflowEnv<'_>,
) -> IndexMap<String, Handle<StateMachine>> {
    let mut wf_scope = me.construct("Workflows", "constructs.cloudhsm.Workflows");
    let mut state_machines: IndexMap<String, Handle<StateMachine>> = IndexMap::new();
    let ks_fn = || {
        env.keystore_function
            .clone()
            .expect("the key store workflow exists only with its function")
    };
    for (name, def) in definitions {
        let mut w = wf_scope.construct(name, "constructs.cloudhsm.Workflow");
        if let Err(e) = def.validate() {
            w.error(format!("the `{name}` workflow definition is invalid: {e}"));
        }
        let mut subs: IndexMap<String, Value<String>> = IndexMap::new();
        let mut invoked: Vec<Value<String>> = Vec::new();
        for var in def.substitution_variables() {
            match env.substitutions.get(var.as_str()) {
                    Some((v, is_keystore)) => {
                        if *is_keystore && name == "KeyStore" {
                            // The key store workflow exists only with its function: no Fn::If.
                            subs.insert(var.clone(), ks_fn());
                            invoked.push(ks_fn());
                            continue;
                        }
                        subs.insert(var.clone(), v.clone());
                        if !*is_keystore {
                            invoked.push(v.clone());
                        } else if env.keystore_function.is_none() {
                            // Nothing to invoke.
                        } else if let Some(c) = &env.key_store_condition {
                            // Other workflows may call the key store function only when it exists.
                            invoked.push(c.if_or_none(ks_fn()));
                        } else {
                            invoked.push(v.clone());
                        }
                    }
                    None => w.error(format!(
                        "the `{name}` workflow uses `${{{var}}}`, which the stack does not supply; use one of {}",
                        env.substitutions.keys().map(|k| format!("${{{k}}}")).collect::<Vec<_>>().join(", ")
                    )),
                }
        }
        let log = w.resource(
            "LogGroup",
            LogGroup {
                retention_in_days: Some(i64::from(env.log_retention_days).into()),
                kms_key_id: env.key_arn.clone(),
                ..Default::default()
            },
        );
        w.set_removal_policy(&log, RemovalPolicy::Destroy);
        let mut statements = Vec::new();
        if !invoked.is_empty() {
            statements.push(iam::grant_invoke(&invoked));
        }
        statements.push(
                Statement::allow(&[
                    "logs:CreateLogDelivery",
                    "logs:GetLogDelivery",
                    "logs:UpdateLogDelivery",
                    "logs:DeleteLogDelivery",
                    "logs:ListLogDeliveries",
                    "logs:PutResourcePolicy",
                    "logs:DescribeResourcePolicies",
                    "logs:DescribeLogGroups",
                ])
                .on_any_resource("CloudWatch Logs delivery actions used by Step Functions logging have no resource-level permissions"),
            );
        let role = w.resource(
            "Role",
            Role {
                assume_role_policy_document: Some(
                    PolicyDocument::assume_role("states.amazonaws.com").to_expr(),
                ),
                description: Some(format!("CloudHSM deployment: `{name}` workflow").into()),
                policies: Some(vec![InlinePolicy {
                    policy_name: Some("Workflow".into()),
                    policy_document: Some(PolicyDocument::new(statements).to_expr()),
                }]),
                ..Default::default()
            },
        );
        let sm = w.resource(
            "StateMachine",
            StateMachine {
                definition: Some(def.to_json()),
                definition_substitutions: if subs.is_empty() { None } else { Some(subs) },
                role_arn: Some(role.get_att("Arn")),
                state_machine_type: Some("STANDARD".into()),
                logging_configuration: Some(StateMachineLogging {
                    level: Some("ERROR".into()),
                    include_execution_data: Some(false.into()),
                    destinations: Some(vec![LogDestination {
                        cloud_watch_logs_log_group: Some(CloudWatchLogsLogGroup {
                            log_group_arn: Some(log.get_att("Arn")),
                        }),
                    }]),
                }),
                tags: Some(vec![StateMachineTag {
                    key: Some("CloudHsmStack".into()),
                    value: Some(Value::pseudo(Pseudo::StackName)),
                }]),
                ..Default::default()
            },
        );
        if name == "KeyStore" {
            if let Some(c) = &env.key_store_condition {
                w.set_condition(&log, c);
                w.set_condition(&role, c);
                w.set_condition(&sm, c);
            }
        }
        state_machines.insert(name.to_string(), sm);
    }
    state_machines
}

/// The cluster function's extra permissions when it restores a cluster from a backup:
/// CreateCluster creates the cluster's security group and the CloudHSM service-linked role with
/// the caller's permissions (aws-behaviour.md "Cluster security group", "Service-linked role"),
/// DeleteCluster deletes the group.
fn restore_statements() -> Vec<Statement> {
    vec![
        Statement::allow(&["cloudhsm:CreateCluster"]).on_any_resource(
            "cloudhsm:CreateCluster creates the cluster (no ARN before it exists); whether AWS also authorizes it on the source backup is undocumented in our references",
        ),
        Statement::allow(&["ec2:CreateSecurityGroup"])
            .on(iam::arn("ec2", "security-group/*"))
            .on(iam::arn("ec2", "vpc/*")),
        Statement::allow(&[
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:DeleteSecurityGroup",
            "ec2:CreateTags",
        ])
        .on(iam::arn("ec2", "security-group/*")),
        Statement::allow(&["ec2:DescribeSecurityGroups", "ec2:DescribeVpcs"])
            .on_any_resource("ec2:Describe* actions have no resource-level permissions"),
        Statement::allow(&["iam:CreateServiceLinkedRole"])
            .on(Expr::sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/cloudhsm.amazonaws.com/AWSServiceRoleForCloudHSM"))
            .condition("StringEquals", "iam:AWSServiceName", Expr::str("cloudhsm.amazonaws.com")),
    ]
}

/// Appends `Fn::If [condition, statement, AWS::NoValue]` to a rendered policy's `Statement` list.
fn with_conditional_statements(doc: Expr, conditional: &[(ConditionHandle, Statement)]) -> Expr {
    let Expr::Object(mut m) = doc else {
        return doc;
    };
    if let Some(Expr::List(list)) = m.get_mut("Statement") {
        for (c, s) in conditional {
            list.push(Expr::if_(c.name(), s.to_expr(), Expr::NoValue));
        }
    }
    Expr::Object(m)
}

fn group_id(group: &str) -> String {
    match group {
        "keystore" => "KeyStore".into(),
        g => {
            let mut c = g.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        }
    }
}

/// Seconds each function may run (steps are short; waits happen in Step Functions).
fn function_timeout(group: &str) -> i64 {
    match group {
        "preflight" => 120,
        "cluster" | "keystore" => 300,
        _ => 60,
    }
}

/// A customer-managed key for secrets, logs and the client's volume; the key policy delegates to
/// the account's IAM policies and lets CloudWatch Logs use it for this account's log groups.
fn customer_managed_key(scope: &mut Scope<'_>) -> Handle<KmsKey> {
    let policy = PolicyDocument::new(vec![
        Statement::allow(&["kms:*"])
            .sid("AccountAdministers")
            .principal(Principal::account_root())
            .on_any_resource("in a key policy `*` means this key"),
        Statement::allow(&[
            "kms:Encrypt*",
            "kms:Decrypt*",
            "kms:ReEncrypt*",
            "kms:GenerateDataKey*",
            "kms:Describe*",
        ])
        .sid("CloudWatchLogs")
        .principal(Principal::Service("logs.amazonaws.com".into()))
        .on_any_resource("in a key policy `*` means this key")
        .condition(
            "ArnLike",
            "kms:EncryptionContext:aws:logs:arn",
            Expr::sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"),
        ),
    ]);
    let key = scope.resource(
        "Key",
        KmsKey {
            description: Some(Value::sub(
                "CloudHSM deployment ${AWS::StackName}: secrets, logs, client volume",
            )),
            enable_key_rotation: Some(true.into()),
            key_policy: Some(policy.to_expr()),
            pending_window_in_days: Some(30.into()),
            tags: Some(vec![Tag::new(
                "CloudHsmStack",
                Value::pseudo(Pseudo::StackName),
            )]),
        },
    );
    scope.set_removal_policy(&key, RemovalPolicy::Retain);
    scope.resource(
        "KeyAlias",
        KmsAlias {
            alias_name: Some(Value::sub("alias/${AWS::StackName}-cloudhsm")),
            target_key_id: Some(key.reference()),
        },
    );
    key
}

/// Installs the CloudHSM CLI (Client SDK 5). No secrets and no cluster specifics: the SSM
/// documents configure the CLI and fetch secrets on the instance when they run.
pub fn client_user_data() -> String {
    [
        "#!/bin/bash",
        "# CloudHSM administration client: install the CloudHSM CLI. Holds no secrets.",
        "set -euo pipefail",
        "arch=$(uname -m)",
        "for attempt in 1 2 3 4 5; do",
        "  dnf install -y \"https://s3.amazonaws.com/cloudhsmv2-software/CloudHsmClient/Amzn2023/cloudhsm-cli-latest.amzn2023.${arch}.rpm\" && break",
        "  sleep $((attempt * 10))",
        "done",
        "test -x /opt/cloudhsm/bin/cloudhsm-cli",
        "",
    ]
    .join("\n")
}

/// Synth-time checks of the props, on every value known at synth (literals and parameter
/// defaults). Each message says what is wrong and how to fix it.
fn validate_props(scope: &mut Scope<'_>, p: &CloudHsmDeploymentProps) {
    let i = &p.inputs;
    let known = |s: &Scope<'_>, e: &Expr| s.known_value(e);
    let subnets: Option<Vec<String>> = known(scope, i.subnet_ids.expr()).and_then(|v| {
        v.as_array().map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
    });
    let key_store = match &i.key_store {
        KeyStore::Disabled => Some(false),
        KeyStore::Enabled => Some(true),
        KeyStore::When { flag, .. } => {
            known(scope, flag.expr()).and_then(|v| v.as_str().map(|s| s == "true"))
        }
    };
    let hsms = known(scope, i.hsms_per_subnet.expr()).and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    });
    if let Some(s) = &subnets {
        if s.is_empty() {
            scope.error("SubnetIds is empty: give at least one subnet (one per Availability Zone), e.g. --subnet-ids subnet-0123456789abcdef0,subnet-…");
        }
        if s.len() > 10 {
            scope.error(format!(
                "SubnetIds has {} subnets; CloudHSM accepts at most 10 (one per Availability Zone)",
                s.len()
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for id in s {
            if !is_aws_id(id, "subnet-") {
                scope.error(format!("SubnetIds: `{id}` is not a subnet id (expected `subnet-` and 8 to 17 hex digits)"));
            }
            if !seen.insert(id) {
                scope.error(format!(
                    "SubnetIds lists `{id}` twice; give each subnet once"
                ));
            }
        }
        if key_store == Some(true) && s.len() < 2 {
            scope.error(format!(
                "the key store needs HSMs in at least 2 Availability Zones but SubnetIds has {}: give 2 or more subnets, or disable the key store (EnableKeyStore=false)",
                s.len()
            ));
        }
    }
    if let Some(n) = hsms {
        if n < 0 {
            scope.error(format!(
                "HsmsPerSubnet is {n}: it cannot be negative (0 keeps the cluster without HSMs)"
            ));
        } else if n > 28 {
            scope.error(format!(
                "HsmsPerSubnet is {n}: the CloudHSM quota is 28 HSMs per cluster; use 28 or fewer"
            ));
        }
        if key_store == Some(true) && n == 0 {
            scope.error("the key store needs at least one HSM in each of 2 subnets but HsmsPerSubnet is 0: set HsmsPerSubnet ≥ 1 or disable the key store");
        }
    }
    if let Some(v) = known(scope, i.vpc_id.expr()).and_then(|v| v.as_str().map(str::to_string)) {
        if !is_aws_id(&v, "vpc-") {
            scope.error(format!(
                "VpcId `{v}` is not a VPC id (expected `vpc-` and 8 to 17 hex digits)"
            ));
        }
    }
    if let Some(v) =
        known(scope, i.client_subnet_id.expr()).and_then(|v| v.as_str().map(str::to_string))
    {
        if !is_aws_id(&v, "subnet-") {
            scope.error(format!("ClientSubnetId `{v}` is not a subnet id (expected `subnet-` and 8 to 17 hex digits)"));
        }
    }
    if let Some(days) = known(scope, i.backup_retention_days.expr()).and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    }) {
        if !(7..=379).contains(&days) {
            scope.error(format!("BackupRetentionDays is {days}: CloudHSM keeps backups 7 to 379 days; pick a value in that range"));
        }
    }
    if let Some(t) = known(scope, i.hsm_type.expr()).and_then(|v| v.as_str().map(str::to_string)) {
        if t != "hsm2m.medium" && t != "hsm1.medium" {
            scope.error(format!(
                "HsmType `{t}` is not a CloudHSM type; use hsm2m.medium"
            ));
        }
    }
    if let Some(m) =
        known(scope, i.cluster_mode.expr()).and_then(|v| v.as_str().map(str::to_string))
    {
        if m != "FIPS" && m != "NON_FIPS" {
            scope.error(format!(
                "ClusterMode `{m}` is invalid; use FIPS or NON_FIPS"
            ));
        }
    }
    if !LOG_RETENTION_DAYS.contains(&p.log_retention_days) {
        scope.error(format!(
            "log_retention_days {} is not a CloudWatch Logs retention; use one of {}",
            p.log_retention_days,
            LOG_RETENTION_DAYS
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Pki::AcmPrivateCa { arn } = &p.pki {
        if let Some(a) = arn.as_lit().and_then(|v| v.as_str()) {
            if !a.starts_with("arn:")
                || !a.contains(":acm-pca:")
                || !a.contains(":certificate-authority/")
            {
                scope.error(format!("AcmPrivateCa arn `{a}` is not an ACM Private CA ARN (arn:<partition>:acm-pca:<region>:<account>:certificate-authority/<id>)"));
            }
        }
    }
    if let Pki::External {
        signed_certificate,
        trust_anchor,
    } = &p.pki
    {
        let text =
            |v: &Value<String>| known(scope, v.expr()).and_then(|j| j.as_str().map(str::to_string));
        if let (Some(c), Some(a)) = (text(signed_certificate), text(trust_anchor)) {
            if c.is_empty() != a.is_empty() {
                scope.error("External PKI: give both the signed certificate and the trust anchor (PEM) to finish initialization, or neither for the first deploy (which publishes the CSR in the ClusterCsr attribute)");
            }
        }
    }
    if let ClusterSource::Backup {
        backup_id,
        admin_password_secret_arn,
        trust_anchor_secret_arn,
    } = &p.source
    {
        let text = |s: &Scope<'_>, v: &Value<String>| {
            known(s, v.expr()).and_then(|j| j.as_str().map(str::to_string))
        };
        if let Some(b) = text(scope, backup_id) {
            if !is_backup_id(&b) {
                scope.error(format!("the backup id `{b}` is not a CloudHSM backup id (backup- and 11 to 16 characters of [2-7a-zA-Z]); list yours with `aws cloudhsmv2 describe-backups`"));
            }
        }
        for (name, v) in [
            ("AdminPasswordSecretArn", admin_password_secret_arn),
            ("TrustAnchorSecretArn", trust_anchor_secret_arn),
        ] {
            if let Some(a) = text(scope, v) {
                if !is_secret_arn(&a) {
                    scope.error(format!("{name} `{a}` is not a Secrets Manager secret ARN (arn:<partition>:secretsmanager:<region>:<account>:secret:<name>)"));
                }
            }
        }
        if p.pki != Pki::BuiltIn {
            scope.error("a cluster restored from a backup is already initialized: the PKI choice has no effect; leave `pki` at its default");
        }
    }
    if p.code.sha256.len() != 64 || !p.code.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
        scope.error(format!(
            "the Lambda asset hash `{}` is not a SHA-256 hex digest",
            p.code.sha256
        ));
    }
}

fn is_aws_id(v: &str, prefix: &str) -> bool {
    v.strip_prefix(prefix)
        .is_some_and(|h| (8..=17).contains(&h.len()) && h.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_backup_id(v: &str) -> bool {
    v.strip_prefix("backup-").is_some_and(|r| {
        (11..=16).contains(&r.len())
            && r.chars()
                .all(|c| c.is_ascii_alphabetic() || ('2'..='7').contains(&c))
    })
}

fn is_secret_arn(v: &str) -> bool {
    let parts: Vec<&str> = v.splitn(7, ':').collect();
    parts.len() == 7
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "secretsmanager"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5] == "secret"
        && !parts[6].is_empty()
}
