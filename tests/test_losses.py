"""Losses: adversarial forms (gradient into G, values at known points), reconstruction losses
(zero for identical inputs, growing with blur) and the pretrained-weights story."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import kornia
import lpips
import pytest
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from realblur_gan.errors import ArgumentError
from realblur_gan.nets import MultiScalePatchGAN, PatchGAN
from realblur_gan.training.losses import (
    AdversarialLoss,
    DetailEnergyLoss,
    FFTAmplitudeLoss,
    HingeGANLoss,
    LPIPSLoss,
    LSGANLoss,
    PerceptualLoss,
    RelativisticBCELoss,
    RelativisticLSGANLoss,
    VanillaGANLoss,
)
from realblur_gan.weights.backbones import MissingPretrainedWeights

ADVERSARIAL = [
    RelativisticLSGANLoss,
    RelativisticBCELoss,
    VanillaGANLoss,
    LSGANLoss,
    HingeGANLoss,
]


@pytest.fixture
def hub_dir(tmp_path: Path) -> Iterator[Path]:
    """Point the torch hub cache at an empty temporary folder, and restore it afterwards."""
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        yield tmp_path / "hub"
    finally:
        torch.hub.set_dir(old)


def _image(
    seed: int = 0, channels: int = 3, size: int = 32, device: torch.device | str = "cpu"
) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, channels, size, size, generator=g).to(device)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = 2 * math.ceil(3 * sigma) + 1
    return kornia.filters.gaussian_blur2d(x, (k, k), (sigma, sigma))


def _assert_grows_with_blur(loss: nn.Module, x: torch.Tensor, zero_tol: float = 1e-6) -> None:
    assert loss(x, x).item() == pytest.approx(0.0, abs=zero_tol)
    values = [loss(_blur(x, s), x).item() for s in (0.5, 1.0, 2.0)]
    assert values[0] > zero_tol
    assert values == sorted(values), values


# --- adversarial ---------------------------------------------------------------------------


@pytest.mark.parametrize("loss_cls", ADVERSARIAL)
@pytest.mark.parametrize("multiscale", [False, True])
def test_g_loss_sends_gradient_into_generator(loss_cls: type, multiscale: bool) -> None:
    torch.manual_seed(0)
    gen = nn.Conv2d(3, 3, 3, padding=1)
    disc = (
        MultiScalePatchGAN(width=4, n_layers=1, norm="none")
        if multiscale
        else PatchGAN(width=4, n_layers=1, norm="none")
    )
    disc.requires_grad_(False)  # as the spine does in the generator step
    real, sharp = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        real_logits = disc(real)
    loss = loss_cls().g_loss(real_logits, disc(gen(sharp)))
    loss.backward()
    for p in gen.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert all(p.grad is None for p in disc.parameters())


@pytest.mark.parametrize("loss_cls", ADVERSARIAL)
def test_d_loss_sends_gradient_into_discriminator(loss_cls: type) -> None:
    disc = PatchGAN(width=4, n_layers=1, norm="none")
    fake = torch.rand(2, 3, 32, 32)
    loss = loss_cls().d_loss(disc(torch.rand(2, 3, 32, 32)), disc(fake.detach()))
    loss.backward()
    # Not every parameter: with hinge, the last bias's gradients from real and fake cancel.
    assert all(p.grad is not None for p in disc.parameters())
    assert sum(p.grad.abs().sum() for p in disc.parameters()) > 0


def test_rbl_generator_gradient_uses_both_terms() -> None:
    # At C(r) = C(f) = 0 each G term contributes -1/N to d loss / d C(f_i) (after halving);
    # an implementation that drops the fake dependence of the second term would give -1/N.
    fake = torch.zeros(2, 1, 3, 3, requires_grad=True)
    real = torch.zeros(2, 1, 4, 4)
    RelativisticLSGANLoss().g_loss(real, fake).backward()
    torch.testing.assert_close(fake.grad, torch.full_like(fake, -2 / fake.numel()))


@pytest.mark.parametrize("c", [-3.0, 0.0, 0.7])
def test_rbl_at_known_points(c: float) -> None:
    rbl = RelativisticLSGANLoss()
    same = torch.full((2, 1, 5, 5), c)
    # Equal critic outputs: every relativistic difference is 0, each term is 1, halved mean 1.
    assert rbl.d_loss(same, same).item() == pytest.approx(1.0)
    assert rbl.g_loss(same, same).item() == pytest.approx(1.0)
    # A perfect critic (real one above fake): D loss 0, G loss ½ (2² + 2²) = 4.
    real, fake = torch.full((2, 1, 5, 5), c + 0.5), torch.full((3, 1, 4, 4), c - 0.5)
    assert rbl.d_loss(real, fake).item() == pytest.approx(0.0)
    assert rbl.g_loss(real, fake).item() == pytest.approx(4.0)


def test_rbl_gradcheck() -> None:
    real = torch.randn(2, 1, 3, 3, dtype=torch.float64)
    fake = torch.randn(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    rbl = RelativisticLSGANLoss()
    assert torch.autograd.gradcheck(lambda f: rbl.g_loss(real, f), (fake,))
    assert torch.autograd.gradcheck(lambda f: rbl.d_loss(real, f), (fake,))


def test_rbl_matches_formula_on_random_logits() -> None:
    real, fake = torch.randn(2, 1, 6, 6), torch.randn(2, 1, 6, 6)
    er, ef = real.mean(), fake.mean()
    d = (((real - ef - 1) ** 2).mean() + ((fake - er + 1) ** 2).mean()) / 2
    g = (((fake - er - 1) ** 2).mean() + ((real - ef + 1) ** 2).mean()) / 2
    rbl = RelativisticLSGANLoss()
    torch.testing.assert_close(rbl.d_loss(real, fake), d)
    torch.testing.assert_close(rbl.g_loss(real, fake), g)


@pytest.mark.parametrize(
    ("loss_cls", "d_value", "g_value"),
    [
        (RelativisticBCELoss, math.log(2), math.log(2)),
        (VanillaGANLoss, math.log(2), math.log(2)),
        (LSGANLoss, 0.5, 1.0),
        (HingeGANLoss, 1.0, 0.0),
    ],
)
def test_other_forms_at_zero_logits(loss_cls: type, d_value: float, g_value: float) -> None:
    zero = torch.zeros(2, 1, 4, 4)
    assert loss_cls().d_loss(zero, zero).item() == pytest.approx(d_value)
    assert loss_cls().g_loss(zero, zero).item() == pytest.approx(g_value)


def test_multiscale_logits_average_over_scales() -> None:
    rbl = RelativisticLSGANLoss()
    real = [torch.randn(2, 1, 6, 6), torch.randn(2, 1, 2, 2)]
    fake = [torch.randn(2, 1, 6, 6), torch.randn(2, 1, 2, 2)]
    expected = (rbl.d_loss(real[0], fake[0]) + rbl.d_loss(real[1], fake[1])) / 2
    torch.testing.assert_close(rbl.d_loss(real, fake), expected)
    with pytest.raises(ValueError, match="same number of scales"):
        rbl.d_loss(real, fake[:1])


def test_relativistic_g_loss_needs_real_logits() -> None:
    fake = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match="needs real_logits"):
        RelativisticLSGANLoss().g_loss(None, fake)
    assert LSGANLoss().g_loss(None, [fake, fake]).item() == pytest.approx(1.0)
    assert isinstance(LSGANLoss(), AdversarialLoss)


# The choices of `loss/adversarial=...` (conf/loss/adversarial/), the default first.
FORMS = {
    "relativistic_lsgan": RelativisticLSGANLoss,
    "relativistic_bce": RelativisticBCELoss,
    "vanilla": VanillaGANLoss,
    "lsgan": LSGANLoss,
    "hinge": HingeGANLoss,
}


@pytest.mark.parametrize("form", FORMS)
def test_every_adversarial_form_is_a_config_choice(form: str) -> None:
    """`loss/adversarial=<form>` gives both GANs' objectives that form; no form is left out."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from realblur_gan.training.config import CONFIG_DIR

    choice = [] if form == "relativistic_lsgan" else [f"loss/adversarial={form}"]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["+scheme=joint", *choice])
    for name in ("bgan_pretrain", "bgan", "dbgan"):
        assert type(instantiate(cfg.loss[name]).adversarial) is FORMS[form], name
    files = (Path(CONFIG_DIR) / "loss" / "adversarial").glob("*.yaml")
    assert sorted(f.stem for f in files) == sorted(FORMS)
    assert sorted(FORMS.values(), key=str) == sorted(ADVERSARIAL, key=str)


# --- reconstruction ------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_frequency_content_loss_grows_with_blur(channels: int, device: torch.device) -> None:
    _assert_grows_with_blur(FFTAmplitudeLoss().to(device), _image(channels=channels, device=device))


@pytest.mark.parametrize("criterion", ["l1", "mse"])
def test_perceptual_loss_random_backbone(criterion: str, device: torch.device) -> None:
    torch.manual_seed(0)
    loss = PerceptualLoss(layer="relu2_2", criterion=criterion, random_init_for_tests=True)
    loss = loss.to(device)
    assert len(loss.features) == 9  # only the slice up to relu2_2
    _assert_grows_with_blur(loss, _image(device=device))
    _assert_grows_with_blur(loss, _image(channels=1, device=device))
    pred = _image(1, device=device).requires_grad_(True)
    loss(pred, _image(device=device)).backward()
    assert pred.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in loss.parameters())
    assert not loss.train().features.training


def test_perceptual_loss_rejects_unknown_layer() -> None:
    with pytest.raises(ValueError, match="unknown VGG19 layer"):
        PerceptualLoss(layer="relu3_5", random_init_for_tests=True)


def test_missing_vgg_weights_raise_a_helpful_error(hub_dir: Path) -> None:
    expected = hub_dir / "checkpoints" / "vgg19-dcbb9e9d.pth"
    with pytest.raises(MissingPretrainedWeights) as info:
        PerceptualLoss()
    message = str(info.value)
    assert str(expected) in message and "weights_path" in message and "\n" not in message
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(MissingPretrainedWeights, match="does not exist"):
        PerceptualLoss(weights_path=str(hub_dir / "nowhere.pth"))


def _fake_vgg19_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    # The first two convs of torchvision's VGG19, under torchvision's key names.
    state = {
        "features.0.weight": torch.randn(64, 3, 3, 3),
        "features.0.bias": torch.randn(64),
        "features.2.weight": torch.randn(64, 64, 3, 3),
        "features.2.bias": torch.randn(64),
        "classifier.0.bias": torch.randn(8),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_vgg_weights_load_from_hub_cache_and_path(hub_dir: Path, tmp_path: Path) -> None:
    state = _fake_vgg19_checkpoint(hub_dir / "checkpoints" / "vgg19-dcbb9e9d.pth")
    loss = PerceptualLoss(layer="relu1_2")
    torch.testing.assert_close(loss.features[2].weight, state["features.2.weight"])
    state = _fake_vgg19_checkpoint(tmp_path / "elsewhere.pth")
    loss = PerceptualLoss(layer="conv1_2", weights_path=str(tmp_path / "elsewhere.pth"))
    torch.testing.assert_close(loss.features[0].bias, state["features.0.bias"])
    with pytest.raises(ValueError, match="does not hold torchvision VGG19"):
        PerceptualLoss(layer="relu2_1", weights_path=str(tmp_path / "elsewhere.pth"))


def test_lpips(hub_dir: Path) -> None:
    with pytest.raises(MissingPretrainedWeights, match=r"alexnet-owt-7be5be79\.pth"):
        LPIPSLoss()
    torch.manual_seed(0)
    features = torchvision.models.alexnet(weights=None).features
    path = hub_dir / "checkpoints" / "alexnet-owt-7be5be79.pth"
    path.parent.mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    loss = LPIPSLoss()
    torch.testing.assert_close(getattr(loss.model.net.slice3, "6").weight, features[6].weight)
    # The calibration layers come from the weights shipped inside the lpips package.
    shipped = Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"
    lin = torch.load(shipped, map_location="cpu", weights_only=True)["lin0.model.1.weight"]
    torch.testing.assert_close(loss.model.lin0.model[1].weight, lin)
    assert not any(p.requires_grad for p in loss.parameters())
    assert not loss.train().model.training
    x = _image(size=64)
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(_blur(x, 2.0), x).item() > loss(_blur(x, 0.5), x).item() > 0


def test_dropped_optional_term_is_logged_once_naming_its_objective(
    hub_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from realblur_gan.training.objective import GANObjective

    vgg = {"_target_": "realblur_gan.training.losses.PerceptualLoss", "layer": "relu1_2"}
    with caplog.at_level(logging.WARNING, logger="realblur_gan.training.objective"):
        objective = GANObjective(
            {"_target_": "realblur_gan.training.losses.RelativisticLSGANLoss"},
            terms={"perceptual": {"weight": 0.1, "optional": True, "fn": vgg}},
            name="dbgan",
        )
    assert "perceptual" not in objective.terms
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("dbgan: loss term 'perceptual' dropped")


def test_lowpass_and_pyramid_losses_live_in_losses() -> None:
    from realblur_gan.training.losses import LowPassL1Loss, PyramidLoss

    x, y = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(
        LowPassL1Loss(4)(x, y), F.l1_loss(F.avg_pool2d(x, 4), F.avg_pool2d(y, 4))
    )
    # On one output a PyramidLoss is its inner loss, exactly.
    assert torch.equal(PyramidLoss(nn.MSELoss())(x, y), nn.MSELoss()(x, y))


# --- gradchecks (float64) --------------------------------------------------------------------


def _leaf(
    shape: tuple[int, ...], device: torch.device, dtype: torch.dtype, seed: int
) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=dtype).to(device).requires_grad_(True)


@pytest.mark.parametrize("dtype", [torch.float64])
@pytest.mark.parametrize("loss_cls", [RelativisticLSGANLoss, RelativisticBCELoss])
def test_relativistic_forms_gradcheck_in_real_and_fake_logits(
    loss_cls: type, device: torch.device, dtype: torch.dtype
) -> None:
    # D's loss carries gradient into C(r) and C(f); G's into C(f) through both of its terms
    # (the second through the mean E_f C(f)), and none into C(r), which it detaches: on one
    # scale and on two.
    loss = loss_cls()
    real, fake = _leaf((2, 1, 3, 3), device, dtype, 0), _leaf((2, 1, 4, 4), device, dtype, 1)
    assert torch.autograd.gradcheck(loss.d_loss, (real, fake))
    assert torch.autograd.gradcheck(lambda f: loss.g_loss(real, f), (fake,))
    assert torch.autograd.grad(loss.g_loss(real, fake), real, allow_unused=True)[0] is None
    r1, f1 = _leaf((2, 1, 2, 2), device, dtype, 2), _leaf((2, 1, 2, 2), device, dtype, 3)

    def two_scales(f0: torch.Tensor, f1: torch.Tensor) -> torch.Tensor:
        return loss.g_loss([real, r1], [f0, f1])

    assert torch.autograd.gradcheck(two_scales, (fake, f1))
    assert torch.autograd.gradcheck(lambda r0, r1: loss.d_loss([r0, r1], [fake, f1]), (real, r1))


@pytest.mark.parametrize("dtype", [torch.float64])
@pytest.mark.parametrize("term", ["content", "frequency"])
def test_dbgan_content_terms_gradcheck(term: str, device: torch.device, dtype: torch.dtype) -> None:
    # DBGAN's default content and frequency terms, on prediction and target alike (float64 all
    # the way: the terms promote only lower precisions to float32).
    from realblur_gan.training.losses import FFTAmplitudeLoss, PSNRLoss

    loss_cls = {"content": PSNRLoss, "frequency": FFTAmplitudeLoss}[term]
    pred, target = _leaf((2, 3, 6, 8), device, dtype, 0), _leaf((2, 3, 6, 8), device, dtype, 1)
    assert loss_cls()(pred, target).dtype == dtype
    assert torch.autograd.gradcheck(loss_cls(), (pred, target))


@pytest.mark.parametrize("dtype", [torch.float64])
def test_pyramid_and_lowpass_terms_gradcheck(device: torch.device, dtype: torch.dtype) -> None:
    from realblur_gan.training.losses import LowPassL1Loss, PSNRLoss, PyramidLoss

    target = _leaf((1, 3, 8, 8), device, dtype, 0)
    coarse, fine = _leaf((1, 3, 4, 4), device, dtype, 1), _leaf((1, 3, 8, 8), device, dtype, 2)
    pyramid = PyramidLoss(PSNRLoss())
    assert torch.autograd.gradcheck(lambda c, f, t: pyramid([c, f], t), (coarse, fine, target))
    assert torch.autograd.gradcheck(LowPassL1Loss(factor=2), (fine, target))


# --- detail energy ---------------------------------------------------------------------------


@pytest.mark.parametrize("scales", [(1,), (1, 2)])
def test_detail_energy_loss_grows_with_blur(scales: tuple[int, ...], device: torch.device) -> None:
    loss = DetailEnergyLoss(scales=scales, window=8).to(device)
    _assert_grows_with_blur(loss, _image(size=64, device=device))


def test_detail_energy_loss_charges_missing_detail_in_db_and_nothing_for_extra() -> None:
    loss = DetailEnergyLoss(window=8, eps=1e-12)
    target = _image(size=34)
    # Half the contrast, same mean: a quarter of the Laplacian's energy in every window, 6.02 dB.
    flat = 0.5 * target + 0.25
    assert loss(flat, target).item() == pytest.approx(10 * math.log10(4), abs=1e-4)
    # One-sided: a prediction with more detail than the target costs nothing.
    assert loss(target, flat).item() == 0.0


def test_detail_energy_loss_sends_gradient_towards_detail() -> None:
    target = _image(size=64)
    pred = _blur(target, 1.5).requires_grad_(True)
    DetailEnergyLoss(scales=(1, 2), window=8)(pred, target).backward()
    # A small step against the gradient adds detail energy, so the loss falls.
    step = (pred - 1e-3 * pred.grad / pred.grad.abs().max()).detach()
    loss = DetailEnergyLoss(scales=(1, 2), window=8)
    assert loss(step, target) < loss(pred.detach(), target)


@pytest.mark.parametrize("dtype", [torch.float64])
def test_detail_energy_loss_gradcheck(device: torch.device, dtype: torch.dtype) -> None:
    target = _leaf((1, 2, 12, 12), device, dtype, 0).detach()
    pred = (0.3 * _leaf((1, 2, 12, 12), device, dtype, 1)).detach().requires_grad_(True)
    loss = DetailEnergyLoss(scales=(1, 2), window=2, eps=1e-3)
    assert loss(pred, target).dtype == dtype
    assert torch.autograd.gradcheck(lambda p: loss(p, target), (pred,))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"scales": ()}, "scales"),
        ({"scales": (0,)}, "scales"),
        ({"window": 0}, "window"),
        ({"eps": 0.0}, "eps"),
    ],
)
def test_detail_energy_loss_refuses_bad_settings(kwargs: dict, name: str) -> None:
    with pytest.raises(ArgumentError, match=name):
        DetailEnergyLoss(**kwargs)
