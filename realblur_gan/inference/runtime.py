"""Which runtime runs a generator's forward pass at inference, and how.

:func:`forward_runner` turns a generator into a callable ``x -> net(x)`` for one device:

- ``"torch"``: eager PyTorch. On the CPU the input is handed over in channels-last memory
  format, which oneDNN's convolutions run about 1.5x faster (the same values up to float
  rounding, ~1e-6); bf16 autocast where asked for and the device has native bf16.
- ``"onnxruntime"``: the net exported to ONNX (:func:`realblur_gan.inference.onnx.onnx_model_bytes`)
  and run
  by onnxruntime's CPU kernels (NCHWc convolutions with fused activations): on the 2-core CPU this
  project is developed on, a 1280x720 frame reaches ~70 % of the float32 matmul rate against
  ~57 % for torch and 43 % for the NCHW torch pass used before (``scripts/bench_predict.py
  --interleave``, ``docs/speed.md``). CPU and float32 only; onnxruntime is an
  optional dependency (``pip install realblur-gan[fast]``: onnx and onnxruntime).
- ``"auto"`` (the default): onnxruntime on the CPU in float32 when it is installed and the
  exported net reproduces torch's output within
  :data:`~realblur_gan.inference.onnx.ONNX_TOLERANCE` at
  two input sizes; torch otherwise (any net, any device).

Works for any ``nn.Module`` generator: nothing depends on the architecture or the weights. An
exported session is kept per net and reused while the net's parameters are unchanged (their
version counters), so a folder of images pays for the export (about a second) once.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from realblur_gan.defaults import RUNTIMES
from realblur_gan.errors import UserError

logger = logging.getLogger(__name__)

__all__ = [
    "ONE_PASS_PIXELS",
    "RUNTIMES",
    "Runner",
    "RuntimeUnavailable",
    "cpu_has_native_bf16",
    "forward_runner",
]

#: The largest image (in pixels) a runtime is measured faster on in one pass than in 512 px
#: tiles, for ``tile="auto"``: onnxruntime's per-operator cost favours large operands (a
#: 1280x720 frame: 1.45x its tiles), torch's oneDNN on the CPU does not (0.85x).
ONE_PASS_PIXELS = {"onnxruntime": 1 << 20, "torch-cpu": 0, "torch-cuda": 1 << 20}


@dataclass(frozen=True)
class Runner:
    """A forward pass ``x -> net(x)`` (float32) and what it is.

    Attributes:
        forward: the pass.
        name: ``"torch"`` or ``"onnxruntime"``.
        one_pass_pixels: images up to this many pixels run in one pass under ``tile="auto"``
            (:data:`ONE_PASS_PIXELS`).
    """

    forward: Callable[[Tensor], Tensor]
    name: str
    one_pass_pixels: int

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)


class RuntimeUnavailable(UserError, ValueError):
    """The runtime asked for cannot run here; the message says what to install or choose."""


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX), where bf16
    autocast is a speed-up rather than an emulation."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # an older torch without the probes
        return False


def _torch_runner(net: nn.Module, device: torch.device, bf16: bool) -> Runner:
    channels_last = device.type == "cpu"
    one_pass = ONE_PASS_PIXELS["torch-cpu" if device.type == "cpu" else "torch-cuda"]

    def run(x: Tensor) -> Tensor:
        x = x.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            out = net(x)
        return out.float().contiguous()

    return Runner(run, "torch", one_pass)


# net -> (parameter versions, runner or None when its export failed the check)
_ORT_CACHE: weakref.WeakKeyDictionary[nn.Module, tuple[tuple[int, ...], Runner | None]] = (
    weakref.WeakKeyDictionary()
)


def _versions(net: nn.Module) -> tuple[int, ...]:
    """Changes whenever a parameter or buffer of ``net`` is replaced or updated in place."""
    tensors = [*net.parameters(), *net.buffers()]
    return tuple(v for t in tensors for v in (id(t), t._version))


def _onnxruntime() -> Any | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def _ort_session(net: nn.Module, ort: Any) -> Runner:
    """Export ``net`` and open an onnxruntime session on it, threads as torch's."""
    from realblur_gan.inference.onnx import onnx_model_bytes

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    # No memory pattern: a plan per input shape that the arena keeps (0.3 GB for 512 px tiles
    # of a 12 MP photo); measured as fast without it (docs/speed.md).
    options.enable_mem_pattern = False
    if os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE":
        # The same courtesy as torch's OpenMP threads: sleep between operators, not spin.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(
        onnx_model_bytes(net), options, providers=["CPUExecutionProvider"]
    )
    (name,) = [i.name for i in session.get_inputs()]

    def run(x: Tensor) -> Tensor:
        (out,) = session.run(None, {name: x.float().contiguous().cpu().numpy()})
        return torch.from_numpy(out)

    return Runner(run, "onnxruntime", ONE_PASS_PIXELS["onnxruntime"])


def _checked_ort_runner(net: nn.Module, ort: Any) -> Runner | None:
    """The onnxruntime runner of ``net`` if it reproduces torch at two sizes, else None."""
    from realblur_gan.inference.onnx import ONNX_TOLERANCE
    from realblur_gan.nets.init import net_channels

    try:
        runner = _ort_session(net, ort)
        stride = int(getattr(net, "stride", 1))
        unit = stride * -(-8 // stride)  # a multiple of the stride, at least 8 px
        generator = torch.Generator().manual_seed(0)
        worst = 0.0
        # Two shapes: a size the trace turned into a constant shows up as a mismatch.
        for h, w in ((4 * unit, 6 * unit), (6 * unit, 4 * unit)):
            x = torch.rand(1, net_channels(net), h, w, generator=generator)
            with torch.inference_mode():
                expected = net(x).float()
            worst = max(worst, float((runner(x) - expected).abs().max()))
    except Exception as err:  # any export or runtime failure: torch runs it instead
        logger.info("%s: onnxruntime unavailable (%s); running torch", type(net).__name__, err)
        return None
    if worst > ONNX_TOLERANCE:
        logger.info(
            "%s: onnxruntime differs from torch by %.1e (> %.0e); running torch",
            type(net).__name__,
            worst,
            ONNX_TOLERANCE,
        )
        return None
    logger.debug(
        "%s: running onnxruntime (max difference to torch %.1e)", type(net).__name__, worst
    )
    return runner


def _ort_runner(net: nn.Module, ort: Any) -> Runner | None:
    versions = _versions(net)
    cached = _ORT_CACHE.get(net)
    if cached is None or cached[0] != versions:
        cached = (versions, _checked_ort_runner(net, ort))
        _ORT_CACHE[net] = cached
    return cached[1]


def forward_runner(
    net: nn.Module, device: torch.device, runtime: str = "auto", bf16: bool = False
) -> Runner:
    """A callable running ``net`` on ``device`` with the chosen runtime (see the module).

    Args:
        net: a generator in eval mode, on ``device``.
        device: where the computation runs.
        runtime: ``"auto"``, ``"torch"`` or ``"onnxruntime"``.
        bf16: bfloat16 autocast: on CUDA, and on CPUs with native bf16
            (:func:`cpu_has_native_bf16`); elsewhere float32 with a warning. Always torch.

    Returns:
        ``x -> net(x)`` as float32; ``x`` may live anywhere, the result is on ``device`` (the
        CPU for onnxruntime).

    Raises:
        RuntimeUnavailable: an unknown runtime, or onnxruntime asked for where it cannot run
            (not installed, not the CPU, bf16, or its export does not reproduce torch).
    """
    if runtime not in RUNTIMES:
        raise RuntimeUnavailable(f"--runtime {runtime}: choose from {', '.join(RUNTIMES)}")
    if bf16 and device.type == "cpu" and not cpu_has_native_bf16():
        logger.warning("bf16: this CPU has no native bfloat16; running float32")
        bf16 = False
    if runtime == "torch" or (runtime == "auto" and (device.type != "cpu" or bf16)):
        return _torch_runner(net, device, bf16)
    if device.type != "cpu" or bf16:
        raise RuntimeUnavailable(
            "--runtime onnxruntime: runs float32 on the CPU only; use --device cpu without "
            "--bf16, or --runtime torch"
        )
    if not getattr(net, "traceable", True):
        # Checked before the export cache: a setting such as NAFNet's sca_window changes what
        # the net computes without touching a parameter.
        if runtime == "onnxruntime":
            raise RuntimeUnavailable(
                f"--runtime onnxruntime: this {type(net).__name__} computes differently at each "
                "image size (a local sca_window) and cannot be traced; use --runtime torch"
            )
        return _torch_runner(net, device, bf16)
    ort = _onnxruntime()
    runner = None if ort is None else _ort_runner(net, ort)
    if runner is not None:
        return runner
    if runtime == "onnxruntime":
        why = "is not installed (pip install onnxruntime)" if ort is None else "failed its check"
        raise RuntimeUnavailable(
            f"--runtime onnxruntime: onnxruntime {why}; use --runtime torch (see the log)"
        )
    return _torch_runner(net, device, bf16)
