"""A blur generator that can only blur: it predicts a camera-shake kernel and a camera response
per image and renders the blur through them, instead of painting the blurry pixels itself.

Why: a pixel-to-pixel BGAN (a residual U-Net) that has had a few hundred steps against real blur
paints ghosted, double-edged "blur" that no camera makes, and a deblurrer trained on it learns
little (measured on the demo: +0.14 dB, against +0.65 dB for a plain loop on the camera's own
kernel family). Here the adversarial game only moves a kernel, an exposure gain and a noise
level, so every output is a physically possible blur of its input from the first step, and what
BGAN learns from the unpaired real blur is which kernels, gains and noise levels make it look
real.

Rendering follows the order a camera applies the steps: linearise with ``gamma`` -> convolve in
linear light with the predicted kernel -> exposure gain and sensor saturation -> Poisson-Gaussian
noise -> re-apply ``gamma``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from realblur_gan.blur import convolve
from realblur_gan.errors import ArgumentError

_EPS = 1e-6


def _check_camera(kernel_size: int, gamma: float | None, max_exposure: float, rate: float) -> None:
    """Refuse the camera arguments both blur generators share, naming the bad one."""
    if kernel_size < 3 or kernel_size % 2 == 0:
        raise ArgumentError("kernel_size", kernel_size, "must be odd and >= 3")
    if gamma is not None and gamma <= 0:
        raise ArgumentError("gamma", gamma, "must be > 0 or null")
    if max_exposure < 1.0:
        raise ArgumentError("max_exposure", max_exposure, "must be >= 1")
    if rate <= 0:
        raise ArgumentError("rate", rate, "must be > 0")


def render_camera_blur(
    image: Tensor,
    kernels: Tensor,
    exposure: Tensor,
    shot: Tensor,
    read: Tensor,
    gamma: float | None = 2.2,
    noise: bool = True,
) -> Tensor:
    """Render per-image blur the way a camera makes it, differentiably in every parameter.

    Linearise with ``gamma`` -> convolve with the kernel -> exposure gain and saturation at 1
    -> Poisson-Gaussian noise (variance ``shot * x + read²``) -> re-apply ``gamma``.

    Args:
        image: sharp images in [0, 1].
        kernels: one normalised kernel per image.
        exposure, shot, read: per-image gain and noise parameters.
        gamma: camera gamma; None blurs the values as they are.
        noise: whether to add the noise.

    Returns:
        The blurred images in [0, 1].

    Shape:
        - image, output: :math:`(B, C, H, W)`; kernels: :math:`(B, k, k)`;
          exposure, shot, read: :math:`(B,)`
    """
    b = image.shape[0]
    image = image.clamp(0.0, 1.0)
    lin = image if gamma is None else image.clamp_min(_EPS).pow(gamma)
    lin = (convolve(lin, kernels) * exposure.view(b, 1, 1, 1)).clamp(0.0, 1.0)
    if noise:
        std = (shot.view(b, 1, 1, 1) * lin + read.view(b, 1, 1, 1) ** 2).clamp_min(_EPS).sqrt()
        lin = (lin + std * torch.randn_like(lin)).clamp(0.0, 1.0)
    return lin if gamma is None else lin.clamp_min(_EPS).pow(1.0 / gamma)


def noise_latent(noise: Tensor, grid: int) -> Tensor:
    """A noise map pooled to ``grid x grid`` cells and rescaled to unit variance, (B, C*grid²).

    Whatever the injection's scale and the image size, the code is ~N(0, 1) per entry.
    """
    if noise.shape[1] == 0:
        return noise.new_zeros(noise.shape[0], 0)
    pooled = F.adaptive_avg_pool2d(noise, grid).flatten(1)
    return pooled / pooled.detach().pow(2).mean().sqrt().clamp_min(_EPS)


class KernelBlurNet(nn.Module):
    """Predict one blur kernel, exposure gain and noise level per image, and apply them.

    Used as BGAN's generator inside :class:`~realblur_gan.nets.NoiseInjection`: the extra input
    channels beyond ``out_channels`` are the injected noise map. Pooled over a coarse grid and
    re-normalised, that map becomes the latent code the kernel is drawn from, so one sharp
    image maps to many blurs; without noise channels the net is deterministic.

    The kernel is a softmax over ``kernel_size²`` logits: non-negative and summing to one, so
    the blur never changes the image's mean brightness. It starts as a small Gaussian of
    ``init_sigma`` pixels.

    Args:
        in_channels: image channels plus noise channels.
        out_channels: image channels (1 or 3); the first ``out_channels`` input channels are
            the image.
        kernel_size: side of the predicted kernel (odd); the largest blur it can make.
        width: channels of the image encoder that conditions the kernel on the content.
        latent_grid: the noise map is pooled to ``latent_grid²`` cells per noise channel.
        hidden: width of the kernel head.
        gamma: camera gamma (blur happens in linear light); None blurs sRGB values directly.
        max_exposure: upper bound of the exposure gain (1 = no saturation).
        noise: whether to add predicted Poisson-Gaussian sensor noise.
        init_sigma: standard deviation in pixels of the starting Gaussian kernel.
        init_noise: starting ``(shot, read)`` noise: variance ``shot * x`` plus ``read²`` in
            linear light (``RealisticBlur``'s default ranges' midpoints).
        rate: how fast the kernel and camera parameters move per optimiser step, relative to
            the network weights (see :meth:`_params`).

    Shape:
        - Input: :math:`(B, C_{out} + C_{noise}, H, W)`, image part in [0, 1]
        - Output: :math:`(B, C_{out}, H, W)` in [0, 1]; ``last_kernels``: :math:`(B, k, k)`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 15,
        width: int = 16,
        latent_grid: int = 4,
        hidden: int = 128,
        gamma: float | None = 2.2,
        max_exposure: float = 1.5,
        noise: bool = True,
        init_sigma: float = 1.0,
        init_noise: tuple[float, float] = (5e-4, 1e-3),
        rate: float = 10.0,
    ) -> None:
        super().__init__()
        if out_channels < 1 or in_channels < out_channels:
            raise ArgumentError(
                "in_channels", in_channels, f"must be >= out_channels ({out_channels}) >= 1"
            )
        _check_camera(kernel_size, gamma, max_exposure, rate)
        if width < 1 or hidden < 1 or latent_grid < 1:
            raise ArgumentError("width", (width, hidden, latent_grid), "sizes must be >= 1")
        self.image_channels = out_channels
        self.noise_channels = in_channels - out_channels
        self.kernel_size = kernel_size
        self.latent_grid = latent_grid
        self.gamma = gamma
        self.max_exposure = max_exposure
        self.noise = noise
        self.rate = rate
        self.stride = 1
        # Content encoder: where the kernel may depend on what is in the picture (a real
        # camera's does not, much; the head is free to ignore it).
        layers: list[nn.Module] = []
        c = out_channels
        for i in range(3):
            layers += [nn.Conv2d(c, width * 2**i, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c = width * 2**i
        self.encoder = nn.Sequential(*layers)
        latent = self.noise_channels * latent_grid**2
        # LayerNorm keeps the head's features at unit scale whatever the image statistics, so
        # the output layers below move the kernel at a known rate.
        self.head = nn.Sequential(
            nn.Linear(2 * c + latent, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden),
            nn.LayerNorm(hidden, elementwise_affine=False),
        )
        self.hidden = hidden
        # Per-image kernel logits and camera parameters (exposure, log shot, log read noise):
        # a learned base shared by all images plus a per-image modulation from the head.
        self.kernel_out = nn.Linear(hidden, kernel_size**2)
        self.camera_out = nn.Linear(hidden, 3)
        self.kernel_base = nn.Parameter(torch.zeros(kernel_size**2))
        self.camera_base = nn.Parameter(torch.zeros(3))
        self._init(init_sigma, init_noise)
        self.last_kernels: Tensor | None = None

    def _init(self, sigma: float, noise: tuple[float, float]) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)
        # The modulation starts nearly off (every image gets the base kernel and camera), but
        # not exactly: zero weights would stop gradients to the encoder and head.
        for out in (self.kernel_out, self.camera_out):
            nn.init.normal_(out.weight, 0.0, 1e-3)
        r = torch.arange(self.kernel_size, dtype=torch.float32) - self.kernel_size // 2
        d2 = (r[:, None] ** 2 + r[None, :] ** 2).flatten()
        shot, read = noise
        with torch.no_grad():
            self.kernel_base.copy_(-d2 / (2 * max(sigma, 0.1) ** 2) / self.rate)
            # Exposure gain 1 + (max - 1) * sigmoid(-4) ~ 1: no saturation to start with.
            start = torch.tensor([-4.0, math.log(max(shot, _EPS)), math.log(max(read, _EPS))])
            self.camera_base.copy_(start / self.rate)

    def _params(self, out: nn.Linear, base: Tensor, h: Tensor) -> Tensor:
        """``rate * (base + out(h) / hidden)``, (B, n).

        Adam moves every parameter by about the learning rate per step, whatever its gradient's
        scale; ``rate`` lets these few parameters travel the several units a kernel or a noise
        level needs within a few hundred steps, and dividing by ``hidden`` keeps a consistent
        push through the head's many weights at the same pace as one through ``base``.
        """
        return self.rate * (base + out(h) / self.hidden)

    def kernels_and_camera(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The per-image rendering parameters: ``(kernels, exposure, shot, read)``.

        Shape:
            - x: :math:`(B, C_{out} + C_{noise}, H, W)`
            - kernels: :math:`(B, k, k)`; exposure, shot, read: :math:`(B,)`
        """
        image, noise = x[:, : self.image_channels], x[:, self.image_channels :]
        feats = self.encoder(image)
        pooled = torch.cat([feats.mean((2, 3)), feats.amax((2, 3))], dim=1)
        h = self.head(torch.cat([pooled, noise_latent(noise, self.latent_grid)], dim=1))
        logits = self._params(self.kernel_out, self.kernel_base, h)
        kernels = logits.softmax(dim=1).view(-1, self.kernel_size, self.kernel_size)
        cam = self._params(self.camera_out, self.camera_base, h)
        exposure = 1.0 + (self.max_exposure - 1.0) * torch.sigmoid(cam[:, 0])
        # Noise levels in log space: they span decades, and no gradient dies near zero.
        shot, read = cam[:, 1].exp(), cam[:, 2].exp()
        return kernels, exposure, shot, read

    def forward(self, x: Tensor) -> Tensor:
        """Blur the image part of ``x`` with its predicted kernel and camera.

        Args:
            x: images with the noise channels appended.

        Returns:
            The blurred images.

        Shape:
            - x: :math:`(B, C_{out} + C_{noise}, H, W)`
            - output: :math:`(B, C_{out}, H, W)`
        """
        kernels, exposure, shot, read = self.kernels_and_camera(x)
        self.last_kernels = kernels.detach()
        return render_camera_blur(
            x[:, : self.image_channels], kernels, exposure, shot, read, self.gamma, self.noise
        )


def splat_trajectories(points: Tensor, size: int) -> Tensor:
    """Draw point trajectories into normalised ``size x size`` kernels with bilinear weights.

    Differentiable in the point positions, so a loss on the blurred image reaches the path.

    Args:
        points: positions in pixels relative to the kernel centre, ``(x, y)`` order; points
            beyond the grid are clamped onto its border.
        size: kernel side (odd).

    Returns:
        Kernels, non-negative, each summing to one.

    Shape:
        - points: :math:`(B, T, 2)`
        - output: :math:`(B, size, size)`
    """
    half = size // 2
    p = points.clamp(-half, half)
    grid = torch.arange(-half, half + 1, device=p.device, dtype=p.dtype)
    # Tent weights: each point spreads over its (up to) 4 neighbouring pixels.
    wx = (1.0 - (p[..., 0:1] - grid).abs()).clamp_min(0.0)  # (B, T, size)
    wy = (1.0 - (p[..., 1:2] - grid).abs()).clamp_min(0.0)
    kernels = torch.einsum("bty,btx->byx", wy, wx)
    return kernels / kernels.sum((1, 2), keepdim=True).clamp_min(_EPS)


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
    - **Sensor.** Gamma, exposure gain with saturation, Poisson-Gaussian noise, as
      :func:`render_camera_blur`.

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
        - Output: :math:`(B, C_{out}, H, W)` in [0, 1]; ``last_kernels``: :math:`(B, k, k)`
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
        _check_camera(kernel_size, gamma, max_exposure, rate)
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
        self.last_kernels: Tensor | None = None

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
        return splat_trajectories(dense, self.kernel_size)

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
        image, noise = x[:, : self.image_channels], x[:, self.image_channels :]
        if self.training:
            with torch.no_grad():
                self._update_average()
        kernels = self.kernels(noise)
        self.last_kernels = kernels.detach()
        stats = self.statistics()
        b = x.shape[0]
        return render_camera_blur(
            image,
            kernels,
            stats["exposure"].expand(b),
            stats["shot"].expand(b),
            stats["read"].expand(b),
            self.gamma,
            self.noise,
        )
