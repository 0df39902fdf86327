"""``python -m codeloop ARGS`` = ``codeloop ARGS`` (tests and launchers start subprocesses this way)."""

import sys

from codeloop.cli import main

sys.exit(main())
