"""``python -m rlkit`` runs the CLI."""

import sys

from rlkit.cli.main import main

sys.exit(main())
