"""Run the pack's policy objects in-process, as the engine would, on recorded resources.

Resource policies get each resource's inputs and stack policies every resource's outputs,
wrapped in the same ``unknown_checking_proxy`` CrossGuard uses, so a rule that works here
works under ``pulumi preview --policy-pack policies``.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy


@dataclass(frozen=True)
class Resource:
    """What a policy needs of one resource: type, URN, name, inputs, outputs, parent, and
    (from resources.json) the URNs it depends on and its resource options."""

    type: str
    urn: str
    name: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    parent: str | None = None
    depends_on: Sequence[str] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


_DURATION = re.compile(r"([0-9.]+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str | None) -> float:
    """A Go duration as the engine takes ``customTimeouts`` ("30m", "1h30m", "90s"); 0 when unset."""
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION.findall(str(text or "")))


def _opts(options: Mapping[str, Any] | None = None, parent: str | None = None) -> PolicyResourceOptions:
    """The resource's options as CrossGuard passes them (``synth`` records them in resources.json)."""
    options = options or {}
    timeouts = options.get("customTimeouts") or {}
    return PolicyResourceOptions(
        bool(options.get("protect", False)), list(options.get("ignoreChanges") or []),
        options.get("deleteBeforeReplace"), list(options.get("aliases") or []),
        PolicyCustomTimeouts(*(duration_seconds(timeouts.get(k)) for k in ("create", "update", "delete"))), [], parent)


def _run(call, on_unknown) -> None:
    """Run a validator; like CrossGuard, an unknown (preview) value is advisory, not a failure."""
    try:
        result = call()
        if inspect.isawaitable(result):
            asyncio.run(result)  # type: ignore[arg-type]
    except UnknownValueError:
        on_unknown()


def _level(policy: Any, overrides: Mapping[str, str]) -> str:
    level = overrides.get(policy.name) or overrides.get("all") or policy.enforcement_level or EnforcementLevel.ADVISORY
    level = getattr(level, "value", level)
    # CrossGuard reports a remediate-level violation as mandatory.
    return "mandatory" if level == "remediate" else str(level)


def evaluate(
    policies: Sequence[ResourceValidationPolicy | StackValidationPolicy],
    resources: Sequence[Resource],
    config: Mapping[str, Mapping[str, Any]] | None = None,
    enforcement: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The policy report: ``{"policies_run": N, "violations": [...]}`` in a stable order."""
    config = config or {}
    enforcement = enforcement or {}
    violations: list[dict[str, str]] = []
    active = [p for p in policies if _level(p, enforcement) != "disabled"]

    def add(policy: Any, urn: str, message: str, level: str | None = None) -> None:
        violations.append({"policy": policy.name, "enforcement": level or _level(policy, enforcement), "urn": urn,
                           "message": message})

    def unknown(policy: Any, urn: str) -> None:
        add(policy, urn, f"can't run policy '{policy.name}' during preview: it reads an unknown value", "advisory")

    # Built once and shared by every policy (read-only views): a proxy per resource costs as
    # much as a policy's own check, so building them per policy made the pack quadratic.
    opts = {r.urn: _opts(r.options, r.parent) for r in resources}
    inputs = {r.urn: unknown_checking_proxy(dict(r.inputs)) for r in resources}
    stack_view: list[PolicyResource] = []

    def stack_resources() -> list[PolicyResource]:
        if not stack_view:
            by_urn: dict[str, PolicyResource] = {}
            for r in resources:
                by_urn[r.urn] = PolicyResource(r.type, unknown_checking_proxy(dict(r.outputs)), r.urn, r.name,
                                               opts[r.urn], None, by_urn.get(r.parent or ""), [], {})
            # Dependencies as objects, like the engine's; filled once every resource exists.
            for r in resources:
                by_urn[r.urn].dependencies.extend(by_urn[d] for d in r.depends_on if d in by_urn)
            stack_view.extend(by_urn.values())
        return stack_view

    for policy in active:
        cfg = dict(config.get(policy.name, {}))
        if isinstance(policy, StackValidationPolicy):
            stack_args = StackValidationArgs(stack_resources(), cfg)
            _run(lambda p=policy, a=stack_args: p.validate(a, lambda message, urn=None: add(p, urn or "", message)),
                 lambda p=policy: unknown(p, ""))
            continue
        validators = policy.validate if isinstance(policy.validate, list) else [policy.validate]
        for r in resources:
            args = ResourceValidationArgs(r.type, inputs[r.urn], r.urn, r.name, opts[r.urn], None, cfg)
            for validate in validators:
                _run(lambda v=validate, a=args, p=policy, u=r.urn: v(a, lambda message, urn=None: add(p, urn or u, message)),
                     lambda p=policy, u=r.urn: unknown(p, u))
    violations.sort(key=lambda v: (v["policy"], v["urn"], v["message"]))
    return {"policies_run": len(active), "violations": violations}


def policy_config(rules: Sequence[Any], environment: str) -> dict[str, dict[str, Any]]:
    """The --policy-pack-config for an environment: ``environment`` for the rules that take it."""
    return {r.name: {"environment": environment} for r in rules if "environment" in r.config}


def mandatory(report: Mapping[str, Any]) -> list[Mapping[str, str]]:
    return [v for v in report["violations"] if v["enforcement"] == "mandatory"]
