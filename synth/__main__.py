"""`python -m synth <stack> [--program DIR] [--out DIR]`: synthesize a stack offline.

Exit status: 0 when no mandatory policy is violated, 1 when one is, 2 when the stack
config is invalid (one message on stderr, no traceback), 3 when the program itself raised
(its traceback on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from synth import cli
from synth.run import REPO, ProgramError, SynthError, synthesize


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synth", description=__doc__.splitlines()[0])
    parser.add_argument("stack", help="stack name: reads Pulumi.<stack>.yaml from the program's stack config dir")
    parser.add_argument("--program", type=Path, default=REPO, help="Pulumi program directory (default: this repo)")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: build/<stack>)")
    args = parser.parse_args(argv)
    out = args.out or REPO / "build" / args.stack
    try:
        result = synthesize(args.stack, program=args.program.resolve(), out=out)
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
