"""aiosqlite store: :mod:`db` (connection), :mod:`schema` (all tables), one repository module
per area. Repositories take and return :mod:`csms.domain` records, never OCPP payloads,
and hold every SQL statement of the CSMS (a second backend is one new package)."""
