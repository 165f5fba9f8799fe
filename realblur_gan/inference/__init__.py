"""Running a trained generator on images of any size and kind.

- :mod:`~realblur_gan.inference.tiling`: ``deblur_image``: padding, tiles, self-ensemble;
- :mod:`~realblur_gan.inference.runtime`: the forward pass in torch or onnxruntime;
- :mod:`~realblur_gan.inference.deblurrer`: :class:`Deblurrer`, the Python API;
- :mod:`~realblur_gan.inference.image_kinds`: PIL images, numpy arrays and tensors in and out.
"""
