"""Config: defaults load, unknown keys and bad values name the key, env overrides apply."""

from pathlib import Path

import pytest

from csms import config as cfgmod
from csms.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_shipped_config_toml_loads_with_documented_defaults():
    cfg = cfgmod.load(ROOT / "config.toml", environ={})
    # The one shipped value that differs from the code default: private partner URLs are
    # allowed so the quickstart and the sandbox work on one machine (off in code).
    ocpi = cfgmod.dataclasses.replace(cfgmod.OcpiConfig(), allow_private_partner_urls=True)
    assert cfg == cfgmod.Config(partners=cfg.partners, ocpi=ocpi)
    assert cfg.authz.authorize_deadline_s == 5.0
    assert cfg.server.unknown_chargers == "reject"


def test_every_setting_is_in_config_toml():
    text = (ROOT / "config.toml").read_text()
    for section, cls in cfgmod._SECTIONS.items():
        assert f"[{section}]" in text
        for f in cfgmod.dataclasses.fields(cls):
            assert f"\n{f.name} = " in text, f"{section}.{f.name} missing from config.toml"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[server]\nportt = 1\n", "server.portt"),
        ("[nope]\nx = 1\n", "nope"),
        ("[server]\nport = 'x'\n", "server.port"),
        ("[server]\nport = 70000\n", "server.port"),
        ("[server]\nunknown_chargers = 'maybe'\n", "server.unknown_chargers"),
        ("[ocpi]\nenabled = 1\n", "ocpi.enabled"),
        ("[authz]\nauthorize_deadline_s = 15\n", "authz.authorize_deadline_s"),
        ("[partners.NL-EMS]\nauthorize_deadline_s = 19\n", "partners.NL-EMS.authorize_deadline_s"),
        ("[partners.NL-EMS]\nbogus = 1\n", "partners.NL-EMS.bogus"),
        ("[server]\ntls_cert = 'a.pem'\n", "server.tls_key"),
        ("[authz]\nreply_reserve_s = -0.1\n", "authz.reply_reserve_s"),
        ("[authz]\nauthorize_deadline_s = 1.0\nreply_reserve_s = 0.5\n", "authz.reply_reserve_s"),
        ("[partners.NL-EMS]\nauthorize_deadline_s = 0.08\n", "authz.reply_reserve_s"),
        ("[server]\ngc_freeze_interval_s = -1\n", "server.gc_freeze_interval_s"),
        ("[server]\ngc_full_collect_interval_s = 0\n", "server.gc_full_collect_interval_s"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as err:
        cfgmod.load(write(tmp_path, text), environ={})
    assert err.value.key == key
    assert str(err.value).startswith(key)


def test_env_overrides_are_typed(tmp_path):
    env = {
        "CSMS__SERVER__PORT": "9123",
        "CSMS__OCPI__ENABLED": "false",
        "CSMS__AUTHZ__AUTHORIZE_DEADLINE_S": "2.5",
        "CSMS__ADMIN__TOKEN": "s3cret",
        "OTHER": "ignored",
    }
    cfg = cfgmod.load(write(tmp_path, "[server]\nport = 1\n"), environ=env)
    assert cfg.server.port == 9123
    assert cfg.ocpi.enabled is False
    assert cfg.authz.authorize_deadline_s == 2.5
    assert cfg.admin.token == "s3cret"


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"CSMS__SERVER__PORT": "abc"}, "server.port"),
        ({"CSMS__SERVER__NOPE": "1"}, "server.nope"),
        ({"CSMS__NOPE__X": "1"}, "CSMS__NOPE"),
        ({"CSMS__SERVER": "1"}, "CSMS__SERVER"),
    ],
)
def test_bad_env_override_names_the_key(env, key):
    with pytest.raises(ConfigError) as err:
        cfgmod.load(None, environ=env)
    assert err.value.key == key


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError):
        cfgmod.load(tmp_path / "absent.toml", environ={})


def test_partner_override_lookup_is_case_insensitive(tmp_path):
    cfg = cfgmod.load(
        write(tmp_path, "[partners.nl-ems]\nauthorize_deadline_s = 2.0\nuid_prefixes = ['04']\n"),
        environ={},
    )
    assert cfg.partner("NL-EMS").authorize_deadline_s == 2.0
    assert cfg.partner("nl-ems").uid_prefixes == ("04",)
    assert cfg.partner("DE-XYZ").authorize_deadline_s is None


def test_authz_settings_come_from_config(tmp_path):
    from csms.authz.service import AuthzSettings

    text = "[authz]\nconcurrent_tx_on_authorize = true\nreply_reserve_s = 0.2\n"
    settings = AuthzSettings.from_config(cfgmod.load(write(tmp_path, text), environ={}))
    assert settings.concurrent_check_on_authorize is True
    assert settings.timer_for(None) == pytest.approx(5.0 - 0.2)
