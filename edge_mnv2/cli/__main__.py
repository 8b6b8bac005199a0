"""``python -m edge_mnv2.cli``: the same as ``edge-mnv2``."""

import sys

from edge_mnv2.cli import main

sys.exit(main())
