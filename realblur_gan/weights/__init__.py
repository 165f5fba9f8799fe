"""Weight files: the packaged models and their registry, reading and writing checkpoints.

- :mod:`~realblur_gan.weights.model_zoo`: named pretrained models (file, SHA-256, net), the
  packaged DBGAN first; its weight files and model card live in this folder too;
- :mod:`~realblur_gan.weights.checkpoints`: atomic checkpoint writes, safe loading, rebuilding a
  generator from a ``.ckpt`` or an exported ``.safetensors``;
- :mod:`~realblur_gan.weights.net_configs`: the allow-listed net configs files carry;
- :mod:`~realblur_gan.weights.interpolation`: a point between a fine-tuned net and the weights it
  started from (``python -m realblur_gan.export --start``);
- :mod:`~realblur_gan.weights.backbones`: pretrained VGG/AlexNet weights for the perceptual loss
  and LPIPS, from the torch hub cache or a path (never downloaded).
"""
