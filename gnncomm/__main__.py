"""``python -m gnncomm``: the same as the ``gnncomm`` console script."""

import sys

from gnncomm.cli import main

if __name__ == "__main__":
    sys.exit(main())
