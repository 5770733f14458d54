"""The output directory: synth only replaces what it wrote, and never leaves half an output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from synth import output
from synth.output import MARKER, OutputError, replacing
from tests.conftest import REPO, run_synth


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_an_empty_directory_is_written(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    proc = run_synth("dev", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "resources.json").is_file()
    assert (out / MARKER).read_text().startswith("python -m synth (gpu-inference-platform ")
    # Nothing is left beside it: the staging directory was renamed into place.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_its_own_output_is_replaced_whole(tmp_path):
    out = tmp_path / "out"
    assert run_synth("dev", "--out", str(out)).returncode == 0
    first = _files(out)
    (out / "manifests" / "999-stale.yaml").write_text("left by an older run\n")
    proc = run_synth("dev", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert _files(out) == first, "the stale file is gone and everything else is identical"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_foreign_directory_is_refused_and_left_untouched(tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "todo.txt").write_text("mine\n")
    (out / "sub").mkdir()
    (out / "sub" / "keep.md").write_text("also mine\n")
    before = _files(out)
    proc = run_synth("dev", "--out", str(out))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"--out {out}: the directory is not empty and holds no {MARKER}" in proc.stderr
    assert "Choose a new or empty directory" in proc.stderr
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]


def test_out_dot_in_a_checkout_is_refused(tmp_path):
    # `--out .` from a checkout's root: the checkout must survive. A copy stands in for it.
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO, checkout, ignore=shutil.ignore_patterns(".venv", "build", ".git", "__pycache__", "golden"))
    before = _files(checkout)
    proc = run_synth("dev", "--out", ".", cwd=checkout)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"--out {checkout}: the directory is not empty" in proc.stderr
    assert _files(checkout) == before


def test_a_file_or_a_symlink_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    proc = run_synth("dev", "--out", str(target))
    assert proc.returncode == 2 and "exists and is not a directory" in proc.stderr, proc.stderr
    assert target.read_text() == "x"
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    proc = run_synth("dev", "--out", str(link))
    assert proc.returncode == 2 and "is a symbolic link" in proc.stderr, proc.stderr


def test_a_failed_run_leaves_the_previous_output(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text(output.marker_text())
    (out / "resources.json").write_text("[]\n")
    before = _files(out)
    with pytest.raises(RuntimeError, match="writer failed"):
        with replacing(out) as staging:
            (staging / "resources.json").write_text("half")
            raise RuntimeError("writer failed")
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "the staging directory is removed"


def test_replacing_checks_the_target_again_before_the_swap(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(OutputError, match="holds no .synth-output"):
        with replacing(out) as staging:
            (staging / "resources.json").write_text("[]\n")
            out.mkdir()  # someone else's files appear while the program runs
            (out / "theirs.txt").write_text("theirs\n")
    assert _files(out) == {"theirs.txt": b"theirs\n"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_marker_names_the_tool_and_version():
    text = output.marker_text()
    assert text.splitlines()[0] == f"python -m synth (gpu-inference-platform {output.version()})"


def test_a_program_defaults_to_build_project_stack(tmp_path):
    # Not build/<stack>: a consumer program must not replace the platform's own output.
    prog = tmp_path / "prog"
    prog.mkdir()
    (prog / "Pulumi.yaml").write_text("name: tiny-consumer\nruntime: python\n")
    (prog / "Pulumi.dev.yaml").write_text("config: {}\n")
    (prog / "__main__.py").write_text("import pulumi\npulumi.export('answer', 42)\n")
    expected = REPO / "build" / "tiny-consumer-dev"
    shutil.rmtree(expected, ignore_errors=True)
    try:
        proc = run_synth("dev", "--program", str(prog))
        assert proc.returncode == 0, proc.stderr
        assert f"dev: 0 resources -> {expected}" in proc.stdout
        assert (expected / MARKER).is_file() and (expected / "outputs.json").read_text() == '{\n  "answer": 42\n}\n'
    finally:
        shutil.rmtree(expected, ignore_errors=True)
