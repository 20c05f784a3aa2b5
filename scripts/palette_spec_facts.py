"""Rewrite gateway/local/palette_spec_facts.json from the upstream Palette API specification.

    .venv/bin/python scripts/palette_spec_facts.py [--spec ../shared/palette/palette-apis-spec.json]

The facts are what the fake Palette API and the tests check bodies against (see
``gateway.local.palette_spec``). Run it after adding an endpoint to the fake or a path to the
client (extend ``FAKE_DEFINITIONS`` / ``CLIENT_OPERATIONS`` first), or when the upstream
specification changes; commit the result.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gateway.local.palette_spec import FACTS_PATH, UPSTREAM_SPEC, facts_from_spec, render_facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=UPSTREAM_SPEC, help=f"default: {UPSTREAM_SPEC}")
    parser.add_argument("--output", type=Path, default=FACTS_PATH, help=f"default: {FACTS_PATH}")
    args = parser.parse_args(argv)
    try:
        spec = json.loads(args.spec.read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"cannot read the upstream specification {args.spec}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        facts = facts_from_spec(spec)
    except KeyError as exc:
        print(f"the specification has no {exc}: fix FAKE_DEFINITIONS / CLIENT_OPERATIONS", file=sys.stderr)
        return 1
    args.output.write_text(render_facts(facts), encoding="utf-8")
    print(f"{args.output}: {len(facts['definitions'])} definitions, {len(facts['paths'])} paths")
    return 0


if __name__ == "__main__":
    sys.exit(main())
