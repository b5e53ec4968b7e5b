"""The CSMS's domain records: what the OCPP adapter hands the store and the store hands back.

Why a package of its own: the store speaks these frozen records, never wire payloads,
so a second storage backend is one new package beside :mod:`csms.store` and the OCPP
adapter (:mod:`csms.ocpp16`) is the only place that knows OCPP's camelCase names.
Nothing here imports the store, the protocol adapter or configuration.
"""
