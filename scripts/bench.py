"""Benchmark realblur-gan: ``python scripts/bench.py --help``.

The code is the ``bench`` package beside this file (``scripts/bench/``); this file keeps the
documented command. Python finds the package before this module when resolving ``bench``.
"""

import logging

from bench.cli import main

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    main()
