"""Certificates of the emulated CloudHSM cluster, made and checked with ``cryptography``.

* :func:`first_hsm_certificates` – what the first HSM of a cluster produces: the cluster CSR (an
  RSA 2048 key pair that stays "inside the HSM", i.e. in the emulator), the HSM certificate and the
  two hardware certificates (AWS and manufacturer), each issued by an emulator-wide fake root.
* :func:`validate_initialize` – the checks InitializeCluster makes on ``SignedCert`` and
  ``TrustAnchor`` (aws-behaviour.md 1.4). It raises :class:`PkiError` with a message the API
  returns as ``CloudHsmInvalidRequestException``.

The exact server-side checks and their error texts are not documented (uncertain in the reference);
the checks here are the ones the API documentation implies: PEM, self-signed root with the Basic
Constraints extension (CA), RSA 2048/4096 CA key, signed certificate carrying the CSR's public key,
issued by the trust anchor and verifying against its key.
"""

from __future__ import annotations

import datetime
import threading

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

# The InitializeCluster Cert shape: max 20000 characters (the docs say "max 5000"; the model's
# limit is what the service enforces on the wire, so we use it).
MAX_CERT_CHARS = 20000
# "you must use the RSA 2048 certificate or the RSA 4096 certificate" [UG initialize-cluster].
ALLOWED_TRUST_ANCHOR_BITS = (2048, 4096)


class PkiError(ValueError):
    pass


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str, org: str, ou: str | None = None) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
    ]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _issue(subject: x509.Name, public_key, issuer: x509.Name, issuer_key, ca: bool, days: int):
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256())


def pem(cert_or_csr) -> str:
    return cert_or_csr.public_bytes(serialization.Encoding.PEM).decode()


class _Root:
    """An emulator-wide fake root (AWS or manufacturer), made once per process on first use."""

    def __init__(self, cn: str, org: str):
        self.cn, self.org = cn, org
        self._lock = threading.Lock()
        self.key = None
        self.cert = None

    def get(self):
        with self._lock:
            if self.key is None:
                self.key = _new_key()
                name = _name(self.cn, self.org)
                self.cert = _issue(name, self.key.public_key(), name, self.key, True, 3650)
            return self.key, self.cert


AWS_ROOT = _Root("AWS CloudHSM Root - emulator", "Amazon Web Services")
MANUFACTURER_ROOT = _Root("HSM Manufacturer Root - emulator", "HSM Manufacturer")


class FirstHsmMaterial:
    """What the first HSM generates. ``cluster_key`` never leaves the emulator."""

    def __init__(self, hsm_id: str, cluster_id: str):
        aws_key, aws_cert = AWS_ROOT.get()
        mfr_key, mfr_cert = MANUFACTURER_ROOT.get()
        hardware_key = _new_key()
        self.cluster_key = _new_key()
        hw_name = _name(f"HSM:{hsm_id}:hardware", "HSM Manufacturer", "hardware")
        self.manufacturer_hardware_certificate = pem(
            _issue(hw_name, hardware_key.public_key(), mfr_cert.subject, mfr_key, False, 3650)
        )
        self.aws_hardware_certificate = pem(
            _issue(hw_name, hardware_key.public_key(), aws_cert.subject, aws_key, False, 3650)
        )
        hsm_name = _name(f"HSM:{hsm_id}", "Amazon Web Services", "CloudHSM")
        self.hsm_certificate = pem(
            _issue(hsm_name, self.cluster_key.public_key(), hw_name, hardware_key, False, 3650)
        )
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(_name(f"HSM:{hsm_id}:{cluster_id}", "Amazon Web Services", "CloudHSM"))
            .sign(self.cluster_key, hashes.SHA256())
        )
        self.cluster_csr = pem(csr)

    def certificates(self) -> dict[str, str]:
        return {
            "ClusterCsr": self.cluster_csr,
            "HsmCertificate": self.hsm_certificate,
            "AwsHardwareCertificate": self.aws_hardware_certificate,
            "ManufacturerHardwareCertificate": self.manufacturer_hardware_certificate,
        }


def first_hsm_certificates(hsm_id: str, cluster_id: str) -> FirstHsmMaterial:
    return FirstHsmMaterial(hsm_id, cluster_id)


def load_pem_certificate(text: str, what: str) -> x509.Certificate:
    if not isinstance(text, str) or not text.strip():
        raise PkiError(f"{what} is required.")
    if len(text) > MAX_CERT_CHARS:
        raise PkiError(f"{what} exceeds the maximum length of {MAX_CERT_CHARS} characters.")
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise PkiError(f"{what} is not a PEM-encoded X.509 certificate.")
    try:
        return x509.load_pem_x509_certificate(text.strip().encode())
    except ValueError as exc:
        raise PkiError(f"{what} could not be parsed as a PEM-encoded X.509 certificate: {exc}") from exc


def same_certificate(a_pem: str, b_pem: str) -> bool:
    """True when both PEM texts hold the same certificate (whitespace and line breaks aside)."""
    try:
        a = x509.load_pem_x509_certificate(a_pem.strip().encode())
        b = x509.load_pem_x509_certificate(b_pem.strip().encode())
    except (ValueError, AttributeError):
        return False
    return a.public_bytes(serialization.Encoding.DER) == b.public_bytes(serialization.Encoding.DER)


def _public_der(key) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def validate_initialize(signed_cert_pem: str, trust_anchor_pem: str, cluster_csr_pem: str) -> None:
    """Raise :class:`PkiError` unless the pair is acceptable for InitializeCluster."""
    anchor = load_pem_certificate(trust_anchor_pem, "TrustAnchor")
    signed = load_pem_certificate(signed_cert_pem, "SignedCert")

    anchor_key = anchor.public_key()
    if not isinstance(anchor_key, rsa.RSAPublicKey):
        raise PkiError("TrustAnchor must have an RSA 2048 or RSA 4096 key.")
    if anchor_key.key_size not in ALLOWED_TRUST_ANCHOR_BITS:
        raise PkiError(
            f"TrustAnchor must have an RSA 2048 or RSA 4096 key, not RSA {anchor_key.key_size}."
        )
    if anchor.issuer != anchor.subject:
        raise PkiError("TrustAnchor must be a self-signed root certificate.")
    try:
        anchor.verify_directly_issued_by(anchor)
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise PkiError("TrustAnchor must be a self-signed root certificate.") from exc
    try:
        constraints = anchor.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound as exc:
        raise PkiError(
            "TrustAnchor must contain the X509v3 Basic Constraints extension."
        ) from exc
    if not constraints.ca:
        raise PkiError("TrustAnchor Basic Constraints must mark it as a CA (CA:TRUE).")
    now = _now()
    for cert, what in ((anchor, "TrustAnchor"), (signed, "SignedCert")):
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            raise PkiError(f"{what} is not within its validity period.")

    csr = x509.load_pem_x509_csr(cluster_csr_pem.encode())
    if _public_der(signed.public_key()) != _public_der(csr.public_key()):
        raise PkiError("SignedCert does not match the cluster CSR: the public keys differ.")
    if signed.issuer != anchor.subject:
        raise PkiError("SignedCert was not issued by the TrustAnchor.")
    try:
        signed.verify_directly_issued_by(anchor)
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise PkiError("SignedCert signature does not verify against the TrustAnchor.") from exc
