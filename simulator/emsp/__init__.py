"""eMSP sandbox: the second OCPI party for the CPO's end-to-end tests, demos and benchmarks.

Speaks OCPI 2.2.1 only over HTTP; imports nothing of ``csms`` or ``roaming`` internals.
"""

from simulator.emsp.behaviour import AuthorizeMode, DownMode
from simulator.emsp.client import OcpiReply
from simulator.emsp.registration import RegistrationError
from simulator.emsp.sandbox import EmspSandbox
from simulator.emsp.state import AuthorizeRecord, CommandSent
from simulator.emsp.tokens import TokenSpec

__all__ = [
    "AuthorizeMode",
    "AuthorizeRecord",
    "CommandSent",
    "DownMode",
    "EmspSandbox",
    "OcpiReply",
    "RegistrationError",
    "TokenSpec",
]
