"""Entry point: ``python3 -m xsched_ops_workload ...`` or ``python3 .../xsched_ops_workload/__main__.py ...``."""

import os
import sys

if not __package__:
    # Run as a script: make the folder holding this package importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from xsched_ops_workload.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
