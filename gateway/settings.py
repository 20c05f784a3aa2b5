"""Configuration, read once at the edge (CLI flags and ``GATEWAY_*`` environment) into one object.

Nothing below the CLI reads the environment: modules receive the ``Settings`` they need.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "WebhookTarget", "default_subject"]

WebhookEvent = Literal[
    "parked", "approval", "approved", "denied", "cancelled", "expired", "executed", "failed", "interrupted",
]  # fmt: skip


class WebhookTarget(BaseModel):
    """One receiver of queue events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Annotated[str, Field(min_length=1, max_length=2048)]
    format: Literal["json", "slack"] = "json"
    # Empty: every event.
    events: tuple[WebhookEvent, ...] = ()


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

    @field_validator("groups", "oidc_algorithms", "kube_contexts", "rollback_groups", mode="before")
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
    # PostgreSQL instead of SQLite: `postgresql://user:password@host:5432/db?sslmode=…`;
    # several replicas share it (docs/deployment.md, "Several replicas").
    database_url: SecretStr | None = None
    database_pool_size: Annotated[int, Field(ge=1, le=100)] = 10
    database_connect_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0
    # This replica's name in execution claims (default: the host name, a pod's name), and
    # how long a claim by another replica stands without a heartbeat.
    instance: str | None = None
    execution_lease_seconds: Annotated[float, Field(ge=1, le=3600)] = 60.0

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError(
                "GATEWAY_DATABASE_URL must be a postgresql:// URL (unset: SQLite at GATEWAY_DB_PATH)"
            )
        return value

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
    # Streamable HTTP without MCP sessions: every request stands alone, so any replica behind
    # a load balancer can answer it (docs/deployment.md, "Several replicas").
    stateless_http: bool = False

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
    # k8s_diagnose / k8s_resource_usage read each kind a page at a time, at most this many
    # objects per kind (more are reported as truncated): bounded time and memory at any size.
    kube_scan_page_size: Annotated[int, Field(ge=10, le=500)] = 500
    kube_scan_max_items: Annotated[int, Field(ge=10, le=100_000)] = 20_000
    # Client-side rate limit towards the API server (client-go's QPS / burst; the Python
    # client has none of its own), and how long one request may wait for it or for a 429's
    # Retry-After before it fails with "rate limited, retry after N s". 0 QPS: unlimited.
    kube_qps: Annotated[float, Field(ge=0, le=10_000)] = 100.0
    kube_burst: Annotated[int, Field(ge=1, le=100_000)] = 200
    kube_rate_limit_wait_seconds: Annotated[float, Field(ge=0, le=120)] = 5.0
    kube_max_retries: Annotated[int, Field(ge=0, le=10)] = 3
    # Many clusters (docs/kubernetes.md): the kubeconfig contexts tools may name in their
    # `cluster` argument, exact names or globs (`prod-*`); empty: every context. The
    # default context is `kube_context`, else the kubeconfig's current context.
    kube_contexts: Annotated[tuple[str, ...], NoDecode] = ()
    # Clients are built on first use and kept, at most this many (least recently used goes).
    kube_max_clients: Annotated[int, Field(ge=1, le=1000)] = 16
    # Connecting (TCP and TLS) to a cluster; a server that is down fails its calls this fast.
    kube_connect_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 3.0
    # In a pod with no kubeconfig configured, the service account is a context of this name.
    kube_in_cluster_context: Annotated[str, Field(min_length=1, max_length=253)] = "in-cluster"
    kube_service_account_dir: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount")
    # Set by Kubernetes in every pod (not GATEWAY_-prefixed): where the API server is.
    kubernetes_service_host: str | None = Field(default=None, validation_alias="KUBERNETES_SERVICE_HOST")
    kubernetes_service_port: str | None = Field(default=None, validation_alias="KUBERNETES_SERVICE_PORT")

    # Palette (Spectro Cloud's variable names, no GATEWAY_ prefix)
    palette_host: str | None = Field(default=None, validation_alias="PALETTE_HOST")
    palette_api_key: SecretStr | None = Field(default=None, validation_alias="PALETTE_API_KEY")
    palette_project_uid: str | None = Field(default=None, validation_alias="PALETTE_PROJECT_UID")
    palette_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 15.0
    palette_max_retries: Annotated[int, Field(ge=0, le=10)] = 3
    palette_max_backoff_seconds: Annotated[float, Field(ge=0, le=60)] = 10.0
    # Client-side token buckets per endpoint class, inside Palette's documented limits
    # (about 10 requests/s per IP, 50 for cluster profiles): rate + burst never exceeds
    # the limit in any one-second window. A request that would wait longer than
    # `palette_rate_limit_wait_seconds` (for the bucket or a 429's Retry-After) fails with
    # "rate limited, retry after N s". 0 requests/s: unlimited.
    palette_rate_per_second: Annotated[float, Field(ge=0, le=1000)] = 8.0
    palette_burst: Annotated[int, Field(ge=1, le=1000)] = 2
    palette_profiles_rate_per_second: Annotated[float, Field(ge=0, le=1000)] = 40.0
    palette_profiles_burst: Annotated[int, Field(ge=1, le=1000)] = 10
    palette_rate_limit_wait_seconds: Annotated[float, Field(ge=0, le=120)] = 5.0

    # Approvals: proofs (docs/approvals.md). `required`: every approval is signed with the
    # approver's SSH key, verified against the allowed signers file; `optional`: signatures
    # are checked when present, and over HTTP every approval needs the gateway's attestation.
    approval_signatures: Literal["required", "optional"] = "optional"
    allowed_signers_file: Path | None = None
    revoked_signers_file: Path | None = None
    # The gateway's Ed25519 key attesting API approvals; default: beside the database.
    attestation_key_file: Path | None = None
    approval_clock_skew_seconds: Annotated[float, Field(gt=0, le=3600)] = 300.0

    # The CLI as a client of the approvals API: `gateway queue` without --local.
    url: str | None = None
    token: SecretStr | None = None
    token_file: Path | None = None
    signing_key: Path | None = None

    # OIDC / JWT bearer tokens beside the tokens file (docs/deployment.md).
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_subject_claim: str = "sub"
    oidc_groups_claim: str = "groups"
    oidc_algorithms: Annotated[tuple[str, ...], NoDecode] = ("RS256", "ES256", "PS256", "EdDSA")
    oidc_leeway_seconds: Annotated[float, Field(ge=0, le=300)] = 30.0
    oidc_jwks_cache_seconds: Annotated[float, Field(ge=0, le=86400)] = 300.0
    oidc_min_refresh_seconds: Annotated[float, Field(ge=0, le=3600)] = 30.0
    oidc_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0

    # Webhooks: JSON list of {"url": ..., "format": "json" | "slack", "events": [...]}.
    webhooks: tuple[WebhookTarget, ...] = ()
    webhook_secret: SecretStr | None = None
    webhook_secret_file: Path | None = None
    webhook_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    webhook_max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    webhook_queue_size: Annotated[int, Field(ge=1, le=100_000)] = 1000

    # Who may roll back another principal's executed action (`gateway_rollback`), besides
    # its requester and the approver groups of the decision it ran under (docs/rollback.md).
    rollback_groups: Annotated[tuple[str, ...], NoDecode] = ()

    # Parked calls are sealed (AES-GCM) with the first key of this file; default: beside
    # the database. `GATEWAY_QUEUE_KEY` (`<id>:<base64 of 32 bytes>`) takes precedence.
    queue_keys_file: Path | None = None
    queue_key: SecretStr | None = None

    # Runaway protection (gateway.history, docs/operations.md): each call's principal and
    # MCP session's recent activity, counted in the database, goes to policy as
    # input.history. Off: nothing is counted and actions carry no history.
    history_enabled: bool = True
    # How often this process writes the calls it counted (others see them that much later).
    history_flush_seconds: Annotated[float, Field(gt=0, le=10)] = 0.1
    # Past this, the counts are unavailable: changes are refused, reads go on.
    history_read_timeout_seconds: Annotated[float, Field(gt=0, le=10)] = 0.5

    # Speculative reads (docs/performance.md): k8s_get and k8s_list start their read while
    # OPA decides and keep the result only if policy allows the call. Off by default: the
    # cluster then sees reads that policy may refuse (nothing refused reaches the caller).
    speculative_reads: bool = False

    # Traces (OpenTelemetry, OTLP over HTTP/protobuf; docs/operations.md). Off unless an
    # endpoint is configured: `GATEWAY_OTLP_ENDPOINT` (the full traces URL), or the standard
    # `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT` (base URL, to
    # which /v1/traces is added). The SDK reads the other OTEL_* variables itself
    # (headers, service name, resource attributes, sampler).
    otlp_endpoint: str | None = None
    otel_traces_endpoint: str | None = Field(
        default=None, validation_alias="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    otel_endpoint: str | None = Field(default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    otel_protocol: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
    )
    otel_traces_exporter: str | None = Field(default=None, validation_alias="OTEL_TRACES_EXPORTER")
    otel_sdk_disabled: bool = Field(default=False, validation_alias="OTEL_SDK_DISABLED")
    otlp_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    # Spans waiting for export; beyond this they are dropped, never waited for.
    otlp_max_queue_size: Annotated[int, Field(ge=64, le=1_000_000)] = 4096

    def traces_endpoint(self) -> str | None:
        """Where spans are exported, or None when tracing is off (see the fields above)."""
        if self.otel_sdk_disabled or (self.otel_traces_exporter or "").strip().lower() == "none":
            return None
        if self.otlp_endpoint:
            return self.otlp_endpoint
        if self.otel_traces_endpoint:
            return self.otel_traces_endpoint
        if self.otel_endpoint:
            return self.otel_endpoint.rstrip("/") + "/v1/traces"
        return None

    # Recorded decisions (docs/changing-policy.md): every decision OPA produced, its input
    # masked like OPA's decision log, kept in the gateway's database for `gateway policy
    # replay`. Written in batches off the request path; a full queue drops and counts.
    record_decisions: bool = True
    record_retention_days: Annotated[float, Field(gt=0, le=3650)] = 30.0
    record_max_rows: Annotated[int, Field(ge=1000, le=1_000_000_000)] = 2_000_000
    # Inputs larger than this are recorded without their input (replay counts them as skipped).
    record_max_input_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 256 * 1024
    record_queue_size: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000

    # Shadow policy: every live decision asked again of a candidate bundle, off the request
    # path; disagreements logged and counted. Either the URL of an OPA serving the candidate
    # (a second OPA the deployment runs), or a bundle `gateway serve` starts one for.
    shadow_opa_url: str | None = None
    shadow_bundle: Path | None = None
    shadow_verification_key: Path | None = None
    shadow_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 2.0
    shadow_queue_size: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    shadow_concurrency: Annotated[int, Field(ge=1, le=64)] = 2

    @field_validator("shadow_opa_url", "shadow_bundle", "shadow_verification_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # Compose and the native topology pass an empty value to mean "not set".
        return None if isinstance(value, str) and not value.strip() else value

    def database(self) -> Path | str:
        """Where the queue and the audit log live: the PostgreSQL URL if one is set, else the
        SQLite file."""
        return self.database_url.get_secret_value() if self.database_url is not None else self.db_path

    def data_file(self, configured: Path | None, name: str) -> Path:
        """A file the gateway keeps beside its database unless configured elsewhere."""
        return configured if configured is not None else self.db_path.parent / name
