"""`gateway policy replay` refuses what it cannot use with exit 2 and a message that names it
(a candidate that is not a bundle, does not build or load, a signature that does not verify)
and skips records it cannot replay, counting them; it never changes what is served."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import tarfile
from pathlib import Path

import httpx
import pytest
from gateway_support import rsa_key_pair
from replay_support import STEADY
from storage_fixtures import Backend
from typer.testing import CliRunner

from gateway.cli import app
from gateway.local.opa import OpaServer, build_bundle
from gateway.local.traffic import TrafficCluster, traffic
from gateway.runtime import open_runtime

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REGO_DIR = ROOT / "rego"
runner = CliRunner()


@pytest.fixture
def recorded(tmp_path: Path, opa_server: OpaServer) -> Backend:
    backend = Backend("sqlite", tmp_path)

    async def work() -> None:
        cluster = TrafficCluster()
        settings = backend.settings(opa_url=opa_server.url, **STEADY)
        async with open_runtime(settings, [cluster.source()]) as runtime:
            for call in traffic(40, seed=7):
                await runtime.gateway.call(call.tool, call.args, call.principal)
            assert runtime.recorder is not None
            await runtime.recorder.flush()

    asyncio.run(work())
    return backend


def replay(backend: Backend, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["policy", "replay", *args], env=backend.environ())
    return result.exit_code, result.stdout, result.stderr


def _tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as out:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return path


def test_a_missing_candidate_is_named(recorded: Backend, tmp_path: Path) -> None:
    code, _, err = replay(recorded, "--bundle", str(tmp_path / "nowhere.tar.gz"))
    assert code == 2
    assert "nowhere.tar.gz: no such file or directory" in err


def test_a_file_that_is_not_a_bundle_is_refused(recorded: Backend, tmp_path: Path) -> None:
    text = tmp_path / "policy.tar.gz"
    text.write_text("package gateway\n")
    code, _, err = replay(recorded, "--bundle", str(text))
    assert code == 2
    assert "is not a bundle: not a gzip-compressed tar archive" in err
    other = _tarball(tmp_path / "other.tar.gz", {"README": b"hello"})
    code, _, err = replay(recorded, "--bundle", str(other))
    assert code == 2
    assert "is not a bundle: the archive holds no policy or data files" in err


def test_a_directory_without_policy_is_refused(recorded: Backend, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = replay(recorded, "--bundle", str(tmp_path / "empty"))
    assert code == 2
    assert "is a directory without .rego files" in err


def test_a_candidate_that_does_not_build_says_where(recorded: Backend, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(REGO_DIR, broken)
    (broken / "gateway" / "decision.rego").write_text("package gateway\n\ndecision := {\n")
    code, _, err = replay(recorded, "--bundle", str(broken))
    assert code == 2
    assert "does not build" in err
    assert "gateway/decision.rego:" in err
    assert "rego_parse_error: unexpected eof token" in err


def test_a_candidate_without_the_decision_is_refused(recorded: Backend, tmp_path: Path) -> None:
    other = tmp_path / "other" / "app"
    other.mkdir(parents=True)
    (other / "policy.rego").write_text("package app\n\nallow := true\n")
    code, _, err = replay(recorded, "--bundle", str(other.parent))
    assert code == 2
    assert "undefined entrypoint data.gateway.decision" in err


def test_a_built_bundle_opa_cannot_load_is_refused_with_opas_reason(
    recorded: Backend, tmp_path: Path
) -> None:
    bundle = _tarball(
        tmp_path / "bad.tar.gz", {"gateway/decision.rego": b"package gateway\n\ndecision := {\n"}
    )
    code, _, err = replay(recorded, "--bundle", str(bundle))
    assert code == 2
    assert "OPA could not load candidate" in err
    assert "rego_parse_error" in err


def test_a_signed_candidate_is_verified_and_a_bad_signature_refused(
    recorded: Backend, tmp_path: Path
) -> None:
    private, public = rsa_key_pair(tmp_path, "release")
    _, other_public = rsa_key_pair(tmp_path, "other")
    signed = build_bundle(
        REGO_DIR,
        tmp_path / "signed.tar.gz",
        revision="signed",
        extra_args=["--signing-alg", "RS256", "--signing-key", str(private)],
    )
    code, out, err = replay(recorded, "--bundle", str(signed), "--verification-key", str(public))
    assert code == 0, err
    assert "changed: 0" in out

    code, _, err = replay(recorded, "--bundle", str(signed), "--verification-key", str(other_public))
    assert code == 2
    assert f"its signature does not verify with {other_public}" in err
    code, _, err = replay(recorded, "--bundle", str(signed))
    assert code == 2
    assert "is signed: pass --verification-key" in err
    unsigned = build_bundle(REGO_DIR, tmp_path / "unsigned.tar.gz", revision="u")
    code, _, err = replay(recorded, "--bundle", str(unsigned), "--verification-key", str(public))
    assert code == 2
    assert "is not signed, but a verification key" in err


def test_corrupt_and_oversize_records_are_skipped_and_counted(recorded: Backend, bundle_path: Path) -> None:
    seqs = [row[0] for row in recorded.execute_sync("SELECT seq FROM decision_records ORDER BY seq")]
    recorded.execute_sync("UPDATE decision_records SET decision_json = '{' WHERE seq = ?", [seqs[0]])
    recorded.execute_sync(
        "UPDATE decision_records SET input_json = ? WHERE seq = ?", ['{"tool": "k8s_get"}', seqs[1]]
    )
    recorded.execute_sync("UPDATE decision_records SET input_json = NULL WHERE seq = ?", [seqs[2]])
    code, out, err = replay(recorded, "--bundle", str(bundle_path), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["evaluated"] == len(seqs) - 3
    assert report["skipped"]["corrupt"] == 2
    assert report["skipped"]["no_input"] == 1
    assert [c["seq"] for c in report["skipped"]["corrupt_examples"]] == seqs[:2]
    assert report["skipped"]["corrupt_examples"][0]["reason"] == "decision is not JSON"
    assert report["skipped"]["corrupt_examples"][1]["reason"].startswith("input is not a proposed action")
    code, out, _ = replay(recorded, "--bundle", str(bundle_path))
    assert "skipped: 3 (2 corrupt, 1 recorded without their input" in out
    assert f"record {seqs[0]}: decision is not JSON" in out


def test_a_window_whose_every_record_is_skipped_is_an_error_not_unchanged(
    recorded: Backend, bundle_path: Path
) -> None:
    recorded.execute_sync("UPDATE decision_records SET input_json = NULL")
    count = recorded.execute_sync("SELECT count(*) FROM decision_records")[0][0]
    code, out, err = replay(recorded, "--bundle", str(bundle_path))
    assert code == 2
    assert f"skipped: {count} (0 corrupt, {count} recorded without their input" in out
    assert f"every record of the window was skipped ({count}, see above): nothing was judged" in err


def test_replay_changes_nothing_served(recorded: Backend, opa_server: OpaServer, tmp_path: Path) -> None:
    before = recorded.execute_sync("SELECT count(*), max(seq) FROM decision_records")
    audit = recorded.execute_sync("SELECT count(*), max(hash) FROM audit")
    strict = tmp_path / "strict"
    shutil.copytree(REGO_DIR, strict)
    data = json.loads((strict / "data.json").read_text())
    data["params"]["modes"]["principal_scope"] = "deny"
    data["params"]["rules"]["principal_scope"]["groups"]["sre"]["effects"] = []
    (strict / "data.json").write_text(json.dumps(data))
    code, _, err = replay(recorded, "--bundle", str(strict))
    assert code == 1, err
    assert recorded.execute_sync("SELECT count(*), max(seq) FROM decision_records") == before
    assert recorded.execute_sync("SELECT count(*), max(hash) FROM audit") == audit
    served = httpx.post(
        f"{opa_server.url}/v1/data/gateway/decision?provenance", json={"input": {}}, timeout=5
    )
    assert served.json()["provenance"]["bundles"]
    assert {b["revision"] for b in served.json()["provenance"]["bundles"].values()} == {"test"}
