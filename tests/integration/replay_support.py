"""What the replay and shadow tests share: the candidate policy (rego/ with one threshold and
one mode changed in its data) and what it must decide about a call, derived without asking it.

The candidate lowers ``change_limits.max_replicas`` from 50 to 20 and switches
``no_latest_tag`` from deny to warn. ``expected_after`` applies those two changes to a
decision the serving policy made, from the call's own properties (replicas written, image
tagged latest), the replicas of the live object it was judged with, and the combination
rule alone: any deny wins; else a call that was not denied keeps its outcome (approvals
given still count); else an approval reason asks for approval, and nothing at all allows.
A scale that leaves the replicas as they are (live == written) finds the replica limit
already exceeded by the live object with the same message: a pre-existing finding, which
``data.params.preexisting`` makes a warning for scales, not a deny.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.contracts import Decision, Reason
from gateway.local.traffic import TrafficCall

REGO_DIR = Path(__file__).resolve().parents[2] / "rego"
# The shipped bounds (OPA and recent activity 0.5 s, the shadow 2 s) are for a quiet machine.
# On a stalled shared one a call would get the gateway's own fail-closed deny instead, which
# OPA did not produce: it is neither recorded nor shadowed, and exact counts would be off.
# Tests of those timeouts set their own.
STEADY: dict[str, Any] = {
    "opa_timeout_seconds": 5.0,
    "history_read_timeout_seconds": 5.0,
    "shadow_timeout_seconds": 5.0,
}
OLD_MAX, NEW_MAX = 50, 20
LATEST_CODE, CHANGE_CODE = "K8S-IMG-002", "OPS-CHANGE-001"


def candidate_policy(directory: Path) -> Path:
    """A copy of rego/ in ``directory`` with the two changes in its data.json."""
    out = directory / "rego"
    shutil.copytree(REGO_DIR, out)
    data = json.loads((out / "data.json").read_text())
    assert data["params"]["rules"]["change_limits"]["max_replicas"] == OLD_MAX
    data["params"]["rules"]["change_limits"]["max_replicas"] = NEW_MAX
    data["params"]["modes"]["no_latest_tag"] = "warn"
    (out / "data.json").write_text(json.dumps(data, indent=2))
    return out


def live_replicas(action_input: Mapping[str, Any] | None) -> int | None:
    """The replicas of the live object (``current``) an action was judged with, if any."""
    current = (action_input or {}).get("current")
    replicas = current.get("spec", {}).get("replicas") if isinstance(current, dict) else None
    return replicas if isinstance(replicas, int) else None


def expected_after(before: Decision, call: TrafficCall, *, live: int | None) -> Decision:
    """``before`` (the serving policy's decision about ``call``, judged with ``live`` replicas
    running) under the candidate."""
    reasons = [r for r in before.reasons if not (call.latest and r.code == LATEST_CODE)]
    warnings = list(before.warnings)
    if len(reasons) < len(before.reasons):
        warnings.append(_reason(LATEST_CODE, "warn"))
    if call.replicas is not None and NEW_MAX < call.replicas <= OLD_MAX:
        if call.tool == "k8s_scale" and live == call.replicas:
            warnings.append(_reason(CHANGE_CODE, "warn"))
        else:
            reasons.append(_reason(CHANGE_CODE, "deny"))
    if any(r.effect == "deny" for r in reasons):
        outcome = "deny"
    elif before.outcome != "deny":
        outcome = before.outcome
    else:
        outcome = "needs_approval" if any(r.effect == "needs_approval" for r in reasons) else "allow"
    return before.model_copy(update={"outcome": outcome, "reasons": reasons, "warnings": warnings})


def _reason(code: str, effect: str) -> Reason:
    return Reason.model_validate(
        {"code": code, "rule": "r", "severity": "medium", "effect": effect, "message": "m"}
    )
