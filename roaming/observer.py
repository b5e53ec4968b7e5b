"""What roaming tells an observer about its outgoing OCPI calls (metrics, for example).

Why a protocol here and not a metrics library: roaming stays free of the CSMS and of any
particular monitoring stack; whoever composes the runtime passes an object with this one
method to :class:`roaming.client.OcpiClient`, and the default observes nothing. The
method is called once per call, on the event loop, after the call ended: it must be
quick and must not raise.
"""

from __future__ import annotations

from typing import Protocol


class CallObserver(Protocol):
    """Told the outcome and duration of every OCPI call made to a partner."""

    def call_finished(self, partner: str, method: str, outcome: str, seconds: float) -> None:
        """``outcome``: ``ok`` (OCPI success or an allowed status) or the error kind
        (``timeout``, ``unreachable``, ``http_error``, ``ocpi_error``, ...)."""
        ...


class NoCallObserver:
    """The default: nobody listens."""

    def call_finished(self, partner: str, method: str, outcome: str, seconds: float) -> None:
        return None
