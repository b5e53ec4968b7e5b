"""CPO backend: OCPP 1.6J central system with OCPI 2.2.1 roaming."""

__version__ = "0.1.0"
