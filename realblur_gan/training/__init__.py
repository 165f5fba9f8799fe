"""Training: a scheme's stages, each a Lightning module built from its config.

- :mod:`~realblur_gan.training.config`: where the config tree is, the stages of a scheme, the
  one precedence rule for a stage's settings, and the checks that make a bad value one line;
- :mod:`~realblur_gan.training.runner`: ``run(cfg)``, one Trainer per stage, weights handed over
  by checkpoint path;
- :mod:`~realblur_gan.training.modules`: BlurGAN, DeblurGAN, JointGAN (manual optimisation);
  :mod:`~realblur_gan.training.adversary` (a generator with its discriminator and objective),
  :mod:`~realblur_gan.training.objective` and :mod:`~realblur_gan.training.losses`;
- the pieces around a run: schedules, callbacks (finite guard, periodic checkpoints, RNG
  state), validation metrics, image panels, the run-dir claim.
"""
