"""The output directory: synth only ever replaces a directory it wrote itself.

Every output directory holds :data:`MARKER`, a file naming the tool and its version. A run
may write into a directory that does not exist, is empty, or holds that marker; any other
directory is refused before the program runs (exit 2), and nothing in it is touched.

Nothing is half-written: the new output is written into a temporary directory beside the
target (same file system) and swapped in by renames only once it is complete; a run that
fails leaves the previous output as it was.
"""

from __future__ import annotations

import importlib.metadata
import os
import secrets
import shutil
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MARKER = ".synth-output"
TOOL = "python -m synth"
_REPO = Path(__file__).resolve().parent.parent
_DISTRIBUTION = "gpu-inference-platform"


class OutputError(Exception):
    """The output directory cannot be used (not ours, not a directory): exit 2."""


def version() -> str:
    """The package version: the checkout's pyproject.toml when running from one, else the installed one."""
    pyproject = _REPO / "pyproject.toml"
    if pyproject.is_file():
        return str(tomllib.loads(pyproject.read_text())["project"]["version"])
    return importlib.metadata.version(_DISTRIBUTION)


def marker_text() -> str:
    return (f"{TOOL} ({_DISTRIBUTION} {version()})\n"
            "This directory is synth output: each run replaces it whole. Do not keep other files here.\n")


def is_ours(out: Path) -> bool:
    marker = out / MARKER
    return marker.is_file() and marker.read_text(errors="replace").startswith(TOOL)


def check_target(out: Path) -> None:
    """Refuse an output path synth must not replace (raises OutputError)."""
    if out.is_symlink():
        raise OutputError(f"--out {out}: is a symbolic link; pass the directory it points to ({out.resolve()})")
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: exists and is not a directory; choose a new or empty directory")
    if out.is_dir() and any(out.iterdir()) and not is_ours(out):
        raise OutputError(
            f"--out {out}: the directory is not empty and holds no {MARKER}, so synth did not write it; "
            "synth replaces its output directory as a whole and will not delete files it did not write. "
            "Choose a new or empty directory (the default is build/<stack>/), or empty this one yourself")


@contextmanager
def replacing(out: Path) -> Iterator[Path]:
    """A fresh directory to write into; on success it replaces ``out`` (marker added), on error
    it is removed and ``out`` is left as it was."""
    out = Path(os.path.abspath(out))  # "." and ".." resolved, so the staging dir lands beside it
    check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(out, "new")
    staging.mkdir()
    try:
        yield staging
        (staging / MARKER).write_text(marker_text())
        check_target(out)  # again: something may have written there while the program ran
        _swap(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _sibling(out: Path, role: str) -> Path:
    return out.parent / f".{out.name}.synth-{role}-{secrets.token_hex(4)}"


def _swap(staging: Path, out: Path) -> None:
    """Put ``staging`` at ``out``; the previous ``out`` (empty, or our own output) goes away."""
    if not out.exists():
        os.rename(staging, out)
        return
    old = _sibling(out, "old")
    os.rename(out, old)
    try:
        os.rename(staging, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old)
