"""Summarise `opa bench --format json` output (one JSON document per --count run).

Prints p50 and p99 of `timer_rego_query_eval_ns` and the allocations per evaluation for
every run, and the best run against the p99 target, under a label naming the input; with
--baseline (the same summary of a bench measured in the same run, e.g. the decision
without any rule) also each figure as a multiple of the baseline's, which stays
comparable across machines and loads. The exit status is 0 either way, since shared
machines make one slow run noise, not a regression.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def runs(text: str) -> list[dict[str, Any]]:
    decoder = json.JSONDecoder()
    found, index = [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        doc, index = decoder.raw_decode(text, index)
        found.append(doc)
    return found


_PREFIX = "histogram_timer_rego_query_eval_ns_"


def _figures(doc: dict[str, Any]) -> tuple[int, float, float]:
    extra = doc["Extra"]
    return int(extra[_PREFIX + "count"]), extra[_PREFIX + "median"] / 1000, extra[_PREFIX + "99%"] / 1000


def _best(docs: list[dict[str, Any]]) -> tuple[float, float]:
    """The lowest p50 and p99 over the runs: the baseline at its least disturbed."""
    figures = [_figures(doc) for doc in docs]
    return min(f[1] for f in figures), min(f[2] for f in figures)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target-us", type=float, default=1000.0)
    parser.add_argument("--label", default="policy eval")
    parser.add_argument("--baseline", type=argparse.FileType(), help="opa bench JSON of the baseline")
    args = parser.parse_args()
    base = _best(runs(args.baseline.read())) if args.baseline else None
    best_p99 = float("inf")
    for number, doc in enumerate(runs(sys.stdin.read()), 1):
        count, p50, p99 = _figures(doc)
        best_p99 = min(best_p99, p99)
        allocs = doc["MemAllocs"] / max(doc["N"], 1)
        ratio = f" = {p50 / base[0]:.1f}x / {p99 / base[1]:.1f}x the baseline" if base else ""
        figures = f"n={count} p50={p50:.0f}us p99={p99:.0f}us allocs/op={allocs:.0f}"
        print(f"{args.label} run {number}: {figures}{ratio}")
    if base:
        print(f"baseline (best run): p50={base[0]:.0f}us p99={base[1]:.0f}us")
    verdict = "meets" if best_p99 <= args.target_us else "misses"
    # Wall-clock figures: on a shared machine the load average says how far to trust them.
    one, five, fifteen = os.getloadavg()
    print(f"load average: {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cpus")
    print(f"{args.label} p99 (best run) {best_p99:.0f}us {verdict} the {args.target_us:.0f}us p99 target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
