"""A protocol-faithful DERIVA emulator (ERMrest + Hatrac + webauthn) for tests.

``DerivaServer`` runs it on loopback; ``FaultProxy`` sits in front of it and
injects network faults; ``satchel.testing.pytest_plugin`` offers both as
pytest fixtures.
"""

from satchel.testing.proxy import FaultProxy
from satchel.testing.server import DerivaServer

__all__ = ["DerivaServer", "FaultProxy"]
