"""realblur-gan: learn to deblur real photos by first learning to blur them realistically.

Images are float tensors in [0, 1], shape (B, C, H, W), at every API boundary: datasets,
nets, losses, metrics and inference all agree on it; files are converted once in
``realblur_gan.data.io``.
"""

__version__ = "0.1.0"
