"""Local Authorization Lists: which cards each charger may accept while it is offline.

:mod:`csms.locallist.plan` is the pure core (selection, differences, chunking and list
versions), :mod:`csms.locallist.manager` the background work per charger,
:mod:`csms.locallist.attribution` the authorizer seam that attributes transactions a
charger started offline from its list. See ``docs/local-lists.md``.
"""
