"""The Kubernetes backend: tools over any cluster the gateway's credentials reach, each
call on the kubeconfig context it names (``contexts``: which may be used; ``clusters``:
one client per cluster in use).

``open_backend(settings)`` (in ``gateway.kubernetes.tools``) is the one entry point.
"""

from gateway.kubernetes.tools import TOOL_NAMES, open_backend

__all__ = ["TOOL_NAMES", "open_backend"]
