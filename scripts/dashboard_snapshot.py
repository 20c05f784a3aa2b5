"""Draw docs/dashboard.png: the Grafana dashboard's main panels, from real data.

Grafana cannot run here, so this does what Prometheus and Grafana would: it starts the
``make run`` topology (OPA with the bundle, the sandbox kube-apiserver, the fake Palette,
the gateway over HTTP), drives the scripted agent session of gateway/local/ops_session.py
round after round (with OPA stopped for a while in the middle, as an outage looks),
scrapes ``/metrics`` every few seconds, and plots the panels of
deploy/grafana/policy-gateway.json with the same formulas (rates over a window,
histogram_quantile with Prometheus's interpolation). Needs matplotlib: the ``docs`` extra
(``make dashboard-snapshot`` installs it).

    .venv/bin/python scripts/dashboard_snapshot.py [--minutes 3] [--out docs/dashboard.png]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import httpx
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from gateway.local.ops_session import Agents, run_round  # noqa: E402
from gateway.local.process import free_port  # noqa: E402
from gateway.local.topology import Topology, TopologyConfig  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
Labels = tuple[tuple[str, str], ...]
WINDOW = 30.0  # seconds of samples behind each rate, like [$__rate_interval]


@dataclass
class Scrape:
    at: float
    values: dict[tuple[str, Labels], float]

    def total(self, name: str, **match: str) -> float:
        return sum(v for (n, labels), v in self.values.items() if n == name and _matches(labels, match))

    def by(self, name: str, label: str, **match: str) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for (n, labels), v in self.values.items():
            if n == name and _matches(labels, match):
                out[dict(labels).get(label, "")] += v
        return out


def _matches(labels: Labels, match: dict[str, str]) -> bool:
    have = dict(labels)
    return all(have.get(k) == v for k, v in match.items())


def scrape(url: str, started: float) -> Scrape:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return Scrape(time.monotonic() - started, values)


def quantile(q: float, buckets: dict[str, float]) -> float:
    """Prometheus's histogram_quantile over cumulative bucket counts keyed by ``le``."""
    ordered = sorted((float(le), count) for le, count in buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return math.nan
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            width = count - lower_count
            return lower_bound + (bound - lower_bound) * ((rank - lower_count) / width if width else 0)
        lower_bound, lower_count = bound, count
    return math.nan


class Series:
    """Rates and quantiles between each scrape and the one ``WINDOW`` seconds before it."""

    def __init__(self, scrapes: list[Scrape]) -> None:
        self.scrapes = scrapes

    def pairs(self) -> list[tuple[Scrape, Scrape]]:
        out = []
        for i, now in enumerate(self.scrapes):
            earlier = [s for s in self.scrapes[:i] if now.at - s.at >= WINDOW]
            if earlier:
                out.append((earlier[-1], now))
        return out

    def rate_by(self, name: str, label: str, **match: str) -> tuple[list[float], dict[str, list[float]]]:
        times, lines = [], defaultdict(list)
        keys = sorted({k for s in self.scrapes for k in s.by(name, label, **match)})
        for before, now in self.pairs():
            times.append(now.at)
            a, b = before.by(name, label, **match), now.by(name, label, **match)
            for key in keys:
                lines[key].append(max(0.0, b.get(key, 0) - a.get(key, 0)) / (now.at - before.at))
        return times, dict(lines)

    def quantiles(self, name: str, qs: tuple[float, ...], **match: str) -> tuple[list[float], dict[str, list[float]]]:
        times, lines = [], defaultdict(list)
        for before, now in self.pairs():
            a, b = before.by(f"{name}_bucket", "le", **match), now.by(f"{name}_bucket", "le", **match)
            delta = {le: b[le] - a.get(le, 0) for le in b}
            times.append(now.at)
            for q in qs:
                lines[f"p{round(q * 100)}"].append(quantile(q, delta) * 1000)
        return times, dict(lines)

    def gauge(self, name: str, **match: str) -> tuple[list[float], list[float]]:
        return [s.at for s in self.scrapes], [s.total(name, **match) for s in self.scrapes]


async def drive(topology: Topology, minutes: float, scrapes: list[Scrape]) -> None:
    agents = Agents.create(topology)
    started = time.monotonic()
    end = started + minutes * 60
    outage = (started + minutes * 60 * 0.5, started + minutes * 60 * 0.65)

    async def sample() -> None:
        while time.monotonic() < end + 5:
            scrapes.append(await asyncio.to_thread(scrape, topology.gateway_url, started))
            await asyncio.sleep(3)

    sampler = asyncio.create_task(sample())
    index, opa_stopped = 0, False
    while time.monotonic() < end:
        now = time.monotonic()
        if outage[0] <= now < outage[1] and not opa_stopped:
            topology.opa.stop()  # every decision now fails closed
            opa_stopped = True
        if now >= outage[1] and opa_stopped:
            topology.opa.start()
            opa_stopped = False
        try:
            await run_round(topology, agents, index=index, approve=not opa_stopped and index % 3 != 2)
        except RuntimeError as exc:  # an approval refused while OPA is down
            print(f"round {index}: {exc}")
        index += 1
        await asyncio.sleep(1.5 if index % 4 else 4)
    await sampler
    print(f"{index} rounds, {len(scrapes)} scrapes")


def draw(scrapes: list[Scrape], out: Path) -> None:
    series = Series(scrapes)
    plt.style.use("dark_background")
    fig, axes = plt.subplots(3, 3, figsize=(18, 11))
    fig.patch.set_facecolor("#111217")
    fig.suptitle("Policy gateway — deploy/grafana/policy-gateway.json, from a scripted session", fontsize=15)

    def panel(ax: plt.Axes, title: str, unit: str) -> None:
        ax.set_facecolor("#181b1f")
        ax.set_title(title, loc="left", fontsize=11)
        ax.set_ylabel(unit, fontsize=9)
        ax.grid(alpha=0.15)
        ax.tick_params(labelsize=8)

    def lines(ax: plt.Axes, times: list[float], data: dict[str, list[float]]) -> None:
        for label, values in sorted(data.items()):
            if any(v > 0 for v in values if not math.isnan(v)):
                ax.plot(times, values, label=label, linewidth=1.6)
        ax.legend(fontsize=8, loc="upper left")
        ax.set_xlabel("seconds", fontsize=8)

    ax = axes[0][0]
    panel(ax, "Tool calls by outcome", "calls/s")
    lines(ax, *series.rate_by("gateway_tool_calls_total", "outcome"))
    ax = axes[0][1]
    panel(ax, "Call latency (end to end)", "ms")
    lines(ax, *series.quantiles("gateway_tool_call_duration_seconds", (0.5, 0.95, 0.99)))
    ax = axes[0][2]
    panel(ax, "Where a call's time goes (mean per step)", "ms")
    times, sums = series.rate_by("gateway_stage_duration_seconds_sum", "stage")
    _, counts = series.rate_by("gateway_stage_duration_seconds_count", "stage")
    lines(ax, times, {k: [1000 * s / c if c else math.nan for s, c in zip(v, counts[k], strict=True)] for k, v in sums.items()})

    last = scrapes[-1]
    ax = axes[1][0]
    panel(ax, "Denials by rule", "denials")
    denials = sorted(last.by("gateway_policy_violations_total", "code", effect="deny").items(), key=lambda kv: kv[1])
    ax.barh([k for k, _ in denials][-10:], [v for _, v in denials][-10:], color="#f2495c")
    ax.tick_params(axis="y", labelsize=8)
    ax = axes[1][1]
    panel(ax, "Approval queue by state", "actions")
    queue = {state: series.gauge("gateway_queue_actions", state=state)[1] for state in ("pending", "succeeded", "denied")}
    lines(ax, series.gauge("gateway_queue_actions")[0], queue)
    ax = axes[1][2]
    panel(ax, "Parked actions settled", "per s")
    lines(ax, *series.rate_by("gateway_approvals_total", "outcome"))

    ax = axes[2][0]
    panel(ax, "OPA decision latency", "ms")
    lines(ax, *series.quantiles("gateway_decision_seconds", (0.5, 0.99)))
    ax = axes[2][1]
    panel(ax, "OPA: up, and decisions failed closed", "")
    times_up, up = series.gauge("gateway_opa_up")
    ax.fill_between(times_up, up, step="post", alpha=0.25, color="#73bf69", label="gateway_opa_up")
    failures = series.rate_by("gateway_opa_errors_total", "kind")
    for kind, values in failures[1].items():
        if any(values):
            ax.plot(failures[0], values, label=f"failed closed: {kind} /s", color="#f2495c")
    ax.legend(fontsize=8, loc="upper left")
    ax = axes[2][2]
    panel(ax, "Backend requests by status", "requests/s")
    times, by_backend = series.rate_by("gateway_backend_requests_total", "backend")
    _, by_status = series.rate_by("gateway_backend_requests_total", "status")
    lines(ax, times, {**{f"{k}": v for k, v in by_backend.items()}, **{f"status {k}": v for k, v in by_status.items()}})

    fig.tight_layout(rect=(0, 0, 1, 0.96))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80, facecolor=fig.get_facecolor())
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dashboard-") as state:
        config = TopologyConfig(
            root=ROOT, state_dir=Path(state), opa_port=free_port(), gateway_port=free_port()
        )
        topology = Topology(config)
        topology.start(timeout=120)
        scrapes: list[Scrape] = []
        try:
            asyncio.run(drive(topology, args.minutes, scrapes))
        finally:
            topology.stop()
    draw(scrapes, args.out)


if __name__ == "__main__":
    main()
