"""Several CSMS nodes on one PostgreSQL database: who holds which charger, one bus of
notifications between nodes, and jobs that run on one node at a time.

Why PostgreSQL's own tools (LISTEN/NOTIFY, advisory locks, a presence table with
leases) and no broker: operators already run and back up the database; a second moving
part would be one more thing to lose. On the embedded SQLite store the same objects
exist in-process, for the single node that store allows.
"""
