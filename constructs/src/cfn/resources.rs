//! Typed properties (L1) for the resource types the constructs use.
//!
//! Field names are the CloudFormation property names in snake_case; `rename_all = "PascalCase"`
//! gives the template names back. Every field is optional here: cfn-lint checks property names,
//! types and required properties over every synthesized template, and
//! `tests/schema_conformance.rs` checks types and attributes against the registry schemas.

use indexmap::IndexMap;
use serde::Serialize;

use super::expr::{Expr, Value};

/// A typed resource property set.
pub trait ResourceProps: Serialize {
    /// The CloudFormation type, e.g. `AWS::EC2::Instance`.
    const TYPE: &'static str;
    /// Attributes `Fn::GetAtt` accepts (the first is what typed handles use most).
    const ATTRIBUTES: &'static [&'static str];
}

macro_rules! props {
    ($(#[$m:meta])* $name:ident $(: $ty_name:literal, [$($attr:literal),*])? { $( $(#[$fm:meta])* $field:ident : $ty:ty ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize)]
        #[serde(rename_all = "PascalCase")]
        pub struct $name {
            $( $(#[$fm])* #[serde(skip_serializing_if = "Option::is_none")] pub $field: Option<$ty>, )*
        }
        $(
            impl ResourceProps for $name {
                const TYPE: &'static str = $ty_name;
                const ATTRIBUTES: &'static [&'static str] = &[$($attr),*];
            }
        )?
    };
}

props!(
    /// A resource tag.
    Tag {
        key: Value<String>,
        value: Value<String>,
    }
);

impl Tag {
    pub fn new(key: impl Into<Value<String>>, value: impl Into<Value<String>>) -> Tag {
        Tag {
            key: Some(key.into()),
            value: Some(value.into()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CloudHSM

props!(
    /// `AWS::CloudHSM::Cluster`. `Ref` returns the cluster ARN; `GetAtt` gives `ClusterId`,
    /// `SecurityGroup`, `VpcId`, `State`, `SubnetMapping`. SubnetIds, Mode, HsmType and NetworkType
    /// are create-only: changing them replaces the cluster.
    CloudHsmCluster: "AWS::CloudHSM::Cluster", ["ClusterId", "SecurityGroup", "VpcId", "State", "Arn", "SubnetMapping"] {
        hsm_type: Value<String>,
        mode: Value<String>,
        network_type: Value<String>,
        subnet_ids: Value<Vec<String>>,
        backup_retention_policy: BackupRetentionPolicy,
        tags: Vec<Tag>,
    }
);

props!(
    /// `BackupRetentionPolicy` (`Type: DAYS`, `Value`: 7–379 as a string).
    BackupRetentionPolicy {
        r#type: Value<String>,
        value: Value<String>,
    }
);

// ---------------------------------------------------------------------------------------------
// EC2

props!(
    /// `AWS::EC2::SecurityGroup`; `GetAtt GroupId`.
    SecurityGroup: "AWS::EC2::SecurityGroup", ["GroupId", "VpcId"] {
        group_description: Value<String>,
        vpc_id: Value<String>,
        security_group_egress: Vec<SecurityGroupRule>,
        security_group_ingress: Vec<SecurityGroupRule>,
        tags: Vec<Tag>,
    }
);

props!(
    /// An inline ingress/egress rule of a security group.
    SecurityGroupRule {
        ip_protocol: Value<String>,
        from_port: Value<i64>,
        to_port: Value<i64>,
        cidr_ip: Value<String>,
        destination_security_group_id: Value<String>,
        source_security_group_id: Value<String>,
        description: Value<String>,
    }
);

props!(
    /// `AWS::EC2::SecurityGroupIngress` (a rule added to a group owned elsewhere).
    SecurityGroupIngress: "AWS::EC2::SecurityGroupIngress", ["Id"] {
        group_id: Value<String>,
        ip_protocol: Value<String>,
        from_port: Value<i64>,
        to_port: Value<i64>,
        source_security_group_id: Value<String>,
        cidr_ip: Value<String>,
        description: Value<String>,
    }
);

props!(
    /// `AWS::EC2::SecurityGroupEgress`.
    SecurityGroupEgress: "AWS::EC2::SecurityGroupEgress", ["Id"] {
        group_id: Value<String>,
        ip_protocol: Value<String>,
        from_port: Value<i64>,
        to_port: Value<i64>,
        destination_security_group_id: Value<String>,
        cidr_ip: Value<String>,
        description: Value<String>,
    }
);

props!(
    /// `AWS::EC2::Instance`; `Ref` is the instance id.
    Instance: "AWS::EC2::Instance", ["InstanceId", "PrivateIp", "AvailabilityZone", "VpcId"] {
        image_id: Value<String>,
        instance_type: Value<String>,
        iam_instance_profile: Value<String>,
        network_interfaces: Vec<InstanceNetworkInterface>,
        subnet_id: Value<String>,
        security_group_ids: Value<Vec<String>>,
        metadata_options: MetadataOptions,
        block_device_mappings: Vec<BlockDeviceMapping>,
        user_data: Value<String>,
        monitoring: Value<bool>,
        disable_api_termination: Value<bool>,
        propagate_tags_to_volume_on_creation: Value<bool>,
        tags: Vec<Tag>,
    }
);

props!(
    /// Instance metadata options (`HttpTokens: required` = IMDSv2 only).
    MetadataOptions {
        http_endpoint: Value<String>,
        http_tokens: Value<String>,
        http_put_response_hop_limit: Value<i64>,
        instance_metadata_tags: Value<String>,
    }
);

props!(
    /// A network interface declared on the instance.
    InstanceNetworkInterface {
        device_index: Value<String>,
        subnet_id: Value<String>,
        group_set: Value<Vec<String>>,
        associate_public_ip_address: Value<bool>,
        delete_on_termination: Value<bool>,
        description: Value<String>,
    }
);

props!(
    /// A block device mapping.
    BlockDeviceMapping {
        device_name: Value<String>,
        ebs: Ebs,
    }
);

props!(
    /// EBS settings of a block device.
    Ebs {
        volume_size: Value<i64>,
        volume_type: Value<String>,
        encrypted: Value<bool>,
        kms_key_id: Value<String>,
        delete_on_termination: Value<bool>,
    }
);

// ---------------------------------------------------------------------------------------------
// IAM

props!(
    /// `AWS::IAM::Role`; `GetAtt Arn`.
    Role: "AWS::IAM::Role", ["Arn", "RoleId"] {
        assume_role_policy_document: Expr,
        description: Value<String>,
        managed_policy_arns: Vec<Value<String>>,
        policies: Vec<InlinePolicy>,
        permissions_boundary: Value<String>,
        max_session_duration: Value<i64>,
        tags: Vec<Tag>,
    }
);

props!(
    /// A policy embedded in a role.
    InlinePolicy {
        policy_name: Value<String>,
        policy_document: Expr,
    }
);

props!(
    /// `AWS::IAM::Policy` attached to roles.
    Policy: "AWS::IAM::Policy", ["Id"] {
        policy_name: Value<String>,
        policy_document: Expr,
        roles: Vec<Value<String>>,
    }
);

props!(
    /// `AWS::IAM::InstanceProfile`; `Ref` is its name.
    InstanceProfile: "AWS::IAM::InstanceProfile", ["Arn"] {
        roles: Vec<Value<String>>,
        path: Value<String>,
    }
);

// ---------------------------------------------------------------------------------------------
// Lambda

props!(
    /// `AWS::Lambda::Function`; `GetAtt Arn`.
    Function: "AWS::Lambda::Function", ["Arn"] {
        description: Value<String>,
        code: FunctionCode,
        handler: Value<String>,
        runtime: Value<String>,
        architectures: Vec<Value<String>>,
        role: Value<String>,
        timeout: Value<i64>,
        memory_size: Value<i64>,
        environment: FunctionEnvironment,
        logging_config: LoggingConfig,
        reserved_concurrent_executions: Value<i64>,
        tags: Vec<Tag>,
    }
);

props!(
    /// Code location.
    FunctionCode {
        s3_bucket: Value<String>,
        s3_key: Value<String>,
    }
);

props!(
    /// Environment variables (never secrets).
    FunctionEnvironment {
        variables: IndexMap<String, Value<String>>,
    }
);

props!(
    /// Where the function logs go.
    LoggingConfig {
        log_group: Value<String>,
        log_format: Value<String>,
        application_log_level: Value<String>,
        system_log_level: Value<String>,
    }
);

props!(
    /// `AWS::Lambda::Permission`.
    Permission: "AWS::Lambda::Permission", ["Id"] {
        action: Value<String>,
        function_name: Value<String>,
        principal: Value<String>,
        source_arn: Value<String>,
        source_account: Value<String>,
    }
);

// ---------------------------------------------------------------------------------------------
// Step Functions

props!(
    /// `AWS::StepFunctions::StateMachine`; `Ref` is the ARN, `GetAtt Name`.
    StateMachine: "AWS::StepFunctions::StateMachine", ["Arn", "Name"] {
        definition: serde_json::Value,
        definition_substitutions: IndexMap<String, Value<String>>,
        role_arn: Value<String>,
        state_machine_type: Value<String>,
        logging_configuration: StateMachineLogging,
        tracing_configuration: TracingConfiguration,
        tags: Vec<StateMachineTag>,
    }
);

props!(
    /// State machine tags use `Key`/`Value` too.
    StateMachineTag {
        key: Value<String>,
        value: Value<String>,
    }
);

props!(
    /// Execution logging.
    StateMachineLogging {
        level: Value<String>,
        include_execution_data: Value<bool>,
        destinations: Vec<LogDestination>,
    }
);

props!(
    /// A log destination.
    LogDestination {
        cloud_watch_logs_log_group: CloudWatchLogsLogGroup,
    }
);

props!(
    /// A log group by ARN.
    CloudWatchLogsLogGroup {
        log_group_arn: Value<String>,
    }
);

props!(
    /// X-Ray tracing.
    TracingConfiguration {
        enabled: Value<bool>,
    }
);

// ---------------------------------------------------------------------------------------------
// Secrets Manager, KMS, Logs, SSM

props!(
    /// `AWS::SecretsManager::Secret`; `Ref` is the ARN.
    Secret: "AWS::SecretsManager::Secret", ["Id"] {
        name: Value<String>,
        description: Value<String>,
        generate_secret_string: GenerateSecretString,
        secret_string: Value<String>,
        kms_key_id: Value<String>,
        tags: Vec<Tag>,
    }
);

props!(
    /// Generated secret value.
    GenerateSecretString {
        password_length: Value<i64>,
        exclude_punctuation: Value<bool>,
        include_space: Value<bool>,
        require_each_included_type: Value<bool>,
        exclude_characters: Value<String>,
    }
);

props!(
    /// `AWS::KMS::Key`; `GetAtt Arn`, `Ref` is the key id.
    KmsKey: "AWS::KMS::Key", ["Arn", "KeyId"] {
        description: Value<String>,
        enable_key_rotation: Value<bool>,
        key_policy: Expr,
        pending_window_in_days: Value<i64>,
        tags: Vec<Tag>,
    }
);

props!(
    /// `AWS::KMS::Alias`.
    KmsAlias: "AWS::KMS::Alias", [] {
        alias_name: Value<String>,
        target_key_id: Value<String>,
    }
);

props!(
    /// `AWS::Logs::LogGroup`; `Ref` is the name, `GetAtt Arn`.
    LogGroup: "AWS::Logs::LogGroup", ["Arn"] {
        log_group_name: Value<String>,
        retention_in_days: Value<i64>,
        kms_key_id: Value<String>,
        tags: Vec<Tag>,
    }
);

props!(
    /// `AWS::SSM::Document`; `Ref` is the document name.
    SsmDocument: "AWS::SSM::Document", [] {
        content: serde_json::Value,
        document_type: Value<String>,
        document_format: Value<String>,
        target_type: Value<String>,
        update_method: Value<String>,
        tags: Vec<Tag>,
    }
);

/// A custom resource (`Custom::Name`): `ServiceToken`, `ServiceTimeout` and free-form properties
/// (CloudFormation delivers every value to the handler as a string).
#[derive(Debug, Clone, PartialEq)]
pub struct CustomResource {
    pub resource_type: String,
    pub service_token: Value<String>,
    /// Seconds CloudFormation waits for the response (1–3600).
    pub service_timeout: Option<u32>,
    pub properties: IndexMap<String, Expr>,
}

impl CustomResource {
    pub fn new(resource_type: impl Into<String>, service_token: Value<String>) -> Self {
        CustomResource {
            resource_type: resource_type.into(),
            service_token,
            service_timeout: None,
            properties: IndexMap::new(),
        }
    }
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.service_timeout = Some(seconds);
        self
    }
    pub fn property(mut self, name: impl Into<String>, value: impl Into<Expr>) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }

    pub fn render(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("ServiceToken".into(), self.service_token.expr().to_json());
        if let Some(t) = self.service_timeout {
            // CloudFormation documents ServiceTimeout as a string or number; a string passes
            // every validator.
            m.insert(
                "ServiceTimeout".into(),
                serde_json::Value::String(t.to_string()),
            );
        }
        for (k, v) in &self.properties {
            m.insert(k.clone(), v.to_json());
        }
        serde_json::Value::Object(m)
    }
}
