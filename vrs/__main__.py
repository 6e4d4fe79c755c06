"""``python -m vrs`` is the ``vrs`` command."""

import sys

from vrs.cli import main

sys.exit(main())
