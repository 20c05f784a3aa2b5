"""The rule set of an earlier commit against the working tree's, on the same inputs.

A change to the rules must not make a decision slower unnoticed. This builds the bundle of
``--base`` (any git revision: its ``rego/`` directory, via ``git archive``) and the bundle of
the working tree, then runs ``opa bench`` on each input in alternating rounds (old, new,
old, new, ...), so machine load falls on both alike. It prints, per input, the median over
rounds of each bundle's p50 and p99 and the new bundle's as a multiple of the old one's.

Exit status 0 either way: one run on a shared machine is evidence, not a verdict.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from bench.policy.report import runs

_PREFIX = "histogram_timer_rego_query_eval_ns_"
_QUERY = "data.gateway.decision"
_BUILD_FLAGS = ["--ignore", "*_test.rego", "--ignore", "samples", "-O=1", "-e", "gateway/decision"]


def _build(opa: str, rego: Path, out: Path) -> None:
    subprocess.run([opa, "build", "-b", str(rego), *_BUILD_FLAGS, "-o", str(out)], check=True)


def _base_rego(revision: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", revision, "rego"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "rego"


def _bench(opa: str, bundle: Path, input_path: Path) -> tuple[float, float]:
    out = subprocess.run(
        [opa, "bench", "-b", str(bundle), "-i", str(input_path), "--count", "1", "--format", "json", _QUERY],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    extra = runs(out)[0]["Extra"]
    return extra[_PREFIX + "median"] / 1000, extra[_PREFIX + "99%"] / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opa", required=True)
    parser.add_argument("--base", required=True, help="git revision whose rego/ is the old rule set")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("inputs", nargs="+", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        old, new = work / "old.tar.gz", work / "new.tar.gz"
        _build(args.opa, _base_rego(args.base, work), old)
        _build(args.opa, Path("rego"), new)
        for input_path in args.inputs:
            figures: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
            for _ in range(args.rounds):
                figures["old"].append(_bench(args.opa, old, input_path))
                figures["new"].append(_bench(args.opa, new, input_path))
            p50 = {k: statistics.median(f[0] for f in v) for k, v in figures.items()}
            p99 = {k: statistics.median(f[1] for f in v) for k, v in figures.items()}
            print(
                json.dumps(
                    {
                        "input": str(input_path),
                        "base": args.base,
                        "rounds": args.rounds,
                        "old_p50_us": round(p50["old"], 1),
                        "new_p50_us": round(p50["new"], 1),
                        "old_p99_us": round(p99["old"], 1),
                        "new_p99_us": round(p99["new"], 1),
                        "p50_ratio": round(p50["new"] / p50["old"], 3),
                        "p99_ratio": round(p99["new"] / p99["old"], 3),
                    }
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
