"""Authorization decisions: ``policy`` (the rules and their precedence), ``model`` and
``ports`` are pure (no I/O, no clock, no config); ``service`` walks the precedence with
one fast path, ``realtime`` awaits roaming under the deadline, ``own_cards`` serves the
``id_tags`` table, ``settings`` reads the configuration."""
