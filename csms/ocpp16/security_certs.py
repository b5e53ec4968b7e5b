"""Charge point certificates: checking a SignCertificate CSR and signing it with our CA.

Why the checks are ours and not left to the CA: the CSR arrives from the charger over the
OCPP connection, and the certificate we return is what authenticates that charger under
security profile 3. Its subject CN must be the charge point id of the connection that
asked (otherwise one charger could obtain another's identity), its key must be strong
enough (RSA at least 2048 bits, EC at least 256), and its self-signature must hold (the
charger owns the key). Everything here is pure given the CA material; loading the CA
from files is :func:`load_signing_ca`.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MIN_RSA_BITS = 2048
MIN_EC_BITS = 256

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


class CsrRefused(ValueError):
    """Why a CSR is not signed (answered ``Rejected`` and stored with this reason)."""


@dataclass(frozen=True)
class SigningCa:
    """The CA that signs charge point certificates (``security_profile.signing_ca_*``)."""

    cert: x509.Certificate
    key: SigningKey
    validity_days: int


@dataclass(frozen=True)
class Issued:
    """A signed certificate: the chain to return (leaf then CA, PEM) and its facts."""

    chain_pem: str
    serial: str
    subject: str
    not_after: str


def load_signing_ca(cert_path: str, key_path: str, validity_days: int) -> SigningCa:
    """Read the CA certificate and its unencrypted PEM key; ValueError names the file."""
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    except ValueError as exc:
        raise ValueError(f"{cert_path}: not a PEM certificate ({exc})") from None
    try:
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{key_path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise ValueError(f"{key_path}: unsupported key type {type(key).__name__}")
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise ValueError(f"{key_path}: the key does not belong to {cert_path}")
    return SigningCa(cert, key, validity_days)


def common_name(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def key_problem(key: object) -> str | None:
    """Why a public key is too weak or of an unknown kind, or None."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            return f"RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} are required"
        return None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.key_size < MIN_EC_BITS:
            return f"EC key of {key.curve.key_size} bits; at least {MIN_EC_BITS} are required"
        return None
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return None
    return f"unsupported key type {type(key).__name__}; use RSA or EC"


def check_csr(csr_pem: str, charger_id: str) -> x509.CertificateSigningRequest:
    """The parsed CSR if it may be signed for ``charger_id``; else :class:`CsrRefused`."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        signature_valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm):
        raise CsrRefused("not a PEM certificate signing request we can verify") from None
    if not signature_valid:
        raise CsrRefused("the CSR's signature does not verify")
    cn = common_name(csr.subject)
    if cn != charger_id:
        raise CsrRefused(f"subject CN {cn!r} is not the charge point id {charger_id!r}")
    problem = key_problem(csr.public_key())
    if problem:
        raise CsrRefused(problem)
    return csr


def sign_csr(ca: SigningCa, csr: x509.CertificateSigningRequest, now: datetime.datetime) -> Issued:
    """A TLS client certificate for the CSR's subject and key, valid from ``now``."""
    not_after = now + datetime.timedelta(days=ca.validity_days)
    serial = secrets.randbits(127) | 1  # positive, non-zero, under 20 octets
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.cert.subject)
        .public_key(csr.public_key())
        .serial_number(serial)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    algorithm = None if isinstance(ca.key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = builder.sign(ca.key, algorithm)
    pem = cert.public_bytes(serialization.Encoding.PEM) + ca.cert.public_bytes(
        serialization.Encoding.PEM
    )
    return Issued(
        chain_pem=pem.decode(),
        serial=f"{serial:X}",
        subject=cert.subject.rfc4514_string(),
        not_after=not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
