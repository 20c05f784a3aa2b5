"""The Kubernetes client's QPS / burst and its answer to 429: against a small local HTTP
server that speaks just enough of the API (a JSON object, or 429 with Retry-After)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from fakes import FakeTime
from kubernetes import client as k8s
from prometheus_client.parser import text_string_to_metric_families

from gateway.errors import NotFound, RateLimited
from gateway.kubernetes.client import TRANSPORT_RETRY, KubeClient, load_catalog
from gateway.kubernetes.kinds import ResourceKind
from gateway.metrics import Metrics
from gateway.ratelimit import TokenBucket
from gateway.settings import Settings

POD = ResourceKind(group="", version="v1", kind="Pod", plural="pods", singular="pod", namespaced=True)


class _Api:
    """Answers each request with the next scripted (status, Retry-After) or 200."""

    def __init__(self) -> None:
        self.script: list[tuple[int, str | None]] = []
        self.requests: list[str] = []

    def handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                api.requests.append(f"{self.command} {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                status, retry_after = api.script.pop(0) if api.script else (200, None)
                body = {"kind": "Pod", "metadata": {"name": "web"}} if status == 200 else {"code": status}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PATCH = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def api() -> Iterator[tuple[_Api, str]]:
    fake = _Api()
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _client(
    url: str, time: FakeTime, metrics: Metrics, *, qps: float = 0, burst: int = 1, budget: float = 5
) -> KubeClient:
    configuration = k8s.Configuration()
    configuration.host = url
    configuration.retries = TRANSPORT_RETRY
    return KubeClient(
        k8s.ApiClient(configuration),
        cluster="test",
        timeout=5,
        limiter=TokenBucket(
            qps,
            burst,
            name="Kubernetes API",
            clock=time.clock,
            sleep=time.sleep,
            metrics=metrics,
            backend="kubernetes",
        ),
        wait_budget=budget,
        max_retries=3,
        metrics=metrics,
        sleep=time.sleep,
    )


def _count(metrics: Metrics, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def test_qps_and_burst_are_set_explicitly_from_settings(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    settings = Settings(kubeconfig=kubeconfig, kube_qps=7, kube_burst=3)
    catalog = load_catalog(settings)
    assert catalog is not None
    client = KubeClient.connect(catalog.context("x"), settings, kubeconfig=kubeconfig)
    assert (client._limiter.rate, client._limiter.burst) == (7, 3)
    client.close()
    defaults = Settings()
    assert defaults.kube_qps > 0
    assert defaults.kube_burst >= 1


async def test_requests_beyond_the_burst_are_spaced_at_the_qps(api: tuple[_Api, str]) -> None:
    fake, url = api
    time, metrics = FakeTime(), Metrics()
    client = _client(url, time, metrics, qps=5, burst=2)
    for _ in range(4):
        await client.get(POD, "web", "dev")
    client.close()
    assert time.slept == pytest.approx([0.2, 0.2])
    assert len(fake.requests) == 4
    assert (
        _count(metrics, "gateway_backend_requests_total", backend="kubernetes", operation="get", status="200")
        == 4
    )


async def test_a_429_with_retry_after_is_retried_after_the_time_the_server_names(
    api: tuple[_Api, str],
) -> None:
    fake, url = api
    fake.script = [(429, "1"), (429, "1")]
    time, metrics = FakeTime(), Metrics()
    client = _client(url, time, metrics)
    # A write too: a 429 from priority and fairness was never processed.
    await client.patch(
        POD, "web", "dev", {"metadata": {}}, patch_type="merge", field_manager="t", dry_run=False
    )
    client.close()
    assert len(fake.requests) == 3
    assert len(time.slept) == 2
    assert all(1.0 <= s <= 1.1 for s in time.slept)  # the named time plus a little jitter
    assert _count(metrics, "gateway_backend_throttled_total", backend="kubernetes", source="server") == 2


async def test_a_retry_after_beyond_the_budget_fails_fast(api: tuple[_Api, str]) -> None:
    fake, url = api
    fake.script = [(429, "30")]
    time = FakeTime()
    client = _client(url, time, Metrics(), qps=100, burst=10, budget=5)
    with pytest.raises(RateLimited, match=r"rate limited, retry after 30 s") as refused:
        await client.get(POD, "web", "dev")
    assert refused.value.retry_after == 30
    # ... and the client's bucket holds the next request back as well, without sending it.
    with pytest.raises(RateLimited, match=r"retry after 30 s"):
        await client.get(POD, "web", "dev")
    client.close()
    assert len(fake.requests) == 1
    assert time.slept == []


async def test_a_429_without_retry_after_is_not_retried(api: tuple[_Api, str]) -> None:
    fake, url = api
    fake.script = [(429, None)]
    client = _client(url, FakeTime(), Metrics())
    with pytest.raises(RateLimited, match="throttling"):
        await client.get(POD, "web", "dev")
    client.close()
    assert len(fake.requests) == 1


async def test_a_wait_for_the_bucket_beyond_the_budget_fails_before_sending(api: tuple[_Api, str]) -> None:
    fake, url = api
    time, metrics = FakeTime(), Metrics()
    client = _client(url, time, metrics, qps=0.1, burst=1, budget=2)
    await client.get(POD, "web", "dev")
    with pytest.raises(RateLimited, match=r"^Kubernetes API rate limited, retry after 10 s"):
        await client.get(POD, "web", "dev")
    fake.script = [(404, None)]
    time.now += 10
    with pytest.raises(NotFound):
        await client.get(POD, "web", "dev")
    client.close()
    assert len(fake.requests) == 2
    assert _count(metrics, "gateway_backend_throttled_total", backend="kubernetes", source="client") == 1
    assert _count(metrics, "gateway_backend_requests_total", backend="kubernetes", status="404") == 1
