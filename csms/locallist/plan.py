"""What goes into a charger's Local Authorization List and how it gets there: pure rules.

Why pure: the selection rule, the difference between what a charger holds and what it
should hold, and the cutting into SendLocalList messages with their list versions are
the part worth reading and testing on their own; :mod:`csms.locallist.manager` only
fetches the facts and sends what this module plans.

Selection (:func:`select`), when more cards qualify than the charger holds
(``LocalAuthListMaxLength``), in this order:

1. the operator's own cards (``id_tags``, Accepted and not expired);
2. roaming tokens most recently used at that charger (latest transaction start first);
3. the other roaming tokens, most recently updated by their eMSP first;

ties by idTag. A uid that is both an own card and a roaming token is the own card; a uid
several eMSPs publish is the most recently updated token.

Versions and chunks (OCPP 1.6 §5.15/§6.41): ``listVersion`` of a Full update is the
version of the whole list, of a Differential the version after it is applied; a charger
may refuse a Differential whose version is not newer than its own (VersionMismatch). A
list longer than ``SendLocalListMaxLength`` goes as one Full message with the first
chunk, then Differential messages adding the rest, each one version higher
(:func:`plan_full`); differences go as Differential messages in the same way
(:func:`plan_differential`). A charger that drops out half-way holds a consistent list at
the version of the last chunk it accepted, which is what we record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from csms.domain.local_lists import Entry

__all__ = ["Candidate", "Entry", "Send", "Update"]

ID_TAG_MAX: Final = 20  # OCPP 1.6 idTag and parentIdTag are CiString20
FULL: Final = "Full"
DIFFERENTIAL: Final = "Differential"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A card that qualifies for a list, with what the selection rule orders by."""

    entry: Entry
    updated_at: str = ""  # when its owner last changed it (ISO 8601)
    last_used_at: str | None = None  # latest transaction start with it at this charger

    @property
    def own(self) -> bool:
        return self.entry.partner_key is None


@dataclass(frozen=True, slots=True)
class Update:
    """One item of a Differential: ``entry`` None removes ``id_tag`` from the list."""

    id_tag: str
    entry: Entry | None

    def wire(self) -> dict[str, Any]:
        item: dict[str, Any] = {"idTag": self.id_tag}
        if self.entry is not None:
            item["idTagInfo"] = self.entry.info()
        return item


@dataclass(frozen=True, slots=True)
class Send:
    """One SendLocalList message as planned."""

    update_type: Literal["Full", "Differential"]
    version: int
    updates: tuple[Update, ...]

    def payload(self) -> dict[str, Any]:
        return {
            "listVersion": self.version,
            "updateType": self.update_type,
            "localAuthorizationList": [u.wire() for u in self.updates],
        }


def fits(id_tag: str, parent_id_tag: str | None) -> bool:
    """Only what OCPP 1.6 can carry goes into a list (CiString20 idTag and parent)."""
    return 0 < len(id_tag) <= ID_TAG_MAX and (parent_id_tag is None or len(parent_id_tag) <= 20)


def parent_of(group_id: str | None) -> str | None:
    """An OCPI ``group_id`` becomes the ``parentIdTag``; one too long for OCPP is left out."""
    return group_id if group_id and len(group_id) <= ID_TAG_MAX else None


def expiry_after(now: datetime, seconds: int) -> str:
    """``expiryDate`` of a roaming entry: the list is renewed before it runs out, so a card
    the eMSP blocks while the charger is unreachable stops working offline in time."""
    return (now + timedelta(seconds=seconds)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def select(candidates: Iterable[Candidate], max_length: int) -> list[Entry]:
    """The entries a charger holding at most ``max_length`` should hold (rule above)."""
    best: dict[str, Candidate] = {}
    for c in candidates:
        key = c.entry.norm
        held = best.get(key)
        if held is None or _preferred(c, held):
            best[key] = c
    ordered = sorted(best.values(), key=lambda c: c.entry.norm)
    ordered.sort(key=lambda c: c.updated_at, reverse=True)
    ordered.sort(key=lambda c: c.last_used_at or "", reverse=True)
    ordered.sort(key=lambda c: not c.own)
    return [c.entry for c in ordered[: max(0, max_length)]]


def _preferred(a: Candidate, b: Candidate) -> bool:
    """For one uid: an own card beats a roaming token, then the most recently updated."""
    if a.own != b.own:
        return a.own
    return a.updated_at > b.updated_at


def differences(
    held: Mapping[str, Entry], wanted: Sequence[Entry], renew_before: str
) -> list[Update]:
    """The Differential items that turn ``held`` (by norm) into ``wanted``.

    A roaming entry whose held ``expiryDate`` is earlier than ``renew_before`` is sent
    again (with its new expiry), so lists are renewed before they run out.
    """
    out: list[Update] = []
    wanted_norms = set()
    for entry in wanted:
        wanted_norms.add(entry.norm)
        old = held.get(entry.norm)
        if old is None or _changed(old, entry, renew_before):
            out.append(Update(entry.id_tag, entry))
    for norm, old in sorted(held.items()):
        if norm not in wanted_norms:
            out.append(Update(old.id_tag, None))
    return out


def _changed(old: Entry, new: Entry, renew_before: str) -> bool:
    if (old.status, old.parent_id_tag, old.partner_key) != (
        new.status,
        new.parent_id_tag,
        new.partner_key,
    ):
        return True
    if new.partner_key is None:
        return old.expiry_date != new.expiry_date
    return (old.expiry_date or "") < renew_before


def plan_full(entries: Sequence[Entry], version: int, chunk: int) -> list[Send]:
    """A whole list: Full with the first ``chunk`` entries at ``version + 1``, then
    Differential additions of the rest, one version more each."""
    size = max(1, chunk)
    items = [Update(e.id_tag, e) for e in entries]
    sends = [Send(FULL, version + 1, tuple(items[:size]))]
    for i, start in enumerate(range(size, len(items), size), start=2):
        sends.append(Send(DIFFERENTIAL, version + i, tuple(items[start : start + size])))
    return sends


def plan_differential(updates: Sequence[Update], version: int, chunk: int) -> list[Send]:
    """Differences in messages of at most ``chunk`` items, versions ``version + 1``..."""
    size = max(1, chunk)
    return [
        Send(DIFFERENTIAL, version + i, tuple(updates[start : start + size]))
        for i, start in enumerate(range(0, len(updates), size), start=1)
    ]


def apply(held: Mapping[str, Entry], send: Send) -> dict[str, Entry]:
    """What the charger holds after accepting ``send`` (as OCPP 1.6 defines it)."""
    out: dict[str, Entry] = {} if send.update_type == FULL else dict(held)
    for u in send.updates:
        if u.entry is None:
            out.pop(u.id_tag.upper(), None)
        else:
            out[u.id_tag.upper()] = u.entry
    return out


def supports_lists(profiles: str | None) -> bool:
    """``SupportedFeatureProfiles`` (a CSL) names LocalAuthListManagement."""
    if not profiles:
        return False
    return any(p.strip().lower() == "localauthlistmanagement" for p in profiles.split(","))


def parse_length(value: str | None, default: int) -> int:
    """A charger-reported maximum (``LocalAuthListMaxLength``...), or ``default``."""
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return default
    return n if n > 0 else default
