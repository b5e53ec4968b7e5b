"""The only csms package that imports roaming: the adapters between the CSMS and OCPI.

What lives here: the roaming runtime (store, client, OCPI server, token sync), the CPO
modules (locations catalogue, OCPP events -> Sessions/CDRs/EVSE status, outbox), OCPI
commands -> OCPP calls, and the authorization ports served from roaming. The
composition root (:mod:`csms.system`) builds them with explicit arguments.
"""
