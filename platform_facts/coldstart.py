"""The phases of a replica's cold start, in seconds and GiB/s.

Two views of the same phases, kept side by side so that they can be compared (the
performance-model work reconciles them against published breakdowns):

- ``WORST_*``: the budget a probe or an await must allow before it gives up. Render uses it
  for the startup probe (a pod killed while it is still loading never becomes ready) and for
  the Deployments' await timeouts (``components/render/rollout.py``).
- ``EXPECTED_*``: the typical time, which the simulator replays.

Sources: autoscaling facts 3.2, 3.3, 3.5 (data-on-eks measured run on g6e.2xlarge: node
provisioning 13 s by Karpenter + 40 s EC2 to Ready + 36 s GPU device plugin; image pull
121 s; engine init 34 s with a warm compile cache, 3-4 min uncached).
"""

from __future__ import annotations

import math

# --- worst case (startup probes, await timeouts)
WORST_ENGINE_INIT_SECONDS = 240  # uncached torch.compile + CUDA graph capture: 3-4 min
WORST_NVME_READ_GIB_PER_S = 0.5  # reading weights from the node cache into GPU memory
WORST_S3_SYNC_GIB_PER_S = 0.25  # aws s3 sync into the cache (S3 streamer measured 0.9 GiB/s)
# Node launch to a schedulable GPU, per instance family: about 3x the expected figures below,
# rounded up (a launch retried on another type or zone after an insufficient-capacity error,
# a slow device-plugin registration). Unmeasured for p4/p5; those get 10 minutes.
WORST_NODE_READY_SECONDS = {"g5": 300, "g6": 300, "g6e": 300, "p4d": 600, "p4de": 600, "p5": 600, "p5en": 600}
WORST_NODE_READY_DEFAULT_SECONDS = 600
# Image pull: 15-20 GB deep-learning images take 4-6 min per instance (AWS ML blog on SOCI
# indexes for DLCs); the expected 121 s below is one measured pull of the vLLM image.
WORST_IMAGE_PULL_SECONDS = 360

# --- expected (the simulator)
# Node launch to a schedulable GPU, per instance family. p4 and p5 nodes are given more
# (unmeasured; larger instances, more GPUs for the device plugin to announce).
EXPECTED_NODE_READY_SECONDS = {"g5": 89.0, "g6": 89.0, "g6e": 89.0, "p4d": 150.0, "p4de": 150.0,
                               "p5": 180.0, "p5en": 180.0}
EXPECTED_NODE_READY_DEFAULT_SECONDS = 120.0
EXPECTED_IMAGE_PULL_SECONDS = 121.0
EXPECTED_S3_GIB_PER_S = 0.5
EXPECTED_NVME_GIB_PER_S = 2.0
EXPECTED_ENGINE_INIT_SECONDS = 34.0
EXPECTED_READINESS_SECONDS = 10.0  # within one readiness probe period


def worst_load_seconds(weights_gib: float) -> int:
    """Worst-case time from container start to a serving engine, the model already cached."""
    return math.ceil(weights_gib / WORST_NVME_READ_GIB_PER_S + WORST_ENGINE_INIT_SECONDS)


def worst_cold_start_seconds(weights_gib: float) -> int:
    """Worst case on a node without the model: download into the cache, then load."""
    return math.ceil(weights_gib / WORST_S3_SYNC_GIB_PER_S) + worst_load_seconds(weights_gib)


def expected_node_ready_seconds(family: str) -> float:
    """Launch to a schedulable GPU for an instance family."""
    return EXPECTED_NODE_READY_SECONDS.get(family, EXPECTED_NODE_READY_DEFAULT_SECONDS)


def worst_node_ready_seconds(instance_types: tuple[str, ...] | list[str]) -> int:
    """The slowest worst-case node launch among these instance types (Karpenter may pick any)."""
    return max(WORST_NODE_READY_SECONDS.get(t.split(".", 1)[0], WORST_NODE_READY_DEFAULT_SECONDS)
               for t in instance_types)


# --- cold-start levers (issue 18): the modelled cold start one predictive trigger looks ahead,
# and what the loaders and FastImagePull need. Kept apart from the calibrated figures above.

# A replica on a new node: node launch + image pull + cache download + load + engine init +
# first readiness, each at its expected figure (the simulator's view, not the worst case).
def expected_cold_start_seconds(weights_gib: float, family: str) -> float:
    return (expected_node_ready_seconds(family) + EXPECTED_IMAGE_PULL_SECONDS + weights_gib / EXPECTED_S3_GIB_PER_S
            + weights_gib / EXPECTED_NVME_GIB_PER_S + EXPECTED_ENGINE_INIT_SECONDS + EXPECTED_READINESS_SECONDS)


# FastImagePull: AWS recommends >= 600 MiB/s root-volume throughput ("Below that value, you may
# see longer image pull times"; amazon-eks-ami nodeadm/doc/examples.md); nodeadm enables the SOCI
# snapshotter only with >= 4 vCPU and >= 7 GiB (nodeadm/internal/containerd/config.go).
FAST_IMAGE_PULL_MIN_ROOT_MIBPS = 600
FAST_IMAGE_PULL_MIN_VCPU = 4
FAST_IMAGE_PULL_MIN_MEMORY_GIB = 7
# gp3's baseline throughput, what an unset EC2NodeClass throughput gets (EBS docs).
GP3_BASELINE_MIBPS = 125
