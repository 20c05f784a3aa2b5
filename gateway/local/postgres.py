"""A real PostgreSQL server as a native process: what the tests, the benchmarks and
``gateway.local.replicas`` start instead of a database container.

``initdb`` and ``postgres`` come from Debian's packages (``scripts/system-packages.sh``
installs ``postgresql`` when they are missing). Everything lives in one temporary directory
(data, unix socket, log), the server listens on a free loopback port, and it is stopped by
its pid (SIGINT: PostgreSQL's fast shutdown, then SIGKILL).

PostgreSQL refuses to run as root, and CI runs as root: then the server runs as the
``postgres`` system user the Debian package creates (``nobody`` if there is none), in a
directory that user owns, and only the server runs under that identity; the gateway and
the tests connect over TCP with a password. As a normal user it runs as that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError
from gateway.local.process import free_port, terminate, wait_until

__all__ = ["PostgresServer", "find_postgres_bin"]

# Fast and disposable: the tests judge semantics (locks, transactions, notifications),
# not durability across power loss.
_TEST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "128MB",
    "log_min_messages": "warning",
    "log_min_error_statement": "panic",
}


def find_postgres_bin() -> Path:
    """The directory holding ``initdb`` and ``postgres``: ``GATEWAY_POSTGRES_BIN_DIR``, else
    the newest ``/usr/lib/postgresql/*/bin`` (Debian's layout), else ``pg_config --bindir``."""
    configured = os.environ.get("GATEWAY_POSTGRES_BIN_DIR")
    candidates = [Path(configured)] if configured else []
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name or 0))
    candidates += [Path(p) for p in reversed(versions)]
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "postgres").is_file():
            return directory
    raise ConfigError(
        "no PostgreSQL server binaries (initdb, postgres): run scripts/system-packages.sh "
        "(Debian package postgresql) or set GATEWAY_POSTGRES_BIN_DIR"
    )


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: ``None`` (this user) unless we are root, which PostgreSQL refuses."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ConfigError(
        "running as root, and there is neither a 'postgres' nor a 'nobody' user to run PostgreSQL"
    )


class PostgresServer:
    """One throw-away PostgreSQL cluster: ``start()``, ``url(database)``, ``create_database``,
    ``stop()``. The role ``gateway`` (password auth over TCP, not a superuser) owns the
    databases it creates; the superuser ``postgres_admin`` is reachable over the socket only."""

    ROLE = "gateway"

    def __init__(self, *, port: int | None = None, settings: dict[str, str] | None = None) -> None:
        self.bin = find_postgres_bin()
        self.port = port or free_port()
        self.password = secrets.token_urlsafe(18)
        self._settings = {**_TEST_SETTINGS, **(settings or {})}
        self._user = _server_user()
        self.base: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- paths ---------------------------------------------------------------------

    @property
    def _dir(self) -> Path:
        if self.base is None:
            raise RuntimeError("PostgreSQL server not started")
        return self.base

    @property
    def socket_dir(self) -> Path:
        return self._dir / "socket"

    @property
    def log_path(self) -> Path:
        return self._dir / "postgres.log"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("PostgreSQL server not started")
        return self._proc.pid

    def url(self, database: str = "gateway", *, password: str | None = None, port: int | None = None) -> str:
        """``postgresql://gateway:…@127.0.0.1:PORT/DATABASE``: what ``GATEWAY_DATABASE_URL`` holds."""
        secret = self.password if password is None else password
        return f"postgresql://{self.ROLE}:{secret}@127.0.0.1:{port or self.port}/{database}"

    # -- life cycle ----------------------------------------------------------------

    def _run_as(self) -> dict[str, Any]:
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}

    def _own(self, path: Path) -> None:
        if self._user is not None:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def start(self, timeout: float = 60.0) -> None:
        """initdb in a new temp dir, start the server, create the role and database ``gateway``."""
        self.base = Path(tempfile.mkdtemp(prefix="gateway-postgres-"))
        try:
            self._initdb()
            self.resume(timeout)
            self.sql(f"CREATE ROLE {self.ROLE} LOGIN CREATEDB PASSWORD '{self.password}'")
            self.create_database("gateway")
        except BaseException:
            self.stop()
            raise

    def _initdb(self) -> None:
        self._own(self._dir)
        self.socket_dir.mkdir()
        self._own(self.socket_dir)
        pwfile = self._dir / "admin-password"
        pwfile.write_text(secrets.token_urlsafe(18) + "\n")
        self._own(pwfile)
        initdb = [
            str(self.bin / "initdb"),
            "--pgdata", str(self._dir / "data"), "--username", "postgres_admin",
            "--pwfile", str(pwfile), "--auth-local", "trust", "--auth-host", "scram-sha-256",
            "--encoding", "UTF8", "--locale", "C", "--no-sync", "--no-instructions",
        ]  # fmt: skip
        done = subprocess.run(initdb, capture_output=True, text=True, check=False, **self._run_as())
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stderr.strip() or done.stdout.strip()}")

    def resume(self, timeout: float = 60.0) -> None:
        """Start the server on the cluster ``start()`` made (again, after ``halt()``)."""
        argv = [
            str(self.bin / "postgres"), "-D", str(self._dir / "data"), "-p", str(self.port),
            "-k", str(self.socket_dir), "-c", "listen_addresses=127.0.0.1",
        ]  # fmt: skip
        for name, value in self._settings.items():
            argv += ["-c", f"{name}={value}"]
        with self.log_path.open("ab") as log:
            self._own(self.log_path)
            self._proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, **self._run_as(),
            )  # fmt: skip
        wait_until(self._ready, timeout=timeout, what=f"PostgreSQL on port {self.port}")

    def _ready(self) -> bool:
        if self._proc is None or self._proc.poll() is not None:
            raise RuntimeError(f"PostgreSQL exited during start-up:\n{self.tail()}")
        probe = [str(self.bin / "pg_isready"), "-q", "-h", str(self.socket_dir), "-p", str(self.port)]
        return subprocess.run(probe, check=False).returncode == 0

    def sql(self, statement: str, *, database: str = "postgres") -> str:
        """Run one statement as the superuser over the unix socket; its output as text."""
        argv = [
            str(self.bin / "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
            "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres_admin",
            "-d", database, "-c", statement,
        ]  # fmt: skip
        psql = argv if (self.bin / "psql").is_file() else [shutil.which("psql") or "psql", *argv[1:]]
        done = subprocess.run(psql, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def create_database(self, name: str) -> str:
        """A new, empty database owned by the gateway role; returns its URL."""
        self.sql(f'CREATE DATABASE "{name}" OWNER {self.ROLE} TEMPLATE template0')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, RuntimeError):
            return ""

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def halt(self, grace: float = 10.0) -> None:
        """Fast shutdown by pid (SIGINT: clients are disconnected, nothing is lost), SIGKILL
        after ``grace``; the cluster stays for ``resume()``."""
        if self._proc is not None:
            # SIGINT to the postmaster alone: it shuts its own backends down.
            terminate(self._proc, grace=grace, first=signal.SIGINT, group=False)

    def stop(self, grace: float = 10.0) -> None:
        """``halt()``, then remove the directory."""
        self.halt(grace)
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
