"""realblur-gan: learn to deblur real photos by first learning to blur them realistically.

Deblur in Python with the packaged model::

    from realblur_gan import Deblurrer

    deblur = Deblurrer.from_pretrained()
    restored = deblur(image)  # a PIL image, numpy array or torch tensor; returned in kind

Images are float tensors in [0, 1], shape (B, C, H, W), at every API boundary inside the
package: datasets, nets, losses, metrics and inference all agree on it; files are converted
once in ``realblur_gan.data.io``. ``Deblurrer`` is imported on first use, so importing the
package (and starting a command-line tool) does not wait for torch.
"""

from __future__ import annotations

from typing import Any

from realblur_gan.threads import passive_waits

# Every command (realblur-deblur, -evaluate, -train, python -m realblur_gan.*) imports this
# package before torch, and OpenMP reads its wait policy once, when torch loads it: sleeping
# rather than spinning waits, unless the environment already chose (realblur_gan.threads).
passive_waits()

__version__ = "0.1.0"
__all__ = ["Deblurrer", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Deblurrer":
        from realblur_gan.inference.deblurrer import Deblurrer

        return Deblurrer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
