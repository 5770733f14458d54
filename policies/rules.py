"""The rules of the field, as CrossGuard policy objects.

Each rule is a pure check wrapped into a ``ResourceValidationPolicy`` (one resource's
inputs) or a ``StackValidationPolicy`` (every resource's outputs). The same objects run in
``pulumi preview --policy-pack policies`` and inside ``synth`` (offline). Importing this
module starts nothing: only ``policies/__main__.py`` builds the PolicyPack.
"""

from __future__ import annotations

from . import (
                     rules_capacity,
                     rules_deploy,
                     rules_egress,
                     rules_levers,
                     rules_placement,
                     rules_room,
                     rules_routing,
                     rules_scaling,
                     rules_stack,
                     rules_workloads,
)
from .base import Rule

RULES: list[Rule] = [*rules_workloads.RULES, *rules_scaling.RULES, *rules_capacity.RULES, *rules_stack.RULES,
                     *rules_placement.RULES, *rules_deploy.RULES, *rules_room.RULES,
                     *rules_egress.RULES, *rules_levers.RULES, *rules_routing.RULES]
POLICIES = [rule.policy() for rule in RULES]
