"""realblur-gan: learn to deblur real photos by first learning to blur them realistically.

Images are float tensors in [0, 1], shape (B, C, H, W), at every API boundary: datasets,
nets, losses, metrics and inference all agree on it; files are converted once in
``realblur_gan.data.io``.
"""

from realblur_gan.threads import passive_waits

# Every command (realblur-deblur, -evaluate, -train, python -m realblur_gan.*) imports this
# package before torch, and OpenMP reads its wait policy once, when torch loads it: sleeping
# rather than spinning waits, unless the environment already chose (realblur_gan.threads).
passive_waits()

__version__ = "0.1.0"
