"""OCPP 1.6J central-system side: our own lean OCPP-J framing, validation and dispatch.

Why not the ``ocpp`` library's ChargePoint: its serial receive loop, per-message
conversions and 2.0.1-flavoured error codes cost throughput and correctness. We use only
its shipped JSON schemas and enums.
"""
