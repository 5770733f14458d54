"""Well-known label, taint and annotation keys."""

CAPACITY_TYPE = "karpenter.sh/capacity-type"
NODEPOOL = "karpenter.sh/nodepool"
GPU_NAME = "karpenter.k8s.aws/instance-gpu-name"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"
INSTANCE_LOCAL_NVME = "karpenter.k8s.aws/instance-local-nvme"
ARCH = "kubernetes.io/arch"
ZONE = "topology.kubernetes.io/zone"
HOSTNAME = "kubernetes.io/hostname"

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_PRESENT = "nvidia.com/gpu.present"
MIG_CONFIG = "nvidia.com/mig.config"

# Our own keys.
TIER = "platform.gpu/tier"
APP_NAME = "app.kubernetes.io/name"
APP_INSTANCE = "app.kubernetes.io/instance"
APP_COMPONENT = "app.kubernetes.io/component"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "gpu-platform"
