"""The cluster certificate signed by the customer's ACM Private CA, and the external-PKI two-phase
initialization (issue 4, deliverable 2): deploy → cluster UNINITIALIZED with the CSR published →
sign it outside → update with the certificate → ACTIVE."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from e2e_support import assert_converged, assert_no_leaks, assert_nothing_billing, cluster
from test_lifecycle import assert_deleted, base_params


def _root_ca(emu, active: bool = True) -> str:
    """A root CA in the emulator's ACM Private CA, activated the way AWS documents: its CSR is
    self-issued with the RootCACertificate template and imported."""
    pca = emu.client("acm-pca")
    arn = pca.create_certificate_authority(
        CertificateAuthorityType="ROOT",
        CertificateAuthorityConfiguration={
            "KeyAlgorithm": "RSA_2048", "SigningAlgorithm": "SHA256WITHRSA",
            "Subject": {"CommonName": "e2e Private Root CA", "Organization": "e2e"}},
    )["CertificateAuthorityArn"]
    if active:
        csr = pca.get_certificate_authority_csr(CertificateAuthorityArn=arn)["Csr"]
        cert_arn = pca.issue_certificate(
            CertificateAuthorityArn=arn, Csr=csr.encode(), SigningAlgorithm="SHA256WITHRSA",
            TemplateArn="arn:aws:acm-pca:::template/RootCACertificate/V1",
            Validity={"Value": 3650, "Type": "DAYS"})["CertificateArn"]
        cert = pca.get_certificate(CertificateAuthorityArn=arn, CertificateArn=cert_arn)["Certificate"]
        pca.import_certificate_authority_certificate(CertificateAuthorityArn=arn,
                                                     Certificate=cert.encode())
    return arn


def test_acm_private_ca_signs_the_cluster_certificate(emu, network, stack_factory):
    ca_arn = _root_ca(emu)
    stack = stack_factory()
    result = stack.deploy_ok(**base_params(network, 1, 1, PkiMode="AcmPrivateCa", AcmPcaArn=ca_arn))
    c = assert_converged(emu, result, network, network.hsm_subnets(1), 1)
    # The trust anchor is the private CA's own certificate.
    pca = emu.client("acm-pca")
    ca_cert = pca.get_certificate_authority_certificate(CertificateAuthorityArn=ca_arn)["Certificate"]
    cluster_cert = c["Certificates"].get("ClusterCertificate")
    assert cluster_cert, c["Certificates"]
    issued = x509.load_pem_x509_certificate(cluster_cert.encode())
    assert issued.issuer == x509.load_pem_x509_certificate(ca_cert.encode()).subject
    assert_no_leaks(emu)
    assert_deleted(emu, stack, network, result.outputs)


def test_acm_private_ca_not_active_fails_before_initializing(emu, network, stack_factory):
    ca_arn = _root_ca(emu, active=False)
    stack = stack_factory()
    result = stack.deploy(**base_params(network, 1, 1, PkiMode="AcmPrivateCa", AcmPcaArn=ca_arn))
    assert result.returncode != 0, result.describe()
    shown = result.root_cause_text()
    assert "PENDING_CERTIFICATE" in shown and "not ACTIVE" in shown, result.describe()
    assert stack.cfn_status() in ("ROLLBACK_COMPLETE", None), result.describe()
    assert_nothing_billing(emu, network)


def _sign_externally(csr_pem: str) -> tuple[str, str]:
    """The customer's own PKI: a root CA (key kept by the customer) signs the cluster CSR."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "e2e External Root CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    root = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(name)
            .public_key(csr.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return cert.public_bytes(pem).decode(), root.public_bytes(pem).decode()


def test_external_pki_publishes_the_csr_then_an_update_finishes(emu, network, stack_factory):
    stack = stack_factory()
    params = base_params(network, 2, 1, PkiMode="External")
    first = stack.deploy_ok(**params)
    cluster_id = first.outputs["ClusterId"]
    c = cluster(emu, cluster_id)
    assert c["State"] == "UNINITIALIZED", c["State"]
    csr = first.outputs.get("ClusterCsr", "")
    assert "BEGIN CERTIFICATE REQUEST" in csr, first.outputs
    assert csr.strip() == c["Certificates"]["ClusterCsr"].strip()
    # Only the first HSM exists: more can be added once the cluster is ACTIVE.
    assert len(c["Hsms"]) == 1, c["Hsms"]

    signed, anchor = _sign_externally(csr)
    second = stack.deploy_ok(**params, ExternalSignedCertificate=signed, ExternalTrustAnchor=anchor)
    c = assert_converged(emu, second, network, network.hsm_subnets(2), 1)
    assert c["ClusterId"] == cluster_id, "the update must finish the same cluster, not replace it"
    assert not second.outputs.get("ClusterCsr"), "the CSR output is empty once initialized"
    assert_no_leaks(emu)
    assert_deleted(emu, stack, network, second.outputs)
