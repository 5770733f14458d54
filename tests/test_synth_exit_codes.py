"""Exit codes keep their promise: 1 only for a mandatory violation, 2 for what the user must
fix (one message, no traceback), 3 for any crash (with its traceback), 141 for a closed pipe."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO, run_synth

DEV = (REPO / "stacks" / "Pulumi.dev.yaml").read_text()


def _program(tmp_path: Path, main: str | None = None, stack_text: str = DEV) -> Path:
    prog = tmp_path / "prog"
    prog.mkdir()
    (prog / "Pulumi.yaml").write_text("name: gpu-platform\nruntime: python\n")
    (prog / "Pulumi.qa.yaml").write_text(stack_text)
    if main is None:
        shutil.copy(REPO / "__main__.py", prog / "__main__.py")
    else:
        (prog / "__main__.py").write_text(main)
    return prog


def test_a_program_that_calls_sys_exit_1_is_a_crash_not_a_violation(tmp_path):
    prog = _program(tmp_path, "import sys\nsys.exit(1)\n")
    proc = run_synth("qa", "--program", str(prog), "--out", str(tmp_path / "out"))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "the program raised" in proc.stderr and "SystemExit: 1" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_program_directory_without_main_py_exits_2(tmp_path):
    prog = _program(tmp_path)
    (prog / "__main__.py").unlink()
    proc = run_synth("qa", "--program", str(prog), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{prog}: no __main__.py in the program directory" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_value_with_no_json_form_exits_2(tmp_path):
    prog = _program(tmp_path, stack_text=DEV + "  gpu-platform:tags: !!binary aGVsbG8=\n")
    proc = run_synth("qa", "--program", str(prog), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "gpu-platform:tags: Object of type bytes is not JSON serializable; write the value as a string" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_usage_error_exits_2():
    proc = run_synth("dev", "--no-such-flag")
    assert proc.returncode == 2 and "unrecognized arguments: --no-such-flag" in proc.stderr


def _python(code: str, tmp_path: Path, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True,
                          timeout=300, **kwargs)


def test_a_crash_in_synth_itself_exits_3_with_its_traceback(tmp_path):
    # Not the program: the policy evaluation after it. Before, any such bug left Python's exit 1.
    out = tmp_path / "out"
    proc = _python(f"""
        import synth.run
        def boom(*args):
            raise ZeroDivisionError("a bug in synth")
        synth.run.policy_report = boom
        from synth import cli
        from synth.__main__ import main
        cli.run(lambda: main(["dev", "--out", {str(out)!r}]))
    """, tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Traceback" in proc.stderr and "ZeroDivisionError: a bug in synth" in proc.stderr
    assert "crashed (a bug, not a verdict): exit 3" in proc.stderr
    assert not out.exists()


def test_cli_run_never_maps_an_exception_to_1(tmp_path):
    for exc in ("ValueError('x')", "OSError('x')", "RecursionError()", "KeyError('x')"):
        proc = _python(f"from synth import cli\ndef main():\n    raise {exc}\ncli.run(main)\n", tmp_path)
        assert proc.returncode == 3 and "Traceback" in proc.stderr, (exc, proc.stderr)
    proc = _python("from synth import cli\ncli.run(lambda: 1)\n", tmp_path)
    assert proc.returncode == 1, "main()'s own verdict passes through"


def test_a_closed_stdout_exits_141_after_writing(tmp_path):
    # `python -m synth dev | head -0`: the reader is gone before the summary is printed.
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "synth", "dev", "--out", str(out)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
    assert (out / "resources.json").is_file(), "the files are written before the summary"
