"""The generated admin token: no shared default secret ships with the product.

Why a file next to the store: a fresh ``csms serve`` must be safe without any setup, so
when ``admin.token`` is empty it generates a random token on first start and keeps it
in ``admin.token_file`` (default: ``admin-token`` in the store's folder), readable by
its owner only (mode 0600). The ``csms`` CLI on the same machine reads it from the same
place, so the quickstart needs no token typed anywhere. ``admin.token`` in the config
(or ``CSMS__ADMIN__TOKEN``) still wins over the file.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from csms.config import Config, ConfigError
from csms.store.dialects import dialect_of, sqlite_path

FILE_NAME = "admin-token"


@dataclass(frozen=True)
class TokenSource:
    """Where the admin token came from: ``config`` or ``file`` (``created`` on first start)."""

    kind: str
    path: Path | None = None
    created: bool = False


def token_path(config: Config) -> Path:
    """``admin.token_file``, or ``admin-token`` beside the SQLite store (``var/`` when the
    store is PostgreSQL: there is no store folder then)."""
    if config.admin.token_file:
        return Path(config.admin.token_file)
    url = config.store.effective_url
    if dialect_of(url) != "sqlite":
        return Path("var") / FILE_NAME
    store = sqlite_path(url)
    folder = Path(".") if store == ":memory:" else Path(store).parent
    return folder / FILE_NAME


def read_token(path: Path) -> str | None:
    """The token kept in ``path``, or None when there is no such file."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError("admin.token_file", f"cannot read {path}: {exc.strerror}") from None
    if not text:
        raise ConfigError("admin.token_file", f"{path} is empty; delete it to get a new token")
    return text


def ensure_admin_token(config: Config) -> tuple[Config, TokenSource]:
    """The config with a usable ``admin.token``: the configured one, else the file's, else a
    new random token written to the file (0600, created exclusively)."""
    if config.admin.token:
        return config, TokenSource("config")
    path = token_path(config)
    created = False
    token = read_token(path)
    if token is None:
        token = secrets.token_urlsafe(32)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it just now: use theirs
            token = read_token(path) or token
        except OSError as exc:
            raise ConfigError("admin.token_file", f"cannot create {path}: {exc.strerror}") from None
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(token + "\n")
            created = True
    admin = dataclasses.replace(config.admin, token=token)
    return dataclasses.replace(config, admin=admin), TokenSource("file", path, created)
