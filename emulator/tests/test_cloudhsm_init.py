"""InitializeCluster: the customer signs the cluster CSR with their own root CA (aws-behaviour.md
1.3-1.4). Accepted: self-signed RSA root with Basic Constraints CA, certificate carrying the CSR's
key and issued by it. Everything else is refused with CloudHsmInvalidRequestException."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

from test_cloudhsm_support import CA, Toolbox, ec_key, hsm_env  # noqa: F401


@pytest.fixture
def uninitialized(hsm_env: Toolbox):
    """(toolbox, cluster id, CSR) for a cluster whose first HSM is ACTIVE."""
    _, subnets = hsm_env.vpc(azs=("us-east-1a",))
    cid = hsm_env.cluster(subnets)["ClusterId"]
    hsm_env.first_hsm(cid)
    return hsm_env, cid, hsm_env.describe(cid)["Certificates"]["ClusterCsr"]


def refused(toolbox: Toolbox, cid: str, signed: str, anchor: str) -> str:
    with pytest.raises(ClientError) as info:
        toolbox.hsm.initialize_cluster(ClusterId=cid, SignedCert=signed, TrustAnchor=anchor)
    assert info.value.response["Error"]["Code"] == "CloudHsmInvalidRequestException"
    assert toolbox.describe(cid)["State"] == "UNINITIALIZED"
    return info.value.response["Error"]["Message"]


def test_signed_csr_initializes_the_cluster(uninitialized):
    toolbox, cid, csr = uninitialized
    ca = CA()
    signed = ca.sign(csr)
    out = toolbox.hsm.initialize_cluster(ClusterId=cid, SignedCert=signed, TrustAnchor=ca.pem)
    assert out["State"] == "INITIALIZE_IN_PROGRESS"
    assert out["StateMessage"] == "Cluster is initializing. State will change to INITIALIZED upon completion."
    cluster = toolbox.wait_cluster(cid, "INITIALIZED")
    assert list(cluster["Certificates"]) == ["ClusterCertificate"]
    assert cluster["Certificates"]["ClusterCertificate"].strip() == signed.strip()


def test_rsa_4096_root_is_accepted(uninitialized):
    toolbox, cid, csr = uninitialized
    ca = CA(key=rsa.generate_private_key(public_exponent=65537, key_size=4096))
    toolbox.hsm.initialize_cluster(ClusterId=cid, SignedCert=ca.sign(csr), TrustAnchor=ca.pem)
    toolbox.wait_cluster(cid, "INITIALIZED")


def test_certificate_with_another_key_is_refused(uninitialized):
    toolbox, cid, csr = uninitialized
    ca = CA()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    assert "public keys differ" in refused(toolbox, cid, ca.sign(csr, public_key=other), ca.pem)


def test_trust_anchor_not_self_signed_is_refused(uninitialized):
    toolbox, cid, csr = uninitialized
    ca = CA(self_signed=False)
    assert "self-signed" in refused(toolbox, cid, ca.sign(csr), ca.pem)


def test_trust_anchor_without_basic_constraints_is_refused(uninitialized):
    toolbox, cid, csr = uninitialized
    ca = CA(basic_constraints=None)
    assert "Basic Constraints" in refused(toolbox, cid, ca.sign(csr), ca.pem)


def test_trust_anchor_that_is_not_a_ca_is_refused(uninitialized):
    toolbox, cid, csr = uninitialized
    ca = CA(basic_constraints=False)
    assert "CA" in refused(toolbox, cid, ca.sign(csr), ca.pem)


def test_certificate_issued_by_another_ca_is_refused(uninitialized):
    toolbox, cid, csr = uninitialized
    signer, anchor = CA(), CA()
    assert "TrustAnchor" in refused(toolbox, cid, signer.sign(csr), anchor.pem)


def test_ec_trust_anchor_is_refused(uninitialized):
    toolbox, cid, csr = uninitialized
    ca = CA(key=ec_key())
    assert "RSA" in refused(toolbox, cid, ca.sign(csr), ca.pem)


def test_not_pem_is_refused(uninitialized):
    toolbox, cid, csr = uninitialized
    ca = CA()
    assert "PEM" in refused(toolbox, cid, ca.sign(csr), "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA")


def test_initialize_needs_an_active_hsm(hsm_env: Toolbox):
    _, subnets = hsm_env.vpc(azs=("us-east-1a",))
    cid = hsm_env.cluster(subnets)["ClusterId"]
    ca = CA()
    # A certificate of some CSR-less key: the call must fail before any certificate check.
    with pytest.raises(ClientError) as info:
        hsm_env.hsm.initialize_cluster(ClusterId=cid, SignedCert=ca.pem, TrustAnchor=ca.pem)
    assert info.value.response["Error"]["Code"] == "CloudHsmInvalidRequestException"
    assert "no active HSM" in info.value.response["Error"]["Message"]


def test_initialize_twice_is_refused(uninitialized):
    toolbox, cid, csr = uninitialized
    ca = CA()
    toolbox.hsm.initialize_cluster(ClusterId=cid, SignedCert=ca.sign(csr), TrustAnchor=ca.pem)
    with pytest.raises(ClientError) as info:
        toolbox.hsm.initialize_cluster(ClusterId=cid, SignedCert=ca.sign(csr), TrustAnchor=ca.pem)
    assert info.value.response["Error"]["Code"] == "CloudHsmInvalidRequestException"


def test_initialize_unknown_cluster(hsm_env: Toolbox):
    ca = CA()
    with pytest.raises(ClientError) as info:
        hsm_env.hsm.initialize_cluster(ClusterId="cluster-abcdefghijk", SignedCert=ca.pem, TrustAnchor=ca.pem)
    assert info.value.response["Error"]["Code"] == "CloudHsmResourceNotFoundException"


def test_no_second_hsm_while_initialized(uninitialized):
    toolbox, cid, csr = uninitialized
    ca = CA()
    toolbox.hsm.initialize_cluster(ClusterId=cid, SignedCert=ca.sign(csr), TrustAnchor=ca.pem)
    toolbox.wait_cluster(cid, "INITIALIZED")
    with pytest.raises(ClientError) as info:
        toolbox.hsm.create_hsm(ClusterId=cid, AvailabilityZone="us-east-1a")
    assert info.value.response["Error"]["Message"] == (
        f"Cluster '{cid}' already contains an HSM but has not yet been fully activated")
