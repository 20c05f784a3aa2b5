"""Quantities as the caller wrote them, in the after-image policy judges.

The API server answers a dry run with every resource quantity in its canonical form: ``0.5``
CPU comes back as ``500m``, ``1.5Gi`` as ``1536Mi``, ``1000000000`` bytes as ``1G``. A denial
that quotes ``1536Mi`` to someone who wrote ``1.5Gi`` makes them translate before they can
act. ``as_written`` puts the caller's spelling back wherever it denotes exactly the amount
the server computed (compared as numbers), so policy messages quote what was written and
the after-image still says what would be stored; anything else is left as the server said.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

__all__ = ["amount", "as_written"]

JSON = dict[str, Any]
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_SECTIONS = ("requests", "limits")


def amount(value: Any) -> Decimal:
    """The number a quantity denotes (``500m`` is 0.5); ``ValueError`` when it is not one."""
    try:
        return Decimal(parse_quantity(value))  # type: ignore[no-untyped-call]
    except (ValueError, ArithmeticError, TypeError) as exc:
        raise ValueError(f"not a quantity: {value!r}") from exc


def as_written(server: JSON, written: JSON) -> JSON:
    """``server`` (a dry-run answer) with the container quantities of ``written`` (the
    caller's object or patch) in the caller's spelling. Copies only what it changes."""
    server_spec, written_spec = _pod_spec(server), _pod_spec(written)
    if server_spec is None or written_spec is None:
        return server
    spec = dict(server_spec)
    for field in _CONTAINER_LISTS:
        wanted = {c.get("name"): c for c in written_spec.get(field) or [] if isinstance(c, dict)}
        if wanted and isinstance(spec.get(field), list):
            spec[field] = [_container(c, wanted.get(c.get("name"))) for c in spec[field]]
    return _with_pod_spec(server, spec)


def _container(server: Any, written: Any) -> Any:
    if not isinstance(server, dict) or not isinstance(written, dict):
        return server
    resources = server.get("resources")
    wrote = written.get("resources")
    if not isinstance(resources, dict) or not isinstance(wrote, dict):
        return server
    kept = dict(resources)
    for section in _SECTIONS:
        if isinstance(resources.get(section), dict) and isinstance(wrote.get(section), dict):
            kept[section] = {
                name: _spelling(value, wrote[section].get(name)) for name, value in resources[section].items()
            }
    return {**server, "resources": kept}


def _spelling(canonical: Any, written: Any) -> Any:
    if not isinstance(written, str | int | float) or isinstance(written, bool) or written == canonical:
        return canonical
    try:
        same = amount(written) == amount(canonical)
    except ValueError:
        return canonical
    return str(written) if same else canonical


def _pod_spec(obj: JSON) -> JSON | None:
    """The pod spec of a Pod, a workload's template or a CronJob's job template."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return None
    if obj.get("kind") == "Pod" or "containers" in spec:
        return spec
    job = spec.get("jobTemplate")
    template = ((job.get("spec") or {}) if isinstance(job, dict) else spec).get("template")
    inner = template.get("spec") if isinstance(template, dict) else None
    return inner if isinstance(inner, dict) else None


def _with_pod_spec(obj: JSON, pod_spec: JSON) -> JSON:
    spec = obj["spec"]
    if obj.get("kind") == "Pod" or "containers" in spec:
        return {**obj, "spec": pod_spec}
    if isinstance(spec.get("jobTemplate"), dict):
        job = spec["jobTemplate"]
        job_spec = job["spec"]
        template = {**job_spec["template"], "spec": pod_spec}
        return {**obj, "spec": {**spec, "jobTemplate": {**job, "spec": {**job_spec, "template": template}}}}
    return {**obj, "spec": {**spec, "template": {**spec["template"], "spec": pod_spec}}}
