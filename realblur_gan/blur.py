"""The names configs and saved runs give the two classic synthetic blurs.

``realblur_gan.blur.SimpleBlur`` and ``realblur_gan.blur.RealisticBlur`` are the ``_target_``
of ``conf/data/*.yaml`` and of every run config saved with a checkpoint; both are samplers of
the one camera, :mod:`realblur_gan.camera`, where they are documented.
"""

from realblur_gan.camera.synthetic import RealisticBlur, SimpleBlur

__all__ = ["RealisticBlur", "SimpleBlur"]
