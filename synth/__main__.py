"""`python -m synth <stack> [--program DIR] [--out DIR]`: synthesize a stack offline.

Exit status, one meaning each:
  0  written; no mandatory policy is violated
  1  written; a mandatory policy is violated (and only then)
  2  nothing written: the stack config, the program directory, the output directory or the
     command line must be fixed (one message on stderr, no traceback)
  3  nothing written: the program or synth itself raised (a bug; the traceback on stderr)
  141  stdout was closed before the summary was printed (128 + SIGPIPE, e.g. `| head`); the
     files were written, the verdict was not printed
  130  interrupted (Ctrl-C)

The output directory (default ``build/<stack>/``; ``build/<project>-<stack>/`` with
``--program``) is replaced as a whole, and only if synth wrote it: it holds a
``.synth-output`` marker. A non-empty directory without one is refused (exit 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from synth import cli
from synth.run import REPO, ProgramError, SynthError, synthesize


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synth", description=__doc__.splitlines()[0],
                                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack", help="stack name: reads Pulumi.<stack>.yaml from the program's stack config dir")
    parser.add_argument("--program", type=Path, default=REPO, help="Pulumi program directory (default: this repo)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default: build/<stack>, or build/<project>-<stack> with --program); "
                             "must be new, empty, or an earlier synth output")
    args = parser.parse_args(argv)
    try:
        result = synthesize(args.stack, program=args.program.resolve(), out=args.out)
    except SynthError as exc:
        print(f"synth: {exc}", file=sys.stderr)
        return 2
    except ProgramError as exc:
        print(f"synth: the program raised:\n{exc}", file=sys.stderr)
        return 3
    print(result.summary())
    return 1 if result.mandatory_violations else 0


if __name__ == "__main__":
    cli.run(main)
