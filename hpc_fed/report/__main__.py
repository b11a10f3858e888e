"""`python -m hpc_fed.report RUN_DIRS... --out DIR` (same as `hpc-fed report`)."""

import sys

from hpc_fed.report.cli import main

sys.exit(main())
