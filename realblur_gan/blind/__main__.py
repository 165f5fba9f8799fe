"""``python -m realblur_gan.blind``: see :mod:`realblur_gan.blind.cli`."""

import sys

from realblur_gan.blind.cli import main

sys.exit(main())
