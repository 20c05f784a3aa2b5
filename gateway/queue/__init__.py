"""The approval queue: parked calls in the gateway's database (SQLite, or PostgreSQL shared
by replicas; ``gateway.db``), the approve flow, and the executor.

Start-up (server lifespan)::

    store = await QueueStore.from_settings(settings)  # also marks dead executions interrupted
    executor = Executor(store, gateway, store.audit, policy=policy)  # gateway: a CallRunner
    task_group.start_soon(executor.run_forever)
    ...
    executor.stop(); await store.close()
"""

from gateway.queue.approvals import ApprovalResult, approve, missing_approvals
from gateway.queue.executor import Executor
from gateway.queue.reevaluation import PolicyEvaluator, reevaluate
from gateway.queue.store import DEFAULT_LIST_LIMIT, ActionSummary, QueueStore

__all__ = [
    "DEFAULT_LIST_LIMIT",
    "ActionSummary",
    "ApprovalResult",
    "Executor",
    "PolicyEvaluator",
    "QueueStore",
    "approve",
    "missing_approvals",
    "reevaluate",
]
