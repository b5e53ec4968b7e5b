"""The load generator's frame path around websockets' client: read a CSMS's simple frames
and write CALLs without the library's per-message async machinery.

Why: with ``await ws.send()`` and ``await wait_for(ws.recv())`` per CALL, the generator
spent about 50 µs of CPU per Authorize at 100 chargers and 80 µs at 1,000 (a task per
``wait_for`` on Python 3.11, the generator-based frame parser, the ``Assembler``, the
send lock and ``drain()``). That capped it near 20,000 calls/s on its core, below what
the CSMS it measures can answer, so a benchmark measured the generator. The issue asks
for a generator that is not the bottleneck (a lean client reaches about 37,000 calls/s).

The handshake, control frames (pings, close), fragmented or oversize frames and any
write while the socket is paused or the library has bytes queued stay with websockets:
frames are passed to it whole and in stream order, so its parser only sees complete
frames at frame boundaries and keeps every check and close code. The CSMS's server code
(``csms/ocpp16/wire.py``) does the same on the other side; the simulator may not import
it (it speaks only the wire protocol), and the directions differ (a server's frames are
unmasked, a client's are masked with a fresh key).

Depends on websockets' asyncio ``Connection`` attributes (``protocol``, ``transport``,
``send_in_progress``, ``paused``) and the protocol's (``state``, ``reader``,
``current_size``, ``max_message_size``, ``writes``, ``expect_continuation_frame``,
``extensions``), present from 13 to 17; without them every frame takes the library path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.protocol import State

try:  # the library's own C helper when built, as websockets.frames does
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - a pure-Python websockets build
    from websockets.utils import apply_mask

_OPEN = State.OPEN


def masked_text_frame(data: bytes, mask: bytes) -> bytes:
    """One final text frame as a client must send it (RFC 6455 section 5.3: masked)."""
    n = len(data)
    if n < 126:
        head = bytes((0x81, 0x80 | n))
    elif n < 65536:
        head = b"\x81\xfe" + n.to_bytes(2, "big")
    else:
        head = b"\x81\xff" + n.to_bytes(8, "big")
    return head + mask + apply_mask(data, mask)


def send_now(ws: Any, data: bytes) -> bool:
    """Write ``data`` as one masked text frame now; False when ``ws.send()`` must do it
    (not OPEN, a library write or fragmented send pending, an extension, paused)."""
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
        ws.transport.write(masked_text_frame(data, os.urandom(4)))
    except AttributeError:
        return False
    return True


class DirectClientConnection(ClientConnection):
    """A client connection that gives complete, simple frames from the server straight to
    ``on_frame`` inside ``data_received``: FIN set, no reserved bits, text or binary,
    unmasked (a server must not mask), within the size limit, no fragmented message in
    progress. Every other frame goes to websockets unchanged and reaches whoever awaits
    ``recv()``. Until ``on_frame`` is set (the handshake and BootNotification), every
    frame takes the library path."""

    on_frame: Callable[[bytes], None] | None = None
    _scan: bool | None = None  # decided at the first bytes after the handshake
    _tail: bytes = b""  # the start of a simple frame still arriving
    _owed = 0  # bytes still to come of a frame being passed to the library
    _limit: int | None = None

    def data_received(self, data: bytes) -> None:
        if self._scan is None:
            if self.protocol.state is not _OPEN:
                super().data_received(data)
                return
            self._scan = self._at_frame_boundary()
        if self._scan:
            self._split(data)
        else:
            super().data_received(data)

    def _at_frame_boundary(self) -> bool:
        protocol = self.protocol
        try:
            if protocol.reader.buffer or protocol.current_size is not None:
                return False
            self._limit = protocol.max_message_size
        except AttributeError:
            return False
        return True

    def _split(self, data: bytes) -> None:
        library = super().data_received
        if self._owed:
            take = min(self._owed, len(data))
            self._owed -= take
            library(data[:take])
            data = data[take:]
        if self._tail:
            data, self._tail = self._tail + data, b""
        end_of_data = len(data)
        at = 0
        while end_of_data - at >= 2:
            first, second = data[at], data[at + 1]
            size = second & 0x7F
            start = at + 2
            if size == 126:
                start = at + 4
                if start > end_of_data:
                    break
                size = int.from_bytes(data[at + 2 : start], "big")
            elif size == 127:
                start = at + 10
                if start > end_of_data:
                    break
                size = int.from_bytes(data[at + 2 : start], "big")
            if second & 0x80:  # masked: wrong for a server, the library closes with 1002
                start += 4
            stop = start + size
            deliver = self.on_frame
            if (
                deliver is None
                or (first != 0x81 and first != 0x82)
                or second & 0x80
                or (self._limit is not None and size > self._limit)
                or self.protocol.current_size is not None
                or self.protocol.state is not _OPEN
            ):
                if stop > end_of_data:
                    self._owed = stop - end_of_data
                    library(data[at:])
                    return
                library(data[at:stop])
                at = stop
                continue
            if stop > end_of_data:
                break
            deliver(data[start:stop])
            at = stop
        if at < end_of_data:
            self._tail = data[at:]
