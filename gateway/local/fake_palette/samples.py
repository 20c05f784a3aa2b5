"""Sample create bodies for the sandbox and the tests: the smallest ``v1SpectroAwsClusterEntity``
Palette (and the fake) accepts, with the machine pools policy looks at."""

from __future__ import annotations

from typing import Any

__all__ = ["aws_create_body"]


def aws_create_body(name: str, pools: list[tuple[str, int, str]], **labels: str) -> dict[str, Any]:
    """A create body with one machine pool per ``(name, size, instanceType)`` and the given tags."""
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "cloudAccountUid": "acct-aws-1",
            "cloudConfig": {"region": "eu-west-1"},
            "machinepoolconfig": [
                {
                    "poolConfig": {"name": pool, "size": size, "labels": ["worker"], "isControlPlane": False},
                    "cloudConfig": {"instanceType": instance},
                }
                for pool, size, instance in pools
            ],
            "profiles": [],
        },
    }
