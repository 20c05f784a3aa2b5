"""Signing approval statements with the approver's SSH key, through ``ssh-keygen -Y sign``.

The CLI shells out here on purpose: ``ssh-keygen`` signs with a key held by ssh-agent
(``--key`` naming the public key), asks for a passphrase on the terminal, and drives
hardware keys (``sk-ssh-ed25519``), exactly as git does with ``gpg.format=ssh``. No
maintained Python library signs through the agent in the sshsig format. Verification, on
the gateway's side, is in-process (``gateway.signers``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Final

from gateway.errors import ConfigError, ProofRefused
from gateway.signers import NAMESPACE

__all__ = ["ssh_sign"]

_TIMEOUT_SECONDS: Final[float] = 120.0  # a passphrase prompt or a touch on a hardware key


def ssh_sign(message: str, key: Path) -> str:
    """The armored signature of ``message`` by ``key`` in the approvals namespace."""
    program = shutil.which("ssh-keygen")
    if program is None:
        raise ConfigError("signing needs ssh-keygen (OpenSSH 8.2 or later) on PATH")
    if not key.exists():
        raise ConfigError(f"signing key {key} does not exist (pass --key or set GATEWAY_SIGNING_KEY)")
    try:
        done = subprocess.run(
            [program, "-Y", "sign", "-n", NAMESPACE, "-f", str(key)],
            input=message.encode("utf-8"),
            capture_output=True,
            timeout=_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProofRefused(f"ssh-keygen could not sign with {key} ({type(exc).__name__})") from exc
    signature = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0 or "BEGIN SSH SIGNATURE" not in signature:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ProofRefused(f"ssh-keygen could not sign with {key}: {why[-1] if why else 'no signature'}")
    return signature
