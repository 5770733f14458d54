"""The NVMe model cache: an init container that fills a node-local cache, once per node and version.

On AL2023 with ``instanceStorePolicy: RAID0`` the instance-store NVMe is assembled into one
array mounted at ``/mnt/k8s-disks/0`` (and kubelet's emptyDirs live on it too). The cache
is a hostPath under it (survives pod restarts on the node) or a per-pod emptyDir.

The sync script (``sync_script``), in POSIX sh because the AWS CLI image (Amazon Linux) and the
vLLM image (Ubuntu) must write the shared hostPath cache the same way:

1. Version. It asks the source what it holds now: for S3 the listing of the prefix
   (key, ETag, size of every file it would fetch), hashed; for Hugging Face the commit that
   ``model.revision`` (default ``main``) resolves to. The cache directory's ``.complete`` marker
   records source and version, so an updated prefix or a moved branch is noticed and
   re-downloaded, not served stale. The cache *path* stays ``/models/<source>`` (vLLM's args
   name it), so the convention for S3 is still an immutable, versioned prefix
   (``s3://bucket/org/model/<revision>/``): replacing a version in place under a replica that
   is loading it at that moment would mix files; a new prefix never does.
2. Hit. A marker equal to source + version: done, no lock taken.
3. Lock. One download per node and version: ``mkdir <dest>.lock`` is atomic on every
   filesystem and needs no ``flock`` (util-linux is not in every image). The owner refreshes
   ``<dest>.lock/beat`` every few seconds; a waiter that sees the beat unchanged for
   ``CACHE_LOCK_STALE_SECONDS`` (default 120) declares the owner dead (pod killed, node
   rebooted: no trap runs) and reclaims the lock by renaming it away and deleting it.
4. Recheck. The pod that waited finds the marker written by the one it waited for: it uses
   that copy.
5. Download into ``<dest>.lock/<owner>``, inside the lock, so reclaiming a dead owner's lock
   deletes its partial download too, and an owner whose lock was reclaimed can never commit
   (its partial path no longer exists). Only the files vLLM loads are fetched (``INCLUDE``,
   ``EXCLUDE``; ``*.safetensors`` weights, or ``*.bin`` when the source has no safetensors).
6. Verify. Every listed file is present at its listed size; for S3 the prefix is listed
   again and must not have changed during the download.
7. Commit. Write the marker, move an older version aside into the lock, rename the download
   into place, release the lock (deleting what was moved aside).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from components import versions
from components.config import Cache, ModelSpec, SecretRef
from components.render import pod_security

HOST_CACHE_ROOT = "/mnt/k8s-disks/0/models"
MOUNT = "/models"
VOLUME = "model-cache"
# The sync's scratch space, mounted at /tmp and used as HOME: the root filesystem is read-only,
# and the AWS CLI (~/.aws/cli/cache), huggingface_hub (~/.cache/huggingface) and the shell's
# here-document write there.
SCRATCH_VOLUME = "model-cache-tmp"
SCRATCH_MOUNT = "/tmp"
SCRATCH_SIZE = "1Gi"
OWNER_RESOURCES = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}}
# The owner step: the kubelet creates a hostPath DirectoryOrCreate as root:root 0755, and fsGroup
# never applies to hostPath, so an unprivileged sync could not write it. This step runs as root
# with CAP_CHOWN as its only capability (no DAC override: it can change owners, not read or
# write anyone's files) and hands the cache root, and whatever an older root-run sync left in
# it, to the pods' user. Subsequent writes are the sync's own, as that user.
_OWNER = r"""set -eu
owner="@UID@:@GID@"
chown "$owner" "$CACHE_ROOT"
find "$CACHE_ROOT" -mindepth 1 ! -user @UID@ -exec chown -h "$owner" {} + 2>/dev/null || true
"""
MARKER = ".complete"
# The init container runs before the pod's other containers, so the scheduler counts
# max(init, sum of the others) per resource. Requests at or below the smallest pod that
# carries this container (a batch job may ask for 1 vCPU and 1 GiB) never raise what the pod
# asks for, so the config's fit checks (replica_fits, batch jobs), which size the main
# container only, stay true. No CPU limit: the sync may use every idle core of the node.
INIT_RESOURCES = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}

# What vLLM reads from a model directory besides the weights: configs (config.json,
# generation_config.json, the safetensors index, sentence-transformers' modules), tokenizers
# (tokenizer.json/.model, sentencepiece *.model, tiktoken files, vocab.txt/merges.txt), chat
# templates and, for trust_remote_code models, their Python files. Weights are ``*.safetensors``,
# or ``*.bin`` only when the source has no safetensors (vLLM's own preference).
INCLUDE = ("*.json", "*.jinja", "tokenizer*", "*.model", "*.tiktoken", "*.txt", "*.py")
# Meta's repos carry a second copy of the weights (consolidated *.pth) and tokenizer under
# original/, for their own reference code; vLLM never reads them.
EXCLUDE = ("original/*", "*.pth")
WEIGHTS = "*.safetensors"
WEIGHTS_FALLBACK = "*.bin"

_SYNC = r"""set -eu
dest="$CACHE_DIR"; lock="$dest.lock"; me="${HOSTNAME:-pod}-$$"
stale="${CACHE_LOCK_STALE_SECONDS:-120}"; beat="${CACHE_LOCK_BEAT_SECONDS:-5}"
mkdir -p "$(dirname "$dest")"

# The files vLLM loads, as paths relative to the model's root (`*` matches `/` too).
wanted() {
  case "$1" in @EXCLUDE@) return 1 ;; esac
  case "$1" in $weights|@INCLUDE@) return 0 ;; esac
  return 1
}
@SOURCE@
version
want="$MODEL_SOURCE $weights $version"
hit() { [ -f "$dest/@MARKER@" ] && [ "$(cat "$dest/@MARKER@")" = "$want" ]; }
if hit; then echo "model cache hit: $dest ($version)"; exit 0; fi

# One download per node and version: mkdir is atomic; a lock whose beat stops is reclaimed.
seen=""; since=$(date +%s)
until mkdir "$lock" 2>/dev/null; do
  now=$(date +%s); cur=$(cat "$lock/beat" 2>/dev/null || true)
  if [ "$cur" != "$seen" ]; then seen=$cur; since=$now
  elif [ $((now - since)) -ge "$stale" ]; then
    echo "reclaiming the lock of a dead download: $lock ($cur)"
    if mv "$lock" "$lock.dead.$me" 2>/dev/null; then rm -rf "$lock.dead.$me"; fi
    seen=""; since=$now
  fi
  sleep 1
done
echo "$me" > "$lock/owner"
release() {
  kill "$beater" 2>/dev/null || true
  if [ "$(cat "$lock/owner" 2>/dev/null)" = "$me" ]; then rm -rf "$lock"; fi
}
trap release EXIT
trap 'exit 143' TERM INT HUP
# The beat stops when this shell dies (kill -0 $$) or loses the lock.
(while kill -0 $$ 2>/dev/null && [ "$(cat "$lock/owner" 2>/dev/null)" = "$me" ]; do
   echo "$me $(date +%s)" > "$lock/beat.$me" && mv "$lock/beat.$me" "$lock/beat" || exit 0
   sleep "$beat"
 done) &
beater=$!
if hit; then echo "model cache filled by another pod: $dest ($version)"; exit 0; fi

# Partials from before this lock scheme, named after their pod: nobody owns them after an hour.
find "$(dirname "$dest")" -maxdepth 1 \( -name "$(basename "$dest").partial.*" -o -name "$(basename "$dest").old.*" \) \
  -mmin +60 -exec rm -rf {} + 2>/dev/null || true

part="$lock/$me"
mkdir "$part"
fetch "$part"
printf '%s\n' "$files" | while read -r size rel; do
  [ -z "$rel" ] && continue
  got=$(wc -c < "$part/$rel" 2>/dev/null || echo missing)
  if [ "$got" != "$size" ]; then echo "incomplete download: $rel is $got bytes, listed $size" >&2; exit 1; fi
done
recheck
printf '%s' "$want" > "$part/@MARKER@"
if [ -e "$dest" ]; then mv "$dest" "$lock/old.$me"; fi
mv "$part" "$dest"
echo "model cached: $dest ($version)"
"""

# S3: the listing is the version. `files` holds "size path" per wanted file, for the check.
_SOURCE_S3 = r"""rest="${MODEL_SOURCE#s3://}"; bucket="${rest%%/*}"; prefix="${rest#*/}"; prefix="${prefix%/}/"
listing() {
  aws s3api list-objects-v2 --bucket "$bucket" --prefix "$prefix" \
    --query 'Contents[].[Key,ETag,Size]' --output text
}
manifest() {
  printf '%s\n' "$1" | while IFS='	' read -r key etag size; do
    rel="${key#"$prefix"}"
    if [ -n "$rel" ] && wanted "$rel"; then printf '%s\t%s\t%s\n' "$rel" "$etag" "$size"; fi
  done | LC_ALL=C sort
}
version() {
  all=$(listing)
  case "$all" in *".safetensors	"*) weights='@WEIGHTS@' ;; *) weights='@WEIGHTS_FALLBACK@' ;; esac
  listed=$(manifest "$all")
  if [ -z "$listed" ]; then echo "no model files under $MODEL_SOURCE" >&2; exit 1; fi
  version="s3-$(printf '%s\n' "$listed" | sha256sum | cut -c1-16)"
  if [ ${#version} -ne 19 ]; then echo "cannot hash the listing (sha256sum?)" >&2; exit 1; fi
  files=$(printf '%s\n' "$listed" | while IFS='	' read -r rel etag size; do echo "$size $rel"; done)
}
fetch() {
  aws s3 sync "s3://$bucket/$prefix" "$1" --only-show-errors --no-progress \
    --exclude "*" --include "$weights" @S3_INCLUDE@ @S3_EXCLUDE@
}
recheck() {
  if [ "$(manifest "$(listing)")" != "$listed" ]; then
    echo "$MODEL_SOURCE changed during the download; the next start fetches the new version" >&2; exit 1
  fi
}"""

# Hugging Face: the commit the revision resolves to is the version, and the download is
# pinned to that commit. The Hub's file list gives the sizes for the check.
_HF_PY = r"""import fnmatch, os, sys
from huggingface_hub import HfApi, snapshot_download
repo, rev = os.environ["HF_REPO"], os.environ.get("HF_REVISION") or "main"
INCLUDE, EXCLUDE = @PY_INCLUDE@, @PY_EXCLUDE@
if sys.argv[1] == "version":
    info = HfApi().model_info(repo, revision=rev, files_metadata=True)
    names = [s.rfilename for s in info.siblings]
    weights = "@WEIGHTS@" if any(n.endswith(".safetensors") for n in names) else "@WEIGHTS_FALLBACK@"
    print(info.sha, weights)
    for s in info.siblings:
        n = s.rfilename
        if fnmatch.fnmatch(n, weights) or any(fnmatch.fnmatch(n, p) for p in INCLUDE):
            if not any(fnmatch.fnmatch(n, p) for p in EXCLUDE):
                print(s.size, n)
else:
    snapshot_download(repo, revision=sys.argv[3], local_dir=sys.argv[2],
                      allow_patterns=[sys.argv[4], *INCLUDE], ignore_patterns=list(EXCLUDE))
"""

_SOURCE_HF = r"""hf_py=$(cat <<'PY'
@HF_PY@PY
)
version() {
  out=$(python3 -c "$hf_py" version)
  set -- $(printf '%s\n' "$out" | head -n 1)
  version="$1"; weights="$2"
  files=$(printf '%s\n' "$out" | tail -n +2)
}
fetch() { python3 -c "$hf_py" fetch "$1" "$version" "$weights"; }
recheck() { :; }"""


def _sh_patterns(patterns: tuple[str, ...]) -> str:
    """Patterns for a `case` arm (only * is special in them)."""
    return "|".join(patterns)


def sync_script(s3: bool) -> str:
    """The sync script for an S3 or a Hugging Face source (it reads its inputs from the env)."""
    if s3:
        source = (_SOURCE_S3.replace("@S3_INCLUDE@", " ".join(f'--include "{p}"' for p in INCLUDE))
                  .replace("@S3_EXCLUDE@", " ".join(f'--exclude "{p}"' for p in EXCLUDE)))
    else:
        py = _HF_PY.replace("@PY_INCLUDE@", repr(INCLUDE)).replace("@PY_EXCLUDE@", repr(EXCLUDE))
        source = _SOURCE_HF.replace("@HF_PY@", py)
    script = _SYNC.replace("@SOURCE@", source)
    for key, value in (("@INCLUDE@", _sh_patterns(INCLUDE)), ("@EXCLUDE@", _sh_patterns(EXCLUDE)),
                       ("@WEIGHTS_FALLBACK@", WEIGHTS_FALLBACK), ("@WEIGHTS@", WEIGHTS), ("@MARKER@", MARKER)):
        script = script.replace(key, value)
    return script


def cache_key(model: ModelSpec) -> str:
    """A directory name for the model, readable and safe: its source without the scheme, and
    for a Hugging Face source its pinned revision (a new revision is a new directory)."""
    raw = model.source.split("://", 1)[1].rstrip("/")
    if model.revision is not None:
        raw += f"@{model.revision}"
    return re.sub(r"[^A-Za-z0-9._/@-]", "_", raw)


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


def volumes(cache: Cache) -> list[dict[str, Any]]:
    """The volumes the cache containers mount: the cache itself and the sync's scratch space."""
    return [volume(cache), {"name": SCRATCH_VOLUME, "emptyDir": {"sizeLimit": SCRATCH_SIZE}}]


def _image(model: ModelSpec) -> str:
    return versions.MODEL_CACHE_IMAGE if s3_location(model) is not None else versions.VLLM_IMAGE


def owner_container(model: ModelSpec) -> dict[str, Any]:
    """The hostPath cache's owner step (see ``_OWNER``), in the sync's image: no extra pull."""
    script = _OWNER.replace("@UID@", str(pod_security.RUN_AS_USER)).replace("@GID@", str(pod_security.RUN_AS_GROUP))
    return {
        "name": "model-cache-owner",
        "image": _image(model),
        "command": ["/bin/sh", "-c", script],
        "env": [{"name": "CACHE_ROOT", "value": MOUNT}],
        "resources": copy.deepcopy(OWNER_RESOURCES),
        "securityContext": {
            "runAsNonRoot": False,
            "runAsUser": 0,
            "runAsGroup": 0,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "privileged": False,
            "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": VOLUME, "mountPath": MOUNT}],
    }


def init_containers(model: ModelSpec, cache: Cache, hf_token: SecretRef | None = None, *,
                    region: str) -> list[dict[str, Any]]:
    """The init containers that fill the cache: on a hostPath, the owner step first."""
    sync = init_container(model, hf_token, region=region)
    return [owner_container(model), sync] if cache.medium == "hostPath" else [sync]


def init_container(model: ModelSpec, hf_token: SecretRef | None = None, *, region: str) -> dict[str, Any]:
    """The cache-filling init container (used by ModelService and BatchInference alike), as the
    pods' unprivileged user; mount ``volumes()`` in its pod.

    ``region``: the cluster's. The AWS CLI would ask IMDS, which hop limit 1 closes to pods."""
    s3 = s3_location(model) is not None
    env: list[dict[str, Any]] = [
        {"name": "MODEL_SOURCE", "value": model.source},
        {"name": "CACHE_DIR", "value": model_path(model)},
        {"name": "HOME", "value": SCRATCH_MOUNT},
    ]
    image = _image(model)
    if s3:
        env += [{"name": "AWS_REGION", "value": region}, {"name": "AWS_DEFAULT_REGION", "value": region}]
    else:
        env.append({"name": "HF_REPO", "value": model.source[len("hf://"):]})
        if model.revision is not None:
            env.append({"name": "HF_REVISION", "value": model.revision})
        if hf_token is not None:
            env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": hf_token.name, "key": hf_token.key}}})
    return {
        "name": "model-cache",
        "image": image,
        "command": ["/bin/sh", "-c", sync_script(s3)],
        "env": env,
        "resources": copy.deepcopy(INIT_RESOURCES),
        "securityContext": pod_security.container_security_context(),
        "volumeMounts": [{"name": VOLUME, "mountPath": MOUNT},
                         {"name": SCRATCH_VOLUME, "mountPath": SCRATCH_MOUNT}],
    }


def reader_policy(model: ModelSpec, *, region: str, partition: str = "aws") -> dict[str, Any] | None:
    """S3 read access to exactly the model's prefix: GetObject under it, ListBucket scoped to it,
    and kms:Decrypt for SSE-KMS objects, only when S3 asks on the role's behalf.

    S3 decrypts an SSE-KMS object by calling KMS with the caller's credentials, so GetObject
    alone fails with AccessDenied on such a bucket. With ``model.kmsKeyArn`` the grant names
    that key and S3 in the key's region; without it, any key, but only through S3 in the
    cluster's region and only for this bucket's objects: S3 puts the object's ARN (or, with S3
    Bucket Keys, the bucket's ARN) in the encryption context, and KMS checks it. SSE-S3 buckets
    never call KMS, so the statement costs nothing there.
    """
    loc = s3_location(model)
    if loc is None:
        return None
    bucket, prefix = loc
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    decrypt: dict[str, Any] = {"Sid": "DecryptModel", "Effect": "Allow", "Action": "kms:Decrypt"}
    if model.kms_key_arn is not None:
        key_region = model.kms_key_arn.split(":")[3]
        decrypt |= {"Resource": model.kms_key_arn,
                    "Condition": {"StringEquals": {"kms:ViaService": f"s3.{key_region}.amazonaws.com"}}}
    else:
        decrypt |= {"Resource": "*",
                    "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
                                  "StringLike": {"kms:EncryptionContext:aws:s3:arn": [f"{bucket_arn}/{prefix}/*", bucket_arn]}}}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadModel", "Effect": "Allow", "Action": "s3:GetObject",
             "Resource": f"{bucket_arn}/{prefix}/*"},
            {"Sid": "ListModel", "Effect": "Allow", "Action": "s3:ListBucket",
             "Resource": bucket_arn,
             "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}/*"]}}},
            decrypt,
        ],
    }
