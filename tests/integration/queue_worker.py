"""A gateway process for the multi-process queue suites (run as a script).

    GATEWAY_DB_PATH=… | GATEWAY_DATABASE_URL=… python queue_worker.py OPA_URL POLICY LOG MODE [GO_FILE]

MODE ``once``: wait until GO_FILE exists (so several workers start together), then one
executor pass. MODE ``forever``: run the executor until killed.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from queue_harness import gateway_stack

from gateway.settings import Settings


async def main(opa_url: str, policy: str, log: Path, mode: str, go: Path | None) -> None:
    # The database (either backend) and the executor's lease come from the environment.
    settings = Settings(
        opa_url=opa_url, decision_path=f"queuetest/{policy}/decision", opa_timeout_seconds=5.0
    )
    async with gateway_stack(settings, log) as stack:
        print("ready", flush=True)
        if mode == "forever":
            await stack.executor.run_forever()
            return
        if go is not None:  # a start line for racing workers
            await asyncio.to_thread(_wait_for, go)
        finished = await stack.executor.run_once()
        print(f"finished {len(finished)}", flush=True)


def _wait_for(go: Path) -> None:
    while not go.exists():
        time.sleep(0.002)


if __name__ == "__main__":
    _, url, policy, log, mode, *rest = sys.argv
    asyncio.run(main(url, policy, Path(log), mode, Path(rest[0]) if rest else None))
