"""Configuration, read once at the edge (CLI flags and ``GATEWAY_*`` environment) into one object.

Nothing below the CLI reads the environment: modules receive the ``Settings`` they need.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "default_subject"]


def default_subject() -> str:
    """The OS user, the identity of a stdio session or a CLI approver unless configured."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


class Settings(BaseSettings):
    """Every setting of the gateway. Environment variables are ``GATEWAY_<NAME>`` except the
    Palette ones, which keep Spectro Cloud's own names (``PALETTE_API_KEY`` …)."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    @field_validator("groups", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return tuple(part.strip() for part in text.split(",") if part.strip())
        return value

    # Policy engine
    opa_url: str = "http://127.0.0.1:8181"
    decision_path: str = "gateway/decision"
    opa_timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 0.5

    # Storage
    db_path: Path = Path("var/gateway.db")

    # Identity of stdio sessions and CLI approvers
    subject: str = Field(default_factory=default_subject)
    # `GATEWAY_GROUPS=sre,platform-admins` or a JSON list
    groups: Annotated[tuple[str, ...], NoDecode] = ()

    # MCP transport
    transport: Literal["stdio", "http"] = "stdio"
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    tokens_file: Path | None = None
    anonymous: Literal["reject", "read-only"] = "reject"
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()

    # Limits
    max_argument_bytes: Annotated[int, Field(ge=1024)] = 256 * 1024
    approval_wait_seconds: Annotated[float, Field(ge=0, le=300)] = 0.0
    max_approval_wait_seconds: Annotated[float, Field(ge=0, le=3600)] = 300.0

    # Kubernetes
    kubeconfig: Path | None = None
    kube_context: str | None = None
    environment_label: str = "environment"
    field_manager: str = "policy-gateway"
    kube_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0
    kube_max_manifest_bytes: Annotated[int, Field(ge=1024, le=4 * 1024 * 1024)] = 256 * 1024
    kube_max_manifest_documents: Annotated[int, Field(ge=1, le=500)] = 50
    # Reads may use a namespace's environment label this old; writes always fetch it fresh.
    kube_namespace_cache_seconds: Annotated[float, Field(ge=0, le=300)] = 5.0
    kube_default_log_lines: Annotated[int, Field(ge=1, le=10000)] = 200

    # Palette (Spectro Cloud's variable names, no GATEWAY_ prefix)
    palette_host: str | None = Field(default=None, validation_alias="PALETTE_HOST")
    palette_api_key: SecretStr | None = Field(default=None, validation_alias="PALETTE_API_KEY")
    palette_project_uid: str | None = Field(default=None, validation_alias="PALETTE_PROJECT_UID")
    palette_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 15.0
    palette_max_retries: Annotated[int, Field(ge=0, le=10)] = 3
    palette_max_backoff_seconds: Annotated[float, Field(ge=0, le=60)] = 10.0
