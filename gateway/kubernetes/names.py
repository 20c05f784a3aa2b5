"""Validation of Kubernetes names and quantities in tool arguments, before anything is sent.

The rules are the API server's own (``k8s.io/apimachinery/pkg/util/validation``): a
namespace or container name is a DNS-1123 label, most object names are DNS-1123
subdomains. Object names additionally accept ``:`` because RBAC objects are named that
way (``system:controller:...``); the server still has the final word on each kind.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

__all__ = [
    "DNS_LABEL",
    "DNS_SUBDOMAIN",
    "ContainerName",
    "KindName",
    "NamespaceName",
    "ObjectName",
    "ResourceMap",
    "check_label",
    "check_object_name",
    "check_quantity",
    "check_resource_name",
]

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_OBJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9:]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9:]*[a-z0-9])?)*$")
_KIND = re.compile(r"^[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z0-9][A-Za-z0-9.-]*)?$")
_QUANTITY = re.compile(r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$")
_RESOURCE_NAME = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def check_label(value: str) -> str:
    """A DNS-1123 label: namespaces, container names."""
    if len(value) > 63 or not DNS_LABEL.match(value):
        raise ValueError(
            "not a valid name: use at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def check_object_name(value: str) -> str:
    """A DNS-1123 subdomain (plus ':' for RBAC names), at most 253 characters."""
    if len(value) > 253 or not _OBJECT_NAME.match(value):
        raise ValueError(
            "not a valid object name: use at most 253 lowercase letters, digits, "
            "'-' and '.', starting and ending with a letter or digit"
        )
    return value


def _check_kind(value: str) -> str:
    if len(value) > 120 or not _KIND.match(value):
        raise ValueError(
            "not a kind: give a kind, plural or short name such as "
            "'Deployment', 'deployments', 'deploy' or 'certificates.cert-manager.io'"
        )
    return value


def check_quantity(value: str) -> str:
    """A resource quantity such as ``250m``, ``1.5``, ``512Mi`` or ``1G``."""
    if len(value) > 64 or not _QUANTITY.match(value):
        raise ValueError("not a quantity: use forms like '250m', '2', '512Mi', '1Gi'")
    return value


def check_resource_name(value: str) -> str:
    """A compute resource name: ``cpu``, ``memory``, ``nvidia.com/gpu`` …"""
    if len(value) > 253 or not _RESOURCE_NAME.match(value):
        raise ValueError("not a resource name: use 'cpu', 'memory', 'nvidia.com/gpu' …")
    return value


def _check_resource_map(value: dict[str, str]) -> dict[str, str]:
    if len(value) > 16:
        raise ValueError("at most 16 resources may be set at once")
    for name, quantity in value.items():
        check_resource_name(name)
        check_quantity(quantity)
    return value


KindName = Annotated[str, AfterValidator(_check_kind)]
NamespaceName = Annotated[str, AfterValidator(check_label)]
ContainerName = Annotated[str, AfterValidator(check_label)]
ObjectName = Annotated[str, AfterValidator(check_object_name)]
ResourceMap = Annotated[dict[str, str], Field(max_length=16), AfterValidator(_check_resource_map)]
