"""The charger's certificate material: its TLS client identity, its CSRs and the root
certificates the CSMS installed, kept in memory.

Why in memory: a simulated charger has no secure storage to model; what matters to the
CSMS is the wire behaviour. A new key is made for every CSR (the charger never sends a
key), and the certificate the CSMS signs replaces the client identity only if it is for
that key. Root certificates installed as ``CentralSystemRootCertificate`` are trusted for
the CSMS's TLS certificate at the next connection, as on a real charger.

``ssl`` needs files for a client certificate and key: they are written to a private
temporary directory only while the context loads them.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

HASHES: dict[str, hashes.HashAlgorithm] = {
    "SHA256": hashes.SHA256(),
    "SHA384": hashes.SHA384(),
    "SHA512": hashes.SHA512(),
}


def new_key(spec: str) -> PrivateKey:
    """``ec`` (P-256) or ``rsa:BITS`` (e.g. ``rsa:2048``)."""
    if spec == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    kind, _, bits = spec.partition(":")
    if kind == "rsa" and bits.isdigit():
        return rsa.generate_private_key(public_exponent=65537, key_size=int(bits))
    raise ValueError(f"key spec must be 'ec' or 'rsa:BITS', got {spec!r}")


def _public_der(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def hash_data(cert: x509.Certificate, algorithm: str = "SHA256") -> dict[str, str]:
    """OCPP ``CertificateHashDataType`` of a root certificate (its own issuer), computed
    the OCSP way (issuer name and key hashes, serial in hex)."""
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, cert, HASHES[algorithm]).build()
    return {
        "hashAlgorithm": algorithm,
        "issuerNameHash": request.issuer_name_hash.hex(),
        "issuerKeyHash": request.issuer_key_hash.hex(),
        "serialNumber": f"{request.serial_number:x}",
    }


@dataclass
class CertificateStore:
    """What the charger holds. ``client_chain``/``client_key``: PEM of its TLS identity
    (None: it connects without one); ``installed``: root certificates by certificate type."""

    cp_id: str
    ca_file: str | None = None
    client_chain: bytes | None = None
    client_key: bytes | None = None
    key_spec: str = "ec"
    pending_key: PrivateKey | None = None
    installed: dict[str, list[x509.Certificate]] = field(default_factory=dict)
    accepted_chains: list[bytes] = field(default_factory=list)

    @classmethod
    def from_files(
        cls,
        cp_id: str,
        ca_file: str | None,
        client_cert: str | None,
        client_key: str | None,
        key_spec: str = "ec",
    ) -> CertificateStore:
        chain = Path(client_cert).read_bytes() if client_cert else None
        key = Path(client_key).read_bytes() if client_key else None
        if (chain is None) != (key is None):
            raise ValueError("a client certificate needs its key (and the key its certificate)")
        return cls(cp_id, ca_file, chain, key, key_spec)

    # ---------------------------------------------------------------- TLS

    def ssl_context(self) -> ssl.SSLContext:
        """A client context: trusts ``ca_file`` and every installed CentralSystemRootCertificate
        (the system store when there is neither), presents the client identity if any."""
        roots = self.installed.get("CentralSystemRootCertificate", [])
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        if roots:
            pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in roots)
            ctx.load_verify_locations(cadata=pem.decode())
        if self.client_chain is not None and self.client_key is not None:
            with tempfile.TemporaryDirectory(prefix="csms-sim-") as tmp:
                cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
                Path(cert_path).write_bytes(self.client_chain)
                fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(self.client_key)
                ctx.load_cert_chain(cert_path, key_path)
        return ctx

    def client_serial(self) -> int | None:
        """Serial of the client certificate presented now (None: none)."""
        if self.client_chain is None:
            return None
        return x509.load_pem_x509_certificates(self.client_chain)[0].serial_number

    # ---------------------------------------------------------------- CSR

    def new_csr(self, cn: str | None = None, organization: str | None = None) -> str:
        """A PEM CSR for a fresh key (kept pending until its certificate arrives)."""
        key = new_key(self.key_spec)
        names = [x509.NameAttribute(NameOID.COMMON_NAME, cn if cn is not None else self.cp_id)]
        if organization:
            names.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name(names))
            .sign(key, hashes.SHA256())
        )
        self.pending_key = key
        return csr.public_bytes(serialization.Encoding.PEM).decode()

    def accept_signed(self, chain_pem: str) -> bool:
        """Take ``chain_pem`` as the new client identity if its leaf is for the pending key."""
        try:
            chain = x509.load_pem_x509_certificates(chain_pem.encode())
        except ValueError:
            return False
        key = self.pending_key
        if key is None or _public_der(chain[0].public_key()) != _public_der(key.public_key()):
            return False
        self.client_chain = chain_pem.encode()
        self.client_key = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.pending_key = None
        self.accepted_chains.append(self.client_chain)
        return True

    # ---------------------------------------------------------------- roots

    def install(self, certificate_type: str, pem: str) -> str:
        """InstallCertificate's status: Accepted, or Rejected for what is not a certificate."""
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
        except ValueError:
            return "Rejected"
        held = self.installed.setdefault(certificate_type, [])
        if all(c.fingerprint(hashes.SHA256()) != cert.fingerprint(hashes.SHA256()) for c in held):
            held.append(cert)
        return "Accepted"

    def ids(self, certificate_type: str) -> list[dict[str, str]]:
        return [hash_data(c) for c in self.installed.get(certificate_type, [])]

    def delete(self, wanted: dict[str, str]) -> str:
        """DeleteCertificate's status: Accepted when a held root matches, else NotFound."""
        algorithm = wanted.get("hashAlgorithm", "SHA256")
        for held in self.installed.values():
            for cert in held:
                if _same(hash_data(cert, algorithm), wanted):
                    held.remove(cert)
                    return "Accepted"
        return "NotFound"


def _same(have: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(
        have[k].lower().lstrip("0") == str(wanted.get(k, "")).lower().lstrip("0")
        for k in ("issuerNameHash", "issuerKeyHash", "serialNumber")
    )
