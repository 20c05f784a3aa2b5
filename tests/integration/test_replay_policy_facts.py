"""Facts the recorder and the replay share with the policy and the Makefile, checked against
the real ``opa``: the recorder masks exactly what OPA's decision-log mask removes, and a
candidate directory is built with the optimisation ``make bundle`` ships."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gateway.local.candidate import optimize_args
from gateway.local.opa import find_opa
from gateway.recording import MASKED_PATHS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_the_recorder_masks_what_opas_decision_log_mask_removes(bundle_path: Path) -> None:
    done = subprocess.run(
        [find_opa(), "eval", "--format", "json", "-b", str(bundle_path), "data.system.log.mask"],
        capture_output=True,
        text=True,
        check=True,
    )
    mask = json.loads(done.stdout)["result"][0]["expressions"][0]["value"]
    assert sorted(mask) == sorted(MASKED_PATHS)


def test_a_candidate_directory_is_built_as_make_bundle_builds_the_shipped_one() -> None:
    for line in (ROOT / "mk" / "rego.mk").read_text().splitlines():
        name, sep, value = line.partition(":=")
        if sep and name.strip() == "REGO_OPTIMIZE":
            assert optimize_args("gateway/decision") == value.split()
            return
    raise AssertionError("mk/rego.mk defines no REGO_OPTIMIZE")
