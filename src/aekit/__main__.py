# PYTHON_ARGCOMPLETE_OK
"""``python -m aekit`` is the ``aekit`` command (so ``torchrun -m aekit train ...`` works)."""

import sys

from aekit.cli import main

sys.exit(main())
