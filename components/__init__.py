"""GPU LLM inference platform components (the public API).

Import what a stack needs:

    from components import Platform, StackConfig, load_config
"""

from components.batch import BatchInference, BatchInferenceArgs
from components.cluster import GpuCluster, Network
from components.config import (
    ConfigError,
    GpuTier,
    ModelServiceConfig,
    StackConfig,
    check_service_on_tier,
    load_model,
    load_stack_config,
)
from components.gpu_operator import GpuOperator
from components.karpenter import Karpenter
from components.keda import Keda
from components.model_service import ModelService, ModelServiceArgs
from components.monitoring import Monitoring
from components.platform import Platform
from components.stack import load_config
from components.stackref import read_output

__all__ = [
    "BatchInference",
    "BatchInferenceArgs",
    "ConfigError",
    "GpuCluster",
    "GpuOperator",
    "GpuTier",
    "Karpenter",
    "Keda",
    "ModelService",
    "ModelServiceArgs",
    "ModelServiceConfig",
    "Monitoring",
    "Network",
    "Platform",
    "StackConfig",
    "check_service_on_tier",
    "load_config",
    "load_model",
    "load_stack_config",
    "read_output",
]
