"""Cold-start levers on the node side: FastImagePull, reserved capacity, Karpenter feature gates.

- FastImagePull (AL2023 nodeadm ``NodeConfig.spec.featureGates.FastImagePull``, experimental):
  containerd pulls and unpacks layers in parallel through the SOCI snapshotter, which nodeadm
  turns on only when the node has >= 4 vCPU and >= 7 GiB (amazon-eks-ami
  ``nodeadm/internal/containerd/config.go`` ``UseSOCISnapshotter``). The EC2NodeClass's
  ``userData`` carries the NodeConfig as a MIME part; Karpenter merges it with its own. With
  ``instanceStorePolicy: RAID0`` (every GPU tier: the pools require local NVMe),
  ``setup-local-disks`` bind-mounts ``/var/lib/containerd`` and
  ``/var/lib/soci-snapshotter-grpc`` onto the NVMe array, so the pull writes to NVMe; the AMI
  docs' root-volume recommendation (>= 600 MiB/s) matters when the image store is on the root
  volume, i.e. without instance store.
- Reserved capacity (Karpenter ``tasks/odcrs.md``): every ODCR or Capacity Block must be selected
  by ``capacityReservationSelectorTerms`` (no open matching); nodes launched into one carry
  ``karpenter.sh/capacity-type: reserved``, and Karpenter prefers reserved at launch and in
  consolidation. The on-demand (baseline) pool allows ``reserved`` next to ``on-demand``, and the
  baseline's pods accept both, so the baseline lands on the reservation first.
"""

from __future__ import annotations

from typing import Any

from components.config import GpuTier
from components.config.levers import FastImagePull

BOUNDARY = "//"
# The capacity types a tier's on-demand pool (and the pods required there) accepts.
ON_DEMAND = "on-demand"
RESERVED = "reserved"


def user_data(fip: FastImagePull) -> str | None:
    """The AL2023 MIME user data with the NodeConfig fragment, or None when no lever needs one."""
    if not fip.enabled:
        return None
    return (
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/mixed; boundary="{BOUNDARY}"\n\n'
        f"--{BOUNDARY}\n"
        "Content-Type: application/node.eks.aws\n\n"
        "apiVersion: node.eks.aws/v1alpha1\n"
        "kind: NodeConfig\n"
        "spec:\n"
        "  featureGates:\n"
        "    FastImagePull: true\n\n"
        f"--{BOUNDARY}--\n"
    )


def root_volume_performance(fip: FastImagePull) -> dict[str, int]:
    """gp3 throughput (MiB/s) and IOPS of the root volume, when FastImagePull sets them."""
    out = {}
    if fip.enabled and fip.root_volume_throughput_mibps is not None:
        out["throughput"] = fip.root_volume_throughput_mibps
    if fip.enabled and fip.root_volume_iops is not None:
        out["iops"] = fip.root_volume_iops
    return out


def reservation_terms(tier: GpuTier) -> list[dict[str, Any]]:
    """``capacityReservationSelectorTerms``: one term per id (an id excludes other fields), one for the tags."""
    r = tier.reservations
    if r is None:
        return []
    terms: list[dict[str, Any]] = [{"id": i} for i in r.ids]
    if r.tags:
        terms.append({"tags": dict(r.tags), **({"ownerID": r.owner_id} if r.owner_id else {})})
    return terms


def on_demand_types(tier: GpuTier) -> list[str]:
    """Capacity types of the tier's on-demand pool and of the pods required on it."""
    return [ON_DEMAND, RESERVED] if tier.reservations is not None else [ON_DEMAND]


def apply_node_class(spec: dict[str, Any], tier: GpuTier, fip: FastImagePull) -> dict[str, Any]:
    """The EC2NodeClass spec with the node levers: user data, root-volume performance, reservations."""
    if (data := user_data(fip)) is not None:
        spec["userData"] = data
    for mapping in spec.get("blockDeviceMappings", []):
        if mapping.get("rootVolume"):
            mapping["ebs"].update(root_volume_performance(fip))
    if terms := reservation_terms(tier):
        spec["capacityReservationSelectorTerms"] = terms
    return spec


def feature_gates(tiers: tuple[GpuTier, ...]) -> dict[str, bool]:
    """Karpenter chart ``settings.featureGates`` the levers need: capacityBuffer (alpha, off by
    default) when a tier uses a CapacityBuffer. reservedCapacity is beta and on by default."""
    if any(t.capacity_buffer is not None and t.capacity_buffer.mode == "capacityBuffer" for t in tiers):
        return {"capacityBuffer": True}
    return {}
