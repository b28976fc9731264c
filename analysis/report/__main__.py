"""``python -m analysis.report``: see :mod:`analysis.report.cli`."""
import sys

from .cli import main

sys.exit(main())
