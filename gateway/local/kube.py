"""A real Kubernetes API server as native processes: etcd plus kube-apiserver on loopback.

On its own (``controllers=False``) no controllers run: Deployments create no Pods and
namespaces are never finalized. That quiet server is what tests of selectors, dry-run,
server-side apply and field-manager conflicts need. ``gateway.local.cluster`` runs it
with ``controllers=True`` and adds the controller manager, the scheduler and kwok's
simulated nodes: the living sandbox ``make run`` serves.

Authentication is a static token file: an admin in ``system:masters``, a restricted user
with no bindings (tests grant it what they need), and one user per control-plane
component, named as the bootstrap RBAC policy expects (``system:kube-controller-manager``,
``system:kube-scheduler``) or bound by the cluster to a role of its own (kwok). The
serving certificate is the one kube-apiserver generates in ``--cert-dir``; kubeconfigs
embed it. State lives under one directory, so a sandbox keeps its objects, tokens and
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
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.errors import ConfigError
from gateway.local.process import ComponentFailed, ManagedProcess, free_port, wait_until

__all__ = [
    "ADMIN_USER",
    "APISERVER_VERSION",
    "COMPONENT_USERS",
    "RESTRICTED_USER",
    "SERVICE_CIDR",
    "KubeApiServer",
    "find_etcd",
    "find_kube_apiserver",
    "find_tool",
]

APISERVER_VERSION = "v1.30.14"
KWOK_VERSION = "v0.6.1"
ADMIN_USER = "sandbox-admin"
RESTRICTED_USER = "restricted-user"
# The user each control-plane component authenticates as.
COMPONENT_USERS = {
    "kube-controller-manager": "system:kube-controller-manager",
    "kube-scheduler": "system:kube-scheduler",
    "kwok": "kwok-controller",
}
SERVICE_CIDR = "10.96.0.0/24"
_TOOL_CACHE = Path.home() / ".cache" / "policy-gateway"
# Where `make setup` builds each binary (mk/kube.mk), and the variable that overrides it.
_TOOLS = {
    "kube-apiserver": (f"kubernetes-{APISERVER_VERSION}", "GATEWAY_KUBE_APISERVER_BIN"),
    "kube-controller-manager": (f"kubernetes-{APISERVER_VERSION}", "GATEWAY_KUBE_CONTROLLER_MANAGER_BIN"),
    "kube-scheduler": (f"kubernetes-{APISERVER_VERSION}", "GATEWAY_KUBE_SCHEDULER_BIN"),
    "kwok": (f"kwok-{KWOK_VERSION}", "GATEWAY_KWOK_BIN"),
}


def find_tool(name: str) -> str:
    """The binary of ``name``: its ``GATEWAY_*_BIN`` variable (exported by the Makefile),
    else the tool-cache build."""
    directory, variable = _TOOLS[name]
    candidate = os.environ.get(variable) or str(_TOOL_CACHE / directory / name)
    if not os.access(candidate, os.X_OK):
        raise ConfigError(f"no {name} binary: run `make setup`, or set {variable}")
    return candidate


def find_kube_apiserver() -> str:
    return find_tool("kube-apiserver")


def find_etcd() -> str:
    """``GATEWAY_ETCD_BIN``, else ``etcd`` on PATH (Debian's etcd-server), else /usr/bin/etcd."""
    candidate = os.environ.get("GATEWAY_ETCD_BIN") or shutil.which("etcd") or "/usr/bin/etcd"
    if not os.access(candidate, os.X_OK):
        raise ConfigError("no etcd binary: install etcd-server (`make setup`), or set GATEWAY_ETCD_BIN")
    return candidate


class KubeApiServer:
    """etcd + kube-apiserver under ``state_dir``, started and stopped by pid.

    ``port`` 0 picks a free loopback port. ``start`` returns once ``/readyz`` answers 200,
    which includes the RBAC bootstrap roles (``view``, ``edit``, ``admin``).
    ``controllers`` says whether a controller manager will run (it creates the
    ``default`` ServiceAccount the ServiceAccount admission plugin requires);
    ``sandbox_ca`` is the sandbox's CA: the API server verifies node (kwok) endpoints
    with it when it proxies pod logs.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        port: int = 0,
        context: str = "sandbox",
        controllers: bool = False,
        sandbox_ca: Path | None = None,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.context = context
        self.controllers = controllers
        self.sandbox_ca = sandbox_ca
        self._fixed_port = port
        self._tokens = self._ensure_credentials()
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
        return self._tokens[ADMIN_USER]

    @property
    def restricted_token(self) -> str:
        return self._tokens[RESTRICTED_USER]

    @property
    def service_account_key(self) -> Path:
        """The key service-account tokens are signed with (the controller manager signs
        the legacy token Secrets with it too)."""
        return self.state_dir / "sa.key"

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
        try:
            for name, process, probe in (
                ("etcd", self.etcd, self._etcd_ready),
                ("kube-apiserver", self.apiserver, self._apiserver_ready),
            ):
                process.start()
                try:
                    wait_until(probe, timeout=timeout, what=f"{name} on its port")
                except (RuntimeError, TimeoutError) as exc:
                    raise ComponentFailed(name, process.log_path, str(exc), process.tail()) from exc
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.apiserver.stop(grace=10)
        self.etcd.stop(grace=10)

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig with two contexts, ``<context>`` (admin) and ``<context>-restricted``,
        trusting the server's self-signed certificate (written by ``start``)."""
        contexts = {self.context: ADMIN_USER, f"{self.context}-restricted": RESTRICTED_USER}
        return self._write_kubeconfig(path, contexts, current=self.context)

    def write_component_kubeconfig(self, component: str, path: Path) -> Path:
        """A kubeconfig for one control-plane component, as its own user."""
        return self._write_kubeconfig(path, {component: COMPONENT_USERS[component]}, current=component)

    def _write_kubeconfig(self, path: Path, contexts: dict[str, str], *, current: str) -> Path:
        # Embedded rather than referenced: the file stays usable wherever it is copied.
        ca_data = base64.b64encode(self.ca_file.read_bytes()).decode("ascii")
        cluster = {"server": self.url, "certificate-authority-data": ca_data}
        users = {user: self._tokens[user] for user in contexts.values()}
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": self.context, "cluster": cluster}],
            "users": [{"name": name, "user": {"token": token}} for name, token in users.items()],
            "contexts": [
                {"name": name, "context": {"cluster": self.context, "user": user, "namespace": "default"}}
                for name, user in contexts.items()
            ],
            "current-context": current,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        # The file holds bearer tokens: write it owner-only before anything is in it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            yaml.safe_dump(document, out, sort_keys=False)
        return path

    # -- state ---------------------------------------------------------------------------

    def _ensure_credentials(self) -> dict[str, str]:
        """Token by user name; users missing from an older sandbox's file are added."""
        token_file = self.state_dir / "tokens.csv"
        if not token_file.exists():
            token_file.parent.mkdir(parents=True, exist_ok=True)
            admin, restricted = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(f'{admin},{ADMIN_USER},uid-admin,"system:masters"\n')
                out.write(f"{restricted},{RESTRICTED_USER},uid-restricted\n")
        rows = [line.split(",", 3) for line in token_file.read_text().splitlines() if line.strip()]
        tokens = {row[1]: row[0] for row in rows if len(row) >= 2}
        if ADMIN_USER not in tokens or RESTRICTED_USER not in tokens:
            raise ConfigError(f"{token_file} is not a sandbox token file: remove {self.state_dir} to reset")
        missing = [user for user in COMPONENT_USERS.values() if user not in tokens]
        if missing:
            with token_file.open("a") as out:
                for user in missing:
                    tokens[user] = secrets.token_urlsafe(32)
                    out.write(f"{tokens[user]},{user},uid-{user.rsplit(':', 1)[-1]}\n")
        return tokens

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
        argv = [
            find_kube_apiserver(),
            f"--etcd-servers=http://127.0.0.1:{self._etcd_port}",
            f"--cert-dir={self.state_dir / 'certs'}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            "--authorization-mode=RBAC",
            f"--token-auth-file={self.state_dir / 'tokens.csv'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={self.state_dir / 'sa.pub'}",
            f"--service-account-signing-key-file={sa_key}",
            # A single-member sandbox has no peers to reconcile endpoints with.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=0",
        ]
        if not self.controllers:
            # No controller manager creates each namespace's `default` ServiceAccount, so
            # the admission plugin that requires it would reject every bare Pod.
            argv.append("--disable-admission-plugins=ServiceAccount")
        if self.sandbox_ca is not None:
            # Simulated nodes all listen on loopback: their InternalIP is 127.0.0.1, and
            # their "kubelet" (kwok) serves a certificate from the sandbox CA for it.
            argv += [
                f"--kubelet-certificate-authority={self.sandbox_ca}",
                "--kubelet-preferred-address-types=InternalIP",
            ]
        return argv

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
        try:
            # Inside the try: kube-apiserver may be writing the certificate as it is read.
            context = ssl.create_default_context(cafile=str(self.ca_file))
            with urllib.request.urlopen(request, timeout=2, context=context) as resp:  # noqa: S310
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError, ssl.SSLError):
            return False
