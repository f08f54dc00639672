"""``python -m fastot.reproduce``: see :mod:`fastot.reproduce.cli`."""

import sys

from fastot.reproduce.cli import main

sys.exit(main())
