//! Signing the cluster CSR with the customer's ACM Private CA.
//!
//! The CA must be an ACTIVE root CA: InitializeCluster takes the issuer of the cluster certificate
//! as the trust anchor and requires it to be a self-signed CA certificate (aws-behaviour.md 1.4),
//! so a subordinate CA's certificate cannot be the anchor. The CA is the customer's; this stack
//! never creates one (a private CA bills monthly for as long as it exists, prior-art.md).
//!
//! Idempotent: IssueCertificate gets a token derived from the cluster and its CSR, so a retried
//! step gets the same certificate back instead of a second one.

use aws_sdk_acmpca as pca;
use aws_sdk_acmpca::types::{
    CertificateAuthorityStatus, CertificateAuthorityType, KeyAlgorithm, SigningAlgorithm, Validity,
    ValidityPeriodType,
};
use tracing::info;

use crate::error::{aws_err, AwsFailure, StepError, StepResult};
use crate::pki::{self, SignedPair};

/// Validity of the cluster certificate.
const VALIDITY_DAYS: i64 = 3650;

/// IssueCertificate's idempotency token (at most 36 characters): the cluster id and a hash of the
/// CSR, so a new CSR (a re-created first HSM) gets a new certificate.
pub fn idempotency_token(cluster_id: &str, csr: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a
    for b in csr.trim().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let id: String = cluster_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let id = &id[..id.len().min(19)];
    format!("{id}-{h:016x}")
}

fn signing_algorithm(key: &KeyAlgorithm) -> StepResult<SigningAlgorithm> {
    Ok(match key {
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            SigningAlgorithm::Sha256Withrsa
        }
        KeyAlgorithm::EcPrime256v1 => SigningAlgorithm::Sha256Withecdsa,
        KeyAlgorithm::EcSecp384r1 => SigningAlgorithm::Sha384Withecdsa,
        KeyAlgorithm::EcSecp521r1 => SigningAlgorithm::Sha512Withecdsa,
        other => {
            return Err(StepError::invalid(format!(
                "the ACM Private CA's key algorithm {} cannot sign a CloudHSM cluster certificate; \
                 use a CA with an RSA or EC (P-256/P-384/P-521) key",
                other.as_str()
            )))
        }
    })
}

/// The last PEM certificate of a chain (ACM PCA orders chains from the issuer up to the root).
fn last_certificate(chain: &str) -> Option<String> {
    let start = chain.rfind("-----BEGIN CERTIFICATE-----")?;
    let end_marker = "-----END CERTIFICATE-----";
    let end = chain[start..].find(end_marker)? + start + end_marker.len();
    Some(format!("{}\n", &chain[start..end]))
}

pub async fn sign(
    client: &pca::Client,
    ca_arn: &str,
    csr: &str,
    cluster_id: &str,
) -> StepResult<SignedPair> {
    let ca = client
        .describe_certificate_authority()
        .certificate_authority_arn(ca_arn)
        .send()
        .await
        .map_err(|e| aws_err("acm-pca:DescribeCertificateAuthority", e))?;
    let ca = ca
        .certificate_authority()
        .ok_or_else(|| StepError::invalid(format!("ACM Private CA {ca_arn} was not found")))?;
    let status = ca.status().map(|s| s.as_str()).unwrap_or("unknown");
    if ca.status() != Some(&CertificateAuthorityStatus::Active) {
        return Err(StepError::invalid(format!(
            "ACM Private CA {ca_arn} is {status}, not ACTIVE: install its CA certificate (or enable it) \
             before deploying, or choose PkiMode BuiltIn or External"
        )));
    }
    if ca.r#type() != Some(&CertificateAuthorityType::Root) {
        return Err(StepError::invalid(format!(
            "ACM Private CA {ca_arn} is a subordinate CA; CloudHSM's trust anchor must be the \
             self-signed certificate of the CA that signs the cluster certificate, so use a root CA"
        )));
    }
    let key = ca
        .certificate_authority_configuration()
        .map(|c| c.key_algorithm().clone())
        .ok_or_else(|| {
            StepError::invalid(format!("ACM Private CA {ca_arn} has no configuration"))
        })?;

    let issued = client
        .issue_certificate()
        .certificate_authority_arn(ca_arn)
        .csr(aws_sdk_acmpca::primitives::Blob::new(csr.trim().as_bytes()))
        .signing_algorithm(signing_algorithm(&key)?)
        .validity(
            Validity::builder()
                .value(VALIDITY_DAYS)
                .r#type(ValidityPeriodType::Days)
                .build()
                .map_err(|e| StepError::invalid(e.to_string()))?,
        )
        .idempotency_token(idempotency_token(cluster_id, csr))
        .send()
        .await
        .map_err(|e| aws_err("acm-pca:IssueCertificate", e))?;
    let cert_arn = issued.certificate_arn().unwrap_or_default().to_string();

    let got = client
        .get_certificate()
        .certificate_authority_arn(ca_arn)
        .certificate_arn(&cert_arn)
        .send()
        .await
        .map_err(|e| {
            let f = AwsFailure::from_sdk("acm-pca:GetCertificate", &e);
            if f.is("RequestInProgressException") {
                // Issuance is asynchronous (seconds): the step's Retry asks again.
                StepError::Transient(f.describe())
            } else {
                f.or_else(StepError::InvalidInput)
            }
        })?;
    let signed_cert = got.certificate().unwrap_or_default().to_string();
    let trust_anchor = got
        .certificate_chain()
        .and_then(last_certificate)
        .ok_or_else(|| {
            StepError::invalid(format!(
                "ACM Private CA {ca_arn} returned no certificate chain for {cert_arn}"
            ))
        })?;
    let pair = SignedPair {
        signed_cert,
        trust_anchor,
    };
    pki::verify_pair(csr, &pair)?;
    info!(cluster = %cluster_id, certificate = %cert_arn, "cluster CSR signed by ACM Private CA");
    Ok(pair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_fits_and_follows_the_csr() {
        let a = idempotency_token("cluster-igklspoyj5v", "CSR-1");
        assert!(a.len() <= 36, "{a}");
        assert!(a.starts_with("clusterigklspoyj5v-"), "{a}");
        assert_eq!(a, idempotency_token("cluster-igklspoyj5v", "CSR-1\n"));
        assert_ne!(a, idempotency_token("cluster-igklspoyj5v", "CSR-2"));
    }

    #[test]
    fn anchor_is_the_root_at_the_end_of_the_chain() {
        let chain = "-----BEGIN CERTIFICATE-----\nSUB\n-----END CERTIFICATE-----\n\
                     -----BEGIN CERTIFICATE-----\nROOT\n-----END CERTIFICATE-----\n";
        assert_eq!(
            last_certificate(chain).unwrap(),
            "-----BEGIN CERTIFICATE-----\nROOT\n-----END CERTIFICATE-----\n"
        );
        assert_eq!(last_certificate("no pem"), None);
    }

    #[test]
    fn signing_algorithm_follows_the_ca_key() {
        assert_eq!(
            signing_algorithm(&KeyAlgorithm::Rsa4096).unwrap(),
            SigningAlgorithm::Sha256Withrsa
        );
        assert_eq!(
            signing_algorithm(&KeyAlgorithm::EcSecp384r1).unwrap(),
            SigningAlgorithm::Sha384Withecdsa
        );
        assert!(signing_algorithm(&KeyAlgorithm::MlDsa65).is_err());
    }
}
