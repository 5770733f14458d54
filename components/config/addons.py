"""Models of the cluster add-ons: monitoring, the GPU Operator, KEDA."""

from __future__ import annotations

from pydantic import Field, model_validator

from components.config.base import PROMETHEUS_DURATION, ConfigModel
from components.config.errors import rule_error
from components.config.serving import SecretRef

# The share of the Prometheus volume that blocks may fill by default, leaving room for the WAL.
RETENTION_SHARE_PERCENT = 85

_IN_MONITORING = ("A key of a Secret in the monitoring namespace; Alertmanager mounts the Secret "
                  "and reads the value from the file, so it never enters the rendered config.")


class SlackReceiver(ConfigModel):
    secret: SecretRef = Field(description=f"Slack incoming-webhook URL. {_IN_MONITORING}")
    channel: str = Field(pattern=r"^[#@]?[a-z0-9._-]{1,80}$", description="Channel to post to, e.g. #alerts-prod.")


class PagerDutyReceiver(ConfigModel):
    secret: SecretRef = Field(description=f"PagerDuty Events API v2 integration (routing) key. {_IN_MONITORING}")


class WebhookReceiver(ConfigModel):
    secret: SecretRef = Field(description=f"URL Alertmanager POSTs alerts to. {_IN_MONITORING}")


class AlertingConfig(ConfigModel):
    """Where alerts go, by severity: critical to PagerDuty and Slack, warning to Slack, the rest
    to the webhook. A severity whose receivers are all absent falls through to the next: critical
    to Slack, then to the webhook. With no receiver at all, alerts reach only the UI ("null")."""

    slack: SlackReceiver | None = Field(default=None, description="Critical and warning alerts.")
    pagerduty: PagerDutyReceiver | None = Field(default=None, description="Critical alerts (pages).")
    webhook: WebhookReceiver | None = Field(default=None, description="Every alert no other receiver takes.")


class MonitoringConfig(ConfigModel):
    retention: str = Field(default="15d", pattern=PROMETHEUS_DURATION, description="Prometheus retention.")
    storage_gib: int = Field(default=50, ge=10, le=16000, description="gp3 PVC for Prometheus.")
    retention_size_gib: int | None = Field(
        default=None, ge=1,
        description="Prometheus deletes the oldest blocks above this size (default: 85% of storageGib, leaving "
                    "room for the WAL and compaction, which the limit does not count).")
    alerting: AlertingConfig = Field(default_factory=AlertingConfig,
                                     description="Alertmanager receivers; none means alerts are only visible in its UI.")
    grafana_enabled: bool = Field(default=True, description="Install Grafana with the GPU and vLLM dashboards.")
    scrape_interval_seconds: int = Field(default=15, ge=5, le=120, description="Prometheus scrape interval.")

    @model_validator(mode="after")
    def _size_fits(self) -> MonitoringConfig:
        if self.retention_size_gib is not None and self.retention_size_gib >= self.storage_gib:
            raise rule_error(("retentionSizeGib",),
                             f"{self.retention_size_gib} GiB leaves no room for the WAL on the {self.storage_gib} GiB "
                             f"volume. Use at most {self.storage_gib * RETENTION_SHARE_PERCENT // 100} ({RETENTION_SHARE_PERCENT}%) "
                             "or raise storageGib.")
        return self

    @property
    def retention_size(self) -> str:
        """Prometheus retentionSize: the configured size, else 85% of the volume."""
        gib = self.retention_size_gib if self.retention_size_gib is not None else self.storage_gib * RETENTION_SHARE_PERCENT // 100
        return f"{gib}GiB"


class GpuOperatorConfig(ConfigModel):
    dcgm_exporter: bool = Field(default=True, description="Export GPU metrics (DCGM) to Prometheus.")


class KedaConfig(ConfigModel):
    operator_replicas: int = Field(default=2, ge=1, le=5, description="Replicas of the KEDA operator.")


class AddonsConfig(ConfigModel):
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig, description="kube-prometheus-stack.")
    gpu_operator: GpuOperatorConfig = Field(default_factory=GpuOperatorConfig, description="NVIDIA GPU Operator.")
    keda: KedaConfig = Field(default_factory=KedaConfig, description="KEDA event-driven autoscaling.")
