"""scripts/experiment.py: the five-condition experiment end to end on a tiny generated clip.

Each test runs the script's ``main()`` with ``--budget smoke`` (two batches per stage), tiny nets
and no logger, on 40 frames of 48x64 px of a texture panning across the picture (all five
conditions take about 15 s on one CPU thread), scored on a tiny generalisation benchmark.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import load_script
from omegaconf import OmegaConf
from PIL import Image

# Tiny nets and data: every condition, stage and net still runs.
TINY_SET = [
    "data.n_frames=[3,5]",
    "data.gap=2",
    "data.downscale=1",
    "data.crop_size=32",
    "data.val_crop_size=32",
    "data.batch_size=2",
    "data.val_batch_size=2",
    "data.num_workers=0",
    "model.bgan_d.width=4",
    "model.bgan_d_conditional.width=4",
    "model.dbgan_g.width=4",
    "model.dbgan_d.width=4",
    "trainer.enable_progress_bar=false",
    "trainer.log_every_n_steps=1",
]
# realblur-evaluate's per-image columns (LPIPS only where its weights are installed).
COLUMNS = ["image", "method", "psnr", "ssim", "dy", "dx"]


@pytest.fixture(scope="module")
def experiment():
    return load_script("experiment")


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generalisation benchmark's layout, tiny: two real-blur pairs, two held-out photos."""
    root = tmp_path_factory.mktemp("bench")
    rng = np.random.default_rng(1)
    for i in range(2):
        sharp = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
        for side, image in (("sharp", sharp), ("blur", (sharp // 2 + 64).astype(np.uint8))):
            folder = root / "gopro_pairs_other_scenes" / side
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"pair{i}.png")
        photos = root / "natural" / "CBSD68"
        photos.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One sequence folder of 40 frames: a random texture moving 2 px right, 1 px down a frame."""
    root = tmp_path_factory.mktemp("frames")
    folder = root / "clip"
    folder.mkdir()
    n, h, w = 40, 48, 64
    texture = np.random.default_rng(0).integers(0, 256, (h + n, w + 2 * n, 3), dtype=np.uint8)
    for i in range(n):
        Image.fromarray(texture[i : i + h, 2 * i : 2 * i + w]).save(folder / f"{i:06d}.png")
    return root


def run_main(
    experiment, clip: Path, out: Path, conditions: str, *more: str, bench: Path | None = None
) -> int:
    """``main()`` on the clip; without ``bench`` the benchmark's data is absent (skipped)."""
    argv = [
        "--frames",
        str(clip),
        "--out",
        str(out),
        "--data-dir",
        str(out.parent / "data"),
        "--bench-data",
        str(bench or out.parent / "no_bench"),
        "--budget",
        "smoke",
        "--logger",
        "none",
        "--conditions",
        conditions,
        *TINY_SET,
        *more,
    ]
    return experiment.main(argv)


def read_rows(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open() as handle:
        return list(csv.DictReader(handle))


def ranking(out: Path) -> dict[str, list[str]]:
    """The ranking table of results.md: condition label -> its cells."""
    lines = (out / "results.md").read_text().split("\n\n")
    table = next(block for block in lines if block.startswith("| condition |"))
    return {
        row[0]: row[1:]
        for row in (line.strip("| ").split(" | ") for line in table.splitlines()[2:])
    }


def check_outputs(experiment, out: Path, keys: list[str]) -> list[dict[str, str]]:
    rows = read_rows(out)
    assert [c for c in rows[0] if c != "lpips"] == COLUMNS
    labels = [experiment.CONDITIONS[k].label for k in keys]
    # Every condition scored on the same three whole validation frames, the input too.
    by_method = {m: [r for r in rows if r["method"] == m] for m in ["input (blurry)", *labels]}
    assert [r["method"] for r in rows] == [m for m, own in by_method.items() for _ in own]
    images = [r["image"] for r in by_method["input (blurry)"]]
    assert len(images) == 3
    for label in labels:
        assert [r["image"] for r in by_method[label]] == images
        assert all(float(r["psnr"]) > 0 and 0 < float(r["ssim"]) <= 1 for r in by_method[label])
    table = ranking(out)
    assert list(table) == labels
    input_psnr = sum(float(r["psnr"]) for r in by_method["input (blurry)"]) / 3
    for label, cells in table.items():
        psnr = sum(float(r["psnr"]) for r in by_method[label]) / 3
        assert float(cells[1]) == pytest.approx(psnr, abs=0.006)
        assert float(cells[2]) == pytest.approx(psnr - input_psnr, abs=0.011)
        assert cells[5] == "2"  # identical DBGAN budget: two smoke batches in every condition
    # input | conditions | sharp: the whole 48x64 validation frames' 48 px centre square.
    with Image.open(out / "grid.png") as grid:
        assert grid.size == ((len(keys) + 2) * (48 + 2) + 2, 48 + 4)
    return rows


def test_all_five_conditions_then_resume_skips_them(
    experiment, clip: Path, bench: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exp"
    assert run_main(experiment, clip, out, "a,b,c,d,e", bench=bench) == 0
    rows = check_outputs(experiment, out, list("abcde"))
    assert "| a: naive |" in capsys.readouterr().out
    # c pre-trains BGAN and trains it against real blur, d pre-trains it: extra cost, reported.
    extra = {label[0]: cells[6] for label, cells in ranking(out).items()}
    assert extra["a"] == extra["b"] == extra["e"] == "none"
    assert extra["c"] == "pretrain_bgan 2 + bgan 2" and extra["d"].startswith("pretrain_bgan 2 ")
    stages = {
        "a": {"dbgan"},
        "b": {"dbgan"},
        "c": {"pretrain_bgan", "bgan", "dbgan"},
        "d": {"pretrain_bgan", "joint"},
        "e": {"dbgan"},
    }
    for key, names in stages.items():
        result = json.loads((out / key / "result.json").read_text())
        assert set(result["stages"]) == set(result["settings"]["stages"]) == names
        assert Path(result["checkpoint"]).parent.name == ("joint" if key == "d" else "dbgan")
        # Scored on both benchmark parts, one image each (the smoke budget's limit).
        parts = {p["part"]: p for p in result["benchmark"]}
        assert set(parts) == {"gopro", "synthetic"}
        assert all(p["images"] == 1 and math.isfinite(p["gain"]) for p in parts.values())
        assert (out / key / "generalisation" / "metrics.csv").is_file()
    # The held-out photos are blurred once for all five conditions.
    assert (out / "generalisation_cache" / "synthetic" / "pairs.json").is_file()
    table = ranking(out)
    gain = float(json.loads((out / "a" / "result.json").read_text())["benchmark"][0]["gain"])
    assert table["a: naive"][3].endswith(f"({gain:+.2f})")
    # What each condition trained on, read back from the run's own config: a and b differ only
    # in the synthetic blur, e trains on real pairs, c and d on BGAN's blur of the sharp frames.
    data = {k: OmegaConf.load(out / k / "config.yaml").data for k in "abcde"}
    assert data["a"].synthetic_blur._target_.endswith("SimpleBlur")
    assert data["b"].synthetic_blur._target_.endswith("CameraPipelineBlur")
    assert data["b"].synthetic_blur.saturation_factor is None  # daylight frames
    assert [data[k].train_pairs for k in "abcde"] == ["synthetic"] * 4 + ["real"]

    # A rerun trains and scores nothing: the finished conditions are read back, the report
    # rebuilt.
    stamps = {k: (out / k / "result.json").stat().st_mtime_ns for k in "abcde"}
    assert run_main(experiment, clip, out, "a,b,c,d,e", bench=bench) == 0
    assert {k: (out / k / "result.json").stat().st_mtime_ns for k in "abcde"} == stamps
    assert read_rows(out) == rows

    # Other training settings are refused instead of mixed into the table.
    assert run_main(experiment, clip, out, "a", "seed=1") == 2
    assert "--force" in capsys.readouterr().err


def test_a_later_launch_adds_conditions_to_the_report(
    experiment, clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "exp"
    assert run_main(experiment, clip, out, "e") == 0
    check_outputs(experiment, out, ["e"])
    # Interrupted after the last stage, before its result was written: nothing is retrained,
    # the final DBGAN is scored from its checkpoint, as it was the first time.
    result = out / "e" / "result.json"
    before = json.loads(result.read_text())
    result.unlink()
    assert run_main(experiment, clip, out, "e") == 0
    after = json.loads(result.read_text())
    assert after["resumed"]
    assert after["val"] == before["val"] and len(after["val"]) == 3
    assert after["benchmark"] == before["benchmark"] == []  # no benchmark data: skipped
    first = (out / "e" / "result.json").stat().st_mtime_ns
    assert run_main(experiment, clip, out, "a") == 0
    check_outputs(experiment, out, ["a", "e"])
    assert (out / "e" / "result.json").stat().st_mtime_ns == first
    # --force retrains a finished condition from scratch.
    assert run_main(experiment, clip, out, "e", "--force") == 0
    assert (out / "e" / "result.json").stat().st_mtime_ns != first


def test_missing_frames_is_one_line(
    experiment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REALBLUR_GAN_FRAMES", raising=False)
    monkeypatch.setattr(experiment, "SHARED_FRAMES", tmp_path / "nowhere")
    assert experiment.main(["--out", str(tmp_path / "exp")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--frames" in err and "REALBLUR_GAN_FRAMES" in err


def test_plan_gives_every_condition_the_same_batches(experiment) -> None:
    # 7 batches wanted, epochs of at most 3 (the smaller training set): 3 epochs of 3.
    plan = experiment.plan_stage(7, 3, validations=2)
    assert (plan.per_epoch, plan.epochs, plan.batches, plan.val_every) == (3, 3, 9, 1)
    assert experiment.plan_stage(2, 10, validations=1).batches == 2


def test_batches_option_replaces_preset_lengths(experiment) -> None:
    cpu = experiment.BUDGETS["cpu"]
    budget = experiment.parse_batches("dbgan=300, bgan=7", cpu)
    assert (budget.dbgan, budget.pretrain_bgan, budget.bgan) == (300, cpu.pretrain_bgan, 7)
    assert experiment.parse_batches("", cpu) == cpu
    for bad in ("joint=3", "dbgan=0", "dbgan=x"):
        with pytest.raises(ValueError, match="--batches"):
            experiment.parse_batches(bad, cpu)


def test_both_bgan_schemes_get_the_same_adversarial_budget(experiment) -> None:
    # c trains BGAN for `bgan` batches in its own stage; d's joint stage freezes BGAN after as many.
    plans = {
        "pretrain_bgan": experiment.plan_stage(4, 4, validations=1),
        "bgan": experiment.plan_stage(6, 3, validations=1),
        "dbgan": experiment.plan_stage(10, 5, validations=1),
    }
    joint = experiment.stage_overrides(["pretrain_bgan", "joint"], plans)
    assert "stages.joint.module.bgan_max_steps=6" in joint
    assert "stages.joint.trainer.max_epochs=2" in joint
    separate = experiment.stage_overrides(["pretrain_bgan", "bgan", "dbgan"], plans)
    assert "stages.bgan.trainer.max_epochs=2" in separate
    assert "stages.dbgan.trainer.max_epochs=2" in separate  # the last stage: DBGAN's budget
    assert not any("bgan_max_steps" in item for item in separate)


@pytest.mark.parametrize("key", ["a", "b", "c", "d", "e"])
def test_each_condition_is_an_experiment_file_that_brings_its_scheme(
    experiment, tmp_path: Path, key: str
) -> None:
    from realblur_gan.training.config import stage_order, validate_config

    condition = experiment.CONDITIONS[key]
    cfg = experiment.compose_condition(condition, tmp_path, tmp_path, tmp_path / key)
    validate_config(cfg)
    expected = {
        "a": ["dbgan"],
        "b": ["dbgan"],
        "c": ["pretrain_bgan", "bgan", "dbgan"],
        "d": ["pretrain_bgan", "joint"],
        "e": ["dbgan"],
    }[key]
    assert stage_order(cfg) == expected
    # DBGAN alone is a scheme of its own: no BGAN to build or load.
    if expected == ["dbgan"]:
        assert cfg.stages.dbgan.module.bgan_g is None and not cfg.stages.dbgan.init_from


def test_every_condition_trains_the_same_leaky_mean_keeping_dbgan(
    experiment, tmp_path: Path
) -> None:
    from omegaconf import OmegaConf

    nets = {}
    for key, condition in experiment.CONDITIONS.items():
        cfg = experiment.compose_condition(condition, tmp_path, tmp_path, tmp_path / key)
        nets[key] = OmegaConf.to_container(cfg.model.dbgan_g)
    assert len({repr(net) for net in nets.values()}) == 1, nets
    # With pix2pix's ReLU decoder a and e stopped learning at the identity, and without
    # keep_mean b, c and e shifted colour on unseen scenes (docs/experiment.md).
    assert nets["a"]["decoder_slope"] == 0.2 and nets["a"]["keep_mean"] is True


def test_an_override_some_condition_cannot_take_stops_before_any_training(
    experiment, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # b's camera has a saturation boost; a's SimpleBlur has no such key. An override reaches
    # every condition: a change for some is an experiment file of its own (next test).
    out = tmp_path / "exp"
    code = run_main(experiment, clip, out, "b,a", "data.synthetic_blur.saturation_factor=2")
    assert code == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert err.startswith("error: condition a:")
    assert "use +data.synthetic_blur.saturation_factor=2" in err  # Hydra's fix, kept
    assert "copy their conf/experiment/ files" in err
    # b comes first and could train, but every condition is composed before any trains.
    assert not (out / "a").exists() and not (out / "b").exists()


def test_a_variant_is_an_experiment_file_compared_at_the_same_budget(
    experiment, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from realblur_gan.training import config

    conf = tmp_path / "conf"
    shutil.copytree(config.CONFIG_DIR, conf)
    # The variant names the condition's file first and changes one value (own_data.yaml's form).
    variant = (
        "# @package _global_\n# The camera with a highlight boost.\n"
        "defaults:\n  - camera_blur\n  - _self_\n"
        "data:\n  synthetic_blur:\n    saturation_factor: 2.0\n"
    )
    (conf / "experiment" / "camera_boost.yaml").write_text(variant)
    monkeypatch.setattr(config, "CONFIG_DIR", conf)
    out = tmp_path / "exp"
    assert run_main(experiment, clip, out, "b,camera_boost") == 0
    trained = {k: OmegaConf.load(out / k / "config.yaml") for k in ("b", "camera_boost")}
    assert trained["b"].data.synthetic_blur.saturation_factor is None
    assert trained["camera_boost"].data.synthetic_blur.saturation_factor == 2.0
    table = ranking(out)
    assert list(table) == ["b: camera", "camera_boost"]
    assert table["camera_boost"][0] == "The camera with a highlight boost."
    assert table["camera_boost"][5] == table["b: camera"][5] == "2"  # the same DBGAN budget
    with pytest.raises(experiment.UserError, match=r"conf/experiment/nothing\.yaml"):
        experiment.find_condition("nothing")


def test_every_conditions_wandb_runs_share_the_experiments_group(
    experiment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from realblur_gan.training.config import stage_order
    from realblur_gan.training.runner import _build_loggers

    monkeypatch.setenv("WANDB_MODE", "offline")
    group = "experiment-2026-12-04_15-00-00"
    for key, condition in experiment.CONDITIONS.items():
        cfg = experiment.compose_condition(
            condition,
            tmp_path,
            tmp_path,
            tmp_path / key,
            experiment.logger_overrides("wandb", group),
        )
        stage = stage_order(cfg)[-1]
        (logger,) = _build_loggers(cfg, stage)
        assert logger._wandb_init["group"] == group
        name = logger._wandb_init["name"]
        assert name.startswith(f"{key}-") and name.endswith(f"/{stage}")
        assert logger._wandb_init["mode"] == "offline"


def test_a_later_launch_keeps_the_first_launchs_wandb_group(
    experiment, clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "exp"
    assert run_main(experiment, clip, out, "a") == 0
    first = json.loads((out / "experiment.json").read_text())["group"]
    assert first.startswith("experiment-")
    assert run_main(experiment, clip, out, "a") == 0  # skipped: finished
    assert json.loads((out / "experiment.json").read_text())["group"] == first


def test_other_settings_are_refused_before_anything_is_rewritten(
    experiment, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: a relaunch with other settings rewrote experiment.json at once and rendered the
    frames (26 s for the shared frames) before it refused."""
    out = tmp_path / "exp"
    out.mkdir()
    earlier = {"group": "experiment-1", "frames": str(clip), "budget": "smoke", "batches": ""}
    earlier["overrides"] = TINY_SET
    manifest = out / "experiment.json"
    manifest.write_text(json.dumps(earlier))
    before = manifest.read_bytes()
    assert run_main(experiment, clip, out, "a", "seed=1") == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: --out {out} holds an experiment launched with other settings")
    assert "seed=1" in line and "--force" in line and "another --out" in line
    assert manifest.read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["experiment.json"]
    assert not (tmp_path / "data").exists()  # no frame rendered


def test_a_bad_value_is_refused_before_any_frame_is_rendered(
    experiment, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: the frames were rendered first, then a traceback ended the run."""
    out = tmp_path / "exp"
    assert run_main(experiment, clip, out, "a,b", "optim.generator.lr=nan") == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert (
        line == "error: condition a: optim.generator.lr=nan: must be a number > 0; fix the override"
    )
    assert not (tmp_path / "data").exists()
    assert sorted(out.iterdir()) == []


def test_a_second_launch_into_the_same_out_is_refused(
    experiment, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from realblur_gan.ownership import claim_folder

    out = tmp_path / "exp"
    first = claim_folder(out, "--out", "pass another --out")
    try:
        assert run_main(experiment, clip, out, "a") == 2
    finally:
        first.release()
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: --out {out} is in use by PID ")
    assert not (out / "experiment.json").exists()


def test_overrides_may_stand_on_both_sides_of_an_option(experiment) -> None:
    args = experiment.parse_args(["seed=1", "--force", "data.gap=2", "--conditions", "a,e", "+x=1"])
    assert args.overrides == ["seed=1", "data.gap=2", "+x=1"]
    assert args.force and args.conditions == "a,e"
    assert experiment.parse_args([]).overrides == []
