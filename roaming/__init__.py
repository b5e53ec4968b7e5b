"""OCPI 2.2.1, CPO side. Never imports :mod:`csms`: it reaches the CPO through :mod:`roaming.ports`."""
