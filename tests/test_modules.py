"""The GAN steps: which nets learn, what stays frozen, where gradients flow."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from conftest import build_module, quiet_trainer
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset

from realblur_gan.training.config import ConfigError
from realblur_gan.training.modules import DeblurGAN, JointGAN
from realblur_gan.training.schedules import cosine, linear_decay


class RandomTriplets(Dataset):
    """Training items with the real batch vocabulary, random content."""

    def __init__(self, n: int = 8, size: int = 32) -> None:
        gen = torch.Generator().manual_seed(0)
        self.items = [
            {
                k: torch.rand(3, size, size, generator=gen)
                for k in ("sharp", "blur_syn", "blur_real")
            }
            for _ in range(n)
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.items[i]


def fit(
    module: L.LightningModule,
    batches: int,
    epochs: int = 1,
    val: DataLoader | None = None,
    callbacks: list[L.Callback] | None = None,
) -> L.Trainer:
    trainer = quiet_trainer(
        max_epochs=epochs,
        limit_train_batches=batches,
        limit_val_batches=0 if val is None else None,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )
    trainer.fit(module, DataLoader(RandomTriplets(), batch_size=2), val)
    return trainer


def snapshot(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def changed(net: torch.nn.Module, before: list[torch.Tensor]) -> bool:
    return any(not torch.equal(p, b) for p, b in zip(net.parameters(), before, strict=True))


def joint_module(tiny_config, *overrides: str) -> JointGAN:
    return build_module(tiny_config("joint", *overrides), "joint")


def test_joint_step_updates_all_four_nets(tiny_config):
    module = joint_module(tiny_config)
    nets = ("bgan_g", "bgan_d", "dbgan_g", "dbgan_d")
    before = {n: snapshot(getattr(module, n)) for n in nets}
    fit(module, batches=1)
    for name in nets:
        assert changed(getattr(module, name), before[name]), f"{name} did not change"


@pytest.mark.parametrize("grad_to_bgan", [True, False])
def test_dbgan_loss_reaches_bgan_only_when_configured(tiny_config, grad_to_bgan):
    # BGAN's own generator loss is switched off, so any change to bgan_g must come from DBGAN.
    module = joint_module(
        tiny_config,
        f"stages.joint.module.dbgan_grad_to_bgan={grad_to_bgan}",
        "loss.bgan.adv_weight=0",
        "~loss.bgan.terms",
        "stages.joint.module.synthetic_ratio=0",
    )
    before = snapshot(module.bgan_g)
    fit(module, batches=1)
    assert changed(module.bgan_g, before) is grad_to_bgan


def test_separate_dbgan_stage_keeps_bgan_frozen_in_eval_mode(tiny_config):
    module: DeblurGAN = build_module(tiny_config("separate"), "dbgan")
    before = snapshot(module.bgan_g)
    fit(module, batches=2)
    assert not changed(module.bgan_g, before)
    assert not module.bgan_g.training
    assert all(not p.requires_grad for p in module.bgan_g.parameters())


def test_discriminator_warmup_holds_generators(tiny_config):
    module = joint_module(tiny_config, "optim.d_warmup_steps=2")
    g_before, d_before = snapshot(module.dbgan_g), snapshot(module.dbgan_d)
    fit(module, batches=2)
    assert not changed(module.dbgan_g, g_before)
    assert changed(module.dbgan_d, d_before)
    fit(module, batches=1)  # the third batch is past the warm-up
    assert changed(module.dbgan_g, g_before)


def test_ema_copy_trails_the_generator(tiny_config):
    module = joint_module(tiny_config, "optim.ema_decay=0.5")
    assert module.dbgan_g_ema is not None and module.deblurrer is module.dbgan_g_ema
    start = snapshot(module.dbgan_g)
    fit(module, batches=1)
    # One update with decay 0.5: ema = (start + new) / 2.
    for p_ema, p0, p in zip(
        module.dbgan_g_ema.parameters(), start, module.dbgan_g.parameters(), strict=True
    ):
        torch.testing.assert_close(p_ema, (p0 + p) / 2)
    assert all(not p.requires_grad for p in module.dbgan_g_ema.parameters())


def test_gradient_clipping_is_applied(tiny_config):
    module = joint_module(tiny_config, "optim.gradient_clip_val=1e-6")
    seen = []
    original = module.clip_gradients

    def spy(opt, gradient_clip_val=None, gradient_clip_algorithm=None):
        original(opt, gradient_clip_val, gradient_clip_algorithm)
        params = [p for group in opt.param_groups for p in group["params"] if p.grad is not None]
        seen.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))

    module.clip_gradients = spy
    fit(module, batches=1)
    assert len(seen) == 4  # one call per optimiser: bgan_d, dbgan_d, bgan_g, dbgan_g
    assert all(n <= 1e-6 * 1.01 for n in seen)


def test_linear_decay_and_cosine_schedules():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = linear_decay(opt, total_epochs=4, decay_start=0.5)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.0])
    opt2 = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    cos = cosine(opt2, total_epochs=2)
    opt2.step()
    cos.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.5)


def test_scheduler_steps_once_per_epoch_inside_training(tiny_config):
    module = joint_module(tiny_config, "optim=linear_decay")
    trainer = fit(module, batches=2, epochs=2)
    # A 2-epoch stage decaying from its middle reaches 0 exactly when it ends.
    lr0 = module.optim["generator"].keywords["lr"]
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0)
    assert lr0 > 0


def test_coarse_to_fine_generator_gets_pyramid_loss_at_every_scale():
    from realblur_gan.nets import MultiScaleGenerator
    from realblur_gan.training.objective import GANObjective

    mse = {"_target_": "torch.nn.MSELoss"}
    objective = GANObjective(
        {"_target_": "realblur_gan.training.losses.RelativisticLSGANLoss"},
        adv_weight=0.0,
        terms={
            # Chosen by the loss's type, not the term's name: `content` is full-res only here.
            "content": {"weight": 1.0, "fn": mse},
            "pyramid": {
                "weight": 1.0,
                "fn": {"_target_": "realblur_gan.training.losses.PyramidLoss", "fn": mse},
            },
        },
    )
    net = MultiScaleGenerator(in_channels=3, out_channels=3)
    blur, sharp = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    pyramid = net.forward_pyramid(blur)
    assert [p.shape[-1] for p in pyramid] == [8, 16, 32]
    logits = torch.zeros(2, 1, 4, 4)
    _, parts = objective.g_loss(logits, logits, pyramid[-1], sharp, pyramid)
    pooled = [torch.nn.functional.avg_pool2d(sharp, k) for k in (4, 2, 1)]
    expected = (
        sum(torch.nn.functional.mse_loss(p, t) for p, t in zip(pyramid, pooled, strict=True)) / 3
    )
    torch.testing.assert_close(parts["pyramid"], expected)
    torch.testing.assert_close(parts["content"], torch.nn.functional.mse_loss(pyramid[-1], sharp))
    # Every scale's parameters receive gradient from the multi-scale loss.
    parts["pyramid"].backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


@pytest.mark.parametrize("scheme", ["joint", "separate"])
def test_dbgan_trains_on_blur_clamped_to_unit_range_in_both_schemes(tiny_config, scheme):
    stage = "joint" if scheme == "joint" else "dbgan"
    # BGAN's blur only: with synthetic pairs mixed in, the whole 2-image batch was synthetic
    # (no clamped pixel) in 1 of 16 unseeded runs.
    cfg = tiny_config(
        scheme,
        "loss.bgan.adv_weight=0",
        "~loss.bgan.terms",
        f"stages.{stage}.module.synthetic_ratio=0.0",
    )
    cfg.model.bgan_g = {"_target_": "conftest.OvershootingBlur"}
    module = build_module(cfg, stage)
    seen: list[torch.Tensor] = []
    module.dbgan_g.register_forward_pre_hook(lambda _, args: seen.append(args[0].detach()))
    fit(module, batches=1)
    assert seen and all(x.min() >= 0.0 and x.max() <= 1.0 for x in seen)
    assert any(x.min() == 0.0 and x.max() == 1.0 for x in seen)  # the clamp did bite


def test_ema_update_matches_lerp_and_copy_follows_train_mode(tiny_config, recwarn):
    module = joint_module(tiny_config, "optim.ema_decay=0.9")
    module.train()
    assert module.dbgan_g_ema.training  # follows the module: no eval-mode warning at fit
    start = snapshot(module.dbgan_g_ema)
    with torch.no_grad():
        for p in module.dbgan_g.parameters():
            p.add_(1.0)
    module.update_ema()
    for p_ema, p0, p in zip(
        module.dbgan_g_ema.parameters(), start, module.dbgan_g.parameters(), strict=True
    ):
        torch.testing.assert_close(p_ema, torch.lerp(p0, p, 0.1), rtol=0, atol=0)
    fit(module, batches=1)
    assert not [w for w in recwarn if "in eval mode" in str(w.message)]


def test_bgan_d_decides_whether_blurgan_conditions_it(tiny_config):
    # The pre-training stage names a D built with cond_channels, the adversarial stage an
    # unconditional D; there is no flag to say it again. Either D in either stage just works.
    cfg = tiny_config(
        "separate", "loss.bgan_pretrain.adv_weight=1", "loss.bgan.adv_weight=1", "~loss.bgan.terms"
    )
    assert "conditional" not in cfg.stages.pretrain_bgan.module
    assert "conditional" not in cfg.stages.bgan.module
    for stage, d_key, conditional in [
        ("pretrain_bgan", "bgan_d_conditional", True),
        ("bgan", "bgan_d", False),
        ("pretrain_bgan", "bgan_d", False),
        ("bgan", "bgan_d_conditional", True),
    ]:
        OmegaConf.update(cfg, f"stages.{stage}.module.bgan_d", f"${{model.{d_key}}}")
        module = build_module(cfg, stage)
        assert module.conditional is conditional
        conds: list[torch.Tensor | None] = []
        module.bgan_d.register_forward_pre_hook(
            lambda _, __, kwargs, seen=conds: seen.append(kwargs.get("cond")), with_kwargs=True
        )
        fit(module, batches=1)
        assert conds and all((cond is not None) is conditional for cond in conds)


def test_profiler_ranges_name_every_part_of_a_joint_step(tiny_config):
    module = joint_module(tiny_config, "optim.ema_decay=0.5")
    module.val_lpips = False
    pairs = [{"blur": torch.rand(3, 32, 32), "sharp": torch.rand(3, 32, 32)} for _ in range(2)]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fit(module, batches=1, val=DataLoader(pairs))
    names = {event.name for event in prof.events()}
    # The names a benchmark reads to attribute a step's time.
    expected = {"bgan/d_step", "bgan/g_loss", "dbgan/d_step", "dbgan/g_loss"}
    assert expected | {"generator_step", "ema", "validation"} <= names


def test_stages_say_whether_they_read_the_synthetic_pairs(tiny_config) -> None:
    joint = build_module(tiny_config("joint"), "joint")
    assert joint.synthetic_ratio == 0.0 and not joint.reads_synthetic_pairs
    alone = build_module(tiny_config("dbgan"), "dbgan")
    assert alone.bgan_g is None and alone.reads_synthetic_pairs  # pairs are all it has
    assert build_module(tiny_config("separate"), "dbgan").reads_synthetic_pairs


@pytest.mark.parametrize(("blur_eval", "expected"), [(True, 0.75), (False, 0.25)])
def test_joint_dbgan_trains_on_an_eval_mode_sample_of_bgan(tiny_config, blur_eval, expected):
    """By default DBGAN gets what a frozen BGAN would give it (a learnable camera's averaged
    statistics); BGAN itself still plays its D in training mode."""
    cfg = tiny_config(
        "joint",
        "loss.bgan.adv_weight=0",
        "~loss.bgan.terms",
        f"stages.joint.module.dbgan_blur_eval={blur_eval}",
    )
    cfg.model.bgan_g = {"_target_": "conftest.ModeMarkingBlur"}
    module = build_module(cfg, "joint")
    seen: list[torch.Tensor] = []
    module.dbgan_g.register_forward_pre_hook(lambda _, args: seen.append(args[0].detach()))
    fit(module, batches=1)
    assert seen and torch.all(seen[0] == expected)
    assert module.bgan_g.training  # handed back in training mode


def bgan_modes_per_batch(module: JointGAN, batches: int) -> list[list[bool]]:
    """BGAN generator's training flag at each of its forwards, per training batch."""
    modes: list[list[bool]] = []
    module.bgan_g.register_forward_pre_hook(lambda net, _: modes[-1].append(net.training))

    class Batches(L.Callback):
        def on_train_batch_start(self, *args) -> None:
            modes.append([])

    fit(module, batches, callbacks=[Batches()])
    return modes


def test_the_learnable_camera_gives_dbgan_an_eval_mode_sample_and_a_pixel_bgan_does_not(
    tiny_config,
):
    # The default learnable camera renders its averaged statistics in eval mode: DBGAN trains
    # on a second, eval-mode sample. A pixel BGAN (+experiment=pixel_bgan) keeps one forward.
    camera = build_module(tiny_config("joint"), "joint")
    assert bgan_modes_per_batch(camera, 2) == [[True, False], [True, False]]
    pixel = build_module(
        tiny_config(None, "+experiment=pixel_bgan", "model=nafnet", "model.bgan_g.net.width=4"),
        "joint",
    )
    assert bgan_modes_per_batch(pixel, 2) == [[True], [True]]


def test_the_learnable_camera_is_frozen_early_in_the_joint_stage_and_a_pixel_bgan_is_not(
    tiny_config,
):
    # Its few statistics fit within a few hundred batches (160); a pixel BGAN trains to the end.
    # Started at batch 160, as a resumed run would be: the camera trains no more.
    camera = build_module(tiny_config("joint"), "joint")
    camera.iteration.fill_(160)
    before = snapshot(camera.bgan_g)
    assert bgan_modes_per_batch(camera, 1) == [[False]]  # DBGAN's eval-mode sample only
    assert not changed(camera.bgan_g, before)
    pixel = build_module(
        tiny_config(None, "+experiment=pixel_bgan", "model=nafnet", "model.bgan_g.net.width=4"),
        "joint",
    )
    pixel.iteration.fill_(100_000)
    before = snapshot(pixel.bgan_g)
    assert bgan_modes_per_batch(pixel, 1) == [[True]]
    assert changed(pixel.bgan_g, before)


def test_joint_bgan_freezes_after_its_step_budget_and_dbgan_goes_on(tiny_config):
    """``bgan_max_steps``: BGAN's G and D learn for that many batches, then stay as they are
    while DBGAN trains on BGAN's eval-mode blur (what the separate scheme's last stage does)."""
    module = joint_module(tiny_config, "stages.joint.module.bgan_max_steps=2")
    start = {n: snapshot(getattr(module, n)) for n in ("bgan_g", "bgan_d")}
    assert not module.bgan_frozen
    fit(module, batches=2)
    assert module.bgan_frozen and module.bgan_g.training
    for name, before in start.items():
        assert changed(getattr(module, name), before), f"{name} did not train in its budget"
    frozen = {n: snapshot(getattr(module, n)) for n in ("bgan_g", "bgan_d")}
    learning = {n: snapshot(getattr(module, n)) for n in ("dbgan_g", "dbgan_d")}
    seen_training: list[bool] = []
    module.bgan_g.register_forward_pre_hook(lambda net, _: seen_training.append(net.training))
    fit(module, batches=2)  # a second fit goes on from batch 2 (the counter is kept)
    assert module.bgan_frozen and int(module.iteration) == 4
    for name, before in frozen.items():
        assert not changed(getattr(module, name), before), f"{name} trained after its budget"
    for name, before in learning.items():
        assert changed(getattr(module, name), before), f"{name} stopped with BGAN"
    assert seen_training == [False, False]  # one eval-mode sample per batch, nothing else


def test_a_negative_bgan_step_budget_is_refused(tiny_config):
    cfg = tiny_config("joint", "stages.joint.module.bgan_max_steps=-1")
    with pytest.raises(
        ConfigError, match=r"^stages\.joint\.module\.bgan_max_steps=-1: use a batch count >= 0"
    ):
        build_module(cfg, "joint")
