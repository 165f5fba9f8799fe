"""The learnable camera: BGAN's generator that can only blur, the way a camera does.

A pixel-to-pixel BGAN (a residual U-Net) that has had a few hundred steps against real blur
paints ghosted, double-edged "blur" that no camera makes, and a deblurrer trained on it learns
little (measured on the demo: +0.14 dB, against +0.65 dB for a plain loop on the camera's own
kernel family). :class:`ShakeBlurNet` instead learns a handful of camera statistics -- how the
camera shakes, its exposure and its noise -- and renders every output with the same
:func:`~realblur_gan.camera.render` as the synthetic blurs, so every output is a physically
possible blur of its input from the first step, and what BGAN learns from the unpaired real
blur is which shakes, gains and noise levels make it look real.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from realblur_gan.camera.kernels import rasterise
from realblur_gan.camera.render import CameraParams, render
from realblur_gan.errors import ArgumentError

__all__ = ["ShakeBlurNet", "noise_latent"]

# Keeps powers, roots and logs away from 0, where their gradients are infinite.
_EPS = 1e-6


def noise_latent(noise: Tensor, grid: int) -> Tensor:
    """A noise map pooled to ``grid x grid`` cells and rescaled to unit variance, (B, C*grid²).

    Whatever the injection's scale and the image size, the code is ~N(0, 1) per entry.
    """
    if noise.shape[1] == 0:
        return noise.new_zeros(noise.shape[0], 0)
    pooled = F.adaptive_avg_pool2d(noise, grid).flatten(1)
    return pooled / pooled.detach().pow(2).mean().sqrt().clamp_min(_EPS)


class ShakeBlurNet(nn.Module):
    """A learnable camera: camera-shake statistics and a sensor, rendered per image.

    The generator of a BGAN that learns *how a camera blurs* rather than an image-to-image map:
    a handful of parameters that the adversarial loss against unpaired real blur fits.

    - **Shake.** Each image's kernel is the path of a random walk with inertia: velocities
      ``v_t = rho v_{t-1} + sqrt(1 - rho²) z_t`` from the injected noise, positions their running
      sum scaled by a per-image step ``exp(log_step + spread * e)``, centred and densified by
      linear interpolation, then splatted into the kernel. ``rho`` near 1 gives straight
      motion, near 0 jittery shake; ``log_step`` sets the typical blur length and ``spread``
      how much it varies between images.
    - **Sensor.** Gamma, exposure gain with saturation at 1, Poisson-Gaussian noise
      (variance ``shot * x + read²``), rendered by :func:`~realblur_gan.camera.render`.

    The random numbers come from the noise map (pooled, see :func:`noise_latent`), so
    :class:`~realblur_gan.nets.NoiseInjection` stays the one source of variety.

    Args:
        in_channels: image channels plus noise channels (at least one noise channel).
        out_channels: image channels (1 or 3).
        kernel_size: side of the kernel grid (odd): the longest blur it can draw.
        steps: random-walk steps per path.
        densify: points drawn per step (linear interpolation along the path).
        gamma: camera gamma; None blurs sRGB values directly.
        max_exposure: upper bound of the exposure gain (1 = no saturation).
        noise: whether to add the sensor noise.
        init_step: starting step length in pixels.
        init_inertia: starting ``rho``.
        init_noise: starting ``(shot, read)`` noise levels in linear light.
        rate: how fast the statistics move per optimiser step (Adam moves each parameter by
            about the learning rate per step; these few must travel several units).
        average_decay: decay of the statistics' moving average, updated on every training
            forward and used in eval mode; None: eval mode uses the live values.

    Shape:
        - Input: :math:`(B, C_{out} + C_{noise}, H, W)`, image part in [0, 1]
        - Output: :math:`(B, C_{out}, H, W)` in [0, 1]

    Example:
        >>> net = ShakeBlurNet(in_channels=4, out_channels=3)
        >>> net(torch.cat([torch.rand(2, 3, 32, 32), torch.randn(2, 1, 32, 32)], dim=1)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 15,
        steps: int = 8,
        densify: int = 4,
        gamma: float | None = 2.2,
        max_exposure: float = 1.5,
        noise: bool = True,
        init_step: float = 1.0,
        init_inertia: float = 0.5,
        init_noise: tuple[float, float] = (5e-4, 1e-3),
        rate: float = 10.0,
        average_decay: float | None = 0.98,
    ) -> None:
        super().__init__()
        if average_decay is not None and not 0.0 < average_decay < 1.0:
            raise ArgumentError("average_decay", average_decay, "must be in (0, 1) or null")
        if out_channels < 1 or in_channels <= out_channels:
            raise ArgumentError(
                "in_channels",
                in_channels,
                f"must exceed out_channels ({out_channels}): the "
                "shake is drawn from the injected noise channels",
            )
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ArgumentError("kernel_size", kernel_size, "must be odd and >= 3")
        if gamma is not None and gamma <= 0:
            raise ArgumentError("gamma", gamma, "must be > 0 or null")
        if max_exposure < 1.0:
            raise ArgumentError("max_exposure", max_exposure, "must be >= 1")
        if rate <= 0:
            raise ArgumentError("rate", rate, "must be > 0")
        if steps < 2 or densify < 1:
            raise ArgumentError("steps", (steps, densify), "need steps >= 2 and densify >= 1")
        if init_step <= 0 or not 0.0 < init_inertia < 1.0:
            raise ArgumentError(
                "init_step", (init_step, init_inertia), "need step > 0 and 0 < inertia < 1"
            )
        self.image_channels = out_channels
        self.noise_channels = in_channels - out_channels
        self.kernel_size = kernel_size
        self.steps = steps
        self.densify = densify
        self.gamma = gamma
        self.max_exposure = max_exposure
        self.noise = noise
        self.rate = rate
        self.stride = 1
        # Enough pooled noise cells for 2 numbers per step plus one for the step length.
        need = 2 * steps + 1
        self.latent_grid = math.ceil(math.sqrt(need / self.noise_channels))
        shot, read = init_noise
        start = {
            "log_step": math.log(init_step),
            "spread": 0.3,
            "inertia": math.log(init_inertia / (1.0 - init_inertia)),
            "exposure": -4.0,  # gain 1 + (max - 1) * sigmoid(-4) ~ 1
            "log_shot": math.log(max(shot, _EPS)),
            "log_read": math.log(max(read, _EPS)),
        }
        self.names = tuple(start)
        # Stored divided by `rate` and multiplied back in `statistics`: a rate-times faster pace.
        self.raw = nn.Parameter(torch.tensor(list(start.values())) / rate)
        # The adversarial game makes the statistics circle around the real camera's; in eval
        # mode (validation, a frozen BGAN, the blur a joint DBGAN trains on) the net renders
        # with their moving average instead, which sits near the centre of the circle.
        self.average_decay = average_decay
        self.register_buffer("raw_average", self.raw.detach().clone())

    def _update_average(self) -> None:
        if self.average_decay is None:
            self.raw_average.copy_(self.raw.detach())
        else:
            self.raw_average.lerp_(self.raw.detach(), 1.0 - self.average_decay)

    def statistics(self, averaged: bool | None = None) -> dict[str, Tensor]:
        """The shake and sensor statistics in their natural units (scalars).

        Args:
            averaged: the moving average (True) or the live values (False); None picks the
                average in eval mode and the live values in training mode.
        """
        use_average = (not self.training) if averaged is None else averaged
        raw = self.raw_average if use_average else self.raw
        v = dict(zip(self.names, raw * self.rate, strict=True))
        return {
            "step_px": v["log_step"].exp(),
            "spread": v["spread"].abs(),
            "inertia": torch.sigmoid(v["inertia"]),
            "exposure": 1.0 + (self.max_exposure - 1.0) * torch.sigmoid(v["exposure"]),
            "shot": v["log_shot"].exp(),
            "read": v["log_read"].exp(),
        }

    def kernels(self, noise: Tensor) -> Tensor:
        """Shake kernels drawn from a noise map.

        Shape:
            - noise: :math:`(B, C_{noise}, H, W)`
            - output: :math:`(B, k, k)`
        """
        stats = self.statistics()
        z = noise_latent(noise, self.latent_grid)
        b, t = z.shape[0], self.steps
        steps, e = z[:, : 2 * t].view(b, t, 2), z[:, 2 * t]
        rho = stats["inertia"]
        keep = (1.0 - rho**2).clamp_min(_EPS).sqrt()
        v = [steps[:, 0]]
        for i in range(1, t):
            v.append(rho * v[-1] + keep * steps[:, i])
        path = torch.stack(v, dim=1).cumsum(dim=1)  # (B, T, 2), unit-scale steps
        step = (stats["step_px"].log() + stats["spread"] * e).exp()
        path = (path - path.mean(dim=1, keepdim=True)) * step.view(b, 1, 1)
        dense = F.interpolate(
            path.transpose(1, 2), size=t * self.densify, mode="linear", align_corners=True
        ).transpose(1, 2)
        # Centred paths, drawn on the kernel grid from its top-left pixel.
        return rasterise(dense + self.kernel_size // 2, self.kernel_size)

    def camera(self, x: Tensor) -> CameraParams:
        """The camera one batch is rendered with: shake kernels from the noise part of ``x``
        and the (live or averaged, see :meth:`statistics`) sensor statistics.

        Shape:
            - x: :math:`(B, C_{out} + C_{noise}, H, W)`
        """
        b = x.shape[0]
        stats = self.statistics()
        return CameraParams(
            kernels=self.kernels(x[:, self.image_channels :]),
            tone_curve=None if self.gamma is None else "gamma",
            gamma=2.2 if self.gamma is None else self.gamma,
            exposure=stats["exposure"].expand(b),
            shot=stats["shot"].expand(b) if self.noise else None,
            read=stats["read"].expand(b) if self.noise else None,
            floor=_EPS,
        )

    def forward(self, x: Tensor) -> Tensor:
        """Blur the image part of ``x`` with a shake drawn from its noise part.

        Args:
            x: images with the noise channels appended.

        Returns:
            The blurred images.

        Shape:
            - x: :math:`(B, C_{out} + C_{noise}, H, W)`
            - output: :math:`(B, C_{out}, H, W)`
        """
        if self.training:
            with torch.no_grad():
                self._update_average()
        return render(x[:, : self.image_channels], self.camera(x))
