//! Signing the cluster CSR.
//!
//! BuiltIn: a throwaway RSA-2048 certificate authority generated in memory for one signature.
//! Its private key is never serialized, stored or logged; it is dropped when `sign_with_throwaway_ca`
//! returns. The trust anchor is self-signed with Basic Constraints CA=true, as InitializeCluster
//! requires (aws-behaviour.md 1.4, "InitializeCluster validation").
//!
//! External: the customer's signed certificate and trust anchor are checked against the current
//! CSR before InitializeCluster so a mismatch gets a clear message instead of an API rejection.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, RsaKeySize, SubjectPublicKeyInfo, PKCS_RSA_SHA256,
};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::{StepError, StepResult};

/// The certificates InitializeCluster takes (both public).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPair {
    pub signed_cert: String,
    pub trust_anchor: String,
}

fn pem_block(pem_text: &str, what: &str) -> StepResult<Vec<u8>> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem_text.trim().as_bytes())
        .map_err(|e| StepError::invalid(format!("{what} is not valid PEM: {e}")))?;
    Ok(pem.contents)
}

/// The CSR's subject and public key, after checking its self-signature.
struct ParsedCsr {
    subject: DistinguishedName,
    spki_der: Vec<u8>,
}

fn parse_csr(csr_pem: &str) -> StepResult<ParsedCsr> {
    let der = pem_block(csr_pem, "the cluster CSR")?;
    let (_, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|e| StepError::invalid(format!("the cluster CSR cannot be parsed: {e}")))?;
    csr.verify_signature()
        .map_err(|e| StepError::invalid(format!("the cluster CSR signature is invalid: {e}")))?;
    let info = &csr.certification_request_info;
    let mut subject = DistinguishedName::new();
    for attr in info.subject.iter_attributes() {
        let Ok(value) = attr.as_str() else { continue };
        let oid: Vec<u64> = match attr.attr_type().iter() {
            Some(it) => it.collect(),
            None => continue,
        };
        let ty = match oid.as_slice() {
            [2, 5, 4, 3] => DnType::CommonName,
            [2, 5, 4, 6] => DnType::CountryName,
            [2, 5, 4, 7] => DnType::LocalityName,
            [2, 5, 4, 8] => DnType::StateOrProvinceName,
            [2, 5, 4, 10] => DnType::OrganizationName,
            [2, 5, 4, 11] => DnType::OrganizationalUnitName,
            _ => DnType::CustomDnType(oid),
        };
        subject.push(ty, value);
    }
    Ok(ParsedCsr {
        subject,
        spki_der: info.subject_pki.raw.to_vec(),
    })
}

fn current_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    1970 + (secs / 31_556_952) as i32
}

fn pki_err(what: &str, e: rcgen::Error) -> StepError {
    // rcgen errors never contain key material.
    StepError::ResourceFailed(format!("{what}: {e}"))
}

/// Sign the cluster CSR with a CA that exists only for the duration of this call.
pub fn sign_with_throwaway_ca(csr_pem: &str, cluster_id: &str) -> StepResult<SignedPair> {
    let csr = parse_csr(csr_pem)?;
    let year = current_year();

    let ca_key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)
        .map_err(|e| pki_err("generating the throwaway CA key", e))?;
    let mut ca = CertificateParams::default();
    let mut ca_dn = DistinguishedName::new();
    ca_dn.push(DnType::CommonName, format!("{cluster_id} trust anchor"));
    ca_dn.push(
        DnType::OrganizationName,
        "CloudHSM construct (throwaway CA)",
    );
    ca.distinguished_name = ca_dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    ca.not_after = rcgen::date_time_ymd(year + 20, 1, 1);
    let ca_cert = ca
        .self_signed(&ca_key)
        .map_err(|e| pki_err("self-signing the trust anchor", e))?;

    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = csr.subject;
    leaf.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    leaf.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
    let spki = SubjectPublicKeyInfo::from_der(&csr.spki_der)
        .map_err(|e| pki_err("reading the CSR public key", e))?;
    let issuer = Issuer::from_params(&ca, &ca_key);
    let signed = leaf
        .signed_by(&spki, &issuer)
        .map_err(|e| pki_err("signing the cluster CSR", e))?;
    drop(issuer);
    // The CA key ends here: it was never serialized and is freed with this value.
    drop(ca_key);

    Ok(SignedPair {
        signed_cert: signed.pem(),
        trust_anchor: ca_cert.pem(),
    })
}

/// Check that `signed_cert` certifies the CSR's key and is issued by `trust_anchor`, and that the
/// trust anchor is a self-signed CA certificate.
pub fn verify_pair(csr_pem: &str, pair: &SignedPair) -> StepResult<()> {
    let csr = parse_csr(csr_pem)?;
    let cert_der = pem_block(&pair.signed_cert, "the signed cluster certificate")?;
    let anchor_der = pem_block(&pair.trust_anchor, "the trust anchor")?;
    let (_, cert) = X509Certificate::from_der(&cert_der)
        .map_err(|e| StepError::invalid(format!("the signed certificate cannot be parsed: {e}")))?;
    let (_, anchor) = X509Certificate::from_der(&anchor_der)
        .map_err(|e| StepError::invalid(format!("the trust anchor cannot be parsed: {e}")))?;

    if cert.public_key().raw != csr.spki_der.as_slice() {
        return Err(StepError::invalid(
            "the signed certificate does not certify the cluster's current CSR (different public key); \
             sign the CSR published in the resource's ClusterCsr attribute and update the stack again",
        ));
    }
    anchor.verify_signature(None).map_err(|_| {
        StepError::invalid("the trust anchor is not self-signed; supply the root CA certificate")
    })?;
    let is_ca = anchor
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    if !is_ca {
        return Err(StepError::invalid(
            "the trust anchor has no Basic Constraints extension with CA=true (InitializeCluster requires it)",
        ));
    }
    if cert.issuer() != anchor.subject() {
        return Err(StepError::invalid(
            "the signed certificate's issuer is not the trust anchor's subject; sign with the root CA directly",
        ));
    }
    cert.verify_signature(Some(anchor.public_key()))
        .map_err(|_| {
            StepError::invalid(
                "the signed certificate's signature does not verify with the trust anchor's key",
            )
        })?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A CSR like the one the first HSM publishes (RSA 2048, subject with several attributes).
    pub(crate) fn sample_csr() -> String {
        let key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048).unwrap();
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "HSM:5B2ADA1E3:PARTN:2, for FIPS mode");
        dn.push(DnType::OrganizationName, "AWS CloudHSM");
        dn.push(DnType::CountryName, "US");
        p.distinguished_name = dn;
        p.serialize_request(&key).unwrap().pem().unwrap()
    }

    #[test]
    fn throwaway_ca_signs_the_csr_and_verifies() {
        let csr = sample_csr();
        let pair = sign_with_throwaway_ca(&csr, "cluster-abcdefghijk").unwrap();
        verify_pair(&csr, &pair).unwrap();

        // Independent checks with x509-parser.
        let anchor_der = pem_block(&pair.trust_anchor, "anchor").unwrap();
        let (_, anchor) = X509Certificate::from_der(&anchor_der).unwrap();
        assert_eq!(
            anchor.issuer(),
            anchor.subject(),
            "trust anchor is self-signed"
        );
        let bc = anchor.basic_constraints().unwrap().unwrap();
        assert!(bc.critical || bc.value.ca);
        assert!(bc.value.ca);
        let cert_der = pem_block(&pair.signed_cert, "cert").unwrap();
        let (_, cert) = X509Certificate::from_der(&cert_der).unwrap();
        assert!(cert.verify_signature(Some(anchor.public_key())).is_ok());
        assert!(cert.subject().to_string().contains("AWS CloudHSM"));
        // RSA 2048 trust anchor, as the CloudHSM user guide requires.
        assert!(anchor.public_key().raw.len() > 256);
        assert!(
            !pair.trust_anchor.contains("PRIVATE KEY") && !pair.signed_cert.contains("PRIVATE KEY")
        );
    }

    #[test]
    fn every_signing_uses_a_fresh_ca() {
        let csr = sample_csr();
        let a = sign_with_throwaway_ca(&csr, "cluster-a").unwrap();
        let b = sign_with_throwaway_ca(&csr, "cluster-a").unwrap();
        assert_ne!(a.trust_anchor, b.trust_anchor);
    }

    #[test]
    fn verify_rejects_a_certificate_for_another_csr() {
        let pair = sign_with_throwaway_ca(&sample_csr(), "cluster-a").unwrap();
        let err = verify_pair(&sample_csr(), &pair).unwrap_err();
        assert!(matches!(err, StepError::InvalidInput(m) if m.contains("current CSR")));
    }

    #[test]
    fn verify_rejects_a_mismatched_trust_anchor() {
        let csr = sample_csr();
        let a = sign_with_throwaway_ca(&csr, "cluster-a").unwrap();
        let b = sign_with_throwaway_ca(&csr, "cluster-a").unwrap();
        let mixed = SignedPair {
            signed_cert: a.signed_cert,
            trust_anchor: b.trust_anchor,
        };
        assert!(verify_pair(&csr, &mixed).is_err());
    }

    #[test]
    fn garbage_csr_is_invalid_input() {
        assert!(matches!(
            sign_with_throwaway_ca("not a csr", "cluster-a"),
            Err(StepError::InvalidInput(_))
        ));
    }
}
