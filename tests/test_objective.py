"""realblur_gan.training.objective: an objective's weights are checked, and its total carries
gradient."""

from __future__ import annotations

import math

import pytest
import torch

from realblur_gan.errors import ArgumentError
from realblur_gan.training.objective import GANObjective

RBL = {"_target_": "realblur_gan.training.losses.RelativisticLSGANLoss"}
PSNR = {"_target_": "realblur_gan.training.losses.PSNRLoss"}
FFT = {"_target_": "realblur_gan.training.losses.FFTAmplitudeLoss"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"adv_weight": -0.1}, "adv_weight=-0.1: must be a number >= 0"),
        ({"adv_weight": math.nan}, "adv_weight=nan: must be a number >= 0"),
        ({"adv_weight": math.inf}, "adv_weight=inf: must be a number >= 0"),
        (
            {"terms": {"content": {"weight": -1.0, "fn": PSNR}}},
            "terms.content.weight=-1.0: must be a number >= 0",
        ),
        (
            {"terms": {"content": {"weight": "x", "fn": PSNR}}},
            "terms.content.weight='x': must be a number >= 0",
        ),
    ],
)
def test_a_weight_that_is_not_a_finite_number_at_least_0_is_refused(kwargs, message) -> None:
    # A negative weight makes a generator maximise its loss; nan or inf poisons every step.
    with pytest.raises(ArgumentError) as caught:
        GANObjective(RBL, **kwargs)
    assert str(caught.value) == message


def test_zero_weights_build_nothing() -> None:
    objective = GANObjective(RBL, adv_weight=0.0, terms={"content": {"weight": 0.0, "fn": PSNR}})
    assert not objective.adversarial_active and dict(objective.terms) == {}


@pytest.mark.parametrize("dtype", [torch.float64])
def test_the_weighted_total_gradchecks_and_equals_its_parts(
    device: torch.device, dtype: torch.dtype
) -> None:
    # DBGAN's default objective: RBL + PSNR + FFT terms, each with its weight.
    objective = GANObjective(
        RBL,
        adv_weight=0.5,
        terms={"content": {"weight": 1.0, "fn": PSNR}, "frequency": {"weight": 0.25, "fn": FFT}},
    )
    g = torch.Generator().manual_seed(0)

    def leaf(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=g, dtype=dtype).to(device).requires_grad_(True)

    real, fake, pred, target = (
        leaf(2, 1, 3, 3),
        leaf(2, 1, 3, 3),
        leaf(2, 3, 6, 6),
        leaf(2, 3, 6, 6),
    )
    total, parts = objective.g_loss(real, fake, pred, target)
    weighted = 0.5 * parts["adv"] + parts["content"] + 0.25 * parts["frequency"]
    torch.testing.assert_close(total, weighted)

    # The generator's gradient: through D's output on its fakes and through its images.
    def g_total(f: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return objective.g_loss(real, f, p, target)[0]

    assert torch.autograd.gradcheck(g_total, (fake, pred))
