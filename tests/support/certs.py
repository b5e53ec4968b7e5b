"""A small PKI for TLS tests, made with ``cryptography`` in a test's ``tmp_path``.

``Pki.create(tmp_path)`` makes a root CA (which also signs charger certificates), a server
certificate for 127.0.0.1/localhost, and on demand charger client certificates with any
CN, signed by the root or by a foreign CA the CSMS does not trust.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@dataclass
class Ca:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path
    key_path: Path

    @classmethod
    def create(cls, directory: Path, cn: str) -> Ca:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(_name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        slug = cn.lower().replace(" ", "-")
        return cls(
            cert,
            key,
            _write_cert(cert, directory / f"{slug}.pem"),
            _write_key(key, directory / f"{slug}.key"),
        )

    def issue(
        self, directory: Path, cn: str, *, server: bool = False, name: str | None = None
    ) -> tuple[Path, Path]:
        """A leaf certificate for ``cn`` (client auth, or server auth for 127.0.0.1)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=10))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
                ),
                critical=False,
            ).add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        else:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        cert = builder.sign(self.key, hashes.SHA256())
        stem = name or cn
        return (
            _write_cert(cert, directory / f"{stem}.pem"),
            _write_key(key, directory / f"{stem}.key"),
        )


@dataclass
class Pki:
    directory: Path
    root: Ca
    foreign: Ca
    server_cert: Path
    server_key: Path

    @classmethod
    def create(cls, directory: Path) -> Pki:
        directory.mkdir(parents=True, exist_ok=True)
        root = Ca.create(directory, "Test CSMS Root")
        foreign = Ca.create(directory, "Foreign Root")
        server_cert, server_key = root.issue(directory, "localhost", server=True, name="server")
        return cls(directory, root, foreign, server_cert, server_key)

    def charger(self, cn: str, *, foreign: bool = False, name: str | None = None) -> dict[str, str]:
        """Simulator kwargs for a charger presenting a certificate with subject ``cn``."""
        ca = self.foreign if foreign else self.root
        cert, key = ca.issue(self.directory, cn, name=name)
        return {
            "ca_file": str(self.root.cert_path),
            "client_cert": str(cert),
            "client_key": str(key),
        }

    def csms_sections(self) -> dict[str, dict[str, object]]:
        """``running_csms`` sections: TLS listener, client CA bundle, signing CA."""
        return {
            "server": {"tls_cert": str(self.server_cert), "tls_key": str(self.server_key)},
            "security_profile": {
                "client_ca_file": str(self.root.cert_path),
                "signing_ca_cert": str(self.root.cert_path),
                "signing_ca_key": str(self.root.key_path),
            },
        }
