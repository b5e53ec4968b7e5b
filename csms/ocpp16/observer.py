"""What the OCPP connection tells an observer about every CALL it answered (metrics).

Why a protocol: the OCPP package knows nothing of monitoring; the composition root
passes an object with this one method, and the default observes nothing. Called on the
event loop right after the answer was made, on the hot path: it must be quick and must
not raise.
"""

from __future__ import annotations

from typing import Protocol


class MessageObserver(Protocol):
    """Told the outcome of each charger-initiated CALL."""

    def answered(self, action: str, error_code: str | None) -> None:
        """``error_code`` is None for a CALLRESULT, else the CALLERROR's code. ``action`` is
        the CALL's action as sent (``?`` when the frame could not be read)."""
        ...


class NoMessageObserver:
    """The default: nobody listens."""

    def answered(self, action: str, error_code: str | None) -> None:
        return None


NO_OBSERVER = NoMessageObserver()
