"""What every command-line entry point of the project does around its main().

``main()`` returns the exit status it means. Around it, whatever main() says:

- anything raised (a bug) exits 3 with its traceback on stderr: never 1, which the entry
  points keep for their own verdict (synth: "a mandatory policy is violated");
- a closed stdout (output piped into ``head``) exits 141, the status a shell reports for a
  process stopped by SIGPIPE (128 + 13): the reader went away, nothing was judged;
- Ctrl-C exits 130 (128 + SIGINT), as shells report it.

``SystemExit`` passes through (argparse's usage errors exit 2, ``--help`` 0).
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable

CRASHED = 3
BROKEN_PIPE = 128 + signal.SIGPIPE
INTERRUPTED = 128 + signal.SIGINT


def run(main: Callable[[], int]) -> None:
    try:
        code = main()
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit (exit 120)
    except BrokenPipeError:
        # Further writes at exit would raise again; send them nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = BROKEN_PIPE
    except KeyboardInterrupt:
        code = INTERRUPTED
    except Exception:  # noqa: BLE001 - any bug ends the same way: its traceback and exit 3
        traceback.print_exc()
        print(f"crashed (a bug, not a verdict): exit {CRASHED}", file=sys.stderr)
        code = CRASHED
    sys.exit(code)
