"""One gateway replica for the several-replicas suite (run as a script): what
``gateway serve --transport http`` runs, with the queue harness's append tool as its only
backend, so executions can be counted across replicas and pinned to a process.

    GATEWAY_DATABASE_URL=… GATEWAY_INSTANCE=replica-1 … python replica_worker.py OPA_URL POLICY LOG PORT

Every other setting (tokens, keys, lease, stateless HTTP) comes from the environment, as
for a real replica. Prints ``ready`` once it serves.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import uvicorn
from queue_harness import append_source

from gateway.cli.serve import configure_logging
from gateway.http import build_app
from gateway.runtime import RuntimeSlot, preflight
from gateway.server import build_server
from gateway.settings import Settings


def main(opa_url: str, policy: str, log: Path, port: int) -> None:
    configure_logging("WARNING")
    settings = Settings(
        opa_url=opa_url,
        decision_path=f"queuetest/{policy}/decision",
        opa_timeout_seconds=5.0,
        transport="http",
        port=port,
    )
    anyio.run(preflight, settings)
    slot = RuntimeSlot()
    app = build_app(build_server(settings, backends=[append_source(log)], slot=slot), settings, slot=slot)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    server.run()


if __name__ == "__main__":
    _, url, policy, log, port = sys.argv
    main(url, policy, Path(log), int(port))
