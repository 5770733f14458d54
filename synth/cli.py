"""What every command-line entry point of the project does around its main()."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def run(main: Callable[[], int]) -> None:
    try:
        sys.exit(main())
    except BrokenPipeError:  # output piped into e.g. head: stop quietly, like other CLIs
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
