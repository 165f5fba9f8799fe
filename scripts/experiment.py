"""The paper's experiment in one command: one DBGAN budget, five sources of blurry training input.

Zhang et al. (CVPR 2020) argue that a deblurring net is only as good as the blur it is trained
on. This script trains the same DBGAN (same net, same number of training batches, same data
sizes, same seed) five times, changing only where its blurry training input comes from, and
scores each on the same real-blur validation pairs (GoPro-style frame averages from a window of
frames that no condition trains on):

    a  naive synthetic blur      DBGAN only; sharp frames blurred by SimpleBlur kernels
    b  realistic synthetic blur  DBGAN only; sharp frames through CameraPipelineBlur
    c  BGAN, separate scheme     pretrain_bgan -> bgan (vs the unpaired real blur) -> dbgan
    d  BGAN, joint scheme        pretrain_bgan -> joint (BGAN and DBGAN trained together)
    e  paired real blur          DBGAN only; real frame averages paired with their middle frame
                                 (the oracle: what c and d try to approach without pairs)

Usage::

    python scripts/experiment.py                          # all five, --budget cpu
    python scripts/experiment.py --budget gpu --frames /data/GOPRO_Large_all/train \\
        --set data.split_by=sequences --set data.train_stride=10
    python scripts/experiment.py --conditions a,e --budget smoke --logger none
    python scripts/experiment.py --conditions a,b --set b:+data.synthetic_blur.gamma=2.4

Each condition is one ``realblur_gan.train.run`` into ``<out>/<condition>/`` (its own
checkpoints, panels, W&B runs); the conditions run one after another in this process. A
condition whose ``result.json`` exists is skipped (rerun the same command after an interruption;
an interrupted condition resumes from its checkpoints); ``--force`` trains it again. At the end
``<out>`` holds ``results.csv``, ``results.md`` (also printed), ``results.png`` (PSNR per
condition, the blurry input as a line) and ``grid.png`` (one validation crop restored by every
condition's final DBGAN).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Before torch loads: busy-waiting OpenMP threads crawl on a CPU shared with other processes.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from realblur_gan.errors import UserError, error_text
from realblur_gan.help_format import HelpFormatter
from realblur_gan.ownership import claim_folder, new_folder

# Torch, Hydra and the trainer are imported where they are used: `--help` answers at once.
if TYPE_CHECKING:
    import torch
    from omegaconf import DictConfig
    from PIL import ImageDraw, ImageFont

log = logging.getLogger("experiment")

REPO = Path(__file__).resolve().parents[1]
SHARED_FRAMES = REPO.parent / "shared" / "data" / "gopro_frames"
RESULT_FILE = "result.json"
MANIFEST_FILE = "experiment.json"

# Every condition composes these first: the frames data, with the sharp window as synthetic pairs
# unless the condition says otherwise.
BASE_OVERRIDES = ("data=gopro_frames", "data.train_pairs=synthetic")
# DBGAN alone, on the synthetic pairs only: no BGAN to build or load.
DBGAN_ONLY = ("stage_order=[dbgan]", "stages.dbgan.module.bgan_g=null", "~stages.dbgan.init_from")
SIMPLE_BLUR = "data.synthetic_blur._target_=realblur_gan.blur.SimpleBlur"


@dataclass(frozen=True)
class Condition:
    """One source of DBGAN's blurry training input.

    Attributes:
        key: One letter, a to e (the output folder and the row of the table).
        name: Short label for plots and run names.
        description: One line for the table.
        scheme: The scheme file composed (``+scheme=``).
        stages: The stages run, in order.
        dbgan_stage: The stage that trains DBGAN; its length is the shared DBGAN budget.
        overrides: Hydra overrides that make this condition.
    """

    key: str
    name: str
    description: str
    scheme: str
    stages: tuple[str, ...]
    dbgan_stage: str
    overrides: tuple[str, ...]

    @property
    def bgan_stages(self) -> tuple[str, ...]:
        """Stages that train only BGAN: extra cost this condition needs, not DBGAN budget."""
        return tuple(s for s in self.stages if s != self.dbgan_stage)


CONDITIONS: dict[str, Condition] = {
    c.key: c
    for c in (
        Condition(
            "a",
            "naive",
            "naive synthetic blur (SimpleBlur kernels), DBGAN only",
            "separate",
            ("dbgan",),
            "dbgan",
            (*DBGAN_ONLY, SIMPLE_BLUR),
        ),
        Condition(
            "b",
            "camera",
            "realistic synthetic blur (CameraPipelineBlur), DBGAN only",
            "separate",
            ("dbgan",),
            "dbgan",
            # Replaced, not merged: SimpleBlur's kernel_size must not leak into the camera's
            # arguments (the camera runs with its constructor defaults).
            (
                *DBGAN_ONLY,
                "~data.synthetic_blur",
                "+data.synthetic_blur._target_=realblur_gan.camera.CameraPipelineBlur",
            ),
        ),
        Condition(
            "c",
            "BGAN sep.",
            "BGAN learned from unpaired real blur, separate scheme",
            "separate",
            ("pretrain_bgan", "bgan", "dbgan"),
            "dbgan",
            (SIMPLE_BLUR,),
        ),
        Condition(
            "d",
            "BGAN joint",
            "BGAN learned from unpaired real blur, joint scheme",
            "joint",
            ("pretrain_bgan", "joint"),
            "joint",
            (SIMPLE_BLUR,),
        ),
        Condition(
            "e",
            "real pairs",
            "paired real blur (oracle), DBGAN only",
            "separate",
            ("dbgan",),
            "dbgan",
            (*DBGAN_ONLY, "data.train_pairs=real"),
        ),
    )
}


@dataclass(frozen=True)
class Budget:
    """Training batches per stage kind; DBGAN's count is the one shared by every condition.

    Attributes:
        dbgan: Batches of the stage that trains DBGAN (``dbgan``, or ``joint`` for d).
        pretrain_bgan: Batches of BGAN's pre-training on synthetic pairs (c, d).
        bgan: Batches of BGAN against the real blur (c).
        validations: About how many validations each stage logs on its way (the final one is
            always made).
    """

    dbgan: int
    pretrain_bgan: int
    bgan: int
    validations: int = 4

    def batches(self, stage: str, dbgan_stage: str) -> int:
        if stage == dbgan_stage:
            return self.dbgan
        return {"pretrain_bgan": self.pretrain_bgan, "bgan": self.bgan}[stage]


# cpu: all five conditions within 60 minutes on a 2-core CPU, default nets, 256 px crops of the
# shared frames. Scaled from a smoke run there (one thread, machine shared, load ~4.5): about
# 5.5 s per DBGAN batch, 6.5 per joint batch, 2.3 per BGAN batch, ~15 s fixed per condition and
# ~3 s per validation. 100 DBGAN batches: a, b, e ~10 min each, c ~12, d ~13; ~55 min in all
# (less with two free threads). Multiples of the epoch sizes there (5 DBGAN, 6 BGAN batches).
BUDGETS: dict[str, Budget] = {
    "smoke": Budget(dbgan=2, pretrain_bgan=2, bgan=2, validations=1),
    "cpu": Budget(dbgan=100, pretrain_bgan=48, bgan=36),
    # Not timed here: sized for a GPU hour or so with the default nets.
    "gpu": Budget(dbgan=6000, pretrain_bgan=2000, bgan=2000, validations=10),
}


def parse_batches(text: str, budget: Budget) -> Budget:
    """``--batches dbgan=300,bgan=50``: the preset with these stage lengths replaced."""
    changes: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, value = item.partition("=")
        if key not in ("dbgan", "pretrain_bgan", "bgan") or not value.isdigit() or not int(value):
            raise ValueError(
                f"--batches: {item!r} is not dbgan=N, pretrain_bgan=N or bgan=N with N >= 1"
            )
        changes[key] = int(value)
    return dataclasses.replace(budget, **changes)


@dataclass(frozen=True)
class StagePlan:
    """How a stage's batch count is laid out in Lightning epochs.

    The per-epoch count is capped by the smallest training set of any condition, so every
    condition's DBGAN sees exactly ``per_epoch * epochs`` batches whatever its data holds.
    """

    per_epoch: int
    epochs: int
    val_every: int

    @property
    def batches(self) -> int:
        return self.per_epoch * self.epochs


def plan_stage(batches: int, epoch_batches: int, validations: int) -> StagePlan:
    """Lay ``batches`` out as whole epochs of at most ``epoch_batches`` batches.

    Args:
        batches: Training batches wanted.
        epoch_batches: Batches one epoch of the (smallest) training set holds.
        validations: About how many validations the stage should log.

    Returns:
        The plan; its ``batches`` is ``batches`` rounded up to whole epochs.
    """
    per_epoch = max(1, min(batches, epoch_batches))
    epochs = math.ceil(batches / per_epoch)
    return StagePlan(per_epoch, epochs, max(1, epochs // max(1, validations)))


# --------------------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------------------


class OverrideError(ValueError):
    """A ``--set`` override the condition's config cannot take (one line, for the user)."""


def parse_sets(items: Sequence[str]) -> list[tuple[frozenset[str] | None, str]]:
    """Split ``--set`` values into (conditions they reach, Hydra override).

    ``KEY=VALUE`` reaches every condition; ``b:KEY=VALUE`` or ``a,b:KEY=VALUE`` only the
    conditions named (a setting only one blur source has, such as the camera's).

    Raises:
        ValueError: no ``=``, or a prefix that names no condition.
    """
    out: list[tuple[frozenset[str] | None, str]] = []
    for item in items:
        keys, override = None, item
        if ":" in item.split("=", 1)[0]:  # a colon in the value (00:01:00) is no prefix
            prefix, override = item.split(":", 1)
            keys = frozenset(k.strip() for k in prefix.split(","))
            if not keys <= CONDITIONS.keys():
                raise ValueError(
                    f"--set {item!r}: {prefix!r} is not a list of conditions "
                    f"(letters of {','.join(CONDITIONS)}), as in b:KEY=VALUE"
                )
        if "=" not in override and not override.startswith("~"):
            raise ValueError(f"--set takes [CONDITIONS:]KEY=VALUE, got {item!r}")
        out.append((keys, override))
    return out


def sets_for(condition: Condition, sets: Sequence[tuple[frozenset[str] | None, str]]) -> list[str]:
    """The ``--set`` overrides that reach ``condition``, in the order given."""
    return [o for keys, o in sets if keys is None or condition.key in keys]


def compose_condition(
    condition: Condition,
    frames: Path,
    data_dir: Path,
    out_dir: Path,
    extra: Sequence[str] = (),
) -> DictConfig:
    """The training config of one condition, composed as the CLI would compose it.

    Args:
        condition: Which condition.
        frames: ``data.frames_dir``.
        data_dir: ``paths.data_dir`` (where the frames cache goes).
        out_dir: The condition's run folder (``paths.output_dir``).
        extra: More overrides, applied last (budget, logger, ``--set``).

    Returns:
        The config, ready for :func:`realblur_gan.train.run`.

    Raises:
        OverrideError: an override the config cannot take, in one line naming it.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException
    from omegaconf import open_dict

    from realblur_gan.config import CONFIG_DIR

    overrides = [
        f"+scheme={condition.scheme}",
        *BASE_OVERRIDES,
        # Names the W&B runs `<key>-<name>/<stage>` inside the experiment's group.
        f"scheme_name_={condition.key}-{condition.name.replace(' ', '_').rstrip('.')}",
        *condition.overrides,
        *extra,
    ]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        try:
            cfg = compose("train", overrides=overrides)
        except ConfigCompositionException as err:
            # Hydra names the override and, for a key the config lacks, the `+` form that adds
            # it; the cause says what is wrong. All of it on one line.
            lines = [line.strip().rstrip(".") for line in str(err).splitlines() if line.strip()]
            if err.__cause__ is not None:
                lines.insert(1, str(err.__cause__).splitlines()[0])
            raise OverrideError(
                f"condition {condition.key}: {'; '.join(lines)}. A --set without a prefix "
                "reaches every condition; b:KEY=VALUE limits it to the conditions named"
            ) from err
    with open_dict(cfg):
        # Set here, not as overrides: a path may hold characters Hydra's grammar rejects.
        cfg.data.frames_dir = str(frames)
        # Outside @hydra.main there is no hydra:runtime to resolve the defaults from.
        cfg.paths.data_dir = str(data_dir)
        cfg.paths.output_dir = str(out_dir)
    return cfg


def stage_overrides(condition: Condition, plans: dict[str, StagePlan]) -> list[str]:
    """Trainer overrides giving every stage of ``condition`` its planned length."""
    # A stage's trainer keys are merged into the global `trainer`, a struct config: the key must
    # exist there first (null: Lightning's default, all batches).
    out = ["++trainer.limit_train_batches=null"]
    for stage in condition.stages:
        plan = plans[stage if stage in ("pretrain_bgan", "bgan") else "dbgan"]
        out += [
            f"stages.{stage}.trainer.max_epochs={plan.epochs}",
            # `++`: added when the stage config lacks the key, replaced when it has it.
            f"++stages.{stage}.trainer.limit_train_batches={plan.per_epoch}",
            f"++stages.{stage}.trainer.check_val_every_n_epoch={plan.val_every}",
        ]
    if "joint" in condition.stages:
        # BGAN gets the same adversarial budget in both schemes: inside the joint stage it
        # trains for the separate scheme's `bgan` batches, then stays frozen.
        out.append(f"stages.joint.module.bgan_max_steps={plans['bgan'].batches}")
    return out


def logger_overrides(logger: str, group: str) -> list[str]:
    """``logger=`` and, for W&B, the one group every run of the experiment goes to."""
    if logger == "wandb":
        return ["logger=wandb", f"logger.wandb.group={group}"]
    return [f"logger={logger}"]


def epoch_batches(cfg: DictConfig) -> tuple[int, Any]:
    """Training batches per epoch of ``cfg``'s data (renders the frames cache on first use).

    Returns:
        The count and the set-up data module.
    """
    from hydra.utils import instantiate

    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    # The training loader drops the last partial batch.
    return len(datamodule.train_set) // datamodule.batch_size, datamodule


# --------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------


def stage_seconds(run_dir: Path, stages: Sequence[str], start: float) -> dict[str, float]:
    """Wall seconds per stage, read off the stages' DONE markers (written as each one ends).

    A stage's time includes building it and its validations; a stage finished in an earlier,
    interrupted launch is left out.
    """
    from realblur_gan.train import DONE_MARKER

    out: dict[str, float] = {}
    previous = start
    for stage in stages:
        marker = run_dir / "checkpoints" / stage / DONE_MARKER
        if not marker.exists():
            continue
        done = marker.stat().st_mtime
        if done >= start:
            out[stage] = round(done - previous, 2)
        previous = max(previous, done)
    return out


def evaluate_checkpoint(checkpoint: Path, val_set: Any) -> dict[str, float]:
    """PSNR/SSIM of a checkpoint's DBGAN (EMA when kept) and of the input, per-image means.

    Only used when a resumed run finished its last stage but not its final validation.
    """
    from realblur_gan.checkpoints import load_generator
    from realblur_gan.inference import deblur_image
    from realblur_gan.metrics import psnr, ssim

    net = load_generator(checkpoint)
    sums = {"val/psnr": 0.0, "val/ssim": 0.0, "val/psnr_input": 0.0, "val/ssim_input": 0.0}
    for i in range(len(val_set)):
        item = val_set[i]
        blur, sharp = item["blur"][None], item["sharp"][None]
        restored = deblur_image(net, blur, tile=None)
        sums["val/psnr"] += float(psnr(restored, sharp)[0])
        sums["val/ssim"] += float(ssim(restored, sharp)[0])
        sums["val/psnr_input"] += float(psnr(blur, sharp)[0])
        sums["val/ssim_input"] += float(ssim(blur, sharp)[0])
    return {k: v / len(val_set) for k, v in sums.items()}


def run_condition(
    condition: Condition, cfg: DictConfig, run_dir: Path, signature: dict[str, Any]
) -> dict[str, Any]:
    """Train one condition and write its ``result.json``.

    Args:
        condition: Which condition.
        cfg: Its composed config (output dir ``run_dir``).
        run_dir: ``<out>/<key>``.
        signature: What must match for an earlier result to count (stage plans, overrides).

    Returns:
        The result record written.
    """
    from hydra.utils import instantiate
    from omegaconf import open_dict

    from realblur_gan.train import run

    run_dir.mkdir(parents=True, exist_ok=True)
    resumed = (run_dir / "checkpoints").is_dir()
    if resumed:
        # An interrupted launch: finished stages are skipped, the interrupted one continues.
        log.info("%s: resuming the interrupted run in %s", condition.key, run_dir)
        with open_dict(cfg):
            cfg.resume = str(run_dir)
    (run_dir / "signature.json").write_text(json.dumps(signature, indent=1) + "\n")
    start_wall, start = time.time(), time.perf_counter()
    result = run(cfg)
    seconds = time.perf_counter() - start
    final = result.checkpoints.get(condition.dbgan_stage) or (
        run_dir / "checkpoints" / condition.dbgan_stage / "last.ckpt"
    )
    metrics, val_images = dict(result.metrics), result.val_images
    if "val/psnr" not in metrics:
        datamodule = instantiate(cfg.data)
        datamodule.setup("validate")
        metrics = evaluate_checkpoint(final, datamodule.val_set)
        val_images = len(datamodule.val_set)
    record = {
        "condition": condition.key,
        "name": condition.name,
        "description": condition.description,
        "metrics": metrics,
        "val_images": val_images,
        # Of this launch only: a resumed condition's earlier launches are not counted.
        "seconds": round(seconds, 2),
        "resumed": resumed,
        "stage_seconds": stage_seconds(run_dir, condition.stages, start_wall),
        "checkpoint": str(final),
        "wandb_dirs": [str(p) for p in result.wandb_dirs],
        "signature": signature,
    }
    (run_dir / RESULT_FILE).write_text(json.dumps(record, indent=1) + "\n")
    return record


def condition_signature(
    condition: Condition, preset: str, plans: dict[str, StagePlan], args: argparse.Namespace
) -> dict[str, Any]:
    """What a stored result must have been trained with to be reused."""
    return {
        "preset": preset,
        "stages": {
            s: vars(plans[s if s in ("pretrain_bgan", "bgan") else "dbgan"])
            for s in condition.stages
        },
        "set": sets_for(condition, args.sets),
        "frames": str(args.frames),
    }


def load_result(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / RESULT_FILE
    return json.loads(path.read_text()) if path.exists() else None


# --------------------------------------------------------------------------------------------------
# Report: table, bar plot, grid
# --------------------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def table_rows(
    results: list[dict[str, Any]], input_lpips: float | None = None
) -> list[dict[str, Any]]:
    """One row for the blurry input, then one per condition, with the table's columns."""
    first = results[0]["metrics"]
    rows = [
        {
            "condition": "input",
            "description": "the blurry validation input itself (no restoration)",
            "psnr": first.get("val/psnr_input"),
            "ssim": first.get("val/ssim_input"),
            "lpips": input_lpips,
            "gain_db": 0.0,
            "dbgan_batches": 0,
            "bgan_batches": 0,
            "extra_training": "",
            "wall_min": None,
        }
    ]
    for r in results:
        m, stages = r["metrics"], r["signature"]["stages"]
        condition = CONDITIONS[r["condition"]]
        dbgan = stages[condition.dbgan_stage]
        bgan = {s: stages[s] for s in condition.bgan_stages}
        extra = " + ".join(f"{s} {p['per_epoch'] * p['epochs']}" for s, p in bgan.items())
        if condition.dbgan_stage == "joint":
            extra += " (+ the first joint batches, as many as c's bgan stage)"
        rows.append(
            {
                "condition": r["condition"],
                "description": r["description"],
                "psnr": m.get("val/psnr"),
                "ssim": m.get("val/ssim"),
                "lpips": m.get("val/lpips"),
                "gain_db": m.get("val/psnr", math.nan) - m.get("val/psnr_input", math.nan),
                "dbgan_batches": dbgan["per_epoch"] * dbgan["epochs"],
                "bgan_batches": sum(p["per_epoch"] * p["epochs"] for p in bgan.values()),
                "extra_training": extra,
                "wall_min": r["seconds"] / 60,
            }
        )
    return rows


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| condition | description | PSNR (dB) | SSIM | LPIPS | gain over input (dB) "
        "| DBGAN batches | extra BGAN batches | wall (min) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        # The input row has no training: its training columns stay empty.
        trained = ["", "", "", ""]
        if r["condition"] != "input":
            trained = [
                f"{r['gain_db']:+.2f}",
                str(r["dbgan_batches"]),
                r["extra_training"] or "none",
                f"{r['wall_min']:.1f}",
            ]
        cells = [
            r["condition"],
            r["description"],
            _fmt(r["psnr"], 2),
            _fmt(r["ssim"], 4),
            _fmt(r["lpips"], 4),
            *trained,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _font(size: int) -> ImageFont.ImageFont:
    from PIL import ImageFont

    # Pillow's bundled font (no system fonts needed); the bitmap one on builds without FreeType.
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


PLOT_SIZE = (720, 420)


def bar_plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """PSNR per condition as bars, the blurry input as a dashed line, drawn with PIL."""
    width, height = PLOT_SIZE
    left, right, top, bottom = 70, 20, 64, 60
    from PIL import Image, ImageDraw

    image = Image.new("RGB", PLOT_SIZE, "white")
    draw = ImageDraw.Draw(image)
    font, small = _font(14), _font(12)
    bars = [r for r in rows if r["condition"] != "input" and r["psnr"] is not None]
    reference = rows[0]["psnr"]
    values = [r["psnr"] for r in bars] + ([reference] if reference is not None else [])
    lo, hi = math.floor(min(values) - 1), math.ceil(max(values) + 1)
    plot_h = height - top - bottom

    def y_of(value: float) -> float:
        return top + plot_h * (hi - value) / (hi - lo)

    draw.text((width // 2, 18), title, fill="black", font=font, anchor="mm")
    # Axes and y ticks: about six labelled steps whatever the range.
    draw.line([(left, top), (left, height - bottom), (width - right, height - bottom)], "black")
    step = max(1, math.ceil((hi - lo) / 6))
    for tick in range(lo, hi + 1, step):
        y = y_of(tick)
        draw.line([(left - 5, y), (left, y)], "black")
        draw.line([(left + 1, y), (width - right, y)], (230, 230, 230))
        draw.text((left - 8, y), str(tick), fill="black", font=small, anchor="rm")
    # The y label, written sideways.
    label = Image.new("RGB", (_text_size(draw, "PSNR (dB)", font)[0] + 4, 18), "white")
    ImageDraw.Draw(label).text((2, 0), "PSNR (dB)", fill="black", font=font)
    label = label.rotate(90, expand=True)
    image.paste(label, (8, top + (plot_h - label.height) // 2))

    slot = (width - left - right) / max(1, len(bars))
    for i, r in enumerate(bars):
        x0 = left + slot * (i + 0.2)
        x1 = left + slot * (i + 0.8)
        y = y_of(r["psnr"])
        draw.rectangle([x0, y, x1, height - bottom - 1], fill=(70, 110, 170), outline="black")
        draw.text(((x0 + x1) / 2, y - 4), f"{r['psnr']:.2f}", fill="black", font=small, anchor="md")
        name = f"{r['condition']}: {CONDITIONS[r['condition']].name}"
        draw.text(((x0 + x1) / 2, height - bottom + 8), name, fill="black", font=small, anchor="ma")
    draw.text((width // 2, height - 18), "condition", fill="black", font=font, anchor="mm")
    if reference is not None:
        y = y_of(reference)
        for x in range(left, width - right, 12):  # dashed
            draw.line([(x, y), (min(x + 6, width - right), y)], fill=(200, 30, 30), width=2)
        # The legend sits above the plot area, where no bar value can cover it.
        legend_y = top - 14
        x0 = width - right - 190
        draw.line([(x0, legend_y), (x0 + 24, legend_y)], fill=(200, 30, 30), width=2)
        text = f"blurry input {reference:.2f} dB"
        draw.text((x0 + 30, legend_y), text, fill=(200, 30, 30), font=small, anchor="lm")
    image.save(path)


GRID_PAD, GRID_LABEL, GRID_MIN_TILE = 4, 20, 128


def pick_val_item(val_set: Any) -> int:
    """The validation pair with the most blur (lowest input PSNR): where conditions differ."""
    from realblur_gan.metrics import psnr

    scores = []
    for i in range(len(val_set)):
        item = val_set[i]
        scores.append(float(psnr(item["blur"][None], item["sharp"][None])[0]))
    return min(range(len(scores)), key=scores.__getitem__)


def grid_size(tile_h: int, tile_w: int, n_tiles: int) -> tuple[int, int]:
    """(width, height) of ``grid.png`` for validation crops of ``tile_h x tile_w``."""
    scale = max(1, math.ceil(GRID_MIN_TILE / min(tile_h, tile_w)))
    th, tw = tile_h * scale, tile_w * scale
    return n_tiles * (tw + GRID_PAD) + GRID_PAD, th + GRID_LABEL + 2 * GRID_PAD


def make_grid(
    item: dict[str, Any], results: list[dict[str, Any]], path: Path
) -> list[tuple[str, float | None]]:
    """Blurry input | each condition's restoration | sharp, labelled, in one PNG.

    Small crops are enlarged by a whole factor (nearest neighbour) so the labels fit.

    Returns:
        (label, PSNR of the tile against the sharp crop) per tile.
    """
    from PIL import Image, ImageDraw

    from realblur_gan.checkpoints import load_generator
    from realblur_gan.inference import deblur_image
    from realblur_gan.metrics import psnr

    blur, sharp = item["blur"][None], item["sharp"][None]
    tiles: list[tuple[str, torch.Tensor]] = [("input", blur)]
    for r in results:
        net = load_generator(r["checkpoint"])  # EMA weights when the run kept them
        tiles.append((r["condition"], deblur_image(net, blur, tile=None)))
    tiles.append(("sharp", sharp))
    _, _, h, w = blur.shape
    width, height = grid_size(h, w, len(tiles))
    scale = max(1, math.ceil(GRID_MIN_TILE / min(h, w)))
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font(12)
    scores: list[tuple[str, float | None]] = []
    for i, (name, tensor) in enumerate(tiles):
        array = (tensor[0].clamp(0, 1) * 255).round().byte()
        if array.shape[0] == 1:
            array = array.expand(3, -1, -1)
        tile = Image.fromarray(array.permute(1, 2, 0).numpy())
        tile = tile.resize((w * scale, h * scale), Image.NEAREST)
        x = GRID_PAD + i * (w * scale + GRID_PAD)
        canvas.paste(tile, (x, GRID_LABEL + GRID_PAD))
        score = None if name == "sharp" else float(psnr(tensor, sharp)[0])
        scores.append((name, score))
        text = name if score is None else f"{name}  {score:.2f} dB"
        draw.text(
            (x + w * scale / 2, GRID_LABEL / 2 + 2), text, fill="black", font=font, anchor="mm"
        )
    canvas.save(path)
    return scores


def input_lpips(val_set: Any) -> float | None:
    """Mean LPIPS of the blurry input, when the AlexNet weights are present (else None)."""
    import torch

    from realblur_gan.losses import LPIPSLoss
    from realblur_gan.pretrained import MissingPretrainedWeights

    try:
        lpips = LPIPSLoss()
    except MissingPretrainedWeights:
        return None
    with torch.no_grad():
        values = [
            float(lpips(val_set[i]["blur"][None], val_set[i]["sharp"][None]))
            for i in range(len(val_set))
        ]
    return sum(values) / len(values)


def report(
    out: Path,
    results: list[dict[str, Any]],
    val_set: Any,
    header: list[str],
) -> str:
    """Write results.csv, results.md, results.png and grid.png; return the markdown table."""
    lpips_in = input_lpips(val_set) if any("val/lpips" in r["metrics"] for r in results) else None
    rows = table_rows(results, lpips_in)
    write_csv(rows, out / "results.csv")
    table = markdown_table(rows)
    index = pick_val_item(val_set)
    item = val_set[index]
    scores = make_grid(item, results, out / "grid.png")
    dbgan = rows[1]["dbgan_batches"]
    bar_plot(rows, out / "results.png", f"DBGAN validation PSNR, {dbgan} DBGAN batches each")
    grid_line = ", ".join(f"{n} {s:.2f} dB" for n, s in scores if s is not None)
    text = "\n".join(
        [
            "# realblur-gan: DBGAN trained on five sources of blur",
            "",
            *header,
            "",
            table,
            "",
            "PSNR/SSIM/LPIPS: DBGAN's final weights (EMA when kept) on the real-blur validation "
            "pairs, averaged per image; gain: PSNR minus the blurry input's. Every condition "
            "trains DBGAN for the same number of batches; the BGAN stages of c and d are extra "
            "training those conditions need (their wall time includes it).",
            "",
            "![PSNR per condition](results.png)  ![grid](grid.png)",
            "",
            f"grid.png: validation pair `{item['name']}` (the most blurred of {len(val_set)}): "
            f"input | {' | '.join(r['condition'] for r in results)} | sharp; {grid_line}.",
            "",
        ]
    )
    (out / "results.md").write_text(text)
    return table


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def default_frames() -> Path | None:
    """``$REALBLUR_GAN_FRAMES``, else the shared frames next to the repository, else None."""
    env = os.environ.get("REALBLUR_GAN_FRAMES")
    if env:
        return Path(env)
    return SHARED_FRAMES if SHARED_FRAMES.is_dir() else None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    conditions = "\n".join(f"  {c.key}  {c.description}" for c in CONDITIONS.values())
    budgets = ", ".join(
        f"{name} ({b.dbgan} DBGAN batches; BGAN {b.pretrain_bgan} + {b.bgan})"
        for name, b in BUDGETS.items()
    )
    parser = argparse.ArgumentParser(
        prog="python scripts/experiment.py",
        description=__doc__.splitlines()[0] + "\n\nconditions:\n" + conditions,
        formatter_class=HelpFormatter,
        epilog="examples:\n"
        "  python scripts/experiment.py                               # all five, --budget cpu\n"
        "  python scripts/experiment.py --budget smoke --logger none  # a wiring check\n"
        "  python scripts/experiment.py --conditions a,e --batches dbgan=300 --set seed=1",
    )
    parser.add_argument(
        "--frames",
        type=Path,
        default=None,
        metavar="DIR",
        help="consecutive high-fps frames (data.frames_dir) (default: $REALBLUR_GAN_FRAMES, else "
        "../shared/data/gopro_frames beside the checkout when it exists)",
    )
    parser.add_argument(
        "--conditions", default=",".join(CONDITIONS), help="the conditions to run, e.g. a,e"
    )
    parser.add_argument(
        "--budget",
        choices=sorted(BUDGETS),
        default="cpu",
        help=f"preset stage lengths: {budgets}",
    )
    parser.add_argument(
        "--batches",
        default="",
        metavar="STAGE=N,...",
        help="replace the preset's training batches: dbgan=N (every condition's DBGAN), "
        "pretrain_bgan=N, bgan=N",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[CONDITIONS:]KEY=VALUE",
        help="Hydra override passed to every condition (repeatable), e.g. --set seed=1; "
        "with a prefix only to those conditions, e.g. --set b:+data.synthetic_blur.gamma=2.4",
    )
    parser.add_argument(
        "--logger",
        choices=("wandb", "csv", "none"),
        default="wandb",
        help="wandb: offline W&B runs, one group for the experiment (wandb sync uploads them); "
        "csv: metrics.csv per stage; none: the printed report only",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="the experiment's folder; rerun with the same --out to resume (default: "
        "outputs/experiment/<time>)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="paths.data_dir, where the frames cache goes (default: $REALBLUR_GAN_DATA, else "
        "<repo>/data)",
    )
    parser.add_argument("--force", action="store_true", help="retrain finished conditions")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment; returns the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    keys = [k.strip() for k in args.conditions.split(",") if k.strip()]
    unknown = [k for k in keys if k not in CONDITIONS]
    if unknown or not keys:
        print(
            f"error: --conditions takes letters of {','.join(CONDITIONS)}, got {unknown}",
            file=sys.stderr,
        )
        return 2
    args.frames = args.frames or default_frames()
    if args.frames is None or not args.frames.is_dir():
        where = f"{args.frames} is not a folder" if args.frames else "no frames found"
        print(
            f"error: {where}; pass --frames DIR or set REALBLUR_GAN_FRAMES to a folder of "
            "consecutive high-fps frames (or of sequence folders of them)",
            file=sys.stderr,
        )
        return 2
    try:
        budget = parse_batches(args.batches, BUDGETS[args.budget])
        args.sets = parse_sets(args.set)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    data_dir = (args.data_dir or Path(os.environ.get("REALBLUR_GAN_DATA", REPO / "data"))).resolve()
    try:
        # A default --out is new for every launch; a given one is owned by one launch at a time.
        out = (args.out or new_folder(REPO / "outputs" / "experiment" / stamp)).resolve()
        owner = claim_folder(out, "--out", "pass another --out")
    except UserError as err:
        print(error_text(err), file=sys.stderr)
        return 2
    try:
        return run_experiment(args, keys, budget, out, data_dir, stamp)
    finally:
        owner.release()


def settings_mismatch(manifest: dict[str, Any], args: argparse.Namespace) -> str | None:
    """What differs between an earlier launch's settings (``experiment.json``) and this one's."""
    now = {"frames": str(args.frames), "budget": args.budget, "batches": args.batches}
    now["set"] = list(args.set)
    differ = [
        f"{key} {manifest.get(key, '')!r} -> {value!r}"
        for key, value in now.items()
        if manifest.get(key, "" if key == "batches" else None) != value
    ]
    return "; ".join(differ) or None


def run_experiment(
    args: argparse.Namespace,
    keys: list[str],
    budget: Budget,
    out: Path,
    data_dir: Path,
    stamp: str,
) -> int:
    """Everything after the command line is checked, with ``out`` owned by this launch."""
    manifest_path = out / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    mismatch = settings_mismatch(manifest, args) if manifest else None
    if mismatch and not args.force:
        # Before anything is written: the results there were trained with the old settings.
        print(
            f"error: --out {out} holds an experiment launched with other settings ({mismatch}); "
            "rerun with its settings to continue it, add --force to retrain the conditions "
            "chosen with these, or pass another --out",
            file=sys.stderr,
        )
        return 2

    # Epoch sizes of both training sets (synthetic pairs, real pairs): the DBGAN epoch is capped
    # by the smaller one so every condition trains DBGAN on exactly the same number of batches.
    def config(condition: Condition, *more: str) -> DictConfig:
        return compose_condition(
            condition,
            args.frames,
            data_dir,
            out / condition.key,
            [*more, *sets_for(condition, args.sets)],
        )

    from realblur_gan.config import ConfigError, validate_config

    try:
        # Every chosen condition composed and checked once up front, before any frame is
        # rendered: a bad --set (a key, or a value such as lr=nan) fails here, in one line, not
        # after an hour of training the conditions before it.
        for key in keys:
            validate_config(config(CONDITIONS[key], "logger=none"))
    except (OverrideError, ConfigError) as err:
        print(
            f"error: condition {key}: {err}" if isinstance(err, ConfigError) else f"error: {err}",
            file=sys.stderr,
        )
        return 2
    # One W&B group for every run of the experiment, kept across resumed launches.
    manifest.setdefault("group", f"experiment-{stamp}")
    manifest.update(
        frames=str(args.frames), budget=args.budget, batches=args.batches, set=list(args.set)
    )
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    group = manifest["group"]
    try:
        synthetic, datamodule = epoch_batches(config(CONDITIONS["a"], "logger=none"))
        real, _ = epoch_batches(config(CONDITIONS["e"], "logger=none"))
    except OverrideError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    plans = {
        "pretrain_bgan": plan_stage(budget.pretrain_bgan, synthetic, budget.validations),
        "bgan": plan_stage(budget.bgan, synthetic, budget.validations),
        "dbgan": plan_stage(budget.dbgan, min(synthetic, real), budget.validations),
    }
    log.info(
        "budget %s: %d batches/epoch of synthetic pairs, %d of real pairs; plans %s",
        args.budget,
        synthetic,
        real,
        {k: vars(v) for k, v in plans.items()},
    )

    for key in keys:
        condition = CONDITIONS[key]
        run_dir = out / key
        signature = condition_signature(condition, args.budget, plans, args)
        done = load_result(run_dir)
        if done is not None and not args.force:
            if done["signature"] != signature:
                print(
                    f"error: {run_dir} holds a result trained with other settings "
                    f"({done['signature']}); use --force to retrain it or another --out",
                    file=sys.stderr,
                )
                return 2
            log.info("%s: finished earlier (%s), skipped", key, run_dir / RESULT_FILE)
            continue
        if args.force and run_dir.exists():
            shutil.rmtree(run_dir)
        started = run_dir / "signature.json"
        if started.exists() and json.loads(started.read_text()) != signature:
            print(
                f"error: {run_dir} holds an interrupted run with other settings; use --force "
                "to start it again or another --out",
                file=sys.stderr,
            )
            return 2
        log.info("%s: %s", key, condition.description)
        cfg = config(
            condition, *stage_overrides(condition, plans), *logger_overrides(args.logger, group)
        )
        record = run_condition(condition, cfg, run_dir, signature)
        log.info(
            "%s: %.2f dB (input %.2f dB) in %.1f min",
            key,
            record["metrics"].get("val/psnr", math.nan),
            record["metrics"].get("val/psnr_input", math.nan),
            record["seconds"] / 60,
        )

    # The report covers every condition with a result here, also from earlier launches, as long
    # as it was trained with this budget (others are named and left out).
    results = []
    for key, condition in CONDITIONS.items():
        record = load_result(out / key)
        if record is None:
            continue
        if record["signature"] != condition_signature(condition, args.budget, plans, args):
            log.warning("%s: trained with other settings; left out of the report", key)
            continue
        results.append(record)
    header = [
        f"- frames: `{args.frames}`; budget `{args.budget}` {args.batches}; extra overrides: "
        f"{' '.join(args.set) or 'none'}",
        f"- DBGAN: {plans['dbgan'].batches} batches ({plans['dbgan'].epochs} epoch(s) of "
        f"{plans['dbgan'].per_epoch}) in every condition; validation: "
        f"{len(datamodule.val_set)} real-blur pairs never trained on",
    ]
    table = report(out, results, datamodule.val_set, header)
    print(f"\n{table}\n\nresults in {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
