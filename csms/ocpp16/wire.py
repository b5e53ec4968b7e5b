"""Writing one OCPP-J frame to a websockets connection without its async send machinery.

Why: ``ServerConnection.send()`` enters an async-generator context manager, checks for
fragmented sends and awaits ``drain()`` for every message. For a CALLRESULT of a few
dozen bytes on an open, unpaused socket none of that can do anything, yet it cost about
a fifth of the server's CPU per Authorize (py-spy, 100 chargers). When the connection is
OPEN, no fragmented send is in progress and the transport is not paused (flow control),
we write the frame to the transport at once, the bytes ``send()`` would write before
its ``drain()``. In every other case the caller falls back to ``send()``, which
handles closing, back-pressure and errors as the library defines them.

Depends on websockets' asyncio ``Connection`` attributes (``protocol``, ``transport``,
``send_in_progress``, ``paused``) and the protocol's (``state``, ``writes``,
``expect_continuation_frame``, ``extensions``), present from 13 to 17; the fallback
makes a future change of them a slowdown, not a failure. A test checks the bytes
against the library's own frame serialisation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import Event, State

_OPEN = State.OPEN
_DATA = (Opcode.TEXT, Opcode.BINARY)  # the read loop takes JSON from either, so this does


def _text_header(n: int) -> bytes:
    """RFC 6455 header of one unmasked, final text frame of ``n`` payload bytes (a server
    never masks; no extensions are negotiated: the server is started with compression off)."""
    if n < 126:
        return bytes((0x81, n))
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big")
    return b"\x81\x7f" + n.to_bytes(8, "big")


def send_text_now(ws: Any, data: bytes) -> bool:
    """Write ``data`` (UTF-8 JSON) as one text frame now; False when ``send()`` must do it.

    The frame is written straight to the transport when nothing else can be in its way:
    the connection is OPEN, no fragmented message or library write is pending, no
    extension is active and the transport is not paused. That is byte for byte what
    ``protocol.send_text()`` followed by ``send_data()`` would write.
    """
    try:
        protocol = ws.protocol
        if (
            protocol.state is not _OPEN
            or ws.send_in_progress is not None
            or ws.paused
            or protocol.writes
            or protocol.expect_continuation_frame
            or protocol.extensions
        ):
            return False
        ws.transport.write(_text_header(len(data)) + data)
    except AttributeError:  # a websockets without these internals: use the public API
        return False
    return True


class DirectTextConnection(ServerConnection):
    """A server connection that can hand complete data frames straight to a callback.

    Why: websockets delivers every message through its ``Assembler`` to a task waiting in
    ``recv()``: a queue put, a future, a task wake-up and two coroutine frames per frame
    (6 % of the instructions per cache-hit Authorize, measured with callgrind at 100
    chargers: 391k -> 367k), and a latency of one event-loop pass. Most OCPP frames can be
    answered without awaiting anything, so the connection offers them to ``on_text``
    first (text, or binary as some firmwares send), inside ``data_received``; a callback
    that returns False (or no callback) leaves the frame to the library's normal path, so
    fragmented messages, invalid UTF-8 and everything that needs an ``await`` keep the
    library's behaviour.
    ``process_event`` is the documented place to override (websockets 13 to 17).
    """

    on_text: Callable[[bytes], bool] | None = None

    def process_event(self, event: Event) -> None:
        on_text = self.on_text
        if (
            on_text is not None
            and type(event) is Frame
            and event.opcode in _DATA
            and event.fin
            and on_text(event.data)  # type: ignore[arg-type]
        ):
            return
        super().process_event(event)
