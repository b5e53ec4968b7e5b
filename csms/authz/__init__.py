"""Authorization decisions. ``model``, ``policy`` and ``ports`` are pure (stdlib only)."""
