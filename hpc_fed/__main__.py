import sys

from hpc_fed.cli import main

sys.exit(main())
