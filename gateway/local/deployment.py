"""The facts ``docker-compose.yml`` and the native topology (``make up``) must share.

One source of truth: ``gateway.local.topology`` starts processes from these values and
``tests/integration/test_compose_file.py`` checks that the compose file, the Dockerfile
and the Makefile agree with them.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BUNDLE",
    "CONTAINER_DATA_DIR",
    "CONTAINER_DB_PATH",
    "CONTAINER_KUBECONFIG",
    "CONTAINER_TOKENS_FILE",
    "GATEWAY_PORT",
    "GATEWAY_UID",
    "OPA_CONFIG",
    "OPA_IMAGE",
    "OPA_MEMORY_LIMIT",
    "OPA_PORT",
    "OPA_RUNTIME_ENV",
    "OPA_SHADOW_PORT",
    "OPA_VERSION",
    "SHADOW_BUNDLE",
    "gateway_environment",
    "opa_health_query",
]

# Equal to the Makefile's OPA_VERSION without its "v": the image runs the binary we test with.
OPA_VERSION = "1.22.2"
OPA_IMAGE = f"openpolicyagent/opa:{OPA_VERSION}"

OPA_PORT = 8181
GATEWAY_PORT = 8000
# The shadow OPA (compose profile `shadow`, or the native topology with a shadow bundle):
# a candidate policy the gateway asks about every live decision, off the request path.
OPA_SHADOW_PORT = 8182

# The Go runtime settings OPA runs with, in the container and natively (and in
# `make bench-policy`, which the Makefile's OPA_RUNTIME_ENV keeps equal to this). At Go's
# default GOGC=100, OPA's heap of ~7 MB is collected every ~40 decisions and each
# collection slows several of them: measured, the p99 of a production Deployment apply
# over HTTP fell from 6.6 ms to 3.0 ms at GOGC=1000, p50 unchanged, peak resident size
# ~150 MB instead of ~57 MB. GOMEMLIMIT bounds what the laxer pacing may hold, below
# the container's memory limit, so a larger bundle makes the collector work harder
# instead of getting OPA killed.
OPA_RUNTIME_ENV = {"GOGC": "1000", "GOMEMLIMIT": "384MiB"}
OPA_MEMORY_LIMIT = "512m"

# Paths relative to the repository root.
BUNDLE = Path("bundles/gateway.tar.gz")
OPA_CONFIG = Path("deploy/opa/config.yaml")
SHADOW_BUNDLE = Path("bundles/shadow.tar.gz")  # what `make bundle-shadow` builds

# Inside the gateway container; the data directory is the named volume.
GATEWAY_UID = 10001
CONTAINER_DATA_DIR = "/var/lib/policy-gateway"
CONTAINER_DB_PATH = f"{CONTAINER_DATA_DIR}/gateway.db"
CONTAINER_TOKENS_FILE = f"{CONTAINER_DATA_DIR}/tokens.jsonl"
CONTAINER_KUBECONFIG = "/etc/policy-gateway/kubeconfig"


def gateway_environment(opa_url: str) -> dict[str, str]:
    """The gateway settings both topologies set, apart from paths and the bind address."""
    return {
        "GATEWAY_TRANSPORT": "http",
        "GATEWAY_PORT": str(GATEWAY_PORT),
        "GATEWAY_OPA_URL": opa_url,
        "GATEWAY_ANONYMOUS": "reject",
    }


def opa_health_query(port: int = OPA_PORT) -> str:
    """The Rego query OPA's container healthcheck runs with ``opa eval --fail``: the image
    has no shell or curl, but ``opa`` itself can ask ``/health?bundles``. The comparison is
    a second expression so that a false result leaves the query undefined, which
    ``--fail`` turns into exit code 1 (a lone comparison would just print ``false``)."""
    return (
        f'r := http.send({{"method": "GET", "url": "http://127.0.0.1:{port}/health?bundles", '
        '"timeout": "2s", "raise_error": false}); r.status_code == 200'
    )
