"""A spec-validated, stateful fake of the Palette API for tests and the local sandbox.

Start it as a native process with ``python -m gateway.local.fake_palette --port N`` (the API
key comes from ``PALETTE_API_KEY``), or from Python with ``FakePaletteServer``.
"""

from gateway.local.fake_palette.app import FakeConfig, create_app
from gateway.local.fake_palette.process import FakePaletteServer
from gateway.local.fake_palette.state import DEMO_PROJECT, FLEET_SIZE

__all__ = ["DEMO_PROJECT", "FLEET_SIZE", "FakeConfig", "FakePaletteServer", "create_app"]
