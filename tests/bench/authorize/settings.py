"""What the Authorize benchmark runs: call counts, tags and limits, read once from the env.

Why one module: the steps, the servers' set-up, the report and the comparison must agree
on these, and the README's method section quotes them.
"""

from __future__ import annotations

import os

# BENCH_QUICK=1 divides every call count by 5 (a smoke run; its figures mean little).
QUICK = 5 if os.environ.get("BENCH_QUICK") else 1
ADMIN_TOKEN = "bench-admin-token"
DEADLINE_S = 1.0  # authz.authorize_deadline_s for the hung-eMSP run
# HIT* tokens are whitelist ALWAYS (decided from the token cache), REM* NEVER (always
# asked of the eMSP in real time).
HIT_TAGS = tuple(f"HIT{n:05d}" for n in range(1, 1001))
REM_TAGS = tuple(f"REM{n:05d}" for n in range(1, 1001))
# OWN* are the operator's own cards (``id_tags``, what ``csms tokens add`` writes).
OWN_TAGS = tuple(f"OWN{n:05d}" for n in range(1, 1001))
# CMD* are sent only in OCPI START_SESSION commands (CMD n at charger n): the eMSP does
# not otherwise know them, so only the command's pre-authorization accepts them.
CMD_TAGS = tuple(f"CMD{n:05d}" for n in range(1, 1001))
LOG_LEVEL = os.environ.get("BENCH_CSMS_LOG_LEVEL", "info")  # what production runs at
# "lean": tests/bench/lean_emsp.py (keeps nothing per call, see there why); "sandbox":
# the simulator's eMSP sandbox, which records every request.
EMSP = os.environ.get("BENCH_EMSP", "lean")
STORM = int(os.environ.get("BENCH_STORM", "15000"))
# The storm's chargers connect from this many loopback source addresses (127.0.0.2...).
STORM_SOURCES = 8
# While the storm's chargers idle: their Heartbeat period (the CSMS's default interval)
# and one StatusNotification per charger per this many seconds.
IDLE_HEARTBEAT_S = 300.0
IDLE_STATUS_S = 60.0
IDLE_WINDOW_S = 30.0
CHARGERS = 1000  # pre-registered for the closed-loop, open-loop, remote and hung steps
CHARGER_IDS = "LOAD{n:05d}"
WARM_UP_CALLS = 5000

# A measured step during which the hypervisor took more than this share of either
# pinned core's wall time is measured again, up to ATTEMPTS times in all; the attempt
# with the least steal is the one reported, and every attempt is kept in the JSON.
STEAL_LIMIT = float(os.environ.get("BENCH_STEAL_LIMIT", "0.02"))
ATTEMPTS = int(os.environ.get("BENCH_ATTEMPTS", "3"))

# (chargers, calls) of the closed-loop Authorize runs.
LADDER = ((1, 4000), (10, 20000), (100, 60000), (1000, 60000))

# With a baseline: how many times every CSMS step (and the storm) is measured for each
# checkout; the comparison takes each side's median.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1"))
