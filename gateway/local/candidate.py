"""A candidate policy made servable on an OPA of its own: for ``gateway policy replay`` and
for the shadow OPA ``gateway serve`` starts (``GATEWAY_SHADOW_BUNDLE``). Never the serving OPA.

A candidate is a bundle file (``opa build`` output, ``.tar.gz``, signed or not) or a directory
of policy source (``rego/`` with its ``data.json``), which is built the way ``make bundle``
builds the shipped bundle: tests and samples left out, the decision entrypoint optimised
(``REGO_OPTIMIZE`` in mk/rego.mk; a test keeps ``optimize_args`` equal to it). Each failure
is a ``BundleError`` that says what the candidate is and what OPA said: not a bundle, a
build error, a load error, an entrypoint it does not define, a signature that does not
verify (or a signed bundle without ``--verification-key``, or an unsigned one with it).
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.errors import BundleError
from gateway.local.opa import OpaServer, build_bundle

__all__ = ["optimize_args", "prepare_candidate", "serve_candidate"]

_POLICY_SUFFIXES = (".rego", ".json", ".yaml", ".yml")
_LOG_LINES = 12


def optimize_args(decision_path: str) -> list[str]:
    """``opa build`` flags that optimise the decision entrypoint, as ``make bundle`` does."""
    return ["-O=1", "-e", decision_path.strip("/")]


def prepare_candidate(path: Path, workdir: Path, *, decision_path: str = "gateway/decision") -> Path:
    """A bundle file OPA can serve for ``path``: the file itself, checked, or the directory
    built into ``workdir``. Raises ``BundleError``."""
    if path.is_dir():
        return _build(path, workdir, decision_path)
    if not path.exists():
        raise BundleError(f"candidate {path}: no such file or directory")
    _check_archive(path)
    return path


def _build(source: Path, workdir: Path, decision_path: str) -> Path:
    files = sorted(
        p for p in source.rglob("*") if p.is_file() and (p.suffix == ".rego" or p.name == ".manifest")
    )
    if not files:
        raise BundleError(f"candidate {source} is a directory without .rego files: not a policy source")
    out = workdir / "candidate.tar.gz"
    try:
        return build_bundle(
            source,
            out,
            revision=f"candidate-{_content_revision(source)}",
            extra_args=optimize_args(decision_path),
        )
    except RuntimeError as exc:
        raise BundleError(f"candidate {source} does not build: {_first_lines(str(exc))}") from exc


def _content_revision(source: Path) -> str:
    """Equal policy and data give an equal revision (as the Makefile's bundle revision)."""
    digest = hashlib.sha256()
    for file in sorted(source.rglob("*")):
        if file.is_file() and file.suffix in _POLICY_SUFFIXES and not file.name.endswith("_test.rego"):
            digest.update(str(file.relative_to(source)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _check_archive(path: Path) -> None:
    try:
        with tarfile.open(path, "r:gz") as archive:
            names = [m.name for m in archive.getmembers() if m.isfile()]
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, OSError) as exc:
        raise BundleError(
            f"candidate {path} is not a bundle: not a gzip-compressed tar archive ({type(exc).__name__}); "
            "pass the output of `opa build` or a directory of policy"
        ) from exc
    if not any(name.endswith(_POLICY_SUFFIXES) for name in names):
        raise BundleError(f"candidate {path} is not a bundle: the archive holds no policy or data files")


def _first_lines(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("opa build failed")]
    return "\n  ".join(lines[:_LOG_LINES]) or "no reason given"


@contextmanager
def serve_candidate(
    bundle: Path, *, log_path: Path, verification_key: Path | None = None, port: int | None = None
) -> Iterator[OpaServer]:
    """An OPA on a free loopback port serving ``bundle``, stopped by pid on exit.
    Raises ``BundleError`` naming why OPA would not activate it."""
    if verification_key is not None and not verification_key.is_file():
        raise BundleError(f"verification key {verification_key}: no such file")
    server = OpaServer(bundle, log_path=log_path, port=port, verification_key=verification_key)
    try:
        server.start(timeout=60)
    except (RuntimeError, TimeoutError) as exc:
        server.stop()
        raise BundleError(_load_failure(bundle, verification_key, server.process.tail(_LOG_LINES))) from exc
    try:
        yield server
    finally:
        server.stop()


def _load_failure(bundle: Path, key: Path | None, log: str) -> str:
    said = " ".join(line.strip() for line in log.splitlines() if line.strip()) or "no output"
    lowered = said.lower()
    if "verification key not provided" in lowered:
        return f"candidate {bundle} is signed: pass --verification-key with the public key that verifies it"
    if "missing .signatures.json" in lowered:
        return f"candidate {bundle} is not signed, but a verification key ({key}) was given"
    if any(word in lowered for word in ("verify", "signature", "digest mismatch")):
        return f"candidate {bundle}: its signature does not verify with {key}: {said}"
    return f"OPA could not load candidate {bundle}: {said}"
