"""A ``csms serve`` child's output, read as it comes: for tests that grep what it logged.

Why a shared helper: the tests that run a real process and read its JSON log lines need
the same two steps (collect every line of both streams; wait for the ``listening``
event that carries the bound ports), and each copy drifted on its own before.
"""

from __future__ import annotations

import asyncio
import json


async def drain(stream: asyncio.StreamReader, sink: list[bytes]) -> None:
    """Append every line of ``stream`` to ``sink`` until it closes."""
    while line := await stream.readline():
        sink.append(line)


async def listening(sink: list[bytes], timeout_s: float = 20.0) -> dict[str, int]:
    """The ``listening`` event (bound ports) once it is among the collected lines."""
    async with asyncio.timeout(timeout_s):
        while True:
            for line in sink:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("event") == "listening":
                    return dict(event)
            await asyncio.sleep(0.05)
