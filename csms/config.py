"""Typed, frozen configuration read from ``config.toml`` plus environment overrides.

Why hand-written, not pydantic: the rules are few (known keys, exact types, some ranges)
and an error must name the key as an operator writes it (``ocpi.port``): a short walker.

Overrides: ``CSMS__<SECTION>__<KEY>=value`` (case-insensitive), parsed as the field's
type. ``[partners.<name>]`` tables hold per-partner authorization overrides. Every
problem raises :class:`ConfigError` whose message starts with the key.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from csms.cluster.config import ClusterConfig, validate_cluster
from csms.retention_config import RetentionConfig, validate_retention
from csms.security_config import ConnectionLimits, SecurityConfig, validate_limits
from csms.store.dialects import StoreUrlError, dialect_of, sqlite_path

ENV_PREFIX = "CSMS__"


class ConfigError(ValueError):
    """A config file or override that cannot be used; ``key`` names the culprit."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass(frozen=True)
class ServerConfig(ConnectionLimits):
    host: str = "0.0.0.0"
    port: int = 9000
    path_prefix: str = "/ocpp"
    unknown_chargers: Literal["reject", "accept", "pending"] = "reject"
    heartbeat_interval_s: int = 300
    pending_retry_interval_s: int = 60
    tls_cert: str = ""
    tls_key: str = ""
    listen_backlog: int = 4096
    max_message_bytes: int = 65536
    ping_interval_s: float = 60.0
    call_timeout_s: float = 30.0
    charge_point_id_max_length: int = 48
    # The collector policy (csms/collector.py): survivors frozen every this many seconds
    # (0 = the interpreter's own generations), and one full collection per interval.
    gc_freeze_interval_s: float = 1.0
    gc_full_collect_interval_s: float = 3600.0


DEFAULT_STORE_URL = "sqlite:///var/csms.sqlite3"


@dataclass(frozen=True)
class StoreConfig:
    # sqlite:///relative/file.sqlite3 (four slashes: absolute) or
    # postgresql://user@host:5432/dbname.
    url: str = DEFAULT_STORE_URL
    # The SQLite file alone (older spelling of sqlite:///<path>); with it, store.url
    # stays at its default.
    path: str = ""
    # PostgreSQL connections per node, at most (the database's max_connections must
    # cover the sum over all nodes, plus the CLI and maintenance).
    pool_size: int = 10

    @property
    def effective_url(self) -> str:
        """The store this node opens."""
        return f"sqlite:///{self.path}" if self.path else self.url


@dataclass(frozen=True)
class AdminConfig:
    host: str = "127.0.0.1"
    port: int = 9100
    # Empty: ``csms serve`` generates a random token on first start and keeps it in
    # ``admin.token_file`` (see csms/admin/token_file.py); the CLI reads it from there.
    token: str = ""
    token_file: str = ""  # empty: admin-token beside the SQLite store (var/ on PostgreSQL)
    # Dashboard logins: how long one lasts, and whether its cookie is marked Secure
    # (browsers keep Secure cookies from http://localhost / 127.0.0.1 too; set false only
    # to use the dashboard over plain HTTP from another host on a trusted network).
    session_ttl_s: float = 28800.0
    session_cookie_secure: bool = True


@dataclass(frozen=True)
class MetricsConfig:
    """``GET /metrics`` on the admin port (Prometheus text format)."""

    enabled: bool = True
    # Bearer token for scrapers. Empty: open when the admin API listens on loopback only,
    # else the admin token is required (never an open /metrics on a public address).
    token: str = ""


@dataclass(frozen=True)
class OcpiConfig:
    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = 9200
    public_base_url: str = "http://127.0.0.1:9200"
    country_code: str = "NL"
    party_id: str = "CPO"
    business_name: str = "Example CPO"
    business_website: str = ""
    http_timeout_s: float = 10.0
    connection_limit_per_partner: int = 512
    token_sync_interval_s: float = 86400.0
    token_sync_page_size: int = 1000
    page_limit: int = 1000
    # Partner URLs on loopback/private addresses (one-machine setups); off in production.
    allow_private_partner_urls: bool = False


@dataclass(frozen=True)
class OcpiCpoConfig:
    """The CPO-side OCPI modules: locations file, session pushes, commands, outbox."""

    locations_file: str = ""
    currency: str = "EUR"
    session_update_interval_s: float = 60.0
    command_timeout_s: int = 60
    reservation_check_interval_s: float = 5.0
    outbox_retry_initial_s: float = 2.0
    outbox_retry_max_s: float = 600.0
    outbox_max_attempts: int = 100
    outbox_poll_interval_s: float = 5.0
    outbox_concurrency: int = 16


@dataclass(frozen=True)
class AuthzConfig:
    charger_authorize_timeout_s: float = 20.0
    authorize_deadline_s: float = 5.0
    id_tag_expiry_s: int = 86400
    authorize_reuse_window_s: int = 900
    concurrent_tx: Literal["reject", "allow"] = "reject"
    concurrent_tx_on_authorize: bool = False
    reply_reserve_s: float = 0.05


@dataclass(frozen=True)
class LocalListsConfig:
    """Local Authorization Lists sent to chargers (docs/local-lists.md)."""

    enabled: bool = True
    debounce_s: float = 2.0
    connect_delay_s: float = 1.0
    entry_expiry_s: int = 2_592_000
    renew_interval_s: float = 3600.0
    retry_initial_s: float = 10.0
    retry_max_s: float = 600.0
    concurrency: int = 16
    default_max_length: int = 100
    default_send_max_length: int = 20


@dataclass(frozen=True)
class SecurityProfileConfig:
    """OCPP security profile 3 (TLS client certificates) and the CA that signs chargers'
    certificates (SignCertificate). Needs ``server.tls_cert``/``tls_key`` for the listener."""

    client_ca_file: str = ""
    client_cert_required: bool = False
    signing_ca_cert: str = ""
    signing_ca_key: str = ""
    signed_cert_validity_days: int = 365


@dataclass(frozen=True)
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


@dataclass(frozen=True)
class PartnerOverride:
    """Per-partner settings, keyed ``[partners.<COUNTRY>-<PARTY>]`` e.g. ``[partners.NL-EMS]``."""

    authorize_deadline_s: float | None = None
    fallback_allowed_offline: Literal["accept", "reject"] | None = None
    fallback_allowed: Literal["accept", "reject"] | None = None
    uid_prefixes: tuple[str, ...] = ()
    local_list: bool = True


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    ocpi: OcpiConfig = field(default_factory=OcpiConfig)
    ocpi_cpo: OcpiCpoConfig = field(default_factory=OcpiCpoConfig)
    authz: AuthzConfig = field(default_factory=AuthzConfig)
    local_lists: LocalListsConfig = field(default_factory=LocalListsConfig)
    security_profile: SecurityProfileConfig = field(default_factory=SecurityProfileConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    log: LogConfig = field(default_factory=LogConfig)
    partners: Mapping[str, PartnerOverride] = field(default_factory=dict)

    def partner(self, key: str) -> PartnerOverride:
        return self.partners.get(key.upper(), PartnerOverride())


_SECTIONS: dict[str, type] = {
    name: hint
    for name, hint in typing.get_type_hints(Config).items()
    if isinstance(hint, type) and dataclasses.is_dataclass(hint)
}


def _coerce(key: str, tp: Any, value: Any, from_env: bool) -> Any:
    """Check ``value`` against the annotation ``tp``; env strings are parsed first."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None or (from_env and value == ""):
            return None
        return _coerce(key, args[0], value, from_env)
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(key, f"must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    if origin is tuple:
        if from_env and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(key, f"must be a list of strings, got {value!r}")
        return tuple(value)
    if tp is bool:
        if from_env and isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, got {value!r}")
        return value
    if tp is int:
        if from_env and isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise ConfigError(key, f"must be an integer, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an integer, got {value!r}")
        return value
    if tp is float:
        if from_env and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(key, f"must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, got {value!r}")
        return value
    raise ConfigError(key, f"unsupported type {tp!r}")  # pragma: no cover - programming error


def _build(cls: type, prefix: str, raw: Mapping[str, Any], from_env: Mapping[str, bool]) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            raise ConfigError(f"{prefix}.{key}", "unknown key")
    values = {
        k: _coerce(f"{prefix}.{k}", hints[k], v, from_env.get(k, False)) for k, v in raw.items()
    }
    return cls(**values)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for name, value in environ.items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) != 2 or not all(parts):
            raise ConfigError(name, "environment override must be CSMS__<SECTION>__<KEY>")
        out.setdefault(parts[0], {})[parts[1]] = value
    return out


def _validate(cfg: Config) -> None:
    def positive(key: str, value: float) -> None:
        if value <= 0:
            raise ConfigError(key, f"must be greater than 0, got {value}")

    for key, port in (
        ("server.port", cfg.server.port),
        ("admin.port", cfg.admin.port),
        ("ocpi.port", cfg.ocpi.port),
    ):
        if not 0 <= port <= 65535:
            raise ConfigError(key, f"must be a TCP port 0..65535, got {port}")
    _validate_store(cfg.store)
    positive("server.heartbeat_interval_s", cfg.server.heartbeat_interval_s)
    positive("server.call_timeout_s", cfg.server.call_timeout_s)
    positive("server.max_message_bytes", cfg.server.max_message_bytes)
    positive("server.gc_full_collect_interval_s", cfg.server.gc_full_collect_interval_s)
    validate_limits(cfg.server, cfg.security, ConfigError)
    positive("authz.charger_authorize_timeout_s", cfg.authz.charger_authorize_timeout_s)
    positive("authz.id_tag_expiry_s", cfg.authz.id_tag_expiry_s)
    positive("ocpi.page_limit", cfg.ocpi.page_limit)
    positive("admin.session_ttl_s", cfg.admin.session_ttl_s)
    positive("ocpi.token_sync_page_size", cfg.ocpi.token_sync_page_size)
    if not cfg.server.path_prefix.startswith("/"):
        raise ConfigError("server.path_prefix", "must start with '/'")
    if bool(cfg.server.tls_cert) != bool(cfg.server.tls_key):
        raise ConfigError("server.tls_key", "tls_cert and tls_key must be set together")
    _validate_security_profile(cfg)
    if cfg.admin.token and cfg.admin.token.strip() != cfg.admin.token:
        raise ConfigError("admin.token", "must not start or end with whitespace")
    if cfg.metrics.token and cfg.metrics.token.strip() != cfg.metrics.token:
        raise ConfigError("metrics.token", "must not start or end with whitespace")
    limit = deadline_ceiling(cfg.authz.charger_authorize_timeout_s)
    deadlines: list[tuple[str, float]] = [
        ("authz.authorize_deadline_s", cfg.authz.authorize_deadline_s)
    ]
    deadlines += [
        (f"partners.{name}.authorize_deadline_s", p.authorize_deadline_s)
        for name, p in cfg.partners.items()
        if p.authorize_deadline_s is not None
    ]
    for key, value in deadlines:
        positive(key, value)
        if value > limit:
            raise ConfigError(
                key,
                f"{value} s is not comfortably shorter than authz.charger_authorize_timeout_s "
                f"({cfg.authz.charger_authorize_timeout_s} s); at most {limit:g} s is allowed",
            )
    reserve = cfg.authz.reply_reserve_s
    shortest = min(value for _, value in deadlines)
    if not 0 <= reserve < shortest / 2:
        raise ConfigError(
            "authz.reply_reserve_s",
            f"{reserve} s must be at least 0 and under half the shortest authorize deadline "
            f"({shortest:g} s)",
        )
    validate_retention(cfg.retention, ConfigError)
    validate_cluster(cfg.cluster, ConfigError)
    cpo = cfg.ocpi_cpo
    positive("ocpi_cpo.session_update_interval_s", cpo.session_update_interval_s)
    positive("ocpi_cpo.command_timeout_s", cpo.command_timeout_s)
    positive("ocpi_cpo.reservation_check_interval_s", cpo.reservation_check_interval_s)
    positive("ocpi_cpo.outbox_retry_initial_s", cpo.outbox_retry_initial_s)
    positive("ocpi_cpo.outbox_max_attempts", cpo.outbox_max_attempts)
    positive("ocpi_cpo.outbox_poll_interval_s", cpo.outbox_poll_interval_s)
    positive("ocpi_cpo.outbox_concurrency", cpo.outbox_concurrency)
    if cpo.outbox_retry_max_s < cpo.outbox_retry_initial_s:
        raise ConfigError("ocpi_cpo.outbox_retry_max_s", "must be >= outbox_retry_initial_s")
    if len(cpo.currency) != 3 or not cpo.currency.isupper():
        raise ConfigError("ocpi_cpo.currency", "must be an ISO 4217 code like EUR")
    lists = cfg.local_lists
    positive("local_lists.debounce_s", lists.debounce_s)
    positive("local_lists.entry_expiry_s", lists.entry_expiry_s)
    positive("local_lists.renew_interval_s", lists.renew_interval_s)
    positive("local_lists.retry_initial_s", lists.retry_initial_s)
    positive("local_lists.concurrency", lists.concurrency)
    positive("local_lists.default_max_length", lists.default_max_length)
    positive("local_lists.default_send_max_length", lists.default_send_max_length)
    if lists.connect_delay_s < 0:
        raise ConfigError("local_lists.connect_delay_s", "must be 0 or more")
    if lists.retry_max_s < lists.retry_initial_s:
        raise ConfigError("local_lists.retry_max_s", "must be >= retry_initial_s")
    if len(cfg.ocpi.country_code) != 2:
        raise ConfigError("ocpi.country_code", "must be 2 characters (ISO 3166-1 alpha-2)")
    if not 1 <= len(cfg.ocpi.party_id) <= 3:
        raise ConfigError("ocpi.party_id", "must be 1 to 3 characters")


def is_loopback(host: str) -> bool:
    """Whether a listen address is reachable from this machine only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _validate_store(store: StoreConfig) -> None:
    if store.path and store.url != DEFAULT_STORE_URL:
        raise ConfigError(
            "store.path", 'set store.url or store.path, not both (store.url = "sqlite:///<path>")'
        )
    try:
        if dialect_of(store.effective_url) == "sqlite":
            sqlite_path(store.effective_url)
    except StoreUrlError as exc:
        raise ConfigError("store.url", str(exc)) from None
    if store.pool_size < 1:
        raise ConfigError("store.pool_size", f"must be at least 1, got {store.pool_size}")


def _validate_security_profile(cfg: Config) -> None:
    sp = cfg.security_profile
    if sp.client_ca_file and not cfg.server.tls_cert:
        raise ConfigError(
            "security_profile.client_ca_file",
            "client certificates need TLS: set server.tls_cert and server.tls_key",
        )
    if sp.client_cert_required and not sp.client_ca_file:
        raise ConfigError(
            "security_profile.client_cert_required",
            "needs security_profile.client_ca_file (the CA bundle charger certificates chain to)",
        )
    if bool(sp.signing_ca_cert) != bool(sp.signing_ca_key):
        raise ConfigError(
            "security_profile.signing_ca_key",
            "signing_ca_cert and signing_ca_key must be set together",
        )
    for key, path in (
        ("security_profile.client_ca_file", sp.client_ca_file),
        ("security_profile.signing_ca_cert", sp.signing_ca_cert),
        ("security_profile.signing_ca_key", sp.signing_ca_key),
    ):
        if path and not Path(path).is_file():
            raise ConfigError(key, f"no such file: {path}")
    if not 1 <= sp.signed_cert_validity_days <= 3650:
        raise ConfigError(
            "security_profile.signed_cert_validity_days",
            f"must be 1..3650, got {sp.signed_cert_validity_days}",
        )


def deadline_ceiling(charger_timeout_s: float) -> float:
    """The longest authorize deadline we accept: half the charger's timeout.

    Half leaves room for the charger's own network latency and our queueing, so the
    fallback answer always lands before the charger gives up on the CALL.
    """
    return charger_timeout_s / 2


def load(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (may be missing: defaults apply) and apply ``CSMS__`` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if p.exists():
            try:
                raw = tomllib.loads(p.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(str(p), f"not valid TOML: {exc}") from None
        else:
            raise ConfigError(str(p), "config file not found")
    env = _env_overrides(os.environ if environ is None else environ)
    sections: dict[str, Any] = {}
    for name in raw:
        if name not in _SECTIONS and name != "partners":
            raise ConfigError(name, "unknown section")
    for name in env:
        if name not in _SECTIONS:
            raise ConfigError(f"{ENV_PREFIX}{name.upper()}", "unknown section in override")
    for name, cls in _SECTIONS.items():
        section = raw.get(name, {})
        if not isinstance(section, dict):
            raise ConfigError(name, "must be a table")
        merged = dict(section)
        if name == "store" and {"url", "path"} & env.get(name, {}).keys():
            # Overriding either key names the store: the file's location is replaced.
            merged.pop("url", None)
            merged.pop("path", None)
        merged.update(env.get(name, {}))
        flags = {k: True for k in env.get(name, {})}
        sections[name] = _build(cls, name, merged, flags)
    partners_raw = raw.get("partners", {})
    if not isinstance(partners_raw, dict):
        raise ConfigError("partners", "must be a table of tables")
    partners: dict[str, PartnerOverride] = {}
    for key, table in partners_raw.items():
        if not isinstance(table, dict):
            raise ConfigError(f"partners.{key}", "must be a table")
        partners[key.upper()] = _build(PartnerOverride, f"partners.{key}", table, {})
    cfg = Config(**sections, partners=types.MappingProxyType(partners))
    _validate(cfg)
    return cfg
