"""``python -m sac_minimal <command>``: the command line, :mod:`sac_minimal.lab.cli` (``--help`` lists every
command)."""

import sys

from sac_minimal.lab.cli import main

if __name__ == "__main__":
    sys.exit(main())
