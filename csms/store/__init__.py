"""aiosqlite store: :mod:`db` (connection), :mod:`schema` (all tables), one repository module per area."""
