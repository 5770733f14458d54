"""The model-cache sync script, run for real: POSIX sh (dash), a fake AWS CLI on PATH
(tests/fake_aws.py) serving a local "bucket" directory, and a fake huggingface_hub module.

What these prove: a clean download fetches exactly the files vLLM loads; a second start is a
hit with one listing call and no download; a pod killed mid-download leaves a lock whose
partial the next pod reclaims, and nothing leaks; two pods started at once download once; an
updated prefix (or a moved Hugging Face branch) is noticed and re-downloaded, a change to a
file that is never fetched is not; a download that comes back short is never committed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from components.config import ModelSpec
from components.render import cache

# dash: POSIX and nothing more; the images run bash as sh (CACHE_TEST_SH=bash checks that too).
SH = os.environ.get("CACHE_TEST_SH") or shutil.which("dash") or "/bin/sh"
SOURCE = "s3://models/meta-llama/Llama-3.1-8B-Instruct"
LOADED = {  # what vLLM reads from a Llama repo
    "config.json": b"{}", "generation_config.json": b"{}", "model.safetensors.index.json": b"{}",
    "model-00001-of-00002.safetensors": b"A" * 4000, "model-00002-of-00002.safetensors": b"B" * 3000,
    "tokenizer.json": b"{}", "tokenizer_config.json": b"{}", "special_tokens_map.json": b"{}",
    "chat_template.jinja": b"{{ x }}",
}
NEVER = {  # Meta's reference copy and a second weight format: never fetched
    "original/consolidated.00.pth": b"P" * 5000, "original/params.json": b"{}",
    "original/tokenizer.model": b"T", "pytorch_model.bin": b"X" * 6000, "README.md": b"#", "LICENSE": b"L",
}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(f'#!/bin/sh\nexec {sys.executable} {Path(__file__).parent / "fake_aws.py"} "$@"\n')
    (bin_dir / "aws").chmod(0o755)
    bucket = tmp_path / "s3" / "models" / "meta-llama"
    for rel, data in {**LOADED, **NEVER}.items():
        _put(bucket / "Llama-3.1-8B-Instruct" / rel, data)
    _put(bucket / "Llama-3.1-8B-Instruct-v2" / "model.safetensors", b"neighbour prefix")
    (tmp_path / "cache").mkdir()
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_S3": str(tmp_path / "s3"),
            "FAKE_LOG": str(tmp_path / "aws.log"), "MODEL_SOURCE": SOURCE,
            "CACHE_DIR": str(tmp_path / "cache" / "models" / "meta-llama" / "Llama-3.1-8B-Instruct"),
            "HOSTNAME": "pod-a", "CACHE_LOCK_STALE_SECONDS": "2", "CACHE_LOCK_BEAT_SECONDS": "1"}


def _put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _start(env: dict[str, str], s3: bool = True, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([SH, "-c", cache.sync_script(s3)], env={**env, **extra},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _run(env: dict[str, str], s3: bool = True, **extra: str) -> tuple[int, str]:
    proc = _start(env, s3, **extra)
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out


def _calls(env: dict[str, str]) -> list[str]:
    log = Path(env["FAKE_LOG"])
    return log.read_text().splitlines() if log.exists() else []


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _cache_root_entries(env: dict[str, str]) -> list[str]:
    """Everything beside the model directory: locks, partials, old copies."""
    dest = Path(env["CACHE_DIR"])
    return sorted(p.name for p in dest.parent.iterdir() if p != dest)


def test_clean_download_fetches_only_what_vllm_loads(env):
    rc, out = _run(env)
    assert rc == 0, out
    dest = Path(env["CACHE_DIR"])
    files = _files(dest)
    marker = files.pop(".complete").decode()
    assert files == LOADED
    assert marker.startswith(f"{SOURCE} *.safetensors s3-")
    assert _cache_root_entries(env) == []
    calls = _calls(env)
    assert calls[0] == "list" and calls[-1] == "list"  # the version, then the check it did not move
    (sync,) = [c for c in calls if c.startswith("sync")]
    assert sync == ('sync --only-show-errors --no-progress --exclude * --include *.safetensors --include *.json '
                    '--include *.jinja --include tokenizer* --include *.model --include *.tiktoken --include *.txt '
                    '--include *.py --exclude original/* --exclude *.pth')
    copied = {c.split(" ", 1)[1] for c in calls if c.startswith("copy")}
    assert copied == set(LOADED)


def test_second_start_is_a_hit_without_download(env):
    assert _run(env)[0] == 0
    before = len(_calls(env))
    rc, out = _run(env, HOSTNAME="pod-b")
    assert rc == 0 and "model cache hit" in out
    assert _calls(env)[before:] == ["list"]


def test_bin_weights_only_when_there_are_no_safetensors(env):
    prefix = Path(env["FAKE_S3"]) / "models" / "meta-llama" / "Llama-3.1-8B-Instruct"
    for p in prefix.glob("*.safetensors"):
        p.unlink()
    rc, out = _run(env)
    assert rc == 0, out
    files = _files(Path(env["CACHE_DIR"]))
    assert files["pytorch_model.bin"] == NEVER["pytorch_model.bin"]
    assert not any(f.startswith("original/") or f.endswith(".safetensors") for f in files)


def test_pod_killed_mid_download_is_reclaimed_by_the_next(env):
    rc, out = _run(env, FAKE_AWS_DIE_AFTER="2")
    assert rc != 0, out
    dest = Path(env["CACHE_DIR"])
    assert not dest.exists()
    # The dead pod's partial sits inside its lock, which nobody beats any more.
    lock = dest.parent / (dest.name + ".lock")
    (partial,) = [p for p in lock.iterdir() if p.is_dir()]
    assert len(_files(partial)) == 2
    rc, out = _run(env, HOSTNAME="pod-b")
    assert rc == 0, out
    assert "reclaiming the lock of a dead download" in out
    files = _files(dest)
    files.pop(".complete")
    assert files == LOADED
    assert _cache_root_entries(env) == []


def test_two_pods_at_once_download_once(env):
    first = _start(env, FAKE_AWS_SLOW="0.3")
    second = _start(env, FAKE_AWS_SLOW="0.3", HOSTNAME="pod-b")
    outs = [p.communicate(timeout=60)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outs
    assert len([c for c in _calls(env) if c.startswith("sync")]) == 1
    assert sum("model cache filled by another pod" in o for o in outs) == 1
    files = _files(Path(env["CACHE_DIR"]))
    files.pop(".complete")
    assert files == LOADED
    assert _cache_root_entries(env) == []


def test_updated_prefix_is_downloaded_again(env):
    assert _run(env)[0] == 0
    dest = Path(env["CACHE_DIR"])
    old_marker = (dest / ".complete").read_text()
    prefix = Path(env["FAKE_S3"]) / "models" / "meta-llama" / "Llama-3.1-8B-Instruct"
    # A file that is never fetched changes: still a hit.
    _put(prefix / "original" / "consolidated.00.pth", b"Q" * 5000)
    rc, out = _run(env, HOSTNAME="pod-b")
    assert rc == 0 and "model cache hit" in out
    # A weight file is replaced (same size, new content, new ETag): downloaded again.
    _put(prefix / "model-00002-of-00002.safetensors", b"C" * 3000)
    rc, out = _run(env, HOSTNAME="pod-c")
    assert rc == 0 and "model cached" in out, out
    assert (dest / "model-00002-of-00002.safetensors").read_bytes() == b"C" * 3000
    assert (dest / ".complete").read_text() != old_marker
    assert len([c for c in _calls(env) if c.startswith("sync")]) == 2
    assert _cache_root_entries(env) == []


def test_a_short_download_is_never_committed(env):
    rc, out = _run(env, FAKE_AWS_SKIP="model-00001-of-00002.safetensors")
    assert rc != 0
    assert "incomplete download: model-00001-of-00002.safetensors" in out
    assert not Path(env["CACHE_DIR"]).exists()
    assert _cache_root_entries(env) == []  # the lock was released with its partial


def test_leftovers_of_the_old_scheme_are_removed(env):
    dest = Path(env["CACHE_DIR"])
    old = dest.parent / (dest.name + ".partial.pod-gone")
    old.mkdir(parents=True)
    (old / "model-00001-of-00002.safetensors").write_bytes(b"A")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert _run(env)[0] == 0
    assert _cache_root_entries(env) == []


def test_empty_prefix_fails_loudly(env):
    rc, out = _run(env, MODEL_SOURCE="s3://models/nothing-here")
    assert rc != 0 and "no model files under s3://models/nothing-here" in out


# Hugging Face: a fake huggingface_hub whose repo is a directory per commit.
FAKE_HUB = '''
import fnmatch, json, os, shutil
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(os.environ["FAKE_HUB"])

def _log(line):
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write(line + "\\n")

class HfApi:
    def model_info(self, repo, revision=None, files_metadata=False):
        sha = json.loads((ROOT / "refs.json").read_text())[revision]
        _log(f"model_info {repo} {revision}")
        files = [p for p in (ROOT / sha).rglob("*") if p.is_file()]
        return SimpleNamespace(sha=sha, siblings=[
            SimpleNamespace(rfilename=p.relative_to(ROOT / sha).as_posix(), size=p.stat().st_size) for p in files])

def snapshot_download(repo, revision, local_dir, allow_patterns, ignore_patterns):
    _log(f"snapshot_download {repo} {revision} allow={allow_patterns} ignore={ignore_patterns}")
    for p in (ROOT / revision).rglob("*"):
        rel = p.relative_to(ROOT / revision).as_posix()
        if p.is_file() and any(fnmatch.fnmatch(rel, a) for a in allow_patterns) \\
                and not any(fnmatch.fnmatch(rel, i) for i in ignore_patterns):
            (Path(local_dir) / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, Path(local_dir) / rel)
            _log(f"copy {rel}")
'''


@pytest.fixture
def hf_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    hub = tmp_path / "hub"
    (tmp_path / "pylib").mkdir()
    (tmp_path / "pylib" / "huggingface_hub.py").write_text(textwrap.dedent(FAKE_HUB))
    for rel, data in {**LOADED, **NEVER}.items():
        _put(hub / "c0ffee1" / rel, data)
    (hub / "refs.json").write_text('{"main": "c0ffee1"}')
    model = ModelSpec(id="m", source="hf://meta-llama/Llama-3.1-8B-Instruct", parameters_billion=8)
    (python_dir,) = {os.path.dirname(sys.executable)}
    return {**env, "PATH": f"{python_dir}:{env['PATH']}", "PYTHONPATH": str(tmp_path / "pylib"),
            "FAKE_HUB": str(hub), "MODEL_SOURCE": model.source, "HF_REPO": "meta-llama/Llama-3.1-8B-Instruct",
            "CACHE_DIR": str(tmp_path / "cache" / cache.cache_key(model))}


def test_hf_fetches_the_resolved_commit_and_only_what_vllm_loads(hf_env):
    rc, out = _run(hf_env, s3=False)
    assert rc == 0, out
    files = _files(Path(hf_env["CACHE_DIR"]))
    assert files.pop(".complete").decode() == "hf://meta-llama/Llama-3.1-8B-Instruct *.safetensors c0ffee1"
    assert files == LOADED
    calls = _calls(hf_env)
    assert calls[0] == "model_info meta-llama/Llama-3.1-8B-Instruct main"
    assert calls[1] == ("snapshot_download meta-llama/Llama-3.1-8B-Instruct c0ffee1 allow=['*.safetensors', "
                        "'*.json', '*.jinja', 'tokenizer*', '*.model', '*.tiktoken', '*.txt', '*.py'] "
                        "ignore=['original/*', '*.pth']")
    # A hit costs one metadata call; a moved branch is a new version.
    rc, out = _run(hf_env, s3=False, HOSTNAME="pod-b")
    assert rc == 0 and "model cache hit" in out
    shutil.copytree(Path(hf_env["FAKE_HUB"]) / "c0ffee1", Path(hf_env["FAKE_HUB"]) / "beef002")
    (Path(hf_env["FAKE_HUB"]) / "refs.json").write_text('{"main": "beef002"}')
    rc, out = _run(hf_env, s3=False, HOSTNAME="pod-c")
    assert rc == 0 and "model cached" in out, out
    assert (Path(hf_env["CACHE_DIR"]) / ".complete").read_text().endswith(" beef002")
    assert _cache_root_entries(hf_env) == []


def test_hf_revision_reaches_the_script_and_its_own_directory():
    model = ModelSpec(id="m", source="hf://org/m", parameters_billion=8, revision="v1.2")
    init = cache.init_container(model, region="us-east-1")
    assert {"name": "HF_REVISION", "value": "v1.2"} in init["env"]
    assert {"name": "CACHE_DIR", "value": "/models/org/m@v1.2"} in init["env"]
    assert cache.model_path(model) == "/models/org/m@v1.2"


def test_reader_policy_with_a_named_kms_key():
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    model = ModelSpec(id="m", source="s3://models/org/m/v1", parameters_billion=8, kms_key_arn=key)
    policy = cache.reader_policy(model, region="us-east-1")
    assert policy is not None
    (decrypt,) = [s for s in policy["Statement"] if s["Sid"] == "DecryptModel"]
    # The key's region is the bucket's (SSE-KMS keys are regional), whatever the cluster's.
    assert decrypt == {"Sid": "DecryptModel", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key,
                       "Condition": {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}}
    assert cache.reader_policy(ModelSpec(id="m", source="hf://org/m", parameters_billion=8), region="us-east-1") is None
