"""The living sandbox: a real control plane and simulated nodes, as native processes.

    etcd                      Debian's etcd-server
    kube-apiserver            \\
    kube-controller-manager    > built from the same pinned Kubernetes release
    kube-scheduler            /
    kwok                      simulated nodes: leases, pod status, the kubelet API for logs

Deployments roll out, ReplicaSets create pods, the scheduler binds them (or leaves them
Pending with its reason), kwok plays the kubelet: pods reach Running, crash-loop or fail
to pull their image when annotated to (``gateway.local.kwok``), nodes report their
conditions, and every component writes events. The controller manager runs each
controller with its own service account (``--use-service-account-credentials``), signs
with the sandbox's service-account key and publishes the API server's certificate as
each namespace's ``kube-root-ca.crt``.

Each component authenticates with a token of its own (``gateway.local.kube``) and gets
a kubeconfig under ``<state>/components``; logs go to ``<state>/logs/<component>.log``.
``start`` brings them up in dependency order and returns once every one answers its
health check and the controllers have created the ``default`` ServiceAccount; when one
fails, everything already started is stopped and ``ComponentFailed`` names it and its
log. ``stop`` stops every process by pid, in reverse order.
"""

from __future__ import annotations

import contextlib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.local.client import SandboxClient
from gateway.local.kube import COMPONENT_USERS, SERVICE_CIDR, KubeApiServer, find_tool
from gateway.local.kwok import MANAGED_NODE_ANNOTATION, write_config
from gateway.local.pki import SandboxCA
from gateway.local.process import ComponentFailed, ManagedProcess, free_port

__all__ = ["CLUSTER_CIDR", "Component", "SandboxCluster"]

# Pod addresses: the node IPAM controller gives each node a /24 of this range (1024 nodes).
CLUSTER_CIDR = "10.244.0.0/14"
_KWOK_ROLE = "sandbox:kwok-controller"
# What kwok does as every node's kubelet (kwok v0.6.1's kustomize/rbac, core part).
_KWOK_RULES = [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch", "update"]},
    {
        "apiGroups": [""],
        "resources": ["pods"],
        "verbs": ["get", "list", "watch", "patch", "update", "delete"],
    },
    {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch", "update"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch", "update"]},
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["create", "get", "list", "watch", "patch", "update"],
    },
]


def _unverified_https(url: str) -> bool:
    """A loopback health endpoint served with the component's own self-signed certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def _verified_https(url: str, cafile: Path) -> bool:
    context = ssl.create_default_context(cafile=str(cafile))
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


@dataclass
class Component:
    """One control-plane process: its argv (built once its port is chosen) and probe."""

    name: str
    argv: Callable[[int], list[str]]
    probe: Callable[[int], bool]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: ManagedProcess | None = None

    def start(self, timeout: float, attempts: int = 3) -> None:
        for attempt in range(1, attempts + 1):
            self.port = free_port()
            self.process = ManagedProcess(self.argv(self.port), log_path=self.log_path, env=self.env)
            try:
                self.process.start_and_wait(lambda: self.probe(self.port), timeout=timeout, what=self.name)
                return
            except (RuntimeError, TimeoutError) as exc:
                tail = self.process.tail()
                self.process.stop(grace=5)
                # Another process took the port between choosing and binding it: again.
                if attempt < attempts and "address already in use" in tail:
                    continue
                raise ComponentFailed(self.name, self.log_path, str(exc), tail) from exc

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=10)


class SandboxCluster:
    """The whole sandbox under ``state_dir``; ``port`` 0 picks a free API server port."""

    def __init__(self, state_dir: Path, *, port: int = 0, context: str = "sandbox") -> None:
        self.state_dir = state_dir.resolve()
        self.context = context
        self.ca = SandboxCA(self.state_dir / "pki")
        self.api = KubeApiServer(
            self.state_dir, port=port, context=context, controllers=True, sandbox_ca=self.ca.pair.cert
        )
        # Every binary is found before anything starts: a missing one is a usage error.
        self._bins = {name: find_tool(name) for name in COMPONENT_USERS}
        logs = self.state_dir / "logs"
        self.components = [
            Component("kube-controller-manager", self._controller_manager_argv, self._healthz,
                      logs / "kube-controller-manager.log"),
            Component("kube-scheduler", self._scheduler_argv, self._healthz, logs / "kube-scheduler.log"),
            Component("kwok", self._kwok_argv, self._kwok_ready, logs / "kwok.log",
                      env={"KWOK_WORKDIR": str(self.state_dir / "kwok")}),
        ]  # fmt: skip
        self.started_in: float | None = None

    @property
    def url(self) -> str:
        return self.api.url

    @property
    def kubeconfig_path(self) -> Path:
        return self.api.kubeconfig_path

    @property
    def kwok_port(self) -> int:
        return self.components[-1].port

    def start(self, timeout: float = 120.0) -> None:
        began = time.monotonic()
        try:
            self.ca.ensure()
            self.ca.serving("kwok")
            self.api.start(timeout)
            for component in self.components:
                self.api.write_component_kubeconfig(component.name, self._kubeconfig(component.name))
            self._bootstrap()
            for component in self.components:
                component.start(timeout)
            self._wait_for_service_accounts(timeout)
            self._register_kubelet_port()
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began

    def stop(self) -> None:
        for component in reversed(self.components):
            with contextlib.suppress(Exception):
                component.stop()
        self.api.stop()

    def dead(self) -> list[str]:
        """Components that were started and are no longer running."""
        parts = [("etcd", self.api.etcd.alive()), ("kube-apiserver", self.api.apiserver.alive())]
        parts += [(c.name, c.alive()) for c in self.components]
        return [name for name, alive in parts if not alive]

    def pids(self) -> dict[str, int]:
        found = {"etcd": self.api.etcd.pid, "kube-apiserver": self.api.apiserver.pid}
        found |= {c.name: c.process.pid for c in self.components if c.process is not None}
        return found

    def log_path(self, component: str) -> Path:
        return self.state_dir / "logs" / f"{component}.log"

    # -- set-up --------------------------------------------------------------------------

    def _kubeconfig(self, component: str) -> Path:
        return self.state_dir / "components" / f"{component}.kubeconfig"

    def _bootstrap(self) -> None:
        """What the components need from the API before they start: kwok's role."""
        user = COMPONENT_USERS["kwok"]
        role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": _KWOK_ROLE}
        with SandboxClient(self.kubeconfig_path, context=self.context) as client:
            client.apply_all(
                [
                    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                     "metadata": {"name": _KWOK_ROLE}, "rules": _KWOK_RULES},
                    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                     "metadata": {"name": _KWOK_ROLE}, "roleRef": role_ref,
                     "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]},
                ]
            )  # fmt: skip

    def _wait_for_service_accounts(self, timeout: float) -> None:
        """The controllers work: each namespace gets its ``default`` ServiceAccount, which
        the ServiceAccount admission plugin requires before a pod can be created."""
        component = self.components[0]
        with SandboxClient(self.kubeconfig_path, context=self.context) as client:
            try:
                client.wait_for(
                    lambda: client.get("v1", "ServiceAccount", "default", namespace="default"),
                    timeout=timeout,
                    what="the default ServiceAccount",
                )
            except TimeoutError as exc:
                tail = component.process.tail() if component.process else ""
                raise ComponentFailed(component.name, component.log_path, str(exc), tail) from exc

    def _register_kubelet_port(self) -> None:
        """Point the simulated nodes at kwok's port of this run, as a restarted kubelet
        updates its node: the API server proxies logs to the port a node advertises."""
        key, value = MANAGED_NODE_ANNOTATION
        endpoint = {"daemonEndpoints": {"kubeletEndpoint": {"Port": self.kwok_port}}}
        with SandboxClient(self.kubeconfig_path, context=self.context) as client:
            for page in client.pages("v1", "Node"):
                for node in page:
                    meta, status = node.get("metadata") or {}, node.get("status") or {}
                    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
                    managed = (meta.get("annotations") or {}).get(key) == value
                    if managed and port not in (None, self.kwok_port):
                        client.patch_status("v1", "Node", meta["name"], {"status": endpoint})

    # -- components ----------------------------------------------------------------------

    def _healthz(self, port: int) -> bool:
        return _unverified_https(f"https://127.0.0.1:{port}/healthz")

    def _kwok_ready(self, port: int) -> bool:
        return _verified_https(f"https://127.0.0.1:{port}/healthz", self.ca.pair.cert)

    def _serving(self, name: str, port: int) -> list[str]:
        kubeconfig = self._kubeconfig(name)
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            # Bearer tokens are checked with TokenReviews; no client-certificate CA to look up.
            "--authentication-skip-lookup=true",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.state_dir / 'components' / name}",
            # One instance: no leader election to wait for after a restart.
            "--leader-elect=false",
            "--profiling=false",
            # The defaults (20 queries/s) would take minutes over a 5,000-pod seed.
            "--kube-api-qps=200",
            "--kube-api-burst=400",
        ]

    def _controller_manager_argv(self, port: int) -> list[str]:
        name = "kube-controller-manager"
        return [
            self._bins[name],
            *self._serving(name, port),
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self.api.service_account_key}",
            f"--root-ca-file={self.api.ca_file}",
            f"--cluster-name={self.context}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allocate-node-cidrs=true",
            f"--cluster-cidr={CLUSTER_CIDR}",
            "--node-cidr-mask-size=24",
            # No cloud provider: its controllers would only log that they cannot start.
            "--controllers=*,-cloud-node-lifecycle-controller,-service-lb-controller,-node-route-controller",
            "--concurrent-deployment-syncs=10",
            "--concurrent-replicaset-syncs=10",
            "--v=1",
        ]

    def _scheduler_argv(self, port: int) -> list[str]:
        name = "kube-scheduler"
        return [self._bins[name], *self._serving(name, port), "--v=1"]

    def _kwok_argv(self, port: int) -> list[str]:
        pair = self.ca.serving("kwok")
        key, value = MANAGED_NODE_ANNOTATION
        return [
            self._bins["kwok"],
            f"--kubeconfig={self._kubeconfig('kwok')}",
            f"--config={write_config(self.state_dir / 'kwok')}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={key}={value}",
            "--node-ip=127.0.0.1",
            f"--node-port={port}",
            f"--server-address=127.0.0.1:{port}",
            f"--tls-cert-file={pair.cert}",
            f"--tls-private-key-file={pair.key}",
            f"--cidr={CLUSTER_CIDR}",
            # Leases, as kubelets renew them: the node lifecycle controller watches them.
            "--node-lease-duration-seconds=40",
        ]
