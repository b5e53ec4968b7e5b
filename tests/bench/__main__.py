"""``python -m tests.bench [NAME ...]``: run every ``tests/bench/bench_*.py`` module's ``main()``.

Why a registry by file name: engineers add benchmarks in parallel; dropping a
``bench_<area>.py`` file with a ``main() -> None`` (sync, or async returning a coroutine)
is all it takes. Pass names (``ocpi_tokens``) to run a subset.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    wanted = {f"bench_{a.removeprefix('bench_')}" for a in argv}
    failed = 0
    for name in names:
        if wanted and name not in wanted:
            continue
        print(f"== {name}", flush=True)
        module = importlib.import_module(f"tests.bench.{name}")
        try:
            result = module.main()
            if inspect.iscoroutine(result):
                asyncio.run(result)
        except Exception as exc:  # keep running the other benchmarks
            failed += 1
            print(f"!! {name} failed: {type(exc).__name__}: {exc}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
