"""The cold-start levers (issue 18) as the simulator replays them, and the lever report.

Each lever reaches the replay through one phase of ``platform_facts.coldstart.expected_phases``
(``simulator.perf.cold_start``: the service's loader and compile cache, the cluster's
FastImagePull) or through the capacity it keeps up (the tier's capacity buffer: whole
on-demand nodes, ``ReplaySetup.buffer_nodes``). ``variants`` turns each lever on alone on the
stack as configured; ``report`` replays the stack profile under each.
"""

from __future__ import annotations

from components.config import ModelServiceConfig, StackConfig
from components.config.levers import buffer_chunk, buffer_node_gpus
from platform_facts import catalog


def fast_image_pull(config: StackConfig) -> bool:
    return config.cluster.fast_image_pull.enabled


def buffer_nodes(config: StackConfig, service: ModelServiceConfig, instance: catalog.InstanceType) -> int:
    """Whole nodes of the replayed instance type the service's tier's buffer keeps Ready (0 without one)."""
    tier = config.tier(service.tier)
    chunk = buffer_chunk(config, tier)
    if chunk is None:
        return 0
    return -(-buffer_node_gpus(chunk, instance.gpus) // instance.gpus)
