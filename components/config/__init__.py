"""Typed stack configuration: plain data, validated once, frozen.

A stack file (``stacks/Pulumi.<env>.yaml``) holds ``aws:region`` and the keys of the
``gpu-platform`` namespace; :func:`load_stack_config` turns them into a :class:`StackConfig`
or raises :class:`ConfigError` with one line per problem, each naming the config path
(camelCase, as written in the stack file), the bad value and what is allowed.

Every default lives in a model field, once. Components never re-validate or re-default.

- ``base``: the shared base model, patterns and duration units;
- ``cluster`` (with ``egress``), ``tiers``, ``addons``, ``serving``, ``batch``: the models, by area;
- ``stack``: :class:`StackConfig`, the whole file; ``rules``: its cross-field rules;
- ``errors``: :class:`ConfigError`, errors that carry their path, one line per problem;
- ``loading``: the entry points; ``schema``: the JSON Schema of a stack file.
"""

from components.config.addons import AddonsConfig, GpuOperatorConfig, KedaConfig, MonitoringConfig
from components.config.base import (
    DNS_LABEL,
    KARPENTER_DURATION,
    NAMESPACE,
    PROMETHEUS_DURATION,
    DnsName,
    ImageRef,
    karpenter_seconds,
)
from components.config.batch import BatchWorkerConfig, ExistingRedis
from components.config.cluster import ClusterConfig, EndpointConfig, ExistingVpc, NetworkConfig, SystemNodesConfig
from components.config.egress import EgressConfig, PullThroughCacheConfig
from components.config.errors import ConfigError
from components.config.loading import check_service_on_tier, load_model, load_stack_config
from components.config.schema import stack_file_schema
from components.config.serving import (
    ActiveHours,
    Cache,
    Canary,
    Drain,
    ModelServiceConfig,
    ModelSpec,
    Scaling,
    SecretRef,
    Slo,
)
from components.config.stack import MAX_SURGE_REPLICAS, Environment, OnDemandGpuLimit, StackConfig
from components.config.tiers import DisruptionBudget, GpuTier, MigConfig, OnDemandPool, SpotPool, TimeSlicing
from components.sizing import MIN_KV_CACHE_GIB_PER_GPU, replica_fits
from platform_facts.aws import KUBERNETES_VERSIONS, SPOT_NOTICE_SECONDS

__all__ = [
    "DNS_LABEL",
    "KARPENTER_DURATION",
    "KUBERNETES_VERSIONS",
    "MAX_SURGE_REPLICAS",
    "MIN_KV_CACHE_GIB_PER_GPU",
    "NAMESPACE",
    "PROMETHEUS_DURATION",
    "SPOT_NOTICE_SECONDS",
    "ActiveHours",
    "AddonsConfig",
    "BatchWorkerConfig",
    "Cache",
    "Canary",
    "ClusterConfig",
    "ConfigError",
    "DisruptionBudget",
    "DnsName",
    "Drain",
    "EndpointConfig",
    "Environment",
    "ExistingRedis",
    "ExistingVpc",
    "GpuOperatorConfig",
    "GpuTier",
    "ImageRef",
    "KedaConfig",
    "MigConfig",
    "ModelServiceConfig",
    "ModelSpec",
    "MonitoringConfig",
    "NetworkConfig",
    "EgressConfig",
    "PullThroughCacheConfig",
    "OnDemandPool",
    "Scaling",
    "SecretRef",
    "Slo",
    "SpotPool",
    "OnDemandGpuLimit",
    "StackConfig",
    "SystemNodesConfig",
    "TimeSlicing",
    "check_service_on_tier",
    "karpenter_seconds",
    "load_model",
    "load_stack_config",
    "replica_fits",
    "stack_file_schema",
]
