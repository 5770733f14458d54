"""Name builders: Kubernetes names are DNS-1123 labels and fit their length limits."""

from __future__ import annotations

import hashlib
import re

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# KEDA names the HPA it owns "keda-hpa-<ScaledObject name>", and that must fit in 63.
SCALED_OBJECT_MAX = 54


def k8s_name(*parts: str, max_length: int = 63) -> str:
    """Join parts with '-' into a DNS-1123 label of at most ``max_length`` characters.

    A name that must be shortened keeps a readable prefix and gets a stable 6-character
    hash of the full name, so two long names never collide after truncation.
    """
    if not 8 <= max_length <= 63:
        # Below 8 there is no room for one character, '-' and the hash; above 63 it is no label.
        raise ValueError(f"max_length {max_length} is outside 8..63")
    name = "-".join(p for p in parts if p)
    # fullmatch: with match, '$' would also accept a trailing newline.
    if not DNS1123_LABEL.fullmatch(name):
        raise ValueError(f"{name!r} is not a DNS-1123 label (lower-case letters, digits, '-')")
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    head = name[: max_length - 7].rstrip("-")
    return f"{head}-{digest}"


def child(name: str, role: str) -> str:
    """Pulumi child resource name: ``<component>-<role>``."""
    return f"{name}-{role}"
