import sys

from edge_mnv2.cli import main

sys.exit(main())
