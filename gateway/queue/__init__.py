"""The approval queue: parked calls in SQLite, the approve flow, and the executor.

Start-up (server lifespan)::

    store = await QueueStore.open(settings.db_path)   # also marks dead executions interrupted
    executor = Executor(store, gateway, store.audit)  # gateway: a CallRunner
    task_group.start_soon(executor.run_forever)
    ...
    executor.stop(); await store.close()
"""

from gateway.queue.approvals import ApprovalResult, PolicyDecider, approve, missing_approvals
from gateway.queue.executor import Executor
from gateway.queue.store import DEFAULT_LIST_LIMIT, ActionSummary, CorruptAction, QueueStore, StaleApprovals

__all__ = [
    "DEFAULT_LIST_LIMIT",
    "ActionSummary",
    "ApprovalResult",
    "CorruptAction",
    "Executor",
    "PolicyDecider",
    "QueueStore",
    "StaleApprovals",
    "approve",
    "missing_approvals",
]
