"""The spine: schemes compose, every stage trains, files and numbers come out."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import build_module
from hydra.utils import instantiate
from omegaconf import OmegaConf

from realblur_gan.training.config import available_schemes, stage_order
from realblur_gan.training.modules import BlurGAN, DeblurGAN, JointGAN
from realblur_gan.training.runner import NoSchemeError, format_summary, run

REPO = Path(__file__).resolve().parent.parent


def _cli(*args: str, cwd: Path, env_extra: dict[str, str] | None = None):
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "realblur_gan", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_schemes_are_dbgan_joint_and_separate():
    assert available_schemes() == ["dbgan", "joint", "separate"]


@pytest.mark.parametrize("scheme", ["dbgan", "joint", "separate"])
def test_every_stage_of_each_scheme_instantiates(tiny_config, scheme):
    cfg = tiny_config(scheme)
    expected = {
        "dbgan": {"dbgan": DeblurGAN},
        "joint": {"pretrain_bgan": BlurGAN, "joint": JointGAN},
        "separate": {"pretrain_bgan": BlurGAN, "bgan": BlurGAN, "dbgan": DeblurGAN},
    }[scheme]
    assert stage_order(cfg) == list(expected)
    for name, cls in expected.items():
        module = build_module(cfg, name)
        assert isinstance(module, cls)
        sharp = torch.rand(2, 3, 32, 32)
        with torch.no_grad():
            out = module.bgan_g(sharp) if isinstance(module, BlurGAN) else module(sharp)
        assert out.shape == sharp.shape
    if scheme == "dbgan":  # DBGAN alone: no BGAN built, every training input a synthetic pair
        assert module.bgan_g is None and module.synthetic_ratio == 1.0


@pytest.mark.parametrize(
    ("scheme", "order"),
    [("joint", ["pretrain_bgan", "joint"]), ("separate", ["pretrain_bgan", "bgan", "dbgan"])],
)
def test_stage_order_is_stated_once_by_the_schemes_defaults_list(tiny_config, scheme, order):
    from omegaconf import OmegaConf

    from realblur_gan.training.config import CONFIG_DIR

    scheme_file = OmegaConf.load(CONFIG_DIR / "scheme" / f"{scheme}.yaml")
    assert "stage_order" not in scheme_file
    # `- /stage@stages.<name>: <file>` entries, in the order the file lists them.
    listed = [key.split("@stages.")[1] for d in scheme_file.defaults if d != "_self_" for key in d]
    assert listed == order
    assert stage_order(tiny_config(scheme)) == order


def test_stage_order_on_the_command_line_runs_a_subset(tiny_config):
    from realblur_gan.training.config import ConfigError

    def picked(*typed: str) -> list[str]:
        return stage_order(tiny_config("separate", *typed))

    assert picked("stage_order=[dbgan]") == ["dbgan"]
    assert picked("stage_order=dbgan") == ["dbgan"]
    assert picked("stage_order=[pretrain_bgan,dbgan]") == ["pretrain_bgan", "dbgan"]
    assert picked("stage_order=null") == ["pretrain_bgan", "bgan", "dbgan"]
    with pytest.raises(ConfigError, match=r"stage_order=\[dbgan,bgan\]: .* in the scheme's order"):
        picked("stage_order=[dbgan,bgan]")
    with pytest.raises(ConfigError, match="each once"):
        picked("stage_order=[bgan,bgan]")
    with pytest.raises(ConfigError, match=r"joint is not a stage of this scheme; pick from"):
        picked("stage_order=[joint]")
    with pytest.raises(ConfigError, match="one or more stages"):
        picked("stage_order=[]")


def test_config_without_scheme_raises_naming_the_schemes(tiny_config):
    with pytest.raises(NoSchemeError, match=r"\+scheme=joint or \+scheme=separate"):
        run(tiny_config(None))


def test_bare_command_exits_nonzero_with_one_line(tmp_path):
    proc = _cli(cwd=tmp_path)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "+scheme=joint" in lines[0] and "+scheme=separate" in lines[0]
    assert not (tmp_path / "outputs").exists()  # no run dir for a refused command


def test_scheme_without_plus_is_explained(tmp_path):
    proc = _cli("scheme=joint", cwd=tmp_path)
    assert proc.returncode != 0
    assert "+scheme=joint" in proc.stderr.strip().splitlines()[-1]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_joint_scheme_end_to_end_with_wandb(tiny_config):
    cfg = tiny_config("joint", "logger=wandb")
    result = run(cfg)
    out = Path(cfg.paths.output_dir)
    assert (out / "config.yaml").is_file()
    for stage in ("pretrain_bgan", "joint"):
        assert (out / "checkpoints" / stage / "last.ckpt").is_file()
    # The joint checkpoint holds all four nets, loadable without unpickling objects.
    state = torch.load(result.checkpoints["joint"], weights_only=True)["state_dict"]
    assert {k.split(".")[0] for k in state} >= {"bgan_g", "bgan_d", "dbgan_g", "dbgan_d"}
    # One offline W&B run per stage, with metrics history and image panels.
    assert len(result.wandb_dirs) == 2
    for run_dir in result.wandb_dirs:
        assert run_dir.name.startswith("offline-run-")
        assert list(run_dir.glob("*.wandb"))
    assert list((out / "panels" / "joint").glob("val_panel_*.png"))
    # Summary numbers exist and are plausible PSNR/SSIM values.
    m = result.metrics
    for key in ("val/psnr", "val/ssim", "val/psnr_input", "val/ssim_input"):
        assert key in m
    assert 5.0 < m["val/psnr_input"] < 60.0 and 0.0 < m["val/ssim"] <= 1.0
    assert "blurry input" in format_summary(result)


def test_separate_scheme_end_to_end_from_the_cli_with_csv(tmp_path, demo_cache):
    from conftest import TINY, make_config

    from realblur_gan.training.runner import (
        describe_settings,
        stage_optim_config,
        stage_trainer_config,
    )

    out = tmp_path / "run"
    typed = [
        "logger=csv",
        *(f"stages.{s}.trainer.max_epochs=1" for s in ("pretrain_bgan", "bgan", "dbgan")),
        "optim.generator.lr=2e-4",  # a global key reaches every stage
        "+stages.bgan.optim.discriminator.lr=3e-4",  # a stage key beats it for its stage
    ]
    proc = _cli(
        "+scheme=separate",
        *TINY,
        *typed,
        f"paths.data_dir={demo_cache}",
        f"hydra.run.dir={out}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # A config means one thing however it was composed: the settings each stage logged when
    # the CLI ran it are exactly the ones compose() gives for the same overrides.
    cfg = make_config("separate", out, demo_cache, typed)
    console = proc.stdout + proc.stderr
    for stage in ("pretrain_bgan", "bgan", "dbgan"):
        for block, settings in (("trainer", stage_trainer_config), ("optim", stage_optim_config)):
            line = f"stage {stage}: {block} {describe_settings(settings(cfg, stage))}"
            assert console.count(line) == 1, (line, console[-3000:])
        assert stage_optim_config(cfg, stage).generator.lr == 2e-4
    assert stage_optim_config(cfg, "bgan").discriminator.lr == 3e-4
    assert stage_optim_config(cfg, "dbgan").discriminator.lr == 2e-4
    for stage in ("pretrain_bgan", "bgan", "dbgan"):
        assert (out / "checkpoints" / stage / "last.ckpt").is_file()
        assert (out / "csv" / stage / "metrics.csv").is_file()
    rows = _read_csv(out / "csv" / "dbgan" / "metrics.csv")
    # One epoch of two batches, not the stage's 24.
    assert {r["step"] for r in rows if r.get("train/dbgan/loss_g")} == {"0", "1"}
    # One console line per event: Lightning's lines are not printed twice.
    assert console.count("GPU available:") == 3  # once per stage
    assert console.count("try installing [litlogger]") <= 1  # a Lightning tip: not per stage
    columns = set(rows[0])
    assert {"train/dbgan/loss_g", "train/dbgan/d_real", "val/psnr"} <= columns
    assert any(r["val/psnr"] for r in rows)
    # The summary is printed last: where things went, and the PSNR table.
    assert "restored" in proc.stdout and "blurry input" in proc.stdout
    assert str(out / "checkpoints" / "dbgan" / "last.ckpt") in proc.stdout
    assert (out / ".hydra" / "config.yaml").is_file() and (out / "config.yaml").is_file()


def test_no_logger_still_trains_and_summarises(tiny_config):
    # limit_val_batches=1 (TINY) with batches of 3: 3 of the 4 validation images are scored.
    cfg = tiny_config("joint", "logger=none", "data.val_batch_size=3")
    result = run(cfg)
    assert result.wandb_dirs == [] and result.csv_dirs == []
    assert "val/psnr" in result.metrics
    assert result.val_images == 3
    assert "DBGAN on the validation split (3 images)" in format_summary(result)


def test_separate_stage_hands_bgan_weights_to_the_next_stage(tiny_config):
    cfg = tiny_config("separate", "logger=none")
    result = run(cfg)
    bgan = torch.load(result.checkpoints["bgan"], weights_only=True)["state_dict"]
    checkpoint = torch.load(result.checkpoints["dbgan"], weights_only=True)
    assert {"rng_states", "net_configs"} <= checkpoint.keys()  # what a resume and predict read
    dbgan = checkpoint["state_dict"]
    frozen_keys = [k for k in bgan if k.startswith("bgan_g.")]
    assert frozen_keys
    # DBGAN's stage kept BGAN frozen: its generator weights are exactly stage 2's.
    for key in frozen_keys:
        torch.testing.assert_close(dbgan[key], bgan[key])


def test_val_lpips_is_logged_when_backbone_weights_are_present(tiny_config, tmp_path):
    import torchvision

    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    # Stand-in weights with torchvision's layout: this checks the wiring, not the numbers.
    torch.save(
        torchvision.models.alexnet().state_dict(), hub / "checkpoints" / "alexnet-owt-7be5be79.pth"
    )
    before = torch.hub.get_dir()
    torch.hub.set_dir(str(hub))
    try:
        result = run(tiny_config("joint", "logger=csv"))
    finally:
        torch.hub.set_dir(before)
    rows = _read_csv(result.csv_dirs[-1] / "metrics.csv")
    assert any(r.get("val/lpips") for r in rows)
    assert "val/lpips" in result.metrics


def test_val_lpips_is_skipped_without_weights(tiny_config, tmp_path):
    before = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "empty_hub"))
    try:
        result = run(tiny_config("joint", "logger=none"))
    finally:
        torch.hub.set_dir(before)
    assert "val/psnr" in result.metrics and "val/lpips" not in result.metrics


def test_channels_last_switch_trains(tiny_config):
    result = run(tiny_config("joint", "logger=none", "perf.channels_last=true"))
    assert torch.isfinite(torch.tensor(result.metrics["val/psnr"]))


# --- one precedence rule for stage settings, read off the composed config ---------------------


def test_stage_blocks_merge_over_global_blocks(tiny_config):
    from realblur_gan.training.runner import build_stage, stage_optim_config, stage_trainer_config

    cfg = tiny_config(
        "separate",
        "optim.generator.lr=1e-4",
        "stages.dbgan.trainer.max_epochs=5",
        "+stages.bgan.optim.generator.lr=3e-4",
    )
    # Lengths are each stage's own (the default model's shake BGAN: a 2-epoch pre-training).
    assert [stage_trainer_config(cfg, s).max_epochs for s in stage_order(cfg)] == [2, 3, 5]
    # A global key reaches every stage that does not set it; a stage key wins for its stage.
    assert [stage_optim_config(cfg, s).generator.lr for s in stage_order(cfg)] == [1e-4, 3e-4, 1e-4]
    # Keys the stage does not set come from the global block.
    assert stage_optim_config(cfg, "bgan").generator.betas == [0.9, 0.9]
    # The module is built with the effective settings.
    assert build_stage(cfg, "pretrain_bgan").optim["generator"].keywords["lr"] == 1e-4
    cfg.stages.bgan.init_from = {}  # no pre-training ran here
    assert build_stage(cfg, "bgan").optim["generator"].keywords["lr"] == 3e-4


def test_a_global_stage_length_is_refused_naming_the_stage_keys(tiny_config, tmp_path):
    from realblur_gan.training.config import ConfigError, validate_config

    cfg = tiny_config("joint", "+trainer.max_epochs=3")
    with pytest.raises(
        ConfigError,
        match=r"trainer\.max_epochs=3: each stage sets its own length; "
        r"set stages\.pretrain_bgan\.trainer\.max_epochs=N / stages\.joint",
    ):
        validate_config(cfg)
    cfg = tiny_config("joint", "~stages.joint.trainer.max_epochs")
    with pytest.raises(ConfigError, match=r"stages\.joint\.trainer: no length"):
        validate_config(cfg)
    # Typed on the command line it is refused in one line before Hydra composes anything.
    proc = _cli("+scheme=separate", "trainer.max_epochs=3", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: trainer.max_epochs=3: each stage sets its own length; type "
        "stages.pretrain_bgan.trainer.max_epochs=3 stages.bgan.trainer.max_epochs=3 "
        "stages.dbgan.trainer.max_epochs=3"
    )


def test_stage_trainer_keys_the_global_trainer_lacks_are_allowed(tiny_config):
    from realblur_gan.training.runner import check_stage_trainers, stage_trainer_config

    cfg = tiny_config("separate", "+stages.dbgan.trainer.max_time=00:00:01:00")
    trainer_cfg = stage_trainer_config(cfg, "dbgan")
    assert trainer_cfg.max_time == "00:00:01:00" and trainer_cfg.limit_train_batches == 2
    check_stage_trainers(cfg, stage_order(cfg))  # no error


def test_unknown_stage_trainer_key_is_refused_before_any_stage_trains(tiny_config):
    from realblur_gan.training.config import ConfigError

    cfg = tiny_config("separate", "logger=none", "+stages.dbgan.trainer.max_tme=5")
    with pytest.raises(ConfigError, match=r"stages\.dbgan\.trainer\.max_tme"):
        run(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()


def test_gradient_clipping_with_float16_amp_is_refused(tiny_config):
    from realblur_gan.training.config import ConfigError, validate_config

    cfg = tiny_config("joint", "optim.gradient_clip_val=1.0", "trainer.precision=16-mixed")
    with pytest.raises(ConfigError, match=r"gradient_clip_val=1\.0 with trainer\.precision"):
        validate_config(cfg)
    validate_config(tiny_config("joint", "optim.gradient_clip_val=1.0"))


def test_each_stage_logs_its_effective_settings_once(tiny_config, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="realblur_gan.training.runner"):
        run(tiny_config("joint", "logger=none", "stages.joint.trainer.max_epochs=1"))
    lines = [r.getMessage() for r in caplog.records if r.name == "realblur_gan.training.runner"]
    for stage in ("pretrain_bgan", "joint"):
        trainer = [line for line in lines if line.startswith(f"stage {stage}: trainer ")]
        optim = [line for line in lines if line.startswith(f"stage {stage}: optim ")]
        assert len(trainer) == 1 and "max_epochs=" in trainer[0], lines
        assert len(optim) == 1 and "generator=AdamW(" in optim[0]
    assert "max_epochs=1" in next(x for x in lines if x.startswith("stage joint: trainer"))
    assert "lr=0.001" in next(x for x in lines if x.startswith("stage pretrain_bgan: optim"))


def test_lightning_lines_reach_the_console_once():
    import io
    import logging

    import lightning  # noqa: F401  (puts its console handler on the `lightning` logger)

    from realblur_gan.training.runner import _single_log_handler

    root, stream = logging.getLogger(), io.StringIO()
    ours = logging.StreamHandler(stream)
    root.addHandler(ours)
    try:
        _single_log_handler()
        logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
        consoles, node = [], logger
        while node is not None:  # every handler a record meets on its way up
            consoles += [h for h in node.handlers if type(h) is logging.StreamHandler]
            node = node.parent if node.propagate else None
        assert consoles == [ours]
        logger.info("one line")
        assert stream.getvalue().count("one line") == 1
    finally:
        root.removeHandler(ours)


def test_lightning_tips_are_shown_once_not_once_per_stage(caplog):
    import logging

    from lightning.pytorch.utilities.rank_zero import rank_zero_info

    from realblur_gan.training.runner import _tips_once

    _tips_once()
    _tips_once()  # a second run in the process adds no second filter
    tip = "💡 Tip: a tip only this test prints"
    with caplog.at_level(logging.INFO):
        for _ in range(3):  # three stages, three Trainers
            rank_zero_info(tip)
            rank_zero_info("GPU available: False")
    messages = [record.getMessage() for record in caplog.records]
    assert messages.count(tip) == 1 and messages.count("GPU available: False") == 3


def test_wandb_logger_does_not_set_the_deprecated_anonymous_setting(tiny_config):
    from realblur_gan.training.runner import _build_loggers

    (logger,) = _build_loggers(tiny_config("joint", "logger=wandb"), "joint")
    assert "anonymous" not in logger._wandb_init


@pytest.mark.parametrize(
    ("typed", "environment", "mode"),
    [
        ([], None, "offline"),  # the default: no account, no network
        (["wandb_mode=online"], None, "online"),  # the one switch
        ([], "online", "online"),  # WANDB_MODE in the environment sets the default
        ([], "disabled", "disabled"),
        (["wandb_mode=offline"], "online", "offline"),  # what is typed beats the environment
    ],
)
def test_one_wandb_switch_decides_online_or_offline(
    tiny_config, monkeypatch, typed, environment, mode
):
    from realblur_gan.training.config import validate_config
    from realblur_gan.training.runner import _build_loggers

    if environment is None:
        monkeypatch.delenv("WANDB_MODE", raising=False)
    else:
        monkeypatch.setenv("WANDB_MODE", environment)
    cfg = tiny_config("joint", "logger=wandb", *typed)
    assert "offline" not in cfg.logger.wandb and "wandb_online" not in cfg  # no second switch
    validate_config(cfg)
    (logger,) = _build_loggers(cfg, "joint")
    assert logger._wandb_init["mode"] == mode  # what wandb.init gets, beating WANDB_MODE
    assert not logger._offline  # Lightning's flag would rewrite WANDB_MODE process-wide


def test_unknown_wandb_mode_is_refused_naming_the_switch(tiny_config, monkeypatch):
    from realblur_gan.training.config import ConfigError, validate_config

    monkeypatch.delenv("WANDB_MODE", raising=False)
    with pytest.raises(ConfigError, match=r"wandb_mode='onlin': must be one of offline, online"):
        validate_config(tiny_config("joint", "logger=wandb", "wandb_mode=onlin"))
    monkeypatch.setenv("WANDB_MODE", "dryrun")
    with pytest.raises(ConfigError, match=r"wandb_mode='dryrun'.*\$WANDB_MODE"):
        validate_config(tiny_config("joint", "logger=wandb"))
    # Without the W&B logger the switch is not read.
    validate_config(tiny_config("joint", "logger=csv", "wandb_mode=onlin"))


def test_panels_are_stamped_with_the_batch_counter_of_the_scalars(tiny_config, tmp_path):
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    cfg = tiny_config("joint", "+stages.joint.module.panel_every_n_steps=1")
    module = build_module(cfg, "joint")
    module.panel_dir = str(tmp_path / "panels")
    module.val_lpips = False
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=1,
        logger=CSVLogger(tmp_path, name="csv", version="v"),
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, datamodule=instantiate(cfg.data))
    steps = sorted(int(p.stem.rsplit("step", 1)[1]) for p in (tmp_path / "panels").glob("train_*"))
    rows = _read_csv(tmp_path / "csv" / "v" / "metrics.csv")
    scalar_steps = sorted({int(r["step"]) for r in rows if r.get("train/dbgan/loss_g")})
    assert steps == scalar_steps == [0, 1, 2]  # not optimizer steps (4 per joint batch)
    val = [int(p.stem.rsplit("step", 1)[1]) for p in (tmp_path / "panels").glob("val_*")]
    assert val == [int(r["step"]) for r in rows if r.get("val/psnr")]


def test_user_errors_are_told_apart_by_type_only(tiny_config):
    from realblur_gan.__main__ import _user_error
    from realblur_gan.data.io import ImageFolderError, ImageReadError
    from realblur_gan.errors import DataError, UserError
    from realblur_gan.training.config import ConfigError
    from realblur_gan.training.losses import LowPassL1Loss
    from realblur_gan.training.runner import ResumeError, resume_dir
    from realblur_gan.weights.backbones import MissingPretrainedWeights
    from realblur_gan.weights.checkpoints import CheckpointError

    for cls in (CheckpointError, ConfigError, DataError, ImageFolderError, ImageReadError):
        assert issubclass(cls, UserError), cls
    assert issubclass(MissingPretrainedWeights, UserError) and issubclass(NoSchemeError, UserError)
    # A user error found through the chain Hydra wraps around constructor errors.
    try:
        try:
            raise ConfigError("data.crop_size=7: bad")
        except ConfigError as inner:
            raise RuntimeError("Error in call to target") from inner
    except RuntimeError as outer:
        assert isinstance(_user_error(outer), ConfigError)
    # A path the user gave: a UserError (and still a FileNotFoundError for callers).
    with pytest.raises(ResumeError) as info:
        resume_dir(tiny_config("joint", "resume=/nonexistent/run"))
    assert isinstance(info.value, FileNotFoundError) and _user_error(info.value) is info.value
    # Anything else is a bug, even when raised inside the package: traceback kept.
    with pytest.raises(ValueError) as bug:
        LowPassL1Loss(factor=0)
    assert _user_error(bug.value) is None
    assert _user_error(FileNotFoundError("/x")) is None


def test_an_experiment_file_brings_its_scheme_and_its_settings_win():
    from hydra import compose, initialize_config_dir

    from realblur_gan.__main__ import _scheme_problem
    from realblur_gan.training.config import CONFIG_DIR, validate_config

    paths = ["paths.data_dir=data", "paths.output_dir=run"]  # no hydra:runtime outside a run
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["+experiment=packaged", "data_root=d", *paths])
    assert cfg.scheme_name == "joint" and stage_order(cfg) == ["pretrain_bgan", "joint"]
    # Its stage values beat the scheme's, wherever `+experiment` stands on the line.
    assert cfg.stages.joint.module.synthetic_ratio == 0.5
    assert cfg.stages.joint.trainer.max_epochs == 12
    assert cfg.model.dbgan_g.share_weights and cfg.data.sharp_dir[0] == "d/natural/CBSD432"
    validate_config(cfg)  # every net takes the 256 px crop
    assert _scheme_problem(["+experiment=packaged"]) is None
    # Your own photos: the same recipe, fine-tuned from the packaged scale-recurrent net (the
    # packaged model's second member, the net this recipe's config builds).
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        own = compose(
            "train",
            overrides=["+experiment=own_data", "data.sharp_dir=s", "data.real_blur_dir=r", *paths],
        )
    assert OmegaConf.to_container(own.stages.joint.init_from) == {
        "bgan_g": "pretrain_bgan",
        "dbgan_g": "realblur-dbgan-srn",
    }
    assert own.model == cfg.model
    # The same camera, with the blur sizes its fine-tuning was measured with.
    own_blur = OmegaConf.to_container(own.data.synthetic_blur)
    packaged_blur = OmegaConf.to_container(cfg.data.synthetic_blur)
    assert packaged_blur.pop("kernel_size_law") == "log"
    assert own_blur.pop("kernel_size_law") == "uniform" and own_blur == packaged_blur
    assert own.data.real_pairs_dir is None and own.optim.generator.lr == 2e-4
    validate_config(own)


def test_the_nafnet_leg_is_the_packaged_recipe_with_another_dbgan_only():
    from hydra import compose, initialize_config_dir

    from realblur_gan.training.config import CONFIG_DIR, validate_config

    paths = ["paths.data_dir=data", "paths.output_dir=run"]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        packaged = compose("train", overrides=["+experiment=packaged", "data_root=d", *paths])
        leg = compose("train", overrides=["+experiment=packaged_nafnet", "data_root=d", *paths])
    validate_config(leg)
    # A NAFNet that keeps the input's channel means, with none of the U-Net's keys leaking in.
    assert leg.model.dbgan_g._target_ == "realblur_gan.nets.NAFNet"
    assert leg.model.dbgan_g.keep_mean and "scale_net" not in leg.model.dbgan_g
    # Everything else is the packaged recipe: data, camera, BGAN, losses, optimiser; it only
    # trains its cheaper steps for more epochs.
    assert leg.stages.joint.trainer.max_epochs > packaged.stages.joint.trainer.max_epochs
    for key in ("data", "loss", "optim"):
        assert leg[key] == packaged[key]
    for key in ("bgan_g", "bgan_d", "dbgan_d"):
        assert leg.model[key] == packaged.model[key]


def test_init_from_a_pretrained_model_fills_the_net_and_its_moving_average(tiny_config, tmp_path):
    """Fine-tuning starts from the given weights in DBGAN and in its EMA copy alike: an EMA
    left at the random initialisation would take thousands of steps to forget it."""
    from realblur_gan.export import export_safetensors
    from realblur_gan.nets import UNet
    from realblur_gan.training.runner import build_stage, init_source
    from realblur_gan.weights.interpolation import weights_fingerprint
    from realblur_gan.weights.model_zoo import DEFAULT_MODEL, verified_path

    cfg = tiny_config("joint")
    torch.manual_seed(1)
    trained = instantiate(cfg.model.dbgan_g)
    config = OmegaConf.to_container(cfg.model.dbgan_g, resolve=True)
    weights, _ = export_safetensors(trained, config, tmp_path / "exported", "dbgan_g")
    cfg.stages.joint.init_from = {"dbgan_g": str(weights)}
    module = build_stage(cfg, "joint")
    for net in (module.dbgan_g, module.dbgan_g_ema):
        for key, value in trained.state_dict().items():
            torch.testing.assert_close(net.state_dict()[key], value, rtol=0, atol=0)
    # Every checkpoint records which weights it started from, for export --start to check.
    record = {"source": str(weights), "fingerprint": weights_fingerprint(trained.state_dict())}
    saved: dict = {}
    module.on_save_checkpoint(saved)
    assert saved["init_sources"] == {"dbgan_g": record}
    # From a training checkpoint, its moving average is what is loaded (the better model).
    ema = UNet(3, 3, width=4, depth=3).state_dict()
    blob = {f"dbgan_g.{k}": torch.zeros_like(v) for k, v in ema.items()}
    blob |= {f"dbgan_g_ema.{k}": v for k, v in trained.state_dict().items()}
    torch.save({"state_dict": blob}, tmp_path / "run.ckpt")
    cfg.stages.joint.init_from = {"dbgan_g": str(tmp_path / "run.ckpt")}
    module = build_stage(cfg, "joint")
    torch.testing.assert_close(module.dbgan_g.state_dict(), trained.state_dict(), rtol=0, atol=0)
    # Names: an earlier stage, a packaged model (its SHA-256 checked), else a path.
    stage = tmp_path / "pre.ckpt"
    assert init_source("pretrain_bgan", {"pretrain_bgan": stage}) == stage
    if verified_path(DEFAULT_MODEL).is_file():
        assert init_source(DEFAULT_MODEL, {}) == verified_path(DEFAULT_MODEL)
    assert init_source("some/file.ckpt", {}) == Path("some/file.ckpt")


def test_a_fine_tuning_run_remembers_its_start_for_the_export(tiny_config, tmp_path, capsys):
    """Train from exported weights, then interpolate back towards them: the checkpoint's
    record lets export accept exactly those weights and refuse others of the same shape."""
    from realblur_gan.export import export_safetensors
    from realblur_gan.export import main as export_main

    cfg = tiny_config("joint", "logger=none")
    config = OmegaConf.to_container(cfg.model.dbgan_g, resolve=True)
    starts = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        net = instantiate(cfg.model.dbgan_g)
        starts.append(export_safetensors(net, config, tmp_path / f"start{seed}", "dbgan_g")[0])
    cfg.stages.joint.init_from = {"dbgan_g": str(starts[0])}
    ckpt = run(cfg).checkpoints["joint"]
    assert torch.load(ckpt, weights_only=True)["init_sources"]["dbgan_g"]["source"] == str(
        starts[0]
    )
    args = [str(ckpt), "--alpha", "0.5", "--out"]
    assert export_main([*args, str(tmp_path / "ok"), "--start", str(starts[0])]) == 0
    assert export_main([*args, str(tmp_path / "no"), "--start", str(starts[1])]) == 2
    assert "not the weights the checkpoint was fine-tuned from" in capsys.readouterr().err
