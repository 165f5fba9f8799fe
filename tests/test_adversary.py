"""The Adversary: which net each half of a GAN step reaches, and when D is left out."""

from __future__ import annotations

import pytest
import torch

from realblur_gan.nets import PatchGAN, UNet
from realblur_gan.training.adversary import Adversary, frozen
from realblur_gan.training.losses import RelativisticLSGANLoss
from realblur_gan.training.objective import GANObjective


def make_adversary(adv_weight: float = 1.0, cond_channels: int = 0) -> Adversary:
    torch.manual_seed(0)
    objective = GANObjective(
        RelativisticLSGANLoss(),
        adv_weight=adv_weight,
        terms={"content": {"weight": 1.0, "fn": torch.nn.L1Loss()}},
        name="dbgan",
    )
    d = PatchGAN(width=4, cond_channels=cond_channels)
    return Adversary("dbgan", UNet(width=4, depth=2), d, objective)


def images(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 32, 32, generator=gen), torch.rand(2, 3, 32, 32, generator=gen)


def snapshot(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def sgd_step(net: torch.nn.Module):
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    calls = []

    def step(loss: torch.Tensor) -> None:
        calls.append(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step, calls


def test_d_step_steps_only_the_discriminator():
    adv = make_adversary()
    blur, sharp = images()
    fake = adv.g(blur)
    g_before, d_before = snapshot(adv.g), snapshot(adv.d)
    step, calls = sgd_step(adv.d)
    logs = adv.d_step(sharp, fake, step)
    assert len(calls) == 1
    assert all(p.grad is None for p in adv.g.parameters())  # the fakes were detached
    assert any(not torch.equal(p, b) for p, b in zip(adv.d.parameters(), d_before, strict=True))
    assert all(torch.equal(p, b) for p, b in zip(adv.g.parameters(), g_before, strict=True))
    assert set(logs) == {"train/dbgan/loss_d", "train/dbgan/d_real", "train/dbgan/d_fake"}
    assert all(not v.requires_grad for v in logs.values())


def test_g_loss_leaves_the_discriminator_without_gradients():
    adv = make_adversary()
    blur, sharp = images()
    loss, logs = adv.g_loss(sharp, adv.g(blur), target=sharp)
    loss.backward()
    assert all(p.grad is None for p in adv.d.parameters())
    assert all(p.grad is not None for p in adv.g.parameters())
    assert all(p.requires_grad for p in adv.d.parameters())  # unfrozen afterwards
    assert set(logs) == {"train/dbgan/loss_g", "train/dbgan/g_adv", "train/dbgan/g_content"}


def test_g_loss_gradient_reaches_the_generator_through_the_discriminator():
    # Content weight 0 in effect: only the adversarial term can move G here.
    adv = make_adversary()
    adv.objective.weights["content"] = 0.0
    blur, sharp = images()
    loss, _ = adv.g_loss(sharp, adv.g(blur), target=sharp)
    loss.backward()
    assert sum(float(p.grad.abs().sum()) for p in adv.g.parameters()) > 0


def test_zero_adversarial_weight_never_calls_the_discriminator():
    adv = make_adversary(adv_weight=0.0)
    calls = []
    adv.d.register_forward_hook(lambda *_: calls.append(1))
    blur, sharp = images()
    fake = adv.g(blur)
    step, steps = sgd_step(adv.d)
    assert adv.d_step(sharp, fake, step) == {}
    loss, logs = adv.g_loss(sharp, fake, target=sharp)
    assert calls == [] and steps == []
    assert "train/dbgan/g_adv" not in logs
    torch.testing.assert_close(loss, torch.nn.functional.l1_loss(fake, sharp))


def test_conditional_discriminator_sees_the_condition():
    adv = make_adversary(cond_channels=3)
    seen = []
    adv.d.register_forward_pre_hook(lambda _, args, kwargs: seen.append(kwargs), with_kwargs=True)
    blur, sharp = images()
    fake = adv.g(blur)
    adv.d_step(blur, fake, sgd_step(adv.d)[0], cond=sharp)
    adv.g_loss(blur, fake, target=blur, cond=sharp)
    assert len(seen) == 4 and all(kwargs["cond"] is sharp for kwargs in seen)


def test_frozen_restores_mixed_flags_after_an_error():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    net[0].requires_grad_(False)
    with pytest.raises(RuntimeError), frozen(net):
        assert not any(p.requires_grad for p in net.parameters())
        raise RuntimeError
    assert [p.requires_grad for p in net.parameters()] == [False, False, True, True]


def test_halves_are_named_profiler_ranges():
    adv = make_adversary()
    blur, sharp = images()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fake = adv.g(blur)
        adv.d_step(sharp, fake, sgd_step(adv.d)[0])
        adv.g_loss(sharp, fake, target=sharp)
    names = {event.name for event in prof.events()}
    assert {"dbgan/d_step", "dbgan/g_loss"} <= names
