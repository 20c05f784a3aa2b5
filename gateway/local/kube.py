"""A real Kubernetes API server as native processes: etcd plus kube-apiserver on loopback.

No controllers run (no kube-controller-manager, no scheduler, no kubelet): Deployments
create no Pods and namespaces are never finalized. That is all the gateway needs to test
selectors, dry-run, server-side apply, field-manager conflicts and RBAC against the real
server, and it is the sandbox ``make run`` serves when no cluster is configured.

Authentication is a static token file with two users: an admin in ``system:masters`` and
a restricted user with no bindings (tests grant it what they need). The serving
certificate is the one kube-apiserver generates in ``--cert-dir``; the kubeconfig embeds
it. State lives under one directory, so a sandbox keeps its objects, tokens and
keys across restarts.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.errors import ConfigError
from gateway.local.process import ManagedProcess, free_port, wait_until

__all__ = [
    "ADMIN_USER",
    "APISERVER_VERSION",
    "RESTRICTED_USER",
    "KubeApiServer",
    "find_etcd",
    "find_kube_apiserver",
]

APISERVER_VERSION = "v1.30.14"
ADMIN_USER = "sandbox-admin"
RESTRICTED_USER = "restricted-user"
_CACHE_BINARY = (
    Path.home() / ".cache" / "policy-gateway" / f"kube-apiserver-{APISERVER_VERSION}" / "kube-apiserver"
)
_SERVICE_CIDR = "10.96.0.0/24"


def find_kube_apiserver() -> str:
    """``GATEWAY_KUBE_APISERVER_BIN`` (exported by the Makefile) or the tool-cache build."""
    candidate = os.environ.get("GATEWAY_KUBE_APISERVER_BIN") or str(_CACHE_BINARY)
    if not os.access(candidate, os.X_OK):
        raise ConfigError("no kube-apiserver binary: run `make setup`, or set GATEWAY_KUBE_APISERVER_BIN")
    return candidate


def find_etcd() -> str:
    """``GATEWAY_ETCD_BIN``, else ``etcd`` on PATH (Debian's etcd-server), else /usr/bin/etcd."""
    candidate = os.environ.get("GATEWAY_ETCD_BIN") or shutil.which("etcd") or "/usr/bin/etcd"
    if not os.access(candidate, os.X_OK):
        raise ConfigError("no etcd binary: install etcd-server (`make setup`), or set GATEWAY_ETCD_BIN")
    return candidate


@dataclass(frozen=True)
class _Credentials:
    admin_token: str
    restricted_token: str


class KubeApiServer:
    """etcd + kube-apiserver under ``state_dir``, started and stopped by pid.

    ``port`` 0 picks a free loopback port. ``start`` returns once ``/readyz`` answers 200,
    which includes the RBAC bootstrap roles (``view``, ``edit``, ``admin``).
    """

    def __init__(self, state_dir: Path, *, port: int = 0, context: str = "sandbox") -> None:
        self.state_dir = state_dir.resolve()
        self.context = context
        self._fixed_port = port
        self._credentials = self._ensure_credentials()
        self._ensure_service_account_key()
        self._plan_processes()
        self.started_in: float | None = None

    def _plan_processes(self) -> None:
        self.port = self._fixed_port or free_port()
        self._etcd_port = free_port()
        self._peer_port = free_port()
        self.etcd = ManagedProcess(self._etcd_argv(), log_path=self.state_dir / "logs" / "etcd.log")
        self.apiserver = ManagedProcess(
            self._apiserver_argv(), log_path=self.state_dir / "logs" / "kube-apiserver.log"
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def admin_token(self) -> str:
        return self._credentials.admin_token

    @property
    def restricted_token(self) -> str:
        return self._credentials.restricted_token

    @property
    def ca_file(self) -> Path:
        """The self-signed serving certificate kube-apiserver writes to its cert dir."""
        return self.state_dir / "certs" / "apiserver.crt"

    @property
    def kubeconfig_path(self) -> Path:
        return self.state_dir / "kubeconfig"

    def start(self, timeout: float = 90.0, *, attempts: int = 3) -> None:
        """Start both and wait for readiness. A free port taken by someone else between
        choosing and binding it (other test runs on the machine) means new ports and
        another attempt; any other failure stops both processes and is raised."""
        began = time.monotonic()
        for attempt in range(1, attempts + 1):
            try:
                self._start_once(timeout)
                break
            except RuntimeError as exc:
                if attempt == attempts or "address already in use" not in str(exc):
                    raise
                self._plan_processes()
        self.started_in = time.monotonic() - began
        self.write_kubeconfig(self.kubeconfig_path)

    def _start_once(self, timeout: float) -> None:
        self.etcd.start()
        try:
            wait_until(self._etcd_ready, timeout=timeout, what=f"etcd on port {self._etcd_port}")
            self.apiserver.start()
            wait_until(self._apiserver_ready, timeout=timeout, what=f"kube-apiserver on port {self.port}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.apiserver.stop(grace=10)
        self.etcd.stop(grace=10)

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig with two contexts, ``<context>`` (admin) and ``<context>-restricted``,
        trusting the server's self-signed certificate (written by ``start``)."""
        # Embedded rather than referenced: the file stays usable wherever it is copied.
        ca_data = base64.b64encode(self.ca_file.read_bytes()).decode("ascii")
        cluster = {"server": self.url, "certificate-authority-data": ca_data}
        users = {
            ADMIN_USER: self.admin_token,
            RESTRICTED_USER: self.restricted_token,
        }
        contexts = {self.context: ADMIN_USER, f"{self.context}-restricted": RESTRICTED_USER}
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": self.context, "cluster": cluster}],
            "users": [{"name": name, "user": {"token": token}} for name, token in users.items()],
            "contexts": [
                {"name": name, "context": {"cluster": self.context, "user": user, "namespace": "default"}}
                for name, user in contexts.items()
            ],
            "current-context": self.context,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        # The file holds bearer tokens: write it owner-only before anything is in it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            yaml.safe_dump(document, out, sort_keys=False)
        return path

    # -- state ---------------------------------------------------------------------------

    def _ensure_credentials(self) -> _Credentials:
        token_file = self.state_dir / "tokens.csv"
        if not token_file.exists():
            token_file.parent.mkdir(parents=True, exist_ok=True)
            admin, restricted = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(f'{admin},{ADMIN_USER},uid-admin,"system:masters"\n')
                out.write(f"{restricted},{RESTRICTED_USER},uid-restricted\n")
        rows = [line.split(",", 2) for line in token_file.read_text().splitlines() if line.strip()]
        tokens = {row[1]: row[0] for row in rows if len(row) >= 2}
        if ADMIN_USER not in tokens or RESTRICTED_USER not in tokens:
            raise ConfigError(f"{token_file} is not a sandbox token file: remove {self.state_dir} to reset")
        return _Credentials(admin_token=tokens[ADMIN_USER], restricted_token=tokens[RESTRICTED_USER])

    def _ensure_service_account_key(self) -> None:
        key_file = self.state_dir / "sa.key"
        if key_file.exists():
            return
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(private)
        (self.state_dir / "sa.pub").write_bytes(public)

    def _etcd_argv(self) -> list[str]:
        client = f"http://127.0.0.1:{self._etcd_port}"
        peer = f"http://127.0.0.1:{self._peer_port}"
        return [
            find_etcd(),
            "--name=sandbox",
            f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=sandbox={peer}",
            "--log-level=warn",
            "--logger=zap",
        ]

    def _apiserver_argv(self) -> list[str]:
        sa_key = self.state_dir / "sa.key"
        return [
            find_kube_apiserver(),
            f"--etcd-servers=http://127.0.0.1:{self._etcd_port}",
            f"--cert-dir={self.state_dir / 'certs'}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--service-cluster-ip-range={_SERVICE_CIDR}",
            "--allow-privileged=true",
            "--authorization-mode=RBAC",
            f"--token-auth-file={self.state_dir / 'tokens.csv'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={self.state_dir / 'sa.pub'}",
            f"--service-account-signing-key-file={sa_key}",
            # No controller-manager creates each namespace's `default` ServiceAccount, so
            # the admission plugin that requires it would reject every bare Pod.
            "--disable-admission-plugins=ServiceAccount",
            # A single-member sandbox has no peers to reconcile endpoints with.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=0",
        ]

    # -- readiness -----------------------------------------------------------------------

    def _etcd_ready(self) -> bool:
        if not self.etcd.alive():
            raise RuntimeError(f"etcd exited during start-up:\n{self.etcd.tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self._etcd_port}/health", timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _apiserver_ready(self) -> bool:
        if not self.apiserver.alive():
            raise RuntimeError(f"kube-apiserver exited during start-up:\n{self.apiserver.tail()}")
        if not self.ca_file.exists():
            return False
        request = urllib.request.Request(  # noqa: S310 - fixed loopback https URL
            f"{self.url}/readyz", headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        context = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(request, timeout=2, context=context) as resp:  # noqa: S310
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError, ssl.SSLError):
            return False
