"""The one camera model: how a sharp photo becomes a blurry one.

* :mod:`~realblur_gan.camera.ops`: the camera's operations, one function each (tone curves,
  convolution, sensor noise, white balance, Bayer mosaic and demosaicing, JPEG, frame
  averaging);
* :mod:`~realblur_gan.camera.kernels`: blur kernels and :func:`rasterise`, the one rasteriser
  that draws paths into kernels;
* :mod:`~realblur_gan.camera.render`: :class:`CameraParams`, the parameters of one batch, and
  :func:`render`, which every blur goes through;
* :mod:`~realblur_gan.camera.synthetic`: the synthetic blurs (:class:`SimpleBlur`,
  :class:`RealisticBlur`, :class:`CameraPipelineBlur`) *draw* those parameters from ranges; the
  learnable camera (:class:`realblur_gan.nets.ShakeBlurNet`, BGAN's default generator) *learns*
  them.

Images are float tensors in [0, 1], shaped (B, C, H, W); randomness comes from an optional
``torch.Generator`` (the learnable camera's from its noise input).
"""

from realblur_gan.camera.kernels import (
    SIZE_LAWS,
    disk_kernel,
    gaussian_kernel,
    linear_motion_kernel,
    rasterise,
    trajectory_kernel,
    trajectory_kernels,
)
from realblur_gan.camera.ops import (
    BAYER_PATTERNS,
    FFT_MIN_KERNEL_SIZE,
    TONE_CURVES,
    add_poisson_gaussian_noise,
    convolve,
    convolve_varying,
    demosaic_bilinear,
    from_linear,
    gopro_blur,
    jpeg_compress,
    mosaic,
    to_linear,
    valid_convolve,
    white_balance,
)
from realblur_gan.camera.render import CameraParams, render
from realblur_gan.camera.synthetic import (
    BlurSampler,
    CameraPipelineBlur,
    RealisticBlur,
    SimpleBlur,
)

__all__ = [
    "BAYER_PATTERNS",
    "FFT_MIN_KERNEL_SIZE",
    "SIZE_LAWS",
    "TONE_CURVES",
    "BlurSampler",
    "CameraParams",
    "CameraPipelineBlur",
    "RealisticBlur",
    "SimpleBlur",
    "add_poisson_gaussian_noise",
    "convolve",
    "convolve_varying",
    "demosaic_bilinear",
    "disk_kernel",
    "from_linear",
    "gaussian_kernel",
    "gopro_blur",
    "jpeg_compress",
    "linear_motion_kernel",
    "mosaic",
    "rasterise",
    "render",
    "to_linear",
    "trajectory_kernel",
    "trajectory_kernels",
    "valid_convolve",
    "white_balance",
]
