"""Losses: adversarial forms (the paper's relativistic blur loss and others), perceptual, LPIPS,
frequency and content losses.

Adversarial losses share one interface, ``d_loss(real_logits, fake_logits)`` and
``g_loss(real_logits, fake_logits)``, where logits are raw discriminator outputs (a tensor, or a
list of tensors from a multi-scale D: the loss is averaged over scales). Every two-term loss is
the *mean* of its two terms (halved), as ESRGAN and DeblurGAN-v2 do, so that every form equals 1
at the "D cannot tell" point of the relativistic forms and the adversarial weights from those
papers carry over.

Reconstruction losses are ``nn.Module``s with ``forward(pred, target) -> scalar``, [0, 1] inputs,
and ~0 for identical inputs. Plain L1/L2 need no wrapper: configure ``torch.nn.L1Loss`` or
``torch.nn.MSELoss`` directly with ``_target_``. :class:`PyramidLoss` wraps any of them to
supervise every scale of a coarse-to-fine generator.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from realblur_gan.errors import ArgumentError
from realblur_gan.weights.backbones import load_state_dict, resolve_weights

log = logging.getLogger(__name__)

Logits = Tensor | list[Tensor]


def _at_least_float32(x: Tensor) -> Tensor:
    """``x`` in float32 when it is of lower precision (autocast's bfloat16), else as it is."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


class AdversarialLoss(nn.Module):
    """Base of the adversarial losses: applies a per-scale loss and averages over scales.

    Subclasses implement :meth:`_d` and :meth:`_g` for one logit map. ``real_logits`` is
    detached inside :meth:`g_loss`: the generator step must not push gradient into D through
    the real branch; gradient reaches G through ``fake_logits`` only, which is never detached.
    """

    def d_loss(self, real_logits: Logits, fake_logits: Logits) -> Tensor:
        """Discriminator loss (call with fakes detached from G).

        Args:
            real_logits: D's raw output on real images (tensor or per-scale list).
            fake_logits: D's raw output on generated images (same structure).

        Returns:
            Scalar loss.

        Shape:
            - real_logits, fake_logits: :math:`(B, 1, h, w)` or a list of such maps
        """
        return _over_scales(self._d, real_logits, fake_logits)

    def g_loss(self, real_logits: Logits | None, fake_logits: Logits) -> Tensor:
        """Generator loss; gradient flows into G through ``fake_logits``.

        Args:
            real_logits: D's raw output on real images (detached here); may be ``None`` for
                the non-relativistic forms, which do not use it.
            fake_logits: D's raw output on generated images, attached to G's graph.

        Returns:
            Scalar loss.

        Shape:
            - real_logits, fake_logits: :math:`(B, 1, h, w)` or a list of such maps
        """
        if real_logits is not None:
            real_logits = _detach(real_logits)
        return _over_scales(self._g, real_logits, fake_logits)

    def _d(self, real: Tensor, fake: Tensor) -> Tensor:
        raise NotImplementedError

    def _g(self, real: Tensor | None, fake: Tensor) -> Tensor:
        raise NotImplementedError


class RelativisticLSGANLoss(AdversarialLoss):
    """Relativistic average least squares: the paper's relativistic blur loss (RBL).

    With C the raw D output and E the mean over batch and patches:

    - D: ½ (E_r[(C(r) − E_f C(f) − 1)²] + E_f[(C(f) − E_r C(r) + 1)²])
    - G: ½ (E_f[(C(f) − E_r C(r) − 1)²] + E_r[(C(r) − E_f C(f) + 1)²])

    Both G terms depend on the fakes (the second through E_f C(f)), so G gets gradient from both.
    Equal critic outputs give 1 for both losses.
    """

    def _d(self, real: Tensor, fake: Tensor) -> Tensor:
        return 0.5 * (
            ((real - fake.mean() - 1) ** 2).mean() + ((fake - real.mean() + 1) ** 2).mean()
        )

    def _g(self, real: Tensor | None, fake: Tensor) -> Tensor:
        real = _require_real(real, self)
        return 0.5 * (
            ((fake - real.mean() - 1) ** 2).mean() + ((real - fake.mean() + 1) ** 2).mean()
        )


class RelativisticBCELoss(AdversarialLoss):
    """Relativistic average GAN with the logistic loss (RaGAN, as ESRGAN).

    - D: ½ (BCE(C(r) − E_f C(f), 1) + BCE(C(f) − E_r C(r), 0))
    - G: ½ (BCE(C(r) − E_f C(f), 0) + BCE(C(f) − E_r C(r), 1))
    """

    def _d(self, real: Tensor, fake: Tensor) -> Tensor:
        return 0.5 * (_bce(real - fake.mean(), 1.0) + _bce(fake - real.mean(), 0.0))

    def _g(self, real: Tensor | None, fake: Tensor) -> Tensor:
        real = _require_real(real, self)
        return 0.5 * (_bce(real - fake.mean(), 0.0) + _bce(fake - real.mean(), 1.0))


class VanillaGANLoss(AdversarialLoss):
    """The original GAN loss with the non-saturating generator loss (pix2pix's ``vanilla``).

    - D: ½ (BCE(C(r), 1) + BCE(C(f), 0))
    - G: BCE(C(f), 1)
    """

    def _d(self, real: Tensor, fake: Tensor) -> Tensor:
        return 0.5 * (_bce(real, 1.0) + _bce(fake, 0.0))

    def _g(self, real: Tensor | None, fake: Tensor) -> Tensor:
        return _bce(fake, 1.0)


class LSGANLoss(AdversarialLoss):
    """Least-squares GAN (Mao et al.; pix2pix's ``lsgan``).

    - D: ½ (E[(C(r) − 1)²] + E[C(f)²])
    - G: E[(C(f) − 1)²]
    """

    def _d(self, real: Tensor, fake: Tensor) -> Tensor:
        return 0.5 * (((real - 1) ** 2).mean() + (fake**2).mean())

    def _g(self, real: Tensor | None, fake: Tensor) -> Tensor:
        return ((fake - 1) ** 2).mean()


class HingeGANLoss(AdversarialLoss):
    """Hinge loss (SAGAN, BigGAN).

    - D: ½ (E[max(0, 1 − C(r))] + E[max(0, 1 + C(f))])
    - G: −E[C(f)]
    """

    def _d(self, real: Tensor, fake: Tensor) -> Tensor:
        return 0.5 * (F.relu(1 - real).mean() + F.relu(1 + fake).mean())

    def _g(self, real: Tensor | None, fake: Tensor) -> Tensor:
        return -fake.mean()


def _bce(logits: Tensor, target: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _detach(logits: Logits) -> Logits:
    if isinstance(logits, list | tuple):
        return [x.detach() for x in logits]
    return logits.detach()


def _require_real(real: Tensor | None, loss: AdversarialLoss) -> Tensor:
    if real is None:
        raise ValueError(f"{type(loss).__name__}.g_loss is relativistic: it needs real_logits")
    return real


def _over_scales(
    fn: Callable[[Tensor | None, Tensor], Tensor], real: Logits | None, fake: Logits
) -> Tensor:
    if isinstance(fake, Tensor):
        if isinstance(real, list | tuple):
            raise ValueError("real_logits is a list but fake_logits is a tensor")
        return fn(real, fake)
    if real is None:
        return torch.stack([fn(None, f) for f in fake]).mean()
    if not isinstance(real, list | tuple) or len(real) != len(fake):
        raise ValueError("real_logits and fake_logits must have the same number of scales")
    return torch.stack([fn(r, f) for r, f in zip(real, fake, strict=True)]).mean()


# VGG19 layer names in torchvision's ``vgg19().features`` order: conv/relu per conv, pool per block.
_VGG19_BLOCKS = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))
_VGG19_FILE = "vgg19-dcbb9e9d.pth"
_VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"


def vgg19_layer_names() -> list[str]:
    """Names of ``torchvision.models.vgg19().features`` layers, in order.

    Returns:
        ``["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1", ..., "pool5"]``.
    """
    names = []
    for block, (n_convs, _) in enumerate(_VGG19_BLOCKS, start=1):
        for i in range(1, n_convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


def _vgg19_features(n_layers: int) -> nn.Sequential:
    # Same layer indices as torchvision's vgg19().features, so its state dict keys load as is,
    # but built only up to the layer we need and without the 120 M-parameter classifier.
    layers: list[nn.Module] = []
    c_in = 3
    for n_convs, width in _VGG19_BLOCKS:
        for _ in range(n_convs):
            layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU(inplace=True)]
            c_in = width
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers[:n_layers])


class PerceptualLoss(nn.Module):
    """Distance between VGG19 features of prediction and target (Johnson et al.).

    Only the VGG19 slice up to ``layer`` is built; it is frozen and stays in eval mode. Inputs
    in [0, 1] are normalised with the ImageNet statistics; gray inputs are repeated to RGB.
    Target features are computed without gradient (the target is a constant).

    Weights come from ``weights_path`` or the torch hub cache
    (``torch.hub.get_dir()/checkpoints/vgg19-dcbb9e9d.pth``) and are never downloaded here.

    Args:
        layer: VGG19 layer whose output is compared, e.g. ``"relu1_2"``, ``"relu2_2"``,
            ``"relu3_4"``, ``"relu4_4"``, ``"relu5_4"`` or a pre-activation ``"conv5_4"``.
        weights_path: torchvision's ``vgg19-dcbb9e9d.pth`` (or a state dict of its
            ``features``); ``None`` to use the hub cache.
        criterion: ``"l1"`` or ``"mse"``.
        random_init_for_tests: build a randomly initialised VGG19 instead of loading weights.
            Only for tests; never a fallback.

    Raises:
        MissingPretrainedWeights: when the weight file cannot be found.

    Shape:
        - pred, target: :math:`(B, C, H, W)` in [0, 1], C in {1, 3}
        - output: scalar
    """

    def __init__(
        self,
        layer: str = "relu3_4",
        weights_path: str | None = None,
        criterion: str = "l1",
        random_init_for_tests: bool = False,
    ) -> None:
        super().__init__()
        names = vgg19_layer_names()
        if layer not in names:
            raise ArgumentError("layer", layer, f"unknown VGG19 layer; choose one of {names}")
        if criterion not in ("l1", "mse"):
            raise ArgumentError("criterion", criterion, "must be 'l1' or 'mse'")
        self.layer = layer
        self.criterion = criterion
        self.features = _vgg19_features(names.index(layer) + 1)
        if random_init_for_tests:
            log.warning("PerceptualLoss uses a randomly initialised VGG19 (tests only)")
        else:
            path = resolve_weights(
                _VGG19_FILE, weights_path, _VGG19_URL, config_hint="PerceptualLoss.weights_path"
            )
            self._load(path)
        self.features.requires_grad_(False)
        self.features.eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), False)

    def _load(self, path: Path) -> None:
        state = load_state_dict(path)
        n = len(self.features)
        wanted = {}
        for key, value in state.items():
            key = key.removeprefix("features.")
            index = key.split(".", 1)[0]
            if index.isdigit() and int(index) < n:
                wanted[key] = value
        try:
            self.features.load_state_dict(wanted, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{path} does not hold torchvision VGG19 weights: {err}") from err

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Keep the frozen backbone in eval mode whatever the parent module does."""
        super().train(mode)
        self.features.eval()
        return self

    def _embed(self, x: Tensor) -> Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.features((x - self.mean) / self.std)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Compute the feature distance.

        Args:
            pred: predicted images in [0, 1].
            target: target images in [0, 1].

        Returns:
            Scalar loss.
        """
        with torch.no_grad():
            target_features = self._embed(target)
        pred_features = self._embed(pred)
        if self.criterion == "l1":
            return F.l1_loss(pred_features, target_features)
        return F.mse_loss(pred_features, target_features)


# LPIPS backbones: torchvision checkpoint file and URL for each ``lpips.LPIPS(net=...)``.
_LPIPS_BACKBONES = {
    "alex": ("alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/"),
    "vgg": ("vgg16-397923af.pth", "https://download.pytorch.org/models/"),
    "squeeze": ("squeezenet1_1-b8a52dc0.pth", "https://download.pytorch.org/models/"),
}


class LPIPSLoss(nn.Module):
    """Learned perceptual image patch similarity (Zhang et al. 2018) via the ``lpips`` package.

    The linear calibration layers ship inside the ``lpips`` package. The backbone (AlexNet,
    VGG16 or SqueezeNet) would be downloaded by ``lpips`` through torchvision; instead it is
    built randomly initialised and then loaded from ``weights_path`` or the torch hub cache, so
    nothing is downloaded at run time. The whole model is frozen and stays in eval mode.

    Args:
        net: ``"alex"``, ``"vgg"`` or ``"squeeze"``.
        weights_path: the torchvision checkpoint of the backbone (e.g.
            ``alexnet-owt-7be5be79.pth``); ``None`` to use the hub cache.
        random_init_for_tests: keep the random backbone. Only for tests; never a fallback.

    Raises:
        MissingPretrainedWeights: when the backbone weight file cannot be found.

    Shape:
        - pred, target: :math:`(B, C, H, W)` in [0, 1], C in {1, 3}
        - output: scalar (mean LPIPS over the batch)
    """

    def __init__(
        self,
        net: str = "alex",
        weights_path: str | None = None,
        random_init_for_tests: bool = False,
    ) -> None:
        super().__init__()
        if net not in _LPIPS_BACKBONES:
            raise ArgumentError("net", net, f"must be one of {sorted(_LPIPS_BACKBONES)}")
        import lpips  # imported here: it is only needed when this loss is configured

        path = None
        if not random_init_for_tests:
            filename, base_url = _LPIPS_BACKBONES[net]
            path = resolve_weights(
                filename, weights_path, base_url + filename, config_hint="LPIPSLoss.weights_path"
            )
        with warnings.catch_warnings():
            # lpips passes torchvision's deprecated ``pretrained=False``; harmless here.
            warnings.simplefilter("ignore", UserWarning)
            self.model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
        if path is None:
            log.warning("LPIPSLoss uses a randomly initialised %s backbone (tests only)", net)
        else:
            self._load_backbone(path)
        self.model.requires_grad_(False)
        self.model.eval()

    def _load_backbone(self, path: Path) -> None:
        # lpips splits torchvision's ``features`` into slices whose children keep their original
        # index as name; gather them back into one container so the checkpoint keys line up.
        features = nn.Module()
        for slice_ in self.model.net.children():
            for name, module in slice_.named_children():
                features.add_module(name, module)
        wanted = {}
        for key, value in load_state_dict(path).items():
            if key.startswith("features."):
                key = key.removeprefix("features.")
                if hasattr(features, key.split(".", 1)[0]):
                    wanted[key] = value
        try:
            features.load_state_dict(wanted, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{path} does not match the LPIPS backbone: {err}") from err

    def train(self, mode: bool = True) -> LPIPSLoss:
        """Keep the frozen model (its dropout included) in eval mode."""
        super().train(mode)
        self.model.eval()
        return self

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Compute the mean LPIPS distance.

        Args:
            pred: predicted images in [0, 1].
            target: target images in [0, 1].

        Returns:
            Scalar loss.
        """
        if pred.shape[1] == 1:
            pred, target = pred.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
        # lpips expects [-1, 1].
        return self.model(pred * 2 - 1, target * 2 - 1).mean()


class PSNRLoss(nn.Module):
    """Negative PSNR of each image, averaged: ``10 log10(mean((pred − target)²) + eps)``.

    The loss NAFNet trains its deblurring nets with. Its gradient is the MSE gradient divided by
    the image's own MSE, so it does not fade as the net improves (plain MSE's gradient shrinks
    with the error, and any other term, an adversarial one above all, then takes over), and
    every image counts by its dB, as the metric does, not by its raw error.

    Args:
        eps: added to each MSE so that identical images give a finite loss.

    Shape:
        - pred, target: :math:`(B, C, H, W)`
        - output: scalar (dB; lower is better, about −25 to −35 for good restorations)
    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            pred: predicted images.
            target: target images.

        Returns:
            Scalar loss.
        """
        mse = ((_at_least_float32(pred) - _at_least_float32(target)) ** 2).flatten(1).mean(dim=1)
        return 10.0 * torch.log10(mse + self.eps).mean()


class FFTAmplitudeLoss(nn.Module):
    """L1 distance between the 2-D Fourier amplitudes of prediction and target.

    Blur removes high-frequency energy; a pixel loss alone is content with a slightly soft
    answer, this term asks for the missing spectrum back (the frequency term of MIMO-UNet and
    NAFNet-style recipes). Phase is left to the pixel term. Orthonormal DFT, computed in float32.

    Shape:
        - pred, target: :math:`(B, C, H, W)`
        - output: scalar
    """

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            pred: predicted images.
            target: target images.

        Returns:
            Scalar loss.
        """
        amp_p = torch.fft.rfft2(_at_least_float32(pred), norm="ortho").abs()
        amp_t = torch.fft.rfft2(_at_least_float32(target), norm="ortho").abs()
        return (amp_p - amp_t).abs().mean()


class DetailEnergyLoss(nn.Module):
    """How much local detail the prediction lacks against the target, in dB, one-sided.

    Deblurring nets trained with a pixel loss answer ambiguous texture with its average: the
    output is smoother than the sharp image (measured here: every trained net made real photos
    blurrier than their input). This term measures the energy of a Laplacian in ``window``-px
    windows of both images and charges ``10 log10(E_target / E_pred)`` where the prediction has
    less, nothing where it has more, so it asks for texture back without paying for any given
    pixel pattern (the pixel term still decides which). Scale-free like :class:`PSNRLoss`: a window
    with half the target's detail energy costs 3 dB.

    ``scales`` picks the bands: the Laplacian of the images area-averaged by each factor. The
    finest band of a real sharp frame is mostly sensor noise, which no net can recover from a
    frame average. Measured on GoPro validation frames where the packaged model gains +1 dB: its
    output lacks as much detail energy at 1/2 scale as the blurry input (3.6-4.3 dB), and only
    about 0.4 dB less at 1/4 scale (docs/generalisation.md).

    Args:
        scales: area-averaging factors of the bands; the loss is their mean.
        window: side of the square windows the energy is averaged over, in pixels of each band.
        eps: energy floor (squared [0, 1] units) so flat windows of both images cost nothing.

    Shape:
        - pred, target: :math:`(B, C, H, W)`, H and W at least ``max(scales) * (window + 2)``
        - output: scalar (dB, >= 0)
    """

    def __init__(self, scales: Sequence[int] = (1,), window: int = 16, eps: float = 1e-4) -> None:
        super().__init__()
        if not scales or any(int(k) < 1 for k in scales):
            raise ArgumentError("scales", scales, "must be a non-empty list of factors >= 1")
        if window < 1:
            raise ArgumentError("window", window, "must be >= 1")
        if eps <= 0:
            raise ArgumentError("eps", eps, "must be > 0")
        self.scales = tuple(int(k) for k in scales)
        self.window = window
        self.eps = eps
        kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
        self.register_buffer("kernel", kernel.view(1, 1, 3, 3), persistent=False)

    def energy(self, x: Tensor) -> Tensor:
        """Mean squared Laplacian of each channel in ``window``-px windows.

        Args:
            x: images, :math:`(B, C, H, W)`.

        Returns:
            :math:`(B, C, (H - 2) // window, (W - 2) // window)`.
        """
        x = _at_least_float32(x)
        c = x.shape[1]
        # Valid convolution: a padded border would add detail that neither image has.
        lap = F.conv2d(x, self.kernel.to(x.dtype).expand(c, 1, 3, 3), groups=c)
        return F.avg_pool2d(lap.square(), self.window)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            pred: predicted images.
            target: sharp images.

        Returns:
            Scalar loss.
        """
        losses = []
        for k in self.scales:
            p, t = (F.avg_pool2d(pred, k), F.avg_pool2d(target, k)) if k > 1 else (pred, target)
            ratio = (self.energy(t) + self.eps) / (self.energy(p) + self.eps)
            losses.append((10.0 * torch.log10(ratio)).clamp(min=0.0).mean())
        return torch.stack(losses).mean()


class LowPassL1Loss(nn.Module):
    """L1 distance between area-downsampled images.

    BGAN must keep the sharp input's content and colours while adding blur; a plain L1 to the
    sharp image would pull it back to the identity, whereas comparing ``factor``-times
    downsampled copies only constrains the frequencies that blur leaves (mostly) untouched.

    Args:
        factor: Downsampling factor (area average over ``factor x factor`` blocks).

    Shape:
        - pred, target: (B, C, H, W), H and W multiples of ``factor``.
        - output: scalar.
    """

    def __init__(self, factor: int = 4) -> None:
        super().__init__()
        if factor < 1:
            raise ArgumentError("factor", factor, "must be >= 1")
        self.factor = factor

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            pred: predicted images.
            target: reference images.

        Returns:
            Scalar loss.
        """
        if self.factor > 1:
            pred = F.avg_pool2d(pred, self.factor)
            target = F.avg_pool2d(target, self.factor)
        return F.l1_loss(pred, target)


def multiscale_content_loss(
    outputs: list[Tensor], target: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor]
) -> Tensor:
    """Average a content loss over a pyramid of outputs (DeepDeblur's multi-scale loss).

    The target is average-pooled to each output's size (the same pooling the generator applies
    to its input), so every scale is supervised with a consistent target.

    Args:
        outputs: outputs of ``MultiScaleGenerator.forward_pyramid``, any order.
        target: full-resolution target.
        loss_fn: ``loss_fn(pred, target) -> scalar``, e.g. ``torch.nn.L1Loss()``.

    Returns:
        The mean of the per-scale losses.

    Shape:
        - outputs: list of :math:`(B, C, H / k, W / k)` with integer k
        - target: :math:`(B, C, H, W)`
    """
    if not outputs:
        raise ValueError("multiscale_content_loss needs at least one output")
    losses = []
    for out in outputs:
        factor = target.shape[-1] // out.shape[-1]
        t = F.avg_pool2d(target, factor) if factor > 1 else target
        if t.shape != out.shape:
            raise ValueError(f"output {tuple(out.shape)} does not match target {tuple(t.shape)}")
        losses.append(loss_fn(out, t))
    return torch.stack(losses).mean()


class PyramidLoss(nn.Module):
    """``fn`` averaged over every scale of a coarse-to-fine generator (DeepDeblur).

    A GAN objective hands a term the generator's whole pyramid (coarsest first, last = the
    full-resolution output) when the term's loss has ``accepts_pyramid`` set, as this class
    does; every other term sees the full-resolution output only. Multi-scale supervision is
    thus chosen by wrapping a term's ``fn`` in this class in the config, not by a term's name.
    On a single output (any generator without a pyramid) it is exactly ``fn``.

    Args:
        fn: The per-scale loss, ``fn(pred, target) -> scalar``.

    Shape:
        - pred: :math:`(B, C, H, W)` or a list of :math:`(B, C, H / k, W / k)`
        - target: :math:`(B, C, H, W)`
        - output: scalar
    """

    accepts_pyramid = True

    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, pred: Tensor | list[Tensor], target: Tensor) -> Tensor:
        """Compute ``fn`` on the one output, or its mean over the pyramid.

        Args:
            pred: the generator's output or its pyramid of outputs.
            target: full-resolution target.

        Returns:
            Scalar loss.
        """
        if isinstance(pred, Tensor):
            return self.fn(pred, target)
        return multiscale_content_loss(list(pred), target, self.fn)
