//! AWS clients shared by all steps of one process, and a service-independent view of a cluster.

use std::collections::BTreeMap;

use aws_sdk_cloudhsmv2 as hsm;

use crate::error::{aws_err, StepResult};

#[derive(Clone, Debug)]
pub struct Clients {
    pub hsm: hsm::Client,
    pub kms: aws_sdk_kms::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub pca: aws_sdk_acmpca::Client,
}

impl Clients {
    pub fn from_conf(conf: &aws_config::SdkConfig) -> Self {
        Clients {
            hsm: hsm::Client::new(conf),
            kms: aws_sdk_kms::Client::new(conf),
            secrets: aws_sdk_secretsmanager::Client::new(conf),
            ssm: aws_sdk_ssm::Client::new(conf),
            ec2: aws_sdk_ec2::Client::new(conf),
            sfn: aws_sdk_sfn::Client::new(conf),
            pca: aws_sdk_acmpca::Client::new(conf),
        }
    }
}

/// One HSM as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmView {
    pub id: String,
    pub az: String,
    pub eni_id: Option<String>,
    pub eni_ip: Option<String>,
    /// CREATE_IN_PROGRESS, ACTIVE, DEGRADED, DELETE_IN_PROGRESS, DELETED
    pub state: String,
}

/// A cluster as the steps see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterView {
    pub id: String,
    pub state: String,
    pub state_message: String,
    pub vpc_id: String,
    /// AZ → subnet
    pub subnet_mapping: BTreeMap<String, String>,
    pub hsms: Vec<HsmView>,
    pub csr: Option<String>,
    /// The security group CloudHSM created for the HSM ENIs.
    pub security_group: Option<String>,
}

impl ClusterView {
    pub fn from_sdk(c: &hsm::types::Cluster) -> Self {
        ClusterView {
            id: c.cluster_id().unwrap_or_default().to_string(),
            state: c
                .state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            state_message: c.state_message().unwrap_or_default().to_string(),
            vpc_id: c.vpc_id().unwrap_or_default().to_string(),
            subnet_mapping: c
                .subnet_mapping()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            hsms: c
                .hsms()
                .iter()
                .map(|h| HsmView {
                    id: h.hsm_id().to_string(),
                    az: h.availability_zone().unwrap_or_default().to_string(),
                    eni_id: h.eni_id().map(str::to_string),
                    eni_ip: h.eni_ip().map(str::to_string),
                    state: h
                        .state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                })
                .collect(),
            csr: c
                .certificates()
                .and_then(|c| c.cluster_csr())
                .filter(|s| !s.trim().is_empty())
                .map(str::to_string),
            security_group: c.security_group().map(str::to_string),
        }
    }

    /// HSMs that exist and are not on their way out.
    pub fn live_hsms(&self) -> impl Iterator<Item = &HsmView> {
        self.hsms
            .iter()
            .filter(|h| h.state != "DELETE_IN_PROGRESS" && h.state != "DELETED")
    }

    /// The AZ of a subnet of this cluster.
    pub fn az_of_subnet(&self, subnet: &str) -> Option<&str> {
        self.subnet_mapping
            .iter()
            .find(|(_, s)| s.as_str() == subnet)
            .map(|(az, _)| az.as_str())
    }

    pub fn is_initialized(&self) -> bool {
        matches!(
            self.state.as_str(),
            "INITIALIZE_IN_PROGRESS" | "INITIALIZED" | "ACTIVE"
        )
    }
}

/// DescribeClusters for one id. `None` when the cluster does not exist or is DELETED
/// (DescribeClusters has no ResourceNotFound; an unknown id gives an empty list — aws-behaviour.md 1.1).
pub async fn describe_cluster(
    c: &hsm::Client,
    cluster_id: &str,
) -> StepResult<Option<ClusterView>> {
    let out = c
        .describe_clusters()
        .filters("clusterIds", vec![cluster_id.to_string()])
        .send()
        .await
        .map_err(|e| aws_err("cloudhsmv2:DescribeClusters", e))?;
    Ok(out
        .clusters()
        .iter()
        .map(ClusterView::from_sdk)
        .find(|v| v.id == cluster_id && v.state != "DELETED"))
}
