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
    "OPA_PORT",
    "OPA_VERSION",
    "gateway_environment",
    "opa_health_query",
]

# Equal to the Makefile's OPA_VERSION without its "v": the image runs the binary we test with.
OPA_VERSION = "1.22.2"
OPA_IMAGE = f"openpolicyagent/opa:{OPA_VERSION}"

OPA_PORT = 8181
GATEWAY_PORT = 8000

# Paths relative to the repository root.
BUNDLE = Path("bundles/gateway.tar.gz")
OPA_CONFIG = Path("deploy/opa/config.yaml")

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
