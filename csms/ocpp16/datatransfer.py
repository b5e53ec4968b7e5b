"""Vendor-specific DataTransfer: a registry of handlers per vendorId (and messageId).

Answers: no handler for the vendorId -> ``UnknownVendorId``; the vendor is known but
has neither a handler for this messageId nor a catch-all -> ``UnknownMessageId``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

# (charger_id, message_id, data) -> (status, data); status is Accepted or Rejected.
VendorHandler = Callable[[str, str | None, str | None], Awaitable[tuple[str, str | None]]]


class VendorRegistry:
    def __init__(self) -> None:
        self._vendors: dict[str, dict[str | None, VendorHandler]] = {}

    def register_vendor(
        self, vendor_id: str, handler: VendorHandler, message_id: str | None = None
    ) -> None:
        """Handle DataTransfer for ``vendor_id``; ``message_id=None`` catches every messageId."""
        self._vendors.setdefault(vendor_id, {})[message_id] = handler

    async def dispatch(
        self, charger_id: str, vendor_id: str, message_id: str | None, data: str | None
    ) -> dict[str, Any]:
        handlers = self._vendors.get(vendor_id)
        if handlers is None:
            return {"status": "UnknownVendorId"}
        handler = handlers.get(message_id) if message_id is not None else None
        handler = handler or handlers.get(None)
        if handler is None:
            return {"status": "UnknownMessageId"}
        status, reply = await handler(charger_id, message_id, data)
        out: dict[str, Any] = {"status": status}
        if reply is not None:
            out["data"] = reply
        return out
