"""Scoring restorations: metrics, classical baselines, the generalisation benchmark.

- :mod:`~realblur_gan.evaluation.metrics`: PSNR, SSIM, luma, shift-tolerant search;
- :mod:`~realblur_gan.evaluation.baselines`: identity, Wiener and Richardson-Lucy given the
  kernel (the blind methods are :mod:`realblur_gan.blind`'s);
- :mod:`~realblur_gan.evaluation.generalisation`: the benchmark on blur and content no model
  trained on.

``realblur-evaluate`` (:mod:`realblur_gan.evaluate`) is the command line over them.
"""
