"""Writing one OCPP-J frame to a websockets connection without its async send machinery.

Why: ``ServerConnection.send()`` enters an async-generator context manager, checks for
fragmented sends and awaits ``drain()`` for every message. For a CALLRESULT of a few
dozen bytes on an open, unpaused socket none of that can do anything, yet it cost about
a fifth of the server's CPU per Authorize (py-spy, 100 chargers). When the connection is
OPEN, no fragmented send is in progress and the transport is not paused (flow control),
we hand the frame to the protocol and write it at once, exactly what ``send()`` would do
before its ``drain()``. In every other case the caller falls back to ``send()``, which
handles closing, back-pressure and errors as the library defines them.

Depends on websockets' asyncio ``Connection`` attributes (``protocol``,
``send_in_progress``, ``paused``, ``send_data``), present from 13 to 17; the fallback
makes a future change of them a slowdown, not a failure.
"""

from __future__ import annotations

from typing import Any

from websockets.protocol import State

_OPEN = State.OPEN


def send_text_now(ws: Any, data: bytes) -> bool:
    """Write ``data`` (UTF-8 JSON) as one text frame now; False when ``send()`` must do it."""
    try:
        if ws.protocol.state is not _OPEN or ws.send_in_progress is not None or ws.paused:
            return False
        ws.protocol.send_text(data)
        ws.send_data()
    except AttributeError:  # a websockets without these internals: use the public API
        return False
    return True
