"""Waiting for a condition instead of sleeping a fixed time.

Why: a fixed sleep followed by an assertion passes when the thing is merely late (or
fails on a slow machine). ``wait_until`` polls until the condition holds and fails
with a message naming it. Every timeout is multiplied by ``TIME_UNIT`` (environment,
default 1) so a slow machine or CI can stretch all of them at once.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

TIME_UNIT = float(os.environ.get("TIME_UNIT", "1") or "1")


def scaled(seconds: float) -> float:
    """``seconds`` stretched by ``TIME_UNIT``."""
    return seconds * TIME_UNIT


async def wait_until(
    condition: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 5.0,
    interval: float = 0.01,
    what: str = "condition",
) -> T:
    """Poll ``condition`` (sync or async) until it returns something truthy; return it.

    Raises AssertionError naming ``what`` after ``timeout`` x ``TIME_UNIT`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + scaled(timeout)
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {scaled(timeout):g} s waiting for {what}")
        await asyncio.sleep(interval)


async def stays_false(
    condition: Callable[[], object | Awaitable[object]],
    *,
    period: float,
    interval: float = 0.01,
    what: str = "condition",
) -> None:
    """Assert ``condition`` stays falsy for ``period`` x ``TIME_UNIT`` seconds.

    For "nothing happens" checks; pair it with a positive wait on a later event where
    one exists, so the check cannot pass merely because the thing is late.
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + scaled(period)
    while loop.time() < end:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        assert not result, f"{what} happened"
        await asyncio.sleep(interval)
