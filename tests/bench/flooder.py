"""``python -m tests.bench.flooder URL N``: one charger that pipelines N Authorize frames.

A process of its own so that reading its answers does not share an event loop with the
generator whose latencies are measured. Prints ``ready`` once booted, floods when a line
arrives on stdin, then prints ``done <answered> <sent_s> <answered_s>``.
"""

from __future__ import annotations

import asyncio
import sys
import time

from websockets.asyncio.client import connect


async def main(url: str, frames: int) -> None:
    async with connect(
        f"{url}/FLOOD",
        subprotocols=["ocpp1.6"],
        ping_interval=None,
        max_size=None,  # type: ignore[list-item]
    ) as ws:
        await ws.send(
            '[2,"boot","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]'
        )
        await ws.recv()
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        answered = 0

        async def read() -> None:
            nonlocal answered
            async for _ in ws:
                answered += 1
                if answered >= frames:
                    return

        reader = asyncio.create_task(read())
        t0 = time.monotonic()
        for i in range(frames):
            await ws.send(b'[2,"f%d","Authorize",{"idTag":"F%08d"}]' % (i, i), text=True)
        sent = time.monotonic() - t0
        try:
            await asyncio.wait_for(reader, 600)
        except TimeoutError:
            pass
        print(f"done {answered} {sent:.2f} {time.monotonic() - t0:.2f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
