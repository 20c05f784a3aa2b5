"""``python -m gateway.local.fake_palette``: serve the fake Palette API on a loopback port.

The API key it accepts is read from ``PALETTE_API_KEY`` (not a flag: flags show in ``ps``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import uvicorn

from gateway.local.fake_palette.app import FakeConfig, create_app
from gateway.local.fake_palette.state import DEMO_PROJECT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.local.fake_palette", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--project", action="append", help=f"seeded project uid (default {DEMO_PROJECT})")
    parser.add_argument("--rate-limit", type=float, default=0.0, help="requests/second before 429 (0: none)")
    parser.add_argument("--admin", action="store_true", help="serve the test-only /__admin endpoints")
    parser.add_argument("--validate-spec", type=Path, help="check every body against this Palette spec")
    args = parser.parse_args(argv)
    api_key = os.environ.get("PALETTE_API_KEY")
    if not api_key:
        print("PALETTE_API_KEY must be set to the key the fake accepts", file=sys.stderr)
        return 2
    config = FakeConfig(
        api_key=api_key,
        projects=tuple(args.project or [DEMO_PROJECT]),
        rate_limit=args.rate_limit,
        admin=args.admin,
        spec_path=args.validate_spec,
    )
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
