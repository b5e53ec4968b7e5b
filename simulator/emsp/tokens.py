"""Token sets for the sandbox: generated (deterministic), loaded from JSON/CSV, or lazy.

Why index-addressable generation: the token sync benchmark pulls a million tokens, which
the sandbox must not hold in memory. Every generated token is a pure function of
(seed, index), and ``last_updated`` grows by one second per index, so a page or a
``date_from``/``date_to`` window maps straight to an index range; the in-memory
generator and the lazy list therefore produce identical tokens.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from simulator.emsp.wire import fmt_time

WHITELIST_TYPES = ("ALWAYS", "ALLOWED", "ALLOWED_OFFLINE", "NEVER")
TOKEN_TYPES = ("RFID", "APP_USER", "AD_HOC_USER", "OTHER")
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)


class TokenFileError(ValueError):
    """A token file that cannot be used; the message names the file and row."""


def parse_mix(text: str) -> dict[str, int]:
    """``"ALWAYS=50,NEVER=50"`` -> weights; unknown whitelist names are an error."""
    mix: dict[str, int] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, _, weight = part.partition("=")
        name = name.strip().upper()
        if name not in WHITELIST_TYPES:
            raise ValueError(f"unknown whitelist type {name!r}; use {', '.join(WHITELIST_TYPES)}")
        try:
            mix[name] = int(weight or "1")
        except ValueError:
            raise ValueError(f"weight of {name} must be an integer, got {weight!r}") from None
    if not mix or sum(mix.values()) <= 0:
        raise ValueError("whitelist mix needs at least one positive weight")
    return mix


def _mix_hash(seed: int, n: int) -> int:
    """A cheap, well-spread, deterministic hash of (seed, n) (splitmix64 finaliser)."""
    z = (seed * 0x9E3779B97F4A7C15 + n + 1) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


@dataclass(frozen=True)
class TokenSpec:
    """How to generate tokens: ``uid_pattern`` may use ``{n}`` (index) and ``{r}``
    (8 hex digits derived from seed and index)."""

    count: int
    country_code: str = "NL"
    party_id: str = "EMS"
    seed: int = 1
    uid_pattern: str = "04{n:010X}"
    whitelist_mix: Mapping[str, int] = field(default_factory=lambda: {"ALLOWED": 1})
    type: str = "RFID"
    invalid_every: int = 0  # every k-th token gets valid=false (0: none)
    issuer: str = "eMSP Sandbox"

    def token(self, n: int) -> dict[str, Any]:
        h = _mix_hash(self.seed, n)
        total = sum(self.whitelist_mix.values())
        pick = h % total
        whitelist = "ALLOWED"
        for name, weight in self.whitelist_mix.items():
            if pick < weight:
                whitelist = name
                break
            pick -= weight
        uid = self.uid_pattern.format(n=n, r=f"{(h >> 32) & 0xFFFFFFFF:08X}")
        valid = not (self.invalid_every and (n + 1) % self.invalid_every == 0)
        return {
            "country_code": self.country_code,
            "party_id": self.party_id,
            "uid": uid,
            "type": self.type,
            "contract_id": f"{self.country_code}-{self.party_id}-C{n:08d}",
            "issuer": self.issuer,
            "valid": valid,
            "whitelist": whitelist,
            "last_updated": fmt_time(BASE_TIME + timedelta(seconds=n)),
        }

    def generate(self) -> Iterator[dict[str, Any]]:
        return (self.token(n) for n in range(self.count))

    def index_range(self, date_from: datetime | None, date_to: datetime | None) -> range:
        """Indices whose last_updated is in [date_from, date_to)."""
        lo, hi = 0, self.count
        if date_from is not None:
            secs = (date_from - BASE_TIME).total_seconds()
            lo = max(lo, int(-(-secs // 1)))  # ceil
        if date_to is not None:
            secs = (date_to - BASE_TIME).total_seconds()
            hi = min(hi, int(-(-secs // 1)))
        return range(lo, max(lo, hi))


def load_file(path: str | Path, country_code: str, party_id: str) -> list[dict[str, Any]]:
    """Tokens from a JSON list (Token objects) or a CSV with a header row.

    CSV columns: ``uid`` required; ``type``, ``contract_id``, ``whitelist``, ``valid``,
    ``issuer``, ``group_id``, ``visual_number``, ``allowed`` optional.
    Missing fields get defaults so a two-column file is enough for a demo.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise TokenFileError(f"{p}: cannot read: {exc}") from None
    rows: list[dict[str, Any]]
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TokenFileError(f"{p}: not valid JSON: {exc}") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise TokenFileError(f"{p}: must be a JSON list of token objects")
        rows = data
    else:
        rows = list(csv.DictReader(text.splitlines()))
    out = []
    for i, row in enumerate(rows, start=1):
        uid = str(row.get("uid") or "").strip()
        if not uid or len(uid) > 36:
            raise TokenFileError(f"{p}: row {i}: uid must be 1..36 characters")
        whitelist = str(row.get("whitelist") or "ALLOWED").upper()
        if whitelist not in WHITELIST_TYPES:
            raise TokenFileError(f"{p}: row {i}: unknown whitelist {whitelist!r}")
        valid = row.get("valid", True)
        if isinstance(valid, str):
            valid = valid.strip().lower() not in ("0", "false", "no", "")
        tok: dict[str, Any] = {
            "country_code": row.get("country_code") or country_code,
            "party_id": row.get("party_id") or party_id,
            "uid": uid,
            "type": str(row.get("type") or "RFID").upper(),
            "contract_id": row.get("contract_id") or f"{country_code}-{party_id}-{uid}"[:36],
            "issuer": row.get("issuer") or "eMSP Sandbox",
            "valid": bool(valid),
            "whitelist": whitelist,
            "last_updated": row.get("last_updated") or fmt_time(BASE_TIME),
        }
        for opt in ("group_id", "visual_number", "language"):
            if row.get(opt):
                tok[opt] = row[opt]
        if row.get("allowed"):
            tok["_allowed"] = str(row["allowed"]).upper()
        out.append(tok)
    return out
