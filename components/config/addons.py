"""Models of the cluster add-ons: monitoring, the GPU Operator, KEDA."""

from __future__ import annotations

from pydantic import Field

from components.config.base import PROMETHEUS_DURATION, ConfigModel


class MonitoringConfig(ConfigModel):
    retention: str = Field(default="15d", pattern=PROMETHEUS_DURATION, description="Prometheus retention.")
    storage_gib: int = Field(default=50, ge=10, le=16000, description="gp3 PVC for Prometheus.")
    grafana_enabled: bool = Field(default=True, description="Install Grafana with the GPU and vLLM dashboards.")
    scrape_interval_seconds: int = Field(default=15, ge=5, le=120, description="Prometheus scrape interval.")


class GpuOperatorConfig(ConfigModel):
    dcgm_exporter: bool = Field(default=True, description="Export GPU metrics (DCGM) to Prometheus.")


class KedaConfig(ConfigModel):
    operator_replicas: int = Field(default=2, ge=1, le=5, description="Replicas of the KEDA operator.")


class AddonsConfig(ConfigModel):
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig, description="kube-prometheus-stack.")
    gpu_operator: GpuOperatorConfig = Field(default_factory=GpuOperatorConfig, description="NVIDIA GPU Operator.")
    keda: KedaConfig = Field(default_factory=KedaConfig, description="KEDA event-driven autoscaling.")
