"""The simulated charger's certificate store and its SecurityProfile key."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from simulator.certificates import CertificateStore
from simulator.cpconfig import ConfigTable
from tests.support.certs import Pki


def test_installed_roots_are_listed_and_deleted_by_hash_data(tmp_path: Path) -> None:
    pki = Pki.create(tmp_path)
    store = CertificateStore("CP1")
    kind = "ManufacturerRootCertificate"
    assert store.install(kind, "garbage") == "Rejected"
    assert store.install(kind, pki.root.cert_path.read_text()) == "Accepted"
    assert store.install(kind, pki.root.cert_path.read_text()) == "Accepted"  # no duplicate
    assert store.install(kind, pki.foreign.cert_path.read_text()) == "Accepted"
    ids = store.ids(kind)
    assert [int(i["serialNumber"], 16) for i in ids] == [
        pki.root.cert.serial_number,
        pki.foreign.cert.serial_number,
    ]
    assert ids[0]["issuerNameHash"] != ids[1]["issuerNameHash"]
    assert store.delete(ids[0]) == "Accepted"
    assert store.delete(ids[0]) == "NotFound"
    assert [int(i["serialNumber"], 16) for i in store.ids(kind)] == [pki.foreign.cert.serial_number]


def test_a_signed_certificate_is_taken_only_for_the_pending_key(tmp_path: Path) -> None:
    pki = Pki.create(tmp_path)
    store = CertificateStore("CP1")
    csr = x509.load_pem_x509_csr(store.new_csr().encode())
    assert csr.subject.rfc4514_string() == "CN=CP1"
    other_cert, _ = pki.root.issue(tmp_path, "CP1", name="other")
    assert store.accept_signed(other_cert.read_text()) is False  # another key
    assert store.accept_signed("garbage") is False
    assert store.client_serial() is None


def test_security_profile_only_goes_up() -> None:
    config = ConfigTable(connectors=1)
    assert config.set("SecurityProfile", "2") == "Accepted"
    assert config.set("SecurityProfile", "1") == "Rejected"
    assert config.set("SecurityProfile", "2") == "Rejected"
    assert config.set("SecurityProfile", "4") == "Rejected"
    assert config.set("SecurityProfile", "3") == "Accepted"
    assert config.get("SecurityProfile") == "3"
