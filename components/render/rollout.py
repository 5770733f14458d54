"""How long a GPU workload's rollout may take: the arithmetic behind its await timeouts.

pulumi-kubernetes waits for a Deployment to become available, by default for 10 minutes;
a GPU replica's worst-case cold start alone is longer than that for large models. So every
awaited GPU workload carries ``customTimeouts`` computed here from the same cold-start
phases that size its startup probe (``platform_facts.coldstart``).

Pure arithmetic on numbers, no config models, so the policy pack (which cannot import the
components) can mirror it: the Deployment records its per-pod figure in the
``platform.gpu/ready-within-seconds`` annotation and its update steps in
``platform.gpu/rollout-steps``; a check is ``timeout >= steps x ready_within``.
"""

from __future__ import annotations

import math

READY_WITHIN_ANNOTATION = "platform.gpu/ready-within-seconds"
ROLLOUT_STEPS_ANNOTATION = "platform.gpu/rollout-steps"
# The timeout over the worst case: the phases are already worst figures, so a tenth is kept
# for what they leave out (API latency, scheduling retries), then rounded up to a minute.
MARGIN = 0.1


def ready_within_seconds(*, node_ready: int, image_pull: int, download: int, startup_budget: int,
                         first_ready: int) -> int:
    """Worst case from a pod's creation to Ready on a new node: node launch, image pull, weights
    download into the cache, the startup probe's budget (load and engine init), first readiness."""
    return node_ready + image_pull + download + startup_budget + first_ready


def rollout_steps(replicas: int, max_surge: int) -> int:
    """Sequential waves of a rolling update with ``maxUnavailable: 0``: each wave brings up at most
    ``max_surge`` new pods and waits for them to be Ready. A Deployment at 0 replicas still takes
    one (its first scale-up after the update is judged by the same budget)."""
    return max(1, math.ceil(replicas / max_surge))


def await_timeout_minutes(ready_within: int, steps: int, margin: float = MARGIN) -> int:
    """The await timeout, in whole minutes: ``steps`` waves of ``ready_within`` seconds, plus margin."""
    return math.ceil(steps * ready_within * (1 + margin) / 60)
