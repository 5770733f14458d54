"""The resource options that change what the real engine does, read off a registration
request (the shape is documented in ``synth/engine.py``)."""

from __future__ import annotations

from typing import Any

from pulumi.runtime import settings as psettings


def urn_of(stack: str, project: str, parent: str, type_: str, name: str) -> str:
    """A URN as the real engine builds it: the parent's qualified type prefixes the type,
    except for the root Stack, which its children's URNs leave out."""
    if parent:
        parent_type = parent.split("::")[2]
        if parent_type != "pulumi:pulumi:Stack":
            type_ = f"{parent_type}${type_}"
    return f"urn:pulumi:{stack}::{project}::{type_}::{name}"


def _alias_urns(request) -> list[str]:
    """The resource's own aliases as the URNs the engine resolves them to, in program order.

    A spec leaves out what stays the same: the name, type, stack and project default to
    the resource's, the parent to its current parent (``noParent``: none). Aliases the
    engine derives for children from their parents' aliases are not listed.
    """
    urns = []
    for alias in request.aliases:
        if alias.urn:
            urns.append(alias.urn)
            continue
        spec = alias.spec
        parent = "" if spec.noParent else spec.parentUrn or request.parent
        urns.append(urn_of(spec.stack or psettings.get_stack(), spec.project or psettings.get_project(), parent,
                         spec.type or request.type, spec.name or request.name))
    urns.extend(request.aliasURNs)  # from an SDK that resolves aliases itself
    return urns


def options_of(request) -> dict[str, Any]:
    """The resource options that change what the real engine does, only those set."""
    options: dict[str, Any] = {}
    aliases = _alias_urns(request)
    if aliases:
        options["aliases"] = aliases
    if request.HasField("customTimeouts"):
        timeouts = {k: getattr(request.customTimeouts, k) for k in ("create", "update", "delete")}
        if any(timeouts.values()):
            options["customTimeouts"] = {k: v for k, v in timeouts.items() if v}
    if request.ignoreChanges:
        options["ignoreChanges"] = list(request.ignoreChanges)
    if request.deleteBeforeReplaceDefined:
        options["deleteBeforeReplace"] = bool(request.deleteBeforeReplace)
    if request.HasField("protect"):
        options["protect"] = bool(request.protect)
    return options
