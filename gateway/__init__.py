"""Policy gateway: every AI tool call on infrastructure is judged by OPA before it runs.

The public surface is small: the contracts policy authors see, and the exceptions.
Everything else is internal to its module.
"""

from gateway.contracts import Decision, PlannedCall, Principal, ProposedAction, Target
from gateway.errors import GatewayError

__all__ = ["Decision", "GatewayError", "PlannedCall", "Principal", "ProposedAction", "Target"]
__version__ = "0.1.0"
