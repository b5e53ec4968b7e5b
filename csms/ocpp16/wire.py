"""The OCPP server's hot frame path around websockets: reading simple frames
(:class:`DirectTextConnection`) and writing answers (:func:`send_text_now`) without the
library's per-message async machinery, falling back to the library for everything else.

Writing. Why: ``ServerConnection.send()`` enters an async-generator context manager, checks for
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

import asyncio
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

try:  # the library's own C helper when built, as websockets.frames does
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - a pure-Python websockets build
    from websockets.utils import apply_mask

_OPEN = State.OPEN
_CLOSED = State.CLOSED

# What ``on_text`` answers for a frame: taken (handled), declined (fed to the library), or
# HOLD: not now. A held frame and every byte after it stay with the connection, reading
# from the socket stops, and :meth:`DirectTextConnection.release` goes on from that frame.
HOLD = None
OnText = Callable[[bytes], bool | None]

# Who holds the socket's reading paused (bits): the library (its queue of received
# messages is full) and this connection (bytes held back, see HOLD and the turn budget).
_BY_LIBRARY = 1
_BY_US = 2


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


def _nothing() -> None:
    return None


class DirectTextConnection(ServerConnection):
    """A server connection that hands complete, simple data frames straight to a callback.

    Why: per cache-hit Authorize, websockets' generator-based frame parser, its
    ``Assembler`` and the task waiting in ``recv()`` cost more instructions than our
    whole decision, and a pass of the event loop in latency (callgrind at 100 chargers:
    the ``Assembler``/``recv()`` hop alone was 391k -> 367k instructions per Authorize).
    Most OCPP frames can be answered without awaiting anything. So once the handshake is
    done this connection reads the frame headers itself (RFC 6455 section 5.2, a few
    bytes) and gives every *simple* frame (FIN set, no reserved bits, text or binary as
    some firmwares send, masked as a client must, within the size limit, no fragmented
    message in progress) to ``on_text`` inside ``data_received``. Every other frame
    (control frames, fragments, too large, unmasked), and every simple frame
    ``on_text`` declines (returns False: bad JSON, invalid UTF-8, an action the read loop
    must answer in order), is fed to websockets unchanged, whole and in stream order,
    so the library's parser only ever sees complete frames at frame boundaries and
    keeps all its checks, close handling, pings and flow control.

    Scanning starts only when the library's reader holds no bytes at the first data
    after the handshake (a client that pipelined frames before the 101 stays on the
    library path), and never without the protocol attributes it reads (``reader``,
    ``current_size``, ``max_message_size``; websockets 15 to 17).

    Fairness and bounded memory. Why: one charger pipelining 100,000 frames used to have
    them all answered inside its ``data_received`` calls (each up to a whole socket
    read), while every other charger waited, and its slow CALLs became one task each.
    Now (a) at most ``turn_budget`` bytes of frames are handled per turn of the event
    loop: the rest is held, reading paused, and handling goes on in the next turn, after
    the other sockets' events; (b) ``on_text`` may answer :data:`HOLD` (the charger has
    too many CALLs in flight, or our answers wait for its socket to drain): the frame
    and what follows are held and reading stays paused until :meth:`release`. The
    library's own pause (its queue of received messages is full) and ours are kept
    apart, so neither resumes a socket the other paused. What one connection holds is
    then bounded: one socket read of held bytes, the library's queue, the kernel's
    buffers, and its CALLs in flight.
    """

    on_text: OnText | None = None
    turn_budget: int = 4096  # bytes of frames handled per event-loop turn
    _scan: bool | None = None  # None until the first bytes after the handshake
    _partial: bytearray | None = None  # the start of a simple frame still arriving
    _owed = 0  # bytes of a frame being passed to the library that are still to come
    _limit: int | None = None
    _held: bytes | None = None  # frames not handled yet, from a frame boundary
    _paused_by = 0  # _BY_LIBRARY | _BY_US
    _release_due = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Route the library's pause and resume of reading through :meth:`_pause` /
        :meth:`_resume`, which know of our own pause too."""
        super().connection_made(transport)
        messages = getattr(self, "recv_messages", None)
        if messages is not None and hasattr(messages, "pause") and hasattr(messages, "resume"):
            messages.pause = self._library_pause
            messages.resume = self._library_resume

    def _library_pause(self) -> None:
        self._pause(_BY_LIBRARY)

    def _library_resume(self) -> None:
        self._resume(_BY_LIBRARY)

    def _pause(self, who: int) -> None:
        if not self._paused_by:
            self.transport.pause_reading()
        self._paused_by |= who

    def _resume(self, who: int) -> None:
        if not self._paused_by & who:
            return
        self._paused_by &= ~who
        if not self._paused_by and not self.transport.is_closing():
            self.transport.resume_reading()

    @property
    def holding(self) -> int:
        """Bytes received and not handled yet (held back, see the class doc)."""
        return len(self._held) if self._held is not None else 0

    def release(self) -> None:
        """Go on with held frames (in a later turn of the loop), e.g. once a CALL in
        flight is answered; nothing to do when nothing is held."""
        if self._held is not None and not self._release_due:
            self._release_due = True
            asyncio.get_running_loop().call_soon(self._go_on)

    def _go_on(self) -> None:
        self._release_due = False
        held, self._held = self._held, None
        if held is None or self.transport.is_closing():
            return
        self._take(held)
        if self._held is None:
            self._resume(_BY_US)

    def _hold(self, rest: bytes, turn_over: bool) -> None:
        """Keep ``rest`` (from a frame boundary) and stop reading; ``turn_over``: go on by
        itself in the next turn of the loop (the turn's budget is spent), else wait for
        :meth:`release`."""
        self._held = rest
        self._pause(_BY_US)
        if turn_over:
            self.release()

    def data_received(self, data: bytes) -> None:
        if self._held is not None:  # read before the pause took effect: keep the order
            self._held += data
            return
        scan = self._scan
        if scan is None:
            if self.protocol.state is not _OPEN:  # the handshake's bytes
                super().data_received(data)
                return
            scan = self._scan = self._can_scan()
        if scan:
            self._take(data)
        else:
            super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        """Also end the protocol's parser generator once the library is done with it.

        Why: websockets parks its frame parser at a final ``yield`` after EOF, and the
        suspended generator's frame holds the protocol, so every closed connection
        stayed a reference cycle (protocol, parser, reader, logger, ...) until a
        collection of the oldest generation found it. With 1,000 chargers that was
        tens of milliseconds of one collector pause, in the middle of other chargers'
        traffic. Closed here, the cycle is gone and reference counting frees the
        connection when its handler ends. The library asserts the state is CLOSED
        after its own ``connection_lost`` and never steps the parser again.
        """
        super().connection_lost(exc)
        self._held = None
        messages = getattr(self, "recv_messages", None)
        if messages is not None and getattr(messages, "pause", None) == self._library_pause:
            messages.pause = messages.resume = _nothing  # our bound methods: a cycle
        protocol = self.protocol
        parser = getattr(protocol, "parser", None)
        if protocol.state is _CLOSED and parser is not None and hasattr(parser, "close"):
            parser.close()

    def _can_scan(self) -> bool:
        protocol = self.protocol
        try:
            if protocol.reader.buffer or protocol.current_size is not None:
                return False
            limits = [protocol.max_message_size, getattr(protocol, "max_fragment_size", None)]
        except AttributeError:
            return False
        given = [x for x in limits if x is not None]
        self._limit = min(given) if given else None
        return True

    def _library_idle(self) -> bool:
        """OPEN and between messages: a simple frame may bypass the library."""
        protocol = self.protocol
        return protocol.state is _OPEN and protocol.current_size is None

    def _take(self, data: bytes) -> None:
        """Split ``data`` into frames: simple ones to ``on_text``, the rest to the library."""
        feed = super().data_received
        if self._owed:
            owed = self._owed
            if len(data) <= owed:
                self._owed = owed - len(data)
                feed(data)
                return
            self._owed = 0
            feed(data[:owed])
            data = data[owed:]
        buf = data
        if self._partial is not None:  # rare: a frame split across reads
            self._partial += data
            buf, self._partial = bytes(self._partial), None
        size = len(buf)
        pos = 0
        limit = self._limit
        on_text = self.on_text
        budget_end = self.turn_budget  # handle frames up to this offset in this turn
        # Only a frame the library parses can change its state (close) or start a
        # fragmented message, so this is read again after each frame fed to it.
        ready = self._library_idle()
        while size - pos >= 2:
            if pos >= budget_end:
                self._hold(bytes(buf[pos:]), turn_over=True)
                return
            b0 = buf[pos]
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            if b1 & 0x80:
                head += 4
            end = pos + head + length
            simple = (
                (b0 == 0x81 or b0 == 0x82)
                and b1 & 0x80
                and (limit is None or length <= limit)
                and on_text is not None
                and ready
            )
            if not simple:
                if end > size:  # the library takes it from here, as it arrives
                    self._owed = end - size
                    feed(buf[pos:])
                    return
                feed(buf[pos:end])
                ready = self._library_idle()
                pos = end
                continue
            if end > size:
                break
            payload = apply_mask(buf[pos + head : end], buf[pos + head - 4 : pos + head])
            taken = on_text(payload)  # type: ignore[misc]
            if taken is HOLD:
                self._hold(bytes(buf[pos:]), turn_over=False)
                return
            if not taken:
                feed(buf[pos:end])
                ready = self._library_idle()
            pos = end
        if pos < size:
            self._partial = bytearray(buf[pos:])
