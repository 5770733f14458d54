"""GPU LLM inference platform components (the public API).

Import what a stack needs:

    from components import Platform, StackConfig, load_config
"""

from components.cluster import GpuCluster, Network
from components.config import ConfigError, StackConfig, load_stack_config
from components.platform import Platform
from components.stack import load_config

__all__ = [
    "ConfigError",
    "GpuCluster",
    "Network",
    "Platform",
    "StackConfig",
    "load_config",
    "load_stack_config",
]
