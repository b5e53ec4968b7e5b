"""The cyclic garbage collector's policy in a serving process.

Why a policy at all: CPython pauses the whole process for each collection, and the
pause grows with the number of tracked objects it walks. A server holding 1,000
charger connections (about 60 tracked objects each) plus its caches paused 16-54 ms in
the collector's middle and oldest generations, a few times a minute under load,
in the middle of every charger's traffic (measured with a ``gc.callbacks`` timer over
the Authorize benchmark). Those pauses were the largest stall the server caused itself.

The policy (``csms serve`` applies it once everything has started):

* start-up objects (modules, schemas, config, compiled validators) are frozen: they
  live as long as the process, yet every full collection walked them again;
* a young-generation threshold of 10,000 instead of 700: the same total work on young
  objects in far fewer pauses;
* every ``server.gc_freeze_interval_s`` (default 1 s) the objects that survived so far
  are frozen too (``gc.freeze()``, a constant-time list splice). Young collections keep
  running and still free short-lived cycles; objects that live longer (connections,
  memoised tokens and decisions) stop being walked again and again. Frozen objects are
  still freed by reference counting the moment nothing refers to them; only a frozen
  object that later becomes part of an unreachable *cycle* waits;
* for those, every ``server.gc_full_collect_interval_s`` (default 3,600 s) everything is
  unfrozen, collected once and frozen again: one pause of the whole heap per interval
  (350-395 ms with 5,000 idle chargers connected, 420,000 objects, on the benchmark
  machine; it found 0-26 unreachable objects after 10 s) where the interpreter would
  run that same whole-heap collection each time the oldest generation grew by a
  quarter. Each is logged as ``gc.full_collection`` with its pause and what it found.

The largest source of such cycles, closed charger connections, is removed at the
source (:meth:`csms.ocpp16.wire.DirectTextConnection.connection_lost`).

``CSMS_GC_TUNE=0`` in the environment leaves the interpreter's defaults and no freezer.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time

from csms import logs

log = logs.get("csms.collector")

YOUNG_THRESHOLD = 10_000


def enabled() -> bool:
    return os.environ.get("CSMS_GC_TUNE", "1") != "0"


def tune_for_serving() -> None:
    """Freeze the start-up objects and raise the young threshold (see the module)."""
    if not enabled():
        return
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, gen1, gen2)


class HeapFreezer:
    """Freezes survivors every ``freeze_interval_s``; a full collection every
    ``full_interval_s``. ``tick`` and ``full_collection`` are the two steps, callable
    on their own (tests, an operator's admin call)."""

    def __init__(self, freeze_interval_s: float, full_interval_s: float) -> None:
        self.freeze_interval_s = freeze_interval_s
        self.full_interval_s = full_interval_s
        self.full_collections = 0
        self._next_full = time.monotonic() + full_interval_s

    def tick(self) -> None:
        if time.monotonic() >= self._next_full:
            self.full_collection()
        else:
            gc.freeze()

    def full_collection(self) -> int:
        """Unfreeze, collect every generation, freeze again; returns what was unreachable."""
        start = time.perf_counter()
        thawed = gc.get_freeze_count()
        gc.unfreeze()
        unreachable = gc.collect()
        gc.freeze()
        self.full_collections += 1
        self._next_full = time.monotonic() + self.full_interval_s
        log.info(
            "gc.full_collection",
            pause_ms=round((time.perf_counter() - start) * 1000.0, 1),
            unreachable=unreachable,
            walked=thawed,
            frozen=gc.get_freeze_count(),
        )
        return unreachable

    async def run(self) -> None:
        """Until cancelled. A failing step is logged and the loop goes on: a collector
        hiccup must never stop the server."""
        while True:
            await asyncio.sleep(self.freeze_interval_s)
            try:
                self.tick()
            except Exception:  # pragma: no cover - gc calls do not raise in practice
                log.exception("gc.freeze_failed")


def start_freezer(freeze_interval_s: float, full_interval_s: float) -> asyncio.Task[None] | None:
    """The freezer task, or None when disabled (interval 0 or ``CSMS_GC_TUNE=0``)."""
    if freeze_interval_s <= 0 or not enabled():
        return None
    freezer = HeapFreezer(freeze_interval_s, full_interval_s)
    return asyncio.get_running_loop().create_task(freezer.run(), name="gc-freezer")
