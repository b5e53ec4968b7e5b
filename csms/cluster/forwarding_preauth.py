"""Command pre-authorizations that travel with the forwarded call they precede.

Why: an OCPI START_SESSION or RESERVE_NOW pre-authorizes its token at the charger
(:meth:`csms.authz.ports.Preauthorizer.preauthorize`, held in the memory of the node that
received the command), then calls the charger. When the charger's socket is on another
node, its Authorize/StartTransaction is decided there: that node must hold the
pre-authorization before the charger can ask, or the eMSP is asked in real time and the
Session loses its authorization_reference. Every pre-authorization is followed by a call
to the same charger, so it rides on that call's message and the serving node applies it
before it calls the charger: no race between two notifications.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from csms.authz.model import Allowed, AuthMethod, AuthStatus, Decision, Source
from csms.authz.ports import Preauthorizer

# At most this many carried pre-authorizations wait per charger (the oldest go first).
PER_CHARGER = 16


def encode_decision(decision: Decision) -> dict[str, Any]:
    return dataclasses.asdict(decision)


def decode_decision(doc: dict[str, Any]) -> Decision:
    allowed, method = doc.get("allowed"), doc.get("auth_method")
    fields = {f.name for f in dataclasses.fields(Decision)}
    return Decision(
        **{
            **{k: v for k, v in doc.items() if k in fields},
            "status": AuthStatus(doc["status"]),
            "source": Source(doc["source"]),
            "allowed": Allowed(allowed) if allowed else None,
            "auth_method": AuthMethod(method) if method else None,
            "extra": dict(doc.get("extra") or {}),
        }
    )


class Carried:
    """Pre-authorizations waiting for the next forwarded call to their charger."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._waiting: dict[str, list[tuple[float, dict[str, Any]]]] = {}

    def add(self, charger_id: str, uid: str, decision: Decision, ttl_s: float) -> None:
        now = self.clock()
        kept = [e for e in self._waiting.get(charger_id, []) if e[0] > now]
        kept.append((now + ttl_s, {"uid": uid, "decision": encode_decision(decision)}))
        self._waiting[charger_id] = kept[-PER_CHARGER:]

    def take(self, charger_id: str) -> list[dict[str, Any]]:
        """What to send with a call to ``charger_id`` now (each entry with its ttl left)."""
        now = self.clock()
        entries = self._waiting.pop(charger_id, [])
        return [{**doc, "ttl_s": until - now} for until, doc in entries if until > now]

    def forget(self, charger_id: str) -> None:
        self._waiting.pop(charger_id, None)


def apply(target: Preauthorizer, charger_id: str, entries: list[dict[str, Any]]) -> None:
    """Hold carried pre-authorizations on this node (the one the charger asks)."""
    for entry in entries:
        target.preauthorize(
            charger_id,
            str(entry["uid"]),
            decode_decision(entry["decision"]),
            ttl_s=float(entry["ttl_s"]),
        )


class CarryingPreauthorizer:
    """The :class:`Preauthorizer` commands use on a node among several: held here (the
    charger may be or come here) and carried to the node its next call goes to."""

    def __init__(
        self, local: Preauthorizer, carried: Carried, is_local: Callable[[str], bool]
    ) -> None:
        self.local = local
        self.carried = carried
        self.is_local = is_local  # its socket is on this node

    def preauthorize(
        self, charger_id: str, uid: str, decision: Decision, ttl_s: float = 900
    ) -> None:
        self.local.preauthorize(charger_id, uid, decision, ttl_s)
        if self.is_local(charger_id):
            self.carried.forget(charger_id)
        else:
            self.carried.add(charger_id, uid, decision, ttl_s)
