"""Callbacks told about committed token writes.

Why: readers outside roaming (the CSMS authorizer) keep short-lived in-memory copies of
tokens. Every token write (push, PATCH, learning, sync page, removal sweep) tells the
listeners which uids changed *after* its commit and *before* its caller is answered, so
a card an eMSP has just blocked is never served from such a copy. Roaming cannot import
those readers; they register a plain callback instead.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import structlog

log = structlog.get_logger("roaming.store")

TokenListener = Callable[[Collection[str] | None], None]
"""Told after a committed token write: the normalised uids written, or None for "any
token may have changed" (removal sweep). Must be quick and must not raise."""


class TokenListeners:
    """The registered listeners; shared by every store that writes tokens."""

    def __init__(self) -> None:
        self._listeners: list[TokenListener] = []

    def add(self, listener: TokenListener) -> Callable[[], None]:
        """Call ``listener`` after every committed token write; returns the remover."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def notify(self, uids: Collection[str] | None) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(uids)
            except Exception:  # a broken reader must not fail the write that succeeded
                log.exception("roaming.token_listener_failed")
