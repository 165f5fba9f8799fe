"""A generator as an ONNX model, in memory: what ``python -m realblur_gan.export --onnx`` writes
and what the onnxruntime forward pass (:mod:`realblur_gan.inference.runtime`) runs."""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ONNX_OPSET", "ONNX_TOLERANCE", "onnx_model_bytes"]

ONNX_OPSET = 17
# Largest |onnxruntime - PyTorch| accepted on [0, 1] outputs: float32 rounding differs between
# the two runtimes' conv kernels (measured ~1e-6 on the default U-Net), far below one 16-bit step.
ONNX_TOLERANCE = 1e-4


def onnx_model_bytes(net: nn.Module, size: int | None = None, opset: int = ONNX_OPSET) -> bytes:
    """``net`` as an ONNX model (input ``image``, output ``restored``), dynamic batch, height
    and width, in memory.

    Uses the TorchScript exporter (``dynamo=False``), which handles the U-Net's size-dependent
    upsampling with dynamic axes; it needs the ``onnx`` package (not ``onnxscript``).

    Args:
        net: the generator (exported in eval mode).
        size: side of the example input (a multiple of the stride); default ``8 * stride``.
        opset: ONNX opset (>= 17).

    Raises:
        ValueError: the net is not ``traceable`` (it computes differently at other sizes).
    """
    import torch

    from realblur_gan.nets.init import net_channels

    if not getattr(net, "traceable", True):
        # A trace freezes the size branches of e.g. NAFNet's local context pooling: the graph
        # would compute the net at the example's size only.
        raise ValueError(
            f"{type(net).__name__} computes differently at different image sizes (a local "
            "sca_window) and cannot be traced to ONNX; export it with sca_window null"
        )

    stride = int(getattr(net, "stride", 1))
    size = size or 8 * max(stride, 4)
    # Any values trace the same graph; a seeded example keeps the export reproducible.
    example = torch.rand(
        1, net_channels(net), size, size, generator=torch.Generator().manual_seed(0)
    )
    axes = {0: "batch", 2: "height", 3: "width"}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The size checks inside the nets become constants in the trace: that is intended.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net,
            (example,),
            buffer,
            input_names=["image"],
            output_names=["restored"],
            dynamic_axes={"image": axes, "restored": axes},
            opset_version=opset,
            training=torch.onnx.TrainingMode.EVAL,
            dynamo=False,
        )
    return buffer.getvalue()
