"""The pure parts of the security profiles: the handshake rule, the CSR checks, the
signing, the upgrade order and the config keys."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from csms.admin.security import upgrade_refusal
from csms.config import ConfigError
from csms.domain.chargers import Charger
from csms.ocpp16.security_certs import CsrRefused, check_csr, load_signing_ca, sign_csr
from csms.ocpp16.security_tls import Presented, profile_refusal
from tests.support.certs import Pki
from tests.support.csms import make_config

NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("profile", "presented", "refused"),
    [
        (None, Presented(tls=False), None),
        (1, Presented(tls=False), None),
        (2, Presented(tls=True), None),
        (2, Presented(tls=False), "requires a TLS"),
        (3, Presented(tls=True, cn="CP1"), None),
        (3, Presented(tls=True), "requires a valid client certificate"),
        (3, Presented(tls=False), "requires a TLS"),
        (3, Presented(tls=True, cn="CP2"), "is not the charge point id"),
        (2, Presented(tls=True, cn="CP2"), "is not the charge point id"),
        (None, Presented(tls=True, cn="cp1"), "is not the charge point id"),
    ],
)
def test_profile_refusal(profile: int | None, presented: Presented, refused: str | None) -> None:
    reason = profile_refusal("CP1", profile, presented)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason


def _csr(key: object, cn: str | None) -> str:
    names = [] if cn is None else [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
    return csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "cn", "reason"),
    [
        (ec.generate_private_key(ec.SECP256R1()), "CP9", "is not the charge point id"),
        (ec.generate_private_key(ec.SECP256R1()), None, "subject CN None"),
        (rsa.generate_private_key(65537, 1024), "CP1", "RSA key of 1024 bits"),
        (ec.generate_private_key(ec.SECP192R1()), "CP1", "EC key of 192 bits"),
    ],
)
def test_csr_refusals(key: object, cn: str | None, reason: str) -> None:
    with pytest.raises(CsrRefused, match=reason):
        check_csr(_csr(key, cn), "CP1")


def test_garbage_is_no_csr() -> None:
    with pytest.raises(CsrRefused, match="not a PEM"):
        check_csr("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", "CP1")


def test_signed_certificate_is_a_client_certificate_from_our_ca(tmp_path: Path) -> None:
    pki = Pki.create(tmp_path)
    ca = load_signing_ca(str(pki.root.cert_path), str(pki.root.key_path), 30)
    key = rsa.generate_private_key(65537, 2048)
    issued = sign_csr(ca, check_csr(_csr(key, "CP1"), "CP1"), NOW)
    leaf, root = x509.load_pem_x509_certificates(issued.chain_pem.encode())
    assert root == pki.root.cert
    leaf.verify_directly_issued_by(pki.root.cert)
    assert leaf.subject.rfc4514_string() == issued.subject == "CN=CP1"
    assert f"{leaf.serial_number:X}" == issued.serial
    assert leaf.not_valid_after_utc == NOW + datetime.timedelta(days=30)
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_a_signing_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    pki = Pki.create(tmp_path)
    with pytest.raises(ValueError, match="does not belong"):
        load_signing_ca(str(pki.root.cert_path), str(pki.foreign.key_path), 30)


def _charger(profile: int | None, password: bool) -> Charger:
    none = dict.fromkeys(
        [
            "vendor",
            "model",
            "serial_number",
            "charge_box_serial",
            "firmware_version",
            "iccid",
            "imsi",
            "meter_type",
            "meter_serial",
            "last_boot_at",
            "last_heartbeat_at",
            "last_connected_at",
            "last_disconnected_at",
            "firmware_status",
            "diagnostics_status",
        ]
    )
    return Charger(
        **none,  # type: ignore[arg-type]
        id="CP1",
        registration_status="Accepted",
        has_password=password,
        created_at="2030-01-01T00:00:00Z",
        security_profile=profile,
    )


def test_upgrade_order(tmp_path: Path) -> None:
    pki = Pki.create(tmp_path / "pki")
    tls = make_config(tmp_path, **pki.csms_sections())  # type: ignore[arg-type]
    plain = make_config(tmp_path)
    assert upgrade_refusal(_charger(2, True), 3, tls, ca_installed=True) is None
    assert "install the CA certificate first" in str(
        upgrade_refusal(_charger(2, True), 3, tls, ca_installed=False)
    )
    assert "only ever raised" in str(upgrade_refusal(_charger(3, False), 2, tls, True))
    assert "only ever raised" in str(upgrade_refusal(_charger(None, True), 1, tls, True))
    assert "server.tls_cert" in str(upgrade_refusal(_charger(1, True), 2, plain, True))
    assert "register a password" in str(upgrade_refusal(_charger(0, False), 2, tls, True))
    assert upgrade_refusal(_charger(None, False), 1, plain, False) == (
        "profile 1 authenticates with HTTP Basic: register a password first"
    )


@pytest.mark.parametrize(
    ("sections", "key"),
    [
        ({"security_profile": {"client_ca_file": "ca.pem"}}, "security_profile.client_ca_file"),
        (
            {"security_profile": {"client_cert_required": True}},
            "security_profile.client_cert_required",
        ),
        ({"security_profile": {"signing_ca_cert": "x.pem"}}, "security_profile.signing_ca_key"),
        (
            {"security_profile": {"signing_ca_cert": "/nope.pem", "signing_ca_key": "/nope.key"}},
            "security_profile.signing_ca_cert",
        ),
        (
            {"security_profile": {"signed_cert_validity_days": 0}},
            "security_profile.signed_cert_validity_days",
        ),
    ],
)
def test_config_errors_name_the_key(
    tmp_path: Path, sections: dict[str, dict[str, object]], key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(tmp_path, **sections)  # type: ignore[arg-type]
    assert info.value.key == key
