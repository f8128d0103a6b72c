"""``python -m physinv`` runs the command line (the same as the ``physinv`` command)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
