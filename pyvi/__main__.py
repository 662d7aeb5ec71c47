"""``python -m pyvi``: the same as the ``pyvi`` console script (:func:`pyvi.app.cli.main`).

The package's front door, and the one module outside ``pyvi.app`` that imports the application.
"""

import sys

from pyvi.app.cli import main

sys.exit(main())
