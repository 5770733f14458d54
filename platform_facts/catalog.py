"""GPU instance and model facts: plain data, imported by config, render, policies and the simulator.

Hardware columns come from EC2 DescribeInstanceTypes as published in the Karpenter
v1.14 instance-type reference (GPU MiB is EC2's ``MemoryInfo.SizeInMiB`` per GPU, the
value Karpenter puts in ``karpenter.k8s.aws/instance-gpu-memory``; GPU memory belongs to the
instance type, not the GPU family: p4d has A100 40 GB, p4de A100 80 GB; every row was checked
against that reference (website/content/en/v1.14/reference/instance-types.md); NVMe is
``InstanceStorageInfo.TotalSizeInGB``). On-demand prices are the us-east-1 table Karpenter
ships (generated 2026-07-20). Spot prices are the low and high ends of a us-east-1 per-AZ
snapshot (SkyPilot catalog); where no snapshot exists the range is derived from the
family's observed discount and marked ``spot_estimated``. Prices drift: treat them as
planning figures, never as billing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Gpu:
    name: str  # karpenter.k8s.aws/instance-gpu-name (lower case)
    mib: int  # MiB per GPU as EC2 reports it for the family's usual part (an instance type may differ)
    mig_capable: bool
    hbm_gb_s: int  # memory bandwidth of that part
    bf16_tflops: int  # dense bf16 tensor peak (no sparsity)


# Vendors' data sheets: NVIDIA A10 (600 GB/s; A10G is AWS's variant, 600 GB/s per the g5 page,
# tensor peak not published by AWS: 70 TFLOPS kept as the planning figure), L4 (300 GB/s,
# 121 TFLOPS bf16 dense), L40S (864 GB/s, 362 TFLOPS), A100 SXM 80GB (2,039 GB/s; the 40GB part
# 1,555 GB/s; 312 TFLOPS), H100 SXM (3.35 TB/s, 989 TFLOPS), H200 (4.8 TB/s, 989 TFLOPS).
GPUS: dict[str, Gpu] = {
    "a10g": Gpu("a10g", 22888, False, 600, 70),
    "l4": Gpu("l4", 22888, False, 300, 121),
    "l40s": Gpu("l40s", 45776, False, 864, 362),
    "a100": Gpu("a100", 81920, True, 2039, 312),
    "h100": Gpu("h100", 81920, True, 3350, 989),
    "h200": Gpu("h200", 144384, True, 4800, 989),
}


@dataclass(frozen=True)
class InstanceType:
    name: str
    gpu: str
    gpus: int
    nvme_gb: int
    vcpu: int
    memory_gib: int
    on_demand_hourly: float
    spot_hourly_low: float
    spot_hourly_high: float
    spot_estimated: bool = False
    gpu_mib: int = 0  # per GPU, EC2's figure for this instance type (0: the GPU family's)
    hbm_gb_s: int = 0  # per GPU (0: the GPU family's)

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def gpu_memory_mib(self) -> int:
        """GPU memory per GPU of this instance type (p4d: A100 40 GB; p4de: A100 80 GB)."""
        return self.gpu_mib or GPUS[self.gpu].mib

    @property
    def gpu_bandwidth_gb_s(self) -> int:
        return self.hbm_gb_s or GPUS[self.gpu].hbm_gb_s


def _it(name, gpu, gpus, nvme, vcpu, mem, od, spot_lo=None, spot_hi=None):
    # Without a snapshot, assume the g-family's observed 40-65 % discount.
    estimated = spot_lo is None
    lo = spot_lo if spot_lo is not None else round(od * 0.35, 4)
    hi = spot_hi if spot_hi is not None else round(od * 0.60, 4)
    return InstanceType(name, gpu, gpus, nvme, vcpu, mem, od, lo, hi, estimated)


INSTANCE_TYPES: dict[str, InstanceType] = {
    it.name: it
    for it in (
        _it("g5.xlarge", "a10g", 1, 250, 4, 16, 1.006, 0.425, 0.451),
        _it("g5.2xlarge", "a10g", 1, 450, 8, 32, 1.212),
        _it("g5.4xlarge", "a10g", 1, 600, 16, 64, 1.624),
        _it("g5.12xlarge", "a10g", 4, 3800, 48, 192, 5.672, 2.080, 2.780),
        _it("g5.48xlarge", "a10g", 8, 7600, 192, 768, 16.288),
        _it("g6.xlarge", "l4", 1, 250, 4, 16, 0.8048),
        _it("g6.2xlarge", "l4", 1, 450, 8, 32, 0.9776),
        _it("g6.4xlarge", "l4", 1, 600, 16, 64, 1.3232),
        _it("g6.12xlarge", "l4", 4, 3760, 48, 192, 4.6016),
        _it("g6.48xlarge", "l4", 8, 7520, 192, 768, 13.3504),
        _it("g6e.xlarge", "l40s", 1, 250, 4, 32, 1.861, 0.915, 1.198),
        _it("g6e.2xlarge", "l40s", 1, 450, 8, 64, 2.2421),
        _it("g6e.4xlarge", "l40s", 1, 600, 16, 128, 3.0042),
        _it("g6e.12xlarge", "l40s", 4, 3800, 48, 384, 10.4926),
        _it("g6e.24xlarge", "l40s", 4, 3800, 96, 768, 15.0656),
        _it("g6e.48xlarge", "l40s", 8, 7600, 192, 1536, 30.1312),
        # 8 x A100 40 GB (instance-gpu-memory 40960), HBM2 at 1,555 GB/s (NVIDIA A100 data sheet);
        # p4de carries the 80 GB part.
        replace(_it("p4d.24xlarge", "a100", 8, 8000, 96, 1152, 21.9576, 7.88, 8.19), gpu_mib=40960, hbm_gb_s=1555),
        _it("p4de.24xlarge", "a100", 8, 8000, 96, 1152, 27.4471),
        _it("p5.4xlarge", "h100", 1, 3800, 16, 256, 6.88),
        _it("p5.48xlarge", "h100", 8, 30400, 192, 2048, 55.04, 17.63, 25.75),
        _it("p5en.48xlarge", "h200", 8, 30400, 192, 2048, 63.296),
    )
}

# Bytes per parameter by weight dtype.
DTYPE_BYTES: dict[str, float] = {"bfloat16": 2.0, "float16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}


def weights_gib(parameters_billion: float, dtype: str) -> float:
    """Size of the weights in GiB: parameters x bytes per parameter."""
    return parameters_billion * 1e9 * DTYPE_BYTES[dtype] / 2**30


# HBM bandwidth (GB/s) and dense bf16 peak (TFLOPS) per GPU family (the family's usual part;
# read an instance type's own figure with ``InstanceType.gpu_bandwidth_gb_s``).
HBM_GB_S = {g.name: g.hbm_gb_s for g in GPUS.values()}
BF16_TFLOPS = {g.name: g.bf16_tflops for g in GPUS.values()}


@dataclass(frozen=True)
class GeneralPurposeType:
    """A CPU instance type for the system node group: vCPUs, memory, and the pods the VPC CNI allows."""

    name: str
    vcpu: int
    memory_gib: int
    max_pods: int


# EC2 DescribeInstanceTypes (vCPU, MemoryInfo) for the M7i, M7a, M6i and M5 families; max pods are the
# VPC CNI's ENI-based figures in awslabs/amazon-eks-ami ``eni-max-pods.txt`` (no prefix delegation).
GENERAL_PURPOSE: dict[str, GeneralPurposeType] = {
    t.name: t
    for t in (
        GeneralPurposeType("m7i.large", 2, 8, 29),
        GeneralPurposeType("m7i.xlarge", 4, 16, 58),
        GeneralPurposeType("m7i.2xlarge", 8, 32, 58),
        GeneralPurposeType("m7i.4xlarge", 16, 64, 234),
        GeneralPurposeType("m6i.large", 2, 8, 29),
        GeneralPurposeType("m6i.xlarge", 4, 16, 58),
        GeneralPurposeType("m6i.2xlarge", 8, 32, 58),
        GeneralPurposeType("m6i.4xlarge", 16, 64, 234),
        GeneralPurposeType("m7a.large", 2, 8, 29),
        GeneralPurposeType("m7a.xlarge", 4, 16, 58),
        GeneralPurposeType("m7a.2xlarge", 8, 32, 58),
        GeneralPurposeType("m7a.4xlarge", 16, 64, 234),
        GeneralPurposeType("m5.large", 2, 8, 29),
        GeneralPurposeType("m5.xlarge", 4, 16, 58),
        GeneralPurposeType("m5.2xlarge", 8, 32, 58),
        GeneralPurposeType("m5.4xlarge", 16, 64, 234),
    )
}

# What a node keeps for itself, rounded up from the EKS AMI's kubelet formulas (kube-reserved
# CPU 6 % of the first core + 1 % of the second + 0.5 % of the next two; memory
# 11 MiB x max pods + 255 MiB; eviction threshold 100 Mi), plus the DaemonSets every node
# runs (VPC CNI, kube-proxy, Pod Identity agent): ~0.5 vCPU and ~10 % of memory + 1 GiB.
# The same figures size GPU replicas in components/sizing.py.
NODE_RESERVED_VCPU = 0.5
NODE_ALLOCATABLE_MEMORY_FRACTION = 0.9
NODE_RESERVED_MEMORY_GIB = 1.0


def allocatable(vcpu: float, memory_gib: float) -> tuple[float, float]:
    """(vCPU, GiB) a node of this size offers to pods."""
    return vcpu - NODE_RESERVED_VCPU, memory_gib * NODE_ALLOCATABLE_MEMORY_FRACTION - NODE_RESERVED_MEMORY_GIB
