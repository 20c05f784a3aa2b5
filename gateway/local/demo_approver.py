"""The demo approver `make run` sets up, so the signed approval path works out of the box.

In ``<state>/demo``: an Ed25519 key for ``bob`` made with ``ssh-keygen``, an allowed signers
file naming it, and bob's bearer token (group ``sre``) in a 0600 file. The gateway then
runs with ``GATEWAY_APPROVAL_SIGNATURES=required``: an approval counts only if it comes
through the API with bob's token and is signed with bob's key. Everything is made once
and reused by later runs; without ``ssh-keygen`` nothing is made and signatures stay
optional.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gateway.auth import TokenStore, append_token, hash_token

__all__ = ["DemoApprover", "prepare_demo_approver"]


@dataclass(frozen=True)
class DemoApprover:
    subject: str
    key: Path
    token_file: Path
    allowed_signers: Path

    def environment(self) -> dict[str, str]:
        """The gateway settings that require signed approvals by this approver."""
        return {
            "GATEWAY_APPROVAL_SIGNATURES": "required",
            "GATEWAY_ALLOWED_SIGNERS_FILE": str(self.allowed_signers),
        }

    def client_environment(self, gateway_url: str) -> dict[str, str]:
        """What `gateway queue` needs to act as this approver."""
        return {
            "GATEWAY_URL": gateway_url,
            "GATEWAY_TOKEN_FILE": str(self.token_file),
            "GATEWAY_SIGNING_KEY": str(self.key),
        }


def prepare_demo_approver(state: Path, tokens_file: Path, subject: str = "bob") -> DemoApprover | None:
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        return None
    demo = state / "demo"
    demo.mkdir(parents=True, exist_ok=True)
    key = demo / f"{subject}_ed25519"
    if not key.exists():
        subprocess.run(
            [
                keygen,
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                f"{subject} (make run demo approver)",
                "-f",
                str(key),
            ],
            check=True,
            capture_output=True,
        )
    allowed = demo / "allowed_signers"
    public = Path(f"{key}.pub").read_text(encoding="utf-8").strip()
    allowed.write_text(f"{subject} {public}\n", encoding="utf-8")
    token_file = demo / f"{subject}.token"
    known = {e.sha256 for e in TokenStore(tokens_file).entries()} if tokens_file.exists() else set()
    if not token_file.exists() or hash_token(token_file.read_text().strip()) not in known:
        token = append_token(tokens_file, subject=subject, groups=("sre",), comment="make run demo approver")
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(token + "\n")
    return DemoApprover(subject=subject, key=key, token_file=token_file, allowed_signers=allowed)
