"""``python -m astrocal_widgets`` runs the ``astrocal`` command."""
import sys

from .cli import main

sys.exit(main())
