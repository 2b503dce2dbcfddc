import sys

from gnncomm.cli import main

sys.exit(main())
