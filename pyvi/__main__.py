"""``python -m pyvi``: the same as the ``pyvi`` console script."""

import sys

from pyvi.cli import main

sys.exit(main())
