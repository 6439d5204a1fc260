"""``python -m server`` is ``teleconsult serve``."""

import sys

from server.cli import main

main(sys.argv[1:] or ["serve"])
