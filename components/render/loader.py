"""Cold-start levers inside the vLLM pod: the weight loader and the persisted compile cache.

Loader (``modelServices[].loader``), vLLM's ``--load-format`` and ``--model-loader-extra-config``
(vllm ``docs/models/extensions/runai_model_streamer.md``, ``fastsafetensor.md``):

- ``default``: vLLM's safetensors loader reads the node cache (``/models/<key>``).
- ``runaiNvme``: ``--load-format runai_streamer`` on the same node-cache directory; the streamer
  reads tensors with ``concurrency`` threads into a CPU buffer of ``memory_limit`` bytes.
- ``runaiS3``: the same streamer given the ``s3://`` source itself: no cache download, no sync
  init container; the pod reads S3 with the service account's Pod Identity role, the cache's
  read-only grant on exactly the model's prefix (``cache.reader_policy``).
- ``fastsafetensors``: ``--load-format fastsafetensors`` on the node cache (an image with the
  package: ``loader.image``).

Compile cache (``modelServices[].compileCache.persist``): vLLM writes torch.compile artifacts
under ``VLLM_CACHE_ROOT/torch_compile_cache/<hash>``; the hash covers vLLM's configs, PyTorch's
and the model's forward code, and copying the directory to another deployment skips the compile
(docs.vllm.ai design/torch_compile). We keep it on the node NVMe, in a directory keyed by GPU
model, vLLM image and model, so a different GPU, vLLM version or model never even sees another's
artifacts (Triton and TorchInductor kernel caches go there too: they are keyed by their own
hashes, but not by image). It is a subPath of the model-cache hostPath, created by the pod's own
user after the owner step, so the vLLM container stays unprivileged with a read-only root.
"""

from __future__ import annotations

import json
import re
from typing import Any

from components.config import GpuTier, ModelServiceConfig, ModelSpec
from components.config.levers import LOAD_FORMAT
from components.render import cache, pod_security

COMPILE_DIR = ".compile-cache"
COMPILE_MOUNT = "/compile-cache"
COMPILE_CONTAINER = "compile-cache"
GIB = 1024**3
_COMPILE_MKDIR = 'set -eu\nmkdir -p "$COMPILE_DIR"\n'


def model_arg(svc: ModelServiceConfig, model: ModelSpec) -> str:
    """What ``vllm serve`` is given as the model: the node-cache directory, or the s3:// source."""
    if svc.loader.format == "runaiS3":
        # The streamer lists the prefix itself: give it the directory form.
        return model.source.rstrip("/") + "/"
    return cache.model_path(model)


def load_args(svc: ModelServiceConfig) -> list[str]:
    """``--load-format`` and the streamer's extra config; nothing for the default loader."""
    loader = svc.loader
    if loader.format == "default":
        return []
    args = ["--load-format", LOAD_FORMAT[loader.format]]
    extra: dict[str, Any] = {}
    if loader.concurrency is not None:
        extra["concurrency"] = loader.concurrency
    if loader.memory_limit_gib is not None:
        extra["memory_limit"] = int(loader.memory_limit_gib * GIB)
    if extra:
        args += ["--model-loader-extra-config", json.dumps(extra, sort_keys=True, separators=(",", ":"))]
    return args


def loader_env(svc: ModelServiceConfig, *, region: str) -> list[dict[str, Any]]:
    """The streamer's S3 client needs the region (pods cannot ask IMDS: hop limit 1)."""
    if svc.loader.format != "runaiS3":
        return []
    return [{"name": "AWS_REGION", "value": region}, {"name": "AWS_DEFAULT_REGION", "value": region}]


def _segment(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]", "_", text)


def compile_cache_key(tier: GpuTier, image: str, model: ModelSpec) -> str:
    """``<gpu>/<image>/<model cache key>``: a different GPU, vLLM image or model never shares it."""
    return f"{_segment(tier.gpu)}/{_segment(image)}/{cache.cache_key(model)}"


def compile_cache_path(tier: GpuTier, image: str, model: ModelSpec) -> str:
    """Where it sits inside the model-cache volume (relative: a subPath)."""
    return f"{COMPILE_DIR}/{compile_cache_key(tier, image, model)}"


def compile_env() -> dict[str, str]:
    """The cache variables that move onto the persisted directory (they override WRITABLE_ENV)."""
    return {"VLLM_CACHE_ROOT": f"{COMPILE_MOUNT}/vllm", "TORCHINDUCTOR_CACHE_DIR": f"{COMPILE_MOUNT}/torchinductor",
            "TRITON_CACHE_DIR": f"{COMPILE_MOUNT}/triton"}


def compile_mount(tier: GpuTier, image: str, model: ModelSpec) -> dict[str, Any]:
    return {"name": cache.VOLUME, "mountPath": COMPILE_MOUNT, "subPath": compile_cache_path(tier, image, model)}


def compile_dir_container(tier: GpuTier, image: str, model: ModelSpec) -> dict[str, Any]:
    """Creates the keyed directory as the pods' user, after the owner step handed the cache root
    to that user: the kubelet would create a missing subPath as root, unwritable by vLLM."""
    return {
        "name": COMPILE_CONTAINER,
        "image": image,
        "command": ["/bin/sh", "-c", _COMPILE_MKDIR],
        "env": [{"name": "COMPILE_DIR", "value": f"{cache.MOUNT}/{compile_cache_path(tier, image, model)}"}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": pod_security.container_security_context(),
        "volumeMounts": [{"name": cache.VOLUME, "mountPath": cache.MOUNT}],
    }


def fill_containers(svc: ModelServiceConfig, model: ModelSpec, *, region: str) -> list[dict[str, Any]]:
    """The cache fill (owner step and sync), none when the weights stream from S3."""
    return [] if svc.loader.skips_cache else cache.init_containers(model, svc.cache, svc.hf_token_secret, region=region)


def init_containers(svc: ModelServiceConfig, tier: GpuTier, image: str, model: ModelSpec, *,
                    region: str) -> list[dict[str, Any]]:
    """The pod's init containers: the cache fill, then the compile-cache directory. The owner
    step stays first whenever the hostPath is written."""
    fill = fill_containers(svc, model, region=region)
    if not svc.compile_cache.persist:
        return fill
    owner = [] if fill else [cache.owner_container(model)]
    return [*owner, *fill, compile_dir_container(tier, image, model)]


def apply(container: dict[str, Any], svc: ModelServiceConfig, tier: GpuTier, image: str, model: ModelSpec, *,
          region: str) -> None:
    """Fit the vLLM container to the levers: the streamer's region, no /models mount when nothing
    is cached, and the compile-cache variables and mount."""
    env = container["env"]
    env += loader_env(svc, region=region)
    mounts = container["volumeMounts"]
    if svc.loader.skips_cache and not svc.compile_cache.persist:
        mounts[:] = [m for m in mounts if m["name"] != cache.VOLUME]
    if svc.compile_cache.persist:
        moved = compile_env()
        for e in env:
            if e["name"] in moved:
                e["value"] = moved[e["name"]]
        mounts.append(compile_mount(tier, image, model))


def volumes(svc: ModelServiceConfig) -> list[dict[str, Any]]:
    """The cache volumes, unless nothing uses them (runaiS3 without a persisted compile cache)."""
    if svc.loader.skips_cache:
        # The compile cache alone needs the hostPath, not the sync's scratch space.
        return [cache.volume(svc.cache)] if svc.compile_cache.persist else []
    return cache.volumes(svc.cache)
