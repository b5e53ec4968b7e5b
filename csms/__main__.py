"""``python -m csms``: the same entry point as the ``csms`` console script."""

from __future__ import annotations

import sys

from csms.cli import main

if __name__ == "__main__":
    sys.exit(main())
