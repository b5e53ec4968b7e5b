"""The admin HTTP API (aiohttp): operators and the ``csms`` CLI manage the CSMS through it."""
