"""A signed bundle is accepted with its verification key; a tampered or unsigned one is refused.

Everything runs the real ``opa`` binary on loopback with key pairs made by ``openssl`` in
a temporary directory, as ``make bundle-keys`` / ``make bundle-signed`` do.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import httpx
import pytest
from gateway_support import rsa_key_pair

from gateway.local.opa import OpaServer, build_bundle

pytestmark = pytest.mark.integration

REGO_DIR = Path(__file__).resolve().parents[2] / "rego"
POLICY_FILE = "/gateway/decision.rego"
FORGED = b'_outcome := "allow" if true'
Keys = tuple[Path, Path, Path]


def _signed(directory: Path, private: Path) -> Path:
    return build_bundle(
        REGO_DIR,
        directory / "signed.tar.gz",
        revision="signed-test",
        extra_args=["--signing-alg", "RS256", "--signing-key", str(private)],
    )


def _tampered(bundle: Path, out: Path) -> Path:
    """The same tarball with one policy file changed after signing; signatures kept."""
    with tarfile.open(bundle, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        names = src.getnames()
        assert any(name.endswith(POLICY_FILE) for name in names)
        assert "/.signatures.json" in names
        for member in src.getmembers():
            extracted = src.extractfile(member)
            data = extracted.read() if extracted is not None else b""
            if member.name.endswith(POLICY_FILE):
                data = data.replace(b'_outcome := "deny" if count(_denials) > 0', FORGED)
                assert FORGED in data
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    return out


def _refused(bundle: Path, public: Path, log: Path) -> bool:
    server = OpaServer(bundle, log_path=log, verification_key=public)
    try:
        server.start(timeout=20)
    except (RuntimeError, TimeoutError):
        return True
    finally:
        server.stop()
    return False


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    directory = tmp_path_factory.mktemp("keys")
    private, public = rsa_key_pair(directory, "bundle")
    _, other_public = rsa_key_pair(directory, "other")
    return private, public, other_public


def test_signed_bundle_is_accepted_with_its_verification_key(keys: Keys, tmp_path: Path) -> None:
    private, public, _ = keys
    server = OpaServer(_signed(tmp_path, private), log_path=tmp_path / "opa.log", verification_key=public)
    server.start(timeout=20)
    try:
        resp = httpx.post(f"{server.url}/v1/data/gateway/decision", json={"input": {}}, timeout=5)
        assert resp.json()["result"]["outcome"] == "deny"
    finally:
        server.stop()


def test_tampered_signed_bundle_is_refused(keys: Keys, tmp_path: Path) -> None:
    private, public, _ = keys
    bundle = _tampered(_signed(tmp_path, private), tmp_path / "tampered.tar.gz")
    assert _refused(bundle, public, tmp_path / "opa.log")
    assert "digest" in (tmp_path / "opa.log").read_text().lower()


def test_bundle_signed_with_another_key_is_refused(keys: Keys, tmp_path: Path) -> None:
    private, _, other_public = keys
    assert _refused(_signed(tmp_path, private), other_public, tmp_path / "opa.log")


def test_unsigned_bundle_is_refused_when_a_key_is_required(keys: Keys, tmp_path: Path) -> None:
    _, public, _ = keys
    unsigned = build_bundle(REGO_DIR, tmp_path / "unsigned.tar.gz", revision="unsigned-test")
    assert _refused(unsigned, public, tmp_path / "opa.log")
