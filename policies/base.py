"""The Rule type: metadata plus a pure check, turned into a CrossGuard policy object."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

ENVIRONMENTS = ["dev", "staging", "prod"]
ENVIRONMENT = {
    "environment": {
        "type": "string",
        "enum": ENVIRONMENTS,
        "default": "prod",
        "description": "The stack's environment; environment-dependent rules key off it.",
    }
}

# (resource type, props, config) -> messages
ResourceCheck = Callable[[str, Mapping[str, Any], Mapping[str, Any]], Iterable[str]]
# (resources, config) -> (urn, message) pairs
StackCheck = Callable[[Sequence[Any], Mapping[str, Any]], Iterable[tuple[str, str]]]


@dataclass(frozen=True)
class Rule:
    name: str
    area: str
    description: str
    rationale: str
    fix: str
    enforcement: EnforcementLevel
    check: ResourceCheck | None = None
    stack_check: StackCheck | None = None
    config: dict[str, dict[str, Any]] = field(default_factory=dict)

    def defaults(self) -> dict[str, Any]:
        return {k: v["default"] for k, v in self.config.items() if "default" in v}

    def policy(self) -> ResourceValidationPolicy | StackValidationPolicy:
        schema = PolicyConfigSchema(properties=dict(self.config)) if self.config else None
        if self.stack_check is not None:
            stack_check = self.stack_check

            def validate_stack(args: StackValidationArgs, report) -> None:
                config = {**self.defaults(), **dict(args.get_config())}
                for urn, message in stack_check(args.resources, config):
                    report(f"{message} Fix: {self.fix}", urn)

            return StackValidationPolicy(name=self.name, description=self.description, validate=validate_stack,
                                         enforcement_level=self.enforcement, config_schema=schema)
        check = self.check
        assert check is not None, self.name

        def validate(args: ResourceValidationArgs, report) -> None:
            config = {**self.defaults(), **dict(args.get_config())}
            for message in check(args.resource_type, args.props, config):
                report(f"{message} Fix: {self.fix}")

        return ResourceValidationPolicy(name=self.name, description=self.description, validate=validate,
                                        enforcement_level=self.enforcement, config_schema=schema)


def resource_rule(name: str, area: str, description: str, rationale: str, fix: str, check: ResourceCheck,
                  config: dict[str, dict[str, Any]] | None = None,
                  enforcement: EnforcementLevel = EnforcementLevel.MANDATORY) -> Rule:
    return Rule(name, area, description, rationale, fix, enforcement, check=check, config=config or {})


def stack_rule(name: str, area: str, description: str, rationale: str, fix: str, check: StackCheck,
               config: dict[str, dict[str, Any]] | None = None,
               enforcement: EnforcementLevel = EnforcementLevel.MANDATORY) -> Rule:
    return Rule(name, area, description, rationale, fix, enforcement, stack_check=check, config=config or {})


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, Mapping)):
        return [value]
    return list(value)
