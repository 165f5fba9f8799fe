"""``python scripts/bench`` (the folder) or ``python -m bench`` from ``scripts/``."""

import logging
import sys
from pathlib import Path

# Run as a folder, Python puts the folder itself first on the path, not its parent.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cli import main

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
main()
