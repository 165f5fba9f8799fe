"""torch.hub entry points of realblur-gan.

From a clone (no download)::

    import torch

    deblur = torch.hub.load("path/to/realblur-gan", "realblur_dbgan", source="local")
    restored = deblur(image)  # PIL image, numpy array or torch tensor, returned in kind

The entry returns a :class:`realblur_gan.Deblurrer` (an ``nn.Module``) holding the packaged
DBGAN, whose file is checked against its SHA-256 in ``realblur_gan/weights/model_zoo.py``.
"""

dependencies = ["hydra", "numpy", "PIL", "safetensors", "torch"]


def realblur_dbgan(**options):
    """The packaged DBGAN: deblurs camera shake (see realblur_gan/weights/MODEL_CARD.md).

    Args:
        **options: ``device`` ("auto", "cpu", "cuda"...), ``tile``, ``overlap``,
            ``self_ensemble``, ``bf16``: see ``realblur_gan.Deblurrer``.

    Returns:
        A ``realblur_gan.Deblurrer``: call it on an image to deblur it.
    """
    from realblur_gan.inference.deblurrer import Deblurrer
    from realblur_gan.weights.model_zoo import DEFAULT_MODEL

    return Deblurrer.from_pretrained(DEFAULT_MODEL, **options)
