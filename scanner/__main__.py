"""``python -m scanner`` is ``vrs-scan``."""

import sys

from scanner.cli import main

sys.exit(main())
