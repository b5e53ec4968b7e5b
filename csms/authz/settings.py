"""What the authorizer is configured with: :class:`AuthzSettings` and the real clock.

Why apart from :mod:`csms.authz.service`: the one place that reads :mod:`csms.config`
for authorization, so the service and the policy depend on resolved values only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from csms.authz.model import FallbackRules, normalise
from csms.config import Config


class SystemClock:
    """The real clock (:class:`csms.authz.ports.Clock`)."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class AuthzSettings:
    """The slice of :class:`csms.config.Config` the authorizer needs, per partner resolved."""

    deadline_s: float = 5.0
    id_tag_expiry_s: int = 86400
    reuse_window_s: float = 900.0
    concurrent_tx: Literal["reject", "allow"] = "reject"
    # ConcurrentTx is always checked on StartTransaction; on Authorize only when asked,
    # because it costs a store query on the hot path (see docs/authorization.md).
    concurrent_check_on_authorize: bool = False
    # Kept back from every deadline for answering: the fallback timer fires this much
    # earlier, so a GC pause or a queue of frames after it still lands inside the deadline.
    reply_reserve_s: float = 0.0
    partner_deadlines: Mapping[str, float] = field(default_factory=dict)
    partner_rules: Mapping[str, FallbackRules] = field(default_factory=dict)
    uid_prefixes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: Config) -> AuthzSettings:
        deadlines: dict[str, float] = {}
        rules: dict[str, FallbackRules] = {}
        prefixes: dict[str, tuple[str, ...]] = {}
        for key, p in cfg.partners.items():
            if p.authorize_deadline_s is not None:
                deadlines[key] = p.authorize_deadline_s
            rules[key] = FallbackRules(
                allowed_offline_accept=p.fallback_allowed_offline != "reject",
                allowed_accept=p.fallback_allowed != "reject",
            )
            if p.uid_prefixes:
                prefixes[key] = tuple(normalise(x) for x in p.uid_prefixes)
        return cls(
            deadline_s=cfg.authz.authorize_deadline_s,
            id_tag_expiry_s=cfg.authz.id_tag_expiry_s,
            reuse_window_s=float(cfg.authz.authorize_reuse_window_s),
            concurrent_tx=cfg.authz.concurrent_tx,
            concurrent_check_on_authorize=cfg.authz.concurrent_tx_on_authorize,
            reply_reserve_s=cfg.authz.reply_reserve_s,
            partner_deadlines=deadlines,
            partner_rules=rules,
            uid_prefixes=prefixes,
        )

    def deadline_for(self, partner_id: str | None) -> float:
        if partner_id is None:
            return self.deadline_s
        return self.partner_deadlines.get(partner_id.upper(), self.deadline_s)

    def timer_for(self, partner_id: str | None) -> float:
        """Seconds after arrival at which waiting stops: the deadline less the reserve."""
        return self.deadline_for(partner_id) - self.reply_reserve_s

    def rules_for(self, partner_id: str | None) -> FallbackRules:
        if partner_id is None:
            return FallbackRules()
        return self.partner_rules.get(partner_id.upper(), FallbackRules())

    def route(self, uid_norm: str) -> list[str]:
        """Partners whose configured uid prefixes match: they alone are asked."""
        return [p for p, pre in self.uid_prefixes.items() if uid_norm.startswith(pre)]
