"""The NVMe model cache: an init container that fills a node-local cache, once.

On AL2023 with ``instanceStorePolicy: RAID0`` the instance-store NVMe is assembled into one
array mounted at ``/mnt/k8s-disks/0`` (and kubelet's emptyDirs live on it too). The cache
is a hostPath under it (survives pod restarts on the node) or a per-pod emptyDir.

The sync is crash-safe: it downloads into a temporary directory and renames it into place
only when complete, with a marker naming the source, so a killed download never leaves a
half model that vLLM would load; a cache whose marker matches the source is used as is.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from components import versions
from components.config import Cache, ModelSpec, SecretRef

HOST_CACHE_ROOT = "/mnt/k8s-disks/0/models"
MOUNT = "/models"
VOLUME = "model-cache"
MARKER = ".complete"
# The init container runs before the pod's other containers, so the scheduler counts
# max(init, sum of the others) per resource. Requests at or below the smallest pod that
# carries this container (a batch job may ask for 1 vCPU and 1 GiB) never raise what the pod
# asks for, so the config's fit checks (replica_fits, batch jobs), which size the main
# container only, stay true. No CPU limit: the sync may use every idle core of the node.
INIT_RESOURCES = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}

_SYNC = r"""set -eu
dest="$CACHE_DIR"
if [ -f "$dest/{marker}" ] && [ "$(cat "$dest/{marker}")" = "$MODEL_SOURCE" ]; then
  echo "model cache hit: $dest"; exit 0
fi
tmp="$dest.partial.$HOSTNAME"
rm -rf "$tmp"; mkdir -p "$tmp"
{fetch}
printf '%s' "$MODEL_SOURCE" > "$tmp/{marker}"
# Another pod on this node may have finished first: keep its copy if it matches.
if [ -f "$dest/{marker}" ] && [ "$(cat "$dest/{marker}")" = "$MODEL_SOURCE" ]; then rm -rf "$tmp"; exit 0; fi
if [ -e "$dest" ]; then mv "$dest" "$dest.old.$HOSTNAME"; fi
mv "$tmp" "$dest"
rm -rf "$dest.old.$HOSTNAME"
echo "model cached: $dest"
"""
_FETCH_S3 = 'aws s3 sync "$MODEL_SOURCE" "$tmp" --only-show-errors --no-progress'
_FETCH_HF = ('python3 -c "import os; from huggingface_hub import snapshot_download; '
             "snapshot_download(os.environ['HF_REPO'], local_dir=os.environ['TMP_DIR'])\"")


def cache_key(model: ModelSpec) -> str:
    """A directory name for the model, readable and safe: its source without the scheme."""
    raw = model.source.split("://", 1)[1].rstrip("/")
    return re.sub(r"[^A-Za-z0-9._/-]", "_", raw)


def model_path(model: ModelSpec) -> str:
    return f"{MOUNT}/{cache_key(model)}"


def s3_location(model: ModelSpec) -> tuple[str, str] | None:
    """(bucket, prefix) for an s3:// source, else None."""
    if not model.source.startswith("s3://"):
        return None
    bucket, _, prefix = model.source[len("s3://"):].partition("/")
    return bucket, prefix.rstrip("/")


def volume(cache: Cache) -> dict[str, Any]:
    if cache.medium == "hostPath":
        return {"name": VOLUME, "hostPath": {"path": HOST_CACHE_ROOT, "type": "DirectoryOrCreate"}}
    return {"name": VOLUME, "emptyDir": {"sizeLimit": f"{cache.size_gib}Gi"}}


def init_container(model: ModelSpec, hf_token: SecretRef | None = None) -> dict[str, Any]:
    """The cache-filling init container (used by ModelService and BatchInference alike)."""
    s3 = s3_location(model) is not None
    env: list[dict[str, Any]] = [
        {"name": "MODEL_SOURCE", "value": model.source},
        {"name": "CACHE_DIR", "value": model_path(model)},
    ]
    if s3:
        image, fetch = versions.MODEL_CACHE_IMAGE, _FETCH_S3
    else:
        image, fetch = versions.VLLM_IMAGE, 'TMP_DIR="$tmp" ' + _FETCH_HF
        env.append({"name": "HF_REPO", "value": model.source[len("hf://"):]})
        if hf_token is not None:
            env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": hf_token.name, "key": hf_token.key}}})
    return {
        "name": "model-cache",
        "image": image,
        "command": ["/bin/sh", "-c", _SYNC.format(marker=MARKER, fetch=fetch)],
        "env": env,
        "resources": copy.deepcopy(INIT_RESOURCES),
        "volumeMounts": [{"name": VOLUME, "mountPath": MOUNT}],
    }


def reader_policy(model: ModelSpec, partition: str = "aws") -> dict[str, Any] | None:
    """S3 read access to exactly the model's prefix: GetObject under it, ListBucket scoped to it."""
    loc = s3_location(model)
    if loc is None:
        return None
    bucket, prefix = loc
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadModel", "Effect": "Allow", "Action": "s3:GetObject",
             "Resource": f"arn:{partition}:s3:::{bucket}/{prefix}/*"},
            {"Sid": "ListModel", "Effect": "Allow", "Action": "s3:ListBucket",
             "Resource": f"arn:{partition}:s3:::{bucket}",
             "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}/*"]}}},
        ],
    }
