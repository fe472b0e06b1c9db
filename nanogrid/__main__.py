"""Run the command line as `python -m nanogrid`."""

import sys

from nanogrid.cli import main

sys.exit(main())
