"""``docker-compose.yml`` and the ``Dockerfile``, checked with real parsers, against the
values the native topology (``make up``) uses, and with OPA's container command and
healthcheck run for real against the real ``opa`` binary."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from dockerfile_parse import DockerfileParser
from storage_fixtures import Backend

from gateway.local import deployment as dep
from gateway.local.opa import OpaServer, find_opa
from gateway.local.process import ManagedProcess, free_port, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SIGNED_OVERRIDE = ROOT / "deploy" / "compose.signed.yml"
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_BIN = shutil.which("docker-compose") or "/usr/bin/docker-compose"
GATEWAY_CLI = Path(sys.executable).with_name("gateway")
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL)", re.IGNORECASE)


def _secret_like(name: str) -> bool:
    """A variable that would hold a secret itself (a file path to one is fine)."""
    return bool(_SECRET_NAME.search(name)) and not name.upper().endswith(("_FILE", "_PATH"))


def _compose(*files: Path, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    argv = [COMPOSE_BIN]
    for f in files:
        argv += ["-f", str(f)]
    argv += ["config", *(["--quiet"] if quiet else [])]
    # Interpolation made deterministic: nothing from the developer's shell leaks in.
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/operator",
        "GATEWAY_KUBECONFIG_FILE": "/home/operator/kube.yaml",
    }
    return subprocess.run(argv, capture_output=True, text=True, check=False, env=env, cwd=ROOT, timeout=60)


def _normalised(*files: Path) -> dict[str, Any]:
    done = _compose(*files)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _normalised(COMPOSE)


def _mounts(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Container path -> (host path or volume name, mode), from the normalised short syntax."""
    out: dict[str, tuple[str, str]] = {}
    for spec in service.get("volumes", []):
        source, target, *mode = spec.split(":")
        out[target] = (source, mode[0] if mode else "rw")
    return out


def _ports(service: dict[str, Any]) -> set[str]:
    return {str(p) for p in service.get("ports", [])}


def _makefile_opa_version() -> str:
    match = re.search(r"^OPA_VERSION\s*:=\s*v(\S+)\s*$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, "OPA_VERSION not found in the Makefile"
    return match.group(1)


# --- the compose file -----------------------------------------------------------------


def test_compose_file_passes_the_real_parser_quietly() -> None:
    done = _compose(COMPOSE, quiet=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_signed_bundle_override_passes_the_real_parser() -> None:
    done = _compose(COMPOSE, SIGNED_OVERRIDE, quiet=True)
    assert done.returncode == 0, done.stderr


def test_a_broken_compose_file_is_rejected_by_the_parser(tmp_path: Path) -> None:
    # The parser is a real check: the same file with a typo in a key does not pass.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("depends_on:", "depend_on:"))
    assert _compose(broken, quiet=True).returncode != 0


def test_opa_image_is_the_version_the_makefile_pins(compose: dict[str, Any]) -> None:
    assert _makefile_opa_version() == dep.OPA_VERSION
    assert (
        compose["services"]["opa"]["image"]
        == dep.OPA_IMAGE
        == f"openpolicyagent/opa:{_makefile_opa_version()}"
    )


def test_opa_serves_the_bundle_and_config_make_up_uses(compose: dict[str, Any]) -> None:
    opa = compose["services"]["opa"]
    command = opa["command"]
    assert command[:2] == ["run", "--server"]
    assert f"--addr=0.0.0.0:{dep.OPA_PORT}" in command
    mounts = _mounts(opa)
    config_arg = next(a for a in command if a.startswith("--config-file="))
    config_target = config_arg.split("=", 1)[1]
    assert mounts[config_target] == (str(ROOT / dep.OPA_CONFIG), "ro")
    bundle_target = command[command.index("--bundle") + 1]
    assert mounts[bundle_target] == (str(ROOT / dep.BUNDLE), "ro")
    # The bundle file alone: bundles/keys/ (the signing key) must never be visible to OPA.
    assert str(ROOT / dep.BUNDLE.parent) not in {source for source, _ in mounts.values()}
    assert _ports(opa) == {f"127.0.0.1:{dep.OPA_PORT}:{dep.OPA_PORT}/tcp"}


# Docker reads k, m and g as binary units, like Go's KiB, MiB and GiB.
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def _bytes(size: str) -> int:
    """A compose memory size ("512m") or a Go GOMEMLIMIT ("384MiB") in bytes."""
    match = re.fullmatch(r"(\d+)([a-z]*)", size.lower())
    assert match, size
    assert match.group(2) in _SIZE_UNITS, size
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def _makefile_opa_runtime_env() -> dict[str, str]:
    text = (ROOT / "mk" / "rego.mk").read_text()
    match = re.search(r"^OPA_RUNTIME_ENV\s*:=\s*(.+)$", text, re.MULTILINE)
    assert match, "OPA_RUNTIME_ENV not found in mk/rego.mk"
    return dict(pair.split("=", 1) for pair in match.group(1).split())


def test_opa_go_runtime_settings_are_the_same_in_compose_natively_and_in_the_bench(
    compose: dict[str, Any],
) -> None:
    opa = compose["services"]["opa"]
    assert opa["environment"] == dep.OPA_RUNTIME_ENV == _makefile_opa_runtime_env()
    assert set(dep.OPA_RUNTIME_ENV) == {"GOGC", "GOMEMLIMIT"}


def test_opa_soft_memory_limit_sits_below_the_container_limit(compose: dict[str, Any]) -> None:
    opa = compose["services"]["opa"]
    limit = _bytes(str(opa["mem_limit"]))
    assert limit == _bytes(dep.OPA_MEMORY_LIMIT)
    # Room for what the Go runtime does not count (stacks, OPA's binary): at least 64 MiB.
    assert _bytes(dep.OPA_RUNTIME_ENV["GOMEMLIMIT"]) <= limit - 64 * 1024**2


def test_native_opa_runs_with_the_containers_go_runtime_settings(opa_server: OpaServer) -> None:
    environ = Path(f"/proc/{opa_server.process.pid}/environ").read_bytes().split(b"\0")
    settings = dict(entry.decode().split("=", 1) for entry in environ if entry)
    assert {name: settings.get(name) for name in dep.OPA_RUNTIME_ENV} == dep.OPA_RUNTIME_ENV


def test_opa_config_logs_decisions_to_the_console() -> None:
    config = yaml.safe_load((ROOT / dep.OPA_CONFIG).read_text())
    assert config["decision_logs"] == {"console": True}


def test_opa_healthcheck_asks_for_an_activated_bundle(compose: dict[str, Any]) -> None:
    check = compose["services"]["opa"]["healthcheck"]
    assert check["test"] == ["CMD", "/opa", "eval", "--fail", "--format=discard", dep.opa_health_query()]


def test_gateway_is_built_here_and_waits_for_a_healthy_opa(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    assert gateway["build"] == {"context": str(ROOT), "dockerfile": "Dockerfile"}
    assert gateway["depends_on"] == {"opa": {"condition": "service_healthy"}}


def test_gateway_settings_agree_with_the_native_topology(compose: dict[str, Any]) -> None:
    env = compose["services"]["gateway"]["environment"]
    shared = dep.gateway_environment(f"http://opa:{dep.OPA_PORT}")
    assert {k: env.get(k) for k in shared} == shared
    assert env["GATEWAY_HOST"] == "0.0.0.0"
    assert env["GATEWAY_DB_PATH"] == dep.CONTAINER_DB_PATH
    assert env["GATEWAY_TOKENS_FILE"] == dep.CONTAINER_TOKENS_FILE
    assert env["GATEWAY_KUBECONFIG"] == dep.CONTAINER_KUBECONFIG
    assert _ports(compose["services"]["gateway"]) == {f"127.0.0.1:{dep.GATEWAY_PORT}:{dep.GATEWAY_PORT}/tcp"}


def test_database_is_on_a_named_volume_and_kubeconfig_is_read_only(compose: dict[str, Any]) -> None:
    mounts = _mounts(compose["services"]["gateway"])
    volume, mode = mounts[dep.CONTAINER_DATA_DIR]
    assert volume in compose["volumes"]
    assert mode == "rw"
    assert str(Path(dep.CONTAINER_DB_PATH).parent) == dep.CONTAINER_DATA_DIR
    assert mounts[dep.CONTAINER_KUBECONFIG] == ("/home/operator/kube.yaml", "ro")


def test_gateway_healthcheck_probes_healthz(compose: dict[str, Any]) -> None:
    test = compose["services"]["gateway"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert f"http://127.0.0.1:{dep.GATEWAY_PORT}/healthz" in " ".join(test)


def test_no_secret_has_a_value_in_the_compose_file(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if _secret_like(key):
                assert value is None, f"{name}: {key} must be passed through, not written down"


def test_services_publish_on_loopback_and_drop_privileges(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in _ports(service):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        assert service["cap_drop"] == ["ALL"]
        assert service["read_only"] is True
        assert "no-new-privileges:true" in service["security_opt"]
    assert compose["services"]["opa"]["user"] not in {"0", "root", "0:0"}


def test_signed_override_mounts_only_the_public_key() -> None:
    config = _normalised(COMPOSE, SIGNED_OVERRIDE)
    opa = config["services"]["opa"]
    assert "--verification-key=/keys/bundle.pub" in opa["command"]
    mounts = _mounts(opa)
    assert mounts["/bundles/gateway.tar.gz"] == (str(ROOT / "bundles" / "gateway-signed.tar.gz"), "ro")
    assert mounts["/keys/bundle.pub"] == (str(ROOT / "bundles" / "keys" / "bundle.pub"), "ro")
    for source, _ in mounts.values():
        assert not source.endswith((".pem", ".key")), f"{source}: a private key must never reach OPA"
    assert str(ROOT / "bundles" / "keys") not in {source for source, _ in mounts.values()}


# --- OPA's container command and healthcheck, run for real ----------------------------


def _native(argv: list[str], mounts: dict[str, tuple[str, str]], port: int) -> list[str]:
    """The container command with container paths mapped to their host sources and the
    listen address moved to a free loopback port."""
    out = []
    for arg in argv:
        arg = arg.replace(f"0.0.0.0:{dep.OPA_PORT}", f"127.0.0.1:{port}")
        for target, (source, _) in sorted(mounts.items(), key=lambda m: -len(m[0])):
            if target in arg:
                arg = arg.replace(target, source)
                break
        out.append(arg)
    return out


def _healthcheck(compose: dict[str, Any], port: int, service: str = "opa") -> int:
    test = compose["services"][service]["healthcheck"]["test"][1:]
    argv = [find_opa(), *test[1:]]
    argv[-1] = argv[-1].replace(f"127.0.0.1:{dep.OPA_PORT}", f"127.0.0.1:{port}")
    return subprocess.run(argv, capture_output=True, check=False, timeout=30).returncode


@contextlib.contextmanager
def _opa_as_composed(
    config: dict[str, Any], bundle: Path, log: Path, public_key: Path | None = None, service: str = "opa"
) -> Iterator[tuple[ManagedProcess, int]]:
    """OPA started natively with exactly the compose service's command."""
    opa = config["services"][service]
    command = opa["command"]
    mounts = _mounts(opa)
    mounts[command[command.index("--bundle") + 1]] = (str(bundle), "ro")
    if public_key is not None:
        mounts["/keys/bundle.pub"] = (str(public_key), "ro")
    port = free_port()
    process = ManagedProcess(
        [find_opa(), *_native(command, mounts, port)], log_path=log, env=opa.get("environment")
    )
    process.start()
    try:
        yield process, port
    finally:
        process.stop()


def _healthy_soon(process: ManagedProcess, config: dict[str, Any], port: int) -> None:
    def probe() -> bool:
        if not process.alive():
            raise AssertionError(f"opa exited:\n{process.tail()}")
        return _healthcheck(config, port) == 0

    wait_until(probe, timeout=30, what="opa healthcheck", interval=0.2)


def test_opa_container_command_activates_the_bundle_and_its_healthcheck_passes(
    compose: dict[str, Any], bundle_path: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / dep.BUNDLE.name
    shutil.copy(bundle_path, bundle)
    with _opa_as_composed(compose, bundle, tmp_path / "opa.log") as (process, port):
        _healthy_soon(process, compose, port)
        assert httpx.get(f"http://127.0.0.1:{port}/health?bundles", timeout=5).status_code == 200
    # The same check against a port where nothing listens fails: it can tell.
    assert _healthcheck(compose, free_port()) != 0


def _signed_bundle(tmp_path: Path) -> tuple[Path, Path]:
    """``make bundle-signed`` (the policy area's target) into ``tmp_path``: (bundle, keys dir)."""
    keys, bundle = tmp_path / "keys", tmp_path / "out" / "gateway-signed.tar.gz"
    bundle.parent.mkdir()
    done = subprocess.run(
        ["make", "-s", "bundle-signed", f"BUNDLE_KEYS={keys}", f"SIGNED_BUNDLE={bundle}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return bundle, keys


def _tampered(bundle: Path) -> None:
    """Rewrite one policy file inside the bundle, keeping its signature."""
    with tarfile.open(bundle) as src:
        members = [(m, src.extractfile(m).read() if m.isfile() else None) for m in src.getmembers()]  # type: ignore[union-attr]
    with tarfile.open(bundle, "w:gz") as out:
        for member, data in members:
            if data is not None and member.name.endswith("data.json"):
                data = data.replace(b"{", b'{"tampered": true, ', 1)
                member.size = len(data)
            out.addfile(member, io.BytesIO(data) if data is not None else None)


def test_signed_bundle_is_verified_and_a_tampered_one_refused(tmp_path: Path) -> None:
    config = _normalised(COMPOSE, SIGNED_OVERRIDE)
    bundle, keys = _signed_bundle(tmp_path)
    assert (keys / "bundle.pem").stat().st_mode & 0o077 == 0
    with _opa_as_composed(config, bundle, tmp_path / "opa.log", keys / "bundle.pub") as (process, port):
        _healthy_soon(process, config, port)

    _tampered(bundle)
    with _opa_as_composed(config, bundle, tmp_path / "tampered.log", keys / "bundle.pub") as (process, port):
        wait_until(lambda: not process.alive(), timeout=30, what="opa to refuse the tampered bundle")
        assert _healthcheck(config, port) != 0
    assert "digest mismatch" in (tmp_path / "tampered.log").read_text().lower()


# --- the Dockerfile -------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(DOCKERFILE))


def _stages(parser: DockerfileParser) -> list[list[dict[str, Any]]]:
    stages: list[list[dict[str, Any]]] = []
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _resolve(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), value)


def test_dockerfile_is_multi_stage_on_pinned_slim_bases(dockerfile: DockerfileParser) -> None:
    assert dockerfile.is_multistage
    assert len(_stages(dockerfile)) >= 2
    for image in dockerfile.parent_images:
        assert ":" in image, image
        assert not image.endswith(":latest"), image
        assert "slim" in image


def test_final_stage_runs_as_the_unprivileged_gateway_user(dockerfile: DockerfileParser) -> None:
    final = _stages(dockerfile)[-1]
    users = [i["value"] for i in final if i["instruction"] == "USER"]
    assert users, "the final stage sets no USER"
    user = _resolve(users[-1], dockerfile.args).split(":")[0]
    assert user not in {"0", "root"}
    assert user == str(dep.GATEWAY_UID)
    # Only the built virtualenv crosses from the build stage.
    copies = [i["value"] for i in final if i["instruction"] == "COPY"]
    assert copies == ["--from=build /opt/gateway /opt/gateway"]


def test_image_defaults_match_the_deployment(dockerfile: DockerfileParser) -> None:
    final = _stages(dockerfile)[-1]
    envs = dockerfile.envs
    assert envs["GATEWAY_DB_PATH"] == dep.CONTAINER_DB_PATH
    assert envs["GATEWAY_TOKENS_FILE"] == dep.CONTAINER_TOKENS_FILE
    assert envs["GATEWAY_PORT"] == str(dep.GATEWAY_PORT)
    assert [i["value"] for i in final if i["instruction"] == "EXPOSE"] == [str(dep.GATEWAY_PORT)]
    checks = [i["value"] for i in final if i["instruction"] == "HEALTHCHECK"]
    assert len(checks) == 1
    assert f"http://127.0.0.1:{dep.GATEWAY_PORT}/healthz" in checks[0]
    entry = [i["value"] for i in final if i["instruction"] in {"ENTRYPOINT", "CMD"}]
    assert entry == ['["gateway"]', '["serve", "--transport", "http"]']


def test_no_secret_is_baked_into_the_image(dockerfile: DockerfileParser) -> None:
    for instruction in dockerfile.structure:
        kind, value = instruction["instruction"], instruction["value"]
        if kind in {"ENV", "ARG", "LABEL"}:
            for name in re.findall(r"(\w+)=", value):
                assert not _secret_like(name), f"{kind} {name} bakes a secret-like value"
        if kind in {"COPY", "ADD"}:
            assert not re.search(r"(\.env|tokens|kube|\.key|\.pem|keys/)", value), value
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", ".dockerignore must start by excluding everything"
    assert {r for r in rules if r.startswith("!")} <= {"!pyproject.toml", "!README.md", "!gateway/"}


# --- profile `replicas`: PostgreSQL and two gateway replicas ---------------------------

REPLICAS = ("gateway-replica-1", "gateway-replica-2")


# --- profile `shadow`: a second OPA serving a candidate bundle -----------------------


def test_the_shadow_profile_holds_one_opa_serving_the_shadow_bundle(compose: dict[str, Any]) -> None:
    profiled = {name for name, s in compose["services"].items() if "shadow" in s.get("profiles", [])}
    assert profiled == {"opa-shadow"}
    shadow, opa = compose["services"]["opa-shadow"], compose["services"]["opa"]
    assert shadow["image"] == opa["image"] == dep.OPA_IMAGE
    command = shadow["command"]
    assert command[:2] == ["run", "--server"]
    assert f"--addr=0.0.0.0:{dep.OPA_PORT}" in command
    # No console decision log: the gateway logs and counts disagreements itself.
    assert not any(arg.startswith("--config-file") for arg in command)
    bundle_target = command[command.index("--bundle") + 1]
    assert _mounts(shadow)[bundle_target] == (str(ROOT / dep.SHADOW_BUNDLE), "ro")
    assert _ports(shadow) == {f"127.0.0.1:{dep.OPA_SHADOW_PORT}:{dep.OPA_PORT}/tcp"}
    assert shadow["environment"] == dep.OPA_RUNTIME_ENV
    assert shadow["mem_limit"] == opa["mem_limit"]
    assert shadow["healthcheck"]["test"] == opa["healthcheck"]["test"]
    assert shadow["user"] == opa["user"]


def test_the_gateways_pass_the_shadow_url_through_and_do_not_depend_on_it(compose: dict[str, Any]) -> None:
    for name in ("gateway", *REPLICAS):
        service = compose["services"][name]
        assert "GATEWAY_SHADOW_OPA_URL" in service["environment"], name
        assert service["environment"]["GATEWAY_SHADOW_OPA_URL"] is None, (
            name
        )  # unset unless the operator sets it
        assert "opa-shadow" not in service["depends_on"], name  # a missing shadow never stops the gateway


def test_the_shadow_opa_as_composed_activates_a_bundle(
    compose: dict[str, Any], bundle_path: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / dep.SHADOW_BUNDLE.name
    shutil.copy(bundle_path, bundle)
    with _opa_as_composed(compose, bundle, tmp_path / "shadow.log", service="opa-shadow") as (process, port):

        def probe() -> bool:
            if not process.alive():
                raise AssertionError(f"opa exited:\n{process.tail()}")
            return _healthcheck(compose, port, service="opa-shadow") == 0

        wait_until(probe, timeout=30, what="the shadow OPA's healthcheck", interval=0.2)


def test_the_replicas_profile_holds_postgres_and_two_replicas_and_nothing_else(
    compose: dict[str, Any],
) -> None:
    profiled = {name for name, s in compose["services"].items() if "replicas" in s.get("profiles", [])}
    assert profiled == {"postgres", *REPLICAS}
    assert not compose["services"]["gateway"].get("profiles")  # `docker compose up` is unchanged
    assert not compose["services"]["opa"].get("profiles")


def test_postgres_is_pinned_private_and_checked(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    image = postgres["image"]
    assert re.fullmatch(r"postgres:\d+\.\d+-\w+", image), image
    assert "ports" not in postgres  # only the replicas reach it
    assert postgres["environment"]["POSTGRES_PASSWORD"] is None  # from the operator's environment
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert _mounts(postgres)["/var/lib/postgresql/data"][0] in compose["volumes"]


def test_replicas_share_one_database_and_the_keys_and_differ_only_in_name_and_port(
    compose: dict[str, Any],
) -> None:
    one, two = (compose["services"][name] for name in REPLICAS)
    for replica in (one, two):
        env = replica["environment"]
        url = env["GATEWAY_DATABASE_URL"]
        assert url == "postgresql://gateway@postgres:5432/gateway"  # no password in the file
        assert env["PGPASSWORD"] is None
        assert env["GATEWAY_STATELESS_HTTP"] == "true"  # any replica answers any request
        assert replica["depends_on"] == {
            "opa": {"condition": "service_healthy"},
            "postgres": {"condition": "service_healthy"},
        }
        volume, mode = _mounts(replica)[dep.CONTAINER_DATA_DIR]
        assert (volume, mode) == ("gateway-replicas", "rw")
        for name in ("GATEWAY_TOKENS_FILE", "GATEWAY_QUEUE_KEYS_FILE", "GATEWAY_ATTESTATION_KEY_FILE"):
            assert Path(env[name]).parent == Path(dep.CONTAINER_DATA_DIR), name
        assert "readyz" in " ".join(replica["healthcheck"]["test"])
    differ = {k for k in one["environment"] if one["environment"][k] != two["environment"][k]}
    assert differ == {"GATEWAY_INSTANCE"}
    assert {one["environment"]["GATEWAY_INSTANCE"], two["environment"]["GATEWAY_INSTANCE"]} == {
        "replica-1",
        "replica-2",
    }
    assert (_ports(one), _ports(two)) == ({"127.0.0.1:8001:8000/tcp"}, {"127.0.0.1:8002:8000/tcp"})


@pytest.mark.postgres
def test_the_replicas_as_composed_run_natively_on_one_postgres(
    compose: dict[str, Any], opa_server: OpaServer, postgres_backend: Backend, tmp_path: Path
) -> None:
    """Each replica's compose environment, container paths mapped to a shared temp dir and
    the service names to this machine: both start, and a token made by one is taken by both."""
    data = tmp_path / "shared-volume"
    data.mkdir()
    server = postgres_backend.server
    assert server is not None
    assert postgres_backend.url is not None
    database = postgres_backend.url.rsplit("/", 1)[1]
    started: list[ManagedProcess] = []
    try:
        urls = []
        for name in REPLICAS:
            env = {k: v for k, v in compose["services"][name]["environment"].items() if v is not None}
            env = {k: v.replace(dep.CONTAINER_DATA_DIR, str(data)) for k, v in env.items()}
            port = free_port()
            composed = env["GATEWAY_DATABASE_URL"]
            assert composed.endswith("@postgres:5432/gateway")
            env |= {
                "GATEWAY_DATABASE_URL": composed.replace(
                    "@postgres:5432/gateway", f"@127.0.0.1:{server.port}/{database}"
                ),
                "PGPASSWORD": server.password,
                "GATEWAY_OPA_URL": opa_server.url,
                "GATEWAY_HOST": "127.0.0.1",
                "GATEWAY_PORT": str(port),
                "GATEWAY_KUBECONFIG": str(tmp_path / "no-cluster"),
                "GATEWAY_ALLOWED_SIGNERS_FILE": str(ROOT / "deploy" / "allowed_signers"),
            }
            process = ManagedProcess(
                [str(GATEWAY_CLI), "serve"], log_path=tmp_path / f"{name}.log", env=_clean_env() | env
            )
            process.start()
            started.append(process)
            urls.append((f"http://127.0.0.1:{port}", env))
        for process, (url, _) in zip(started, urls, strict=True):
            wait_until(lambda p=process, u=url: _started(p, u), timeout=60, what=url)
        created = subprocess.run(
            [str(GATEWAY_CLI), "token", "create", "--subject", "alice", "--group", "sre"],
            env=_clean_env() | urls[0][1], capture_output=True, text=True, check=True,
        )  # fmt: skip
        token = created.stdout.strip().splitlines()[-1]
        for url, _ in urls:
            who = httpx.get(f"{url}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert who.status_code == 200, who.text
            assert who.json()["subject"] == "alice"
        assert {p.name for p in data.iterdir()} >= {"tokens.jsonl", "queue.keys", "attestation.key"}
    finally:
        for process in started:
            process.stop()


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "PALETTE_", "PG"))}


def _started(process: ManagedProcess, url: str) -> bool:
    if not process.alive():
        raise AssertionError(f"a replica exited during start-up:\n{process.tail()}")
    return _answers(f"{url}/readyz")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_monitoring_override_scrapes_the_gateway_and_provisions_its_dashboard() -> None:
    config = _normalised(COMPOSE, ROOT / "deploy" / "compose.monitoring.yml")
    services = config["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    job = scrape["scrape_configs"][0]
    gateway_port = str(config["services"]["gateway"]["environment"]["GATEWAY_PORT"])
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"gateway:{gateway_port}"]
    assert _mounts(prometheus)["/etc/prometheus/prometheus.yml"][1] == "ro"
    dashboards = _mounts(grafana)["/var/lib/grafana/dashboards/policy-gateway.json"]
    assert dashboards == (str(ROOT / "deploy" / "grafana" / "policy-gateway.json"), "ro")
    for service in (prometheus, grafana):
        assert all(p.startswith("127.0.0.1:") for p in _ports(service)), service.get("ports")
