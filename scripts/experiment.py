"""The paper's experiment in one command: one DBGAN budget, five sources of blurry training input.

Zhang et al. (CVPR 2020) argue that a deblurring net is only as good as the blur it is trained
on. This script trains the same DBGAN (same net, same number of training batches, same data
sizes, same seed) five times, changing only where its blurry training input comes from. Each
condition is an experiment file, ``conf/experiment/<name>.yaml``, which names its scheme and
can be run alone (``python -m realblur_gan +experiment=<name>``):

    a  naive_blur     DBGAN only; sharp frames blurred by SimpleBlur kernels
    b  camera_blur    DBGAN only; sharp frames through CameraPipelineBlur
    c  bgan_separate  pretrain_bgan -> bgan (vs the unpaired real blur) -> dbgan
    d  bgan_joint     pretrain_bgan -> joint (BGAN and DBGAN trained together)
    e  real_pairs     DBGAN only; real frame averages paired with their middle frame
                      (the oracle: what c and d try to approach without pairs)

Each final DBGAN is scored with ``realblur-evaluate``'s code on the real-blur validation pairs
(whole frame averages of a window no condition trains on) and on the generalisation benchmark's
scenes and photos it never saw (``realblur_gan.evaluation.generalisation``: real GoPro blur of other
scenes, camera blur of held-out photos).

Usage::

    python scripts/experiment.py                          # all five, --budget cpu
    python scripts/experiment.py --budget gpu --frames /data/GOPRO_Large_all/train \\
        --set data.split_by=sequences --set data.train_stride=10
    python scripts/experiment.py --conditions a,e --budget smoke --logger none
    python scripts/experiment.py --conditions a,b --set b:data.synthetic_blur.kernel_size=[5,31]

Each condition is one ``realblur_gan.training.runner.run`` into ``<out>/<condition>/`` (its own
checkpoints, panels, W&B runs); the conditions run one after another in this process. A
condition whose ``result.json`` exists is not trained again (rerun the same command after an
interruption; an interrupted condition resumes from its checkpoints); ``--force`` retrains it.
At the end ``<out>`` holds ``results.csv`` (per validation image and condition), ``results.md``
(also printed), ``results.png`` (PSNR per condition, the blurry input as a line) and
``grid.png`` (one validation crop restored by every condition's final DBGAN).
"""

from __future__ import annotations

import argparse
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

from realblur_gan.cli.help_format import HelpFormatter
from realblur_gan.errors import UserError, error_text
from realblur_gan.ownership import claim_folder, new_folder

# Torch, Hydra and the trainer are imported where they are used: `--help` answers at once.
if TYPE_CHECKING:
    import torch
    from omegaconf import DictConfig

    from realblur_gan.evaluation.generalisation import BenchmarkData

log = logging.getLogger("experiment")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SHARED_FRAMES = SHARED_DATA / "gopro_frames"
RESULT_FILE = "result.json"
MANIFEST_FILE = "experiment.json"
# The generalisation benchmark's parts with ground truth (the real photos' part has none).
BENCH_PARTS = ("gopro", "synthetic")
BENCH_TILE = 512


@dataclass(frozen=True)
class Condition:
    """One source of DBGAN's blurry training input: an experiment file and its labels.

    Attributes:
        key: One letter, a to e (the output folder and the row of the table).
        experiment: The experiment file composed (``+experiment=``), which names the scheme.
        name: Short label for plots and run names.
        description: One line for the table.
    """

    key: str
    experiment: str
    name: str
    description: str

    @property
    def label(self) -> str:
        """The condition's row name in the tables (``a: naive``)."""
        return f"{self.key}: {self.name}"


CONDITIONS: dict[str, Condition] = {
    c.key: c
    for c in (
        Condition("a", "naive_blur", "naive", "naive synthetic blur (SimpleBlur), DBGAN only"),
        Condition("b", "camera_blur", "camera", "camera-pipeline synthetic blur, DBGAN only"),
        Condition("c", "bgan_separate", "BGAN sep.", "BGAN from unpaired real blur, separate"),
        Condition("d", "bgan_joint", "BGAN joint", "BGAN from unpaired real blur, joint"),
        Condition("e", "real_pairs", "real pairs", "paired real blur (oracle), DBGAN only"),
    )
}


@dataclass(frozen=True)
class Budget:
    """Training batches per stage kind, and the data sizes they are counted in.

    Attributes:
        dbgan: Batches of the stage that trains DBGAN (every condition's last stage).
        pretrain_bgan: Batches of BGAN's pre-training on synthetic pairs (c, d).
        bgan: Batches of BGAN against the real blur (c; d's joint stage freezes BGAN after as
            many).
        validations: About how many validations each stage logs on its way.
        overrides: Hydra overrides every condition gets (crop and batch sizes).
        bench_images: Images scored per benchmark part (None: all).
    """

    dbgan: int
    pretrain_bgan: int
    bgan: int
    validations: int = 4
    overrides: tuple[str, ...] = ()
    bench_images: int | None = None


# cpu: all five conditions, trained and scored, in about 51 minutes on the 2-core CPU, predicted
# from per-batch costs measured there (docs/experiment.md: about 3.8 s per DBGAN batch of all
# five, ~7 min of BGAN stages, scoring and start-up). 128 px crops of 8, and the BGAN stages
# of the 1500-batch runs that ranked the conditions; lengths are multiples of the epochs there
# (3 synthetic, 2 real-pair batches of 8).
BUDGETS: dict[str, Budget] = {
    "smoke": Budget(dbgan=2, pretrain_bgan=2, bgan=2, validations=1, bench_images=1),
    "cpu": Budget(
        dbgan=700,
        pretrain_bgan=99,
        bgan=81,
        overrides=("data.crop_size=128", "data.batch_size=8"),
    ),
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


def stage_kind(stage: str, stages: Sequence[str]) -> str:
    """The budget a stage counts against: ``dbgan`` for the last stage (the one that trains
    DBGAN in every scheme), else its own name (``pretrain_bgan``, ``bgan``)."""
    return "dbgan" if stage == stages[-1] else stage


# --------------------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------------------


class OverrideError(ValueError):
    """A ``--set`` override the condition's config cannot take (one line, for the user)."""


def parse_sets(items: Sequence[str]) -> list[tuple[frozenset[str] | None, str]]:
    """Split ``--set`` values into (conditions they reach, Hydra override).

    ``KEY=VALUE`` reaches every condition; ``b:KEY=VALUE`` or ``a,b:KEY=VALUE`` only the
    conditions named: an override of those conditions' compositions (a key only their
    experiment file has, such as the camera's).

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
    """The training config of one condition: its experiment file, composed as the CLI would.

    Args:
        condition: Which condition.
        frames: ``data.frames_dir``.
        data_dir: ``paths.data_dir`` (where the frames cache goes).
        out_dir: The condition's run folder (``paths.output_dir``).
        extra: More overrides, applied last (budget, logger, ``--set``).

    Returns:
        The config, ready for :func:`realblur_gan.training.runner.run`.

    Raises:
        OverrideError: an override the config cannot take, in one line naming it.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException
    from omegaconf import open_dict

    from realblur_gan.training.config import CONFIG_DIR

    overrides = [
        f"+experiment={condition.experiment}",
        # Names the W&B runs `<key>-<name>/<stage>` inside the experiment's group.
        f"scheme_name_={condition.key}-{condition.name.replace(' ', '_').rstrip('.')}",
        # The report scores the final DBGAN itself (whole validation frames).
        "final_validation=false",
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


def stage_overrides(stages: Sequence[str], plans: dict[str, StagePlan]) -> list[str]:
    """Overrides giving every stage of a condition (``stages``, in order) its planned length."""
    out = []
    for stage in stages:
        plan = plans[stage_kind(stage, stages)]
        out += [
            f"stages.{stage}.trainer.max_epochs={plan.epochs}",
            # `++`: added when the stage config lacks the key, replaced when it has it.
            f"++stages.{stage}.trainer.limit_train_batches={plan.per_epoch}",
            f"++stages.{stage}.trainer.check_val_every_n_epoch={plan.val_every}",
        ]
    if "joint" in stages:
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
# Training
# --------------------------------------------------------------------------------------------------


def stage_seconds(run_dir: Path, stages: Sequence[str], start: float) -> dict[str, float]:
    """Wall seconds per stage, read off the stages' DONE markers (written as each one ends).

    A stage's time includes building it and its validations; a stage finished in an earlier,
    interrupted launch is left out.
    """
    from realblur_gan.training.runner import DONE_MARKER

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


def train_condition(
    condition: Condition, cfg: DictConfig, run_dir: Path, signature: dict[str, Any]
) -> dict[str, Any]:
    """Train one condition (or finish an interrupted one) and write its ``result.json``.

    Args:
        condition: Which condition.
        cfg: Its composed config (output dir ``run_dir``).
        run_dir: ``<out>/<key>``.
        signature: What must match for an earlier result to count (stage plans, overrides).

    Returns:
        The result record written, not yet scored.
    """
    from omegaconf import open_dict

    from realblur_gan.training.config import stage_order
    from realblur_gan.training.runner import run

    stages = stage_order(cfg)
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
    record = {
        "condition": condition.key,
        "experiment": condition.experiment,
        "stages": stages,
        # Of this launch only: a resumed condition's earlier launches are not counted.
        "seconds": round(time.perf_counter() - start, 2),
        "resumed": resumed,
        "stage_seconds": stage_seconds(run_dir, stages, start_wall),
        "checkpoint": str(result.checkpoints[stages[-1]]),
        "wandb_dirs": [str(p) for p in result.wandb_dirs],
        "signature": signature,
    }
    write_result(run_dir, record)
    return record


def condition_signature(
    condition: Condition,
    stages: Sequence[str],
    budget: Budget,
    plans: dict[str, StagePlan],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """What a stored result must have been trained with to be reused."""
    return {
        "preset": args.budget,
        "stages": {s: vars(plans[stage_kind(s, stages)]) for s in stages},
        "set": [*budget.overrides, *sets_for(condition, args.sets)],
        "frames": str(args.frames),
    }


def load_result(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / RESULT_FILE
    return json.loads(path.read_text()) if path.exists() else None


def write_result(run_dir: Path, record: dict[str, Any]) -> None:
    (run_dir / RESULT_FILE).write_text(json.dumps(record, indent=1) + "\n")


# --------------------------------------------------------------------------------------------------
# Scoring: realblur-evaluate's scores on the validation pairs, then the generalisation benchmark
# --------------------------------------------------------------------------------------------------


@dataclass
class Scoring:
    """What every condition is scored on, the same in every launch that reports together.

    Attributes:
        val_dir: The validation pairs (``blur/`` + ``sharp/``, whole frame averages).
        bench: The benchmark's folders, or None when its data is absent.
        bench_images: Images per benchmark part (None: all).
        cache: Where the benchmark's blurred held-out photos are kept between conditions.
        lpips: LPIPS module, or None.
        lpips_note: Why LPIPS is absent (None when present).
    """

    val_dir: Path
    bench: BenchmarkData | None
    bench_images: int | None
    cache: Path
    lpips: Any = None
    lpips_note: str | None = None

    def rows(self, method: Any) -> list[dict[str, Any]]:
        """``realblur-evaluate``'s per-image rows of one method on the validation pairs."""
        from realblur_gan.evaluate import evaluate

        found = evaluate(
            self.val_dir / "sharp",
            [method],
            self.val_dir / "blur",
            lpips=self.lpips,
            progress=False,
        )
        return found.rows

    @property
    def signature(self) -> dict[str, Any]:
        """What a stored score must have been made with to be reused."""
        bench = None if self.bench is None else [str(p) for p in dataclasses.astuple(self.bench)]
        return {
            "val_dir": str(self.val_dir),
            "bench": bench,
            "bench_images": self.bench_images,
            "lpips": self.lpips is not None,
        }


def make_scoring(val_dir: Path, bench_root: Path | None, budget: Budget, out: Path) -> Scoring:
    """The validation pairs, the benchmark's parts that exist, and LPIPS when its weights do."""
    from realblur_gan.evaluation.generalisation import BenchmarkData
    from realblur_gan.training.losses import LPIPSLoss
    from realblur_gan.weights.backbones import MissingPretrainedWeights

    bench = None
    if bench_root is not None:
        found = BenchmarkData.from_root(bench_root)
        if found.gopro is not None or found.held_out_photos is not None:
            bench = dataclasses.replace(found, real=None)
    if bench is None:
        log.warning(
            "benchmark: no gopro_pairs_other_scenes/ or natural/CBSD68/ under %s; the conditions "
            "are scored on the validation pairs only (pass --bench-data DIR)",
            bench_root,
        )
    scoring = Scoring(val_dir, bench, budget.bench_images, out / "generalisation_cache")
    try:
        scoring.lpips = LPIPSLoss()
    except MissingPretrainedWeights as err:
        scoring.lpips_note = " ".join(str(err).split())
    return scoring


def score_condition(record: dict[str, Any], scoring: Scoring, run_dir: Path) -> dict[str, Any]:
    """Score a condition's final DBGAN (EMA weights when kept) and store it in its record.

    ``record["val"]``: per-image rows of :func:`realblur_gan.evaluate.evaluate` on the whole
    validation frames; ``record["benchmark"]``: the benchmark's part summaries (none without
    its data). Both are kept in ``result.json``, so a resumed launch scores nothing again.
    """
    from realblur_gan.evaluate import model_method
    from realblur_gan.evaluation.generalisation import run_benchmark
    from realblur_gan.inference.tiling import deblur_image
    from realblur_gan.weights.checkpoints import load_generator

    condition = CONDITIONS[record["condition"]]
    net = load_generator(record["checkpoint"])
    record["val"] = scoring.rows(model_method(net, condition.label, tile=None, overlap=0))
    record["benchmark"] = []
    if scoring.bench is not None:
        result = run_benchmark(
            lambda blurry: deblur_image(net, blurry, BENCH_TILE),
            scoring.bench,
            run_dir / "generalisation",
            parts=BENCH_PARTS,
            limit=scoring.bench_images,
            cache=scoring.cache,
        )
        record["benchmark"] = [dataclasses.asdict(part) for part in result.parts]
    record["scoring"] = scoring.signature
    write_result(run_dir, record)
    return record


def _mean(rows: Sequence[dict[str, Any]], key: str) -> float:
    values = [float(r[key]) for r in rows if key in r]
    return math.fsum(values) / len(values) if values else math.nan


# --------------------------------------------------------------------------------------------------
# Report: tables, bar plot, grid
# --------------------------------------------------------------------------------------------------


def ranking_table(results: list[dict[str, Any]], input_psnr: float) -> str:
    """One row per condition: its scores, gains and training cost, in condition order."""
    lines = [
        "| condition | DBGAN's training blur | PSNR (dB) | gain (dB) | unseen scenes, real blur "
        "(gain) | held-out photos, camera blur (gain) | DBGAN batches | extra BGAN batches "
        "| wall (min) |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in results:
        condition = CONDITIONS[r["condition"]]
        psnr = _mean(r["val"], "psnr")
        bench = {p["part"]: p for p in r["benchmark"]}
        cells = []
        for part in BENCH_PARTS:
            p = bench.get(part)
            cells.append("n/a" if p is None else f"{p['psnr']:.2f} ({p['gain']:+.2f})")
        stages = r["signature"]["stages"]
        plans = {s: p["per_epoch"] * p["epochs"] for s, p in stages.items()}
        last = r["stages"][-1]
        extra = " + ".join(f"{s} {n}" for s, n in plans.items() if s != last) or "none"
        if last == "joint":
            extra += " (+ the first joint batches, as many as c's bgan stage)"
        lines.append(
            f"| {condition.label} | {condition.description} | {psnr:.2f} | "
            f"{psnr - input_psnr:+.2f} | {cells[0]} | {cells[1]} | {plans[last]} | {extra} | "
            f"{r['seconds'] / 60:.1f} |"
        )
    return "\n".join(lines)


PLOT_SIZE = (720, 420)


def bar_plot(bars: list[tuple[str, float]], reference: float, path: Path, title: str) -> None:
    """PSNR per condition as bars, the blurry input as a dashed red line, drawn with PIL."""
    from PIL import Image, ImageDraw, ImageFont

    (width, height), (left, right, top, bottom) = PLOT_SIZE, (50, 20, 50, 40)
    image = Image.new("RGB", PLOT_SIZE, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    values = [v for _, v in bars] + [reference]
    lo, hi = math.floor(min(values) - 1), math.ceil(max(values) + 1)

    def y_of(value: float) -> float:
        return top + (height - top - bottom) * (hi - value) / (hi - lo)

    draw.text((width // 2, 16), f"{title} (PSNR, dB)", fill="black", font=font, anchor="mm")
    draw.line([(left, top), (left, height - bottom), (width - right, height - bottom)], "black")
    for tick in range(lo, hi + 1, max(1, math.ceil((hi - lo) / 6))):
        draw.line([(left + 1, y_of(tick)), (width - right, y_of(tick))], (230, 230, 230))
        draw.text((left - 6, y_of(tick)), str(tick), fill="black", font=font, anchor="rm")
    slot = (width - left - right) / max(1, len(bars))
    for i, (name, value) in enumerate(bars):
        x0, x1, y = left + slot * (i + 0.2), left + slot * (i + 0.8), y_of(value)
        draw.rectangle([x0, y, x1, height - bottom - 1], fill=(70, 110, 170), outline="black")
        draw.text(((x0 + x1) / 2, y - 4), f"{value:.2f}", fill="black", font=font, anchor="md")
        draw.text(((x0 + x1) / 2, height - bottom + 8), name, fill="black", font=font, anchor="ma")
    y = y_of(reference)
    for x in range(left, width - right, 12):  # dashed
        draw.line([(x, y), (min(x + 6, width - right), y)], fill=(200, 30, 30), width=2)
    text = f"blurry input {reference:.2f} dB"
    draw.text((width - right, top - 10), text, fill=(200, 30, 30), font=font, anchor="rm")
    image.save(path)


GRID_CROP = 256


def make_grid(
    blur: torch.Tensor, sharp: torch.Tensor, results: list[dict[str, Any]], path: Path
) -> list[tuple[str, float]]:
    """Blurry input | each condition's restoration | sharp: the centre crop, in one PNG.

    Every net restores the whole frame (as scored); the grid shows its centre, at most
    :data:`GRID_CROP` px a side.

    Returns:
        (column, PSNR of its crop against the sharp crop) per column but the sharp one.
    """
    from torchvision.utils import save_image

    from realblur_gan.evaluate import score_pair
    from realblur_gan.inference.tiling import deblur_image
    from realblur_gan.training.panels import make_panel
    from realblur_gan.weights.checkpoints import load_generator

    (h, w), side = blur.shape[-2:], min(GRID_CROP, *blur.shape[-2:])
    top, left = (h - side) // 2, (w - side) // 2

    def crop(x: torch.Tensor) -> torch.Tensor:
        return x[..., top : top + side, left : left + side]

    columns = {"input": crop(blur)}
    for r in results:
        net = load_generator(r["checkpoint"])  # EMA weights when the run kept them
        columns[r["condition"]] = crop(deblur_image(net, blur, tile=None))
    scores = [(name, score_pair(x, crop(sharp))["psnr"]) for name, x in columns.items()]
    save_image(make_panel({**columns, "sharp": crop(sharp)}), path)
    return scores


def report(
    out: Path,
    results: list[dict[str, Any]],
    scoring: Scoring,
    header: list[str],
    dbgan_batches: int,
) -> str:
    """Write results.csv, results.md, results.png and grid.png; return the ranking table."""
    from realblur_gan.data.io import read_image
    from realblur_gan.evaluate import Method, ScoreOptions, markdown_table, write_csv
    from realblur_gan.evaluation.baselines import identity
    from realblur_gan.evaluation.generalisation import PartSummary, format_table

    blurry = Method("input (blurry)", lambda key, blur, kernel: identity(blur))
    inputs = scoring.rows(blurry)
    rows = inputs + [row for r in results for row in r["val"]]
    write_csv(out / "results.csv", rows)
    labels = [blurry.label, *(CONDITIONS[r["condition"]].label for r in results)]
    # Every record here was scored with this LPIPS or without it (its scoring signature says).
    val_table = markdown_table(rows, labels, ScoreOptions(), scoring.lpips_note)
    input_psnr = _mean(inputs, "psnr")
    table = ranking_table(results, input_psnr)

    bars = [(CONDITIONS[r["condition"]].label, _mean(r["val"], "psnr")) for r in results]
    title = f"DBGAN on the validation pairs, {dbgan_batches} DBGAN batches each"
    bar_plot(bars, input_psnr, out / "results.png", title)
    worst = min(inputs, key=lambda row: float(row["psnr"]))
    key = str(worst["image"])
    pair = [
        read_image(scoring.val_dir / side / f"{key}.png")[0][None] for side in ("blur", "sharp")
    ]
    scores = make_grid(*pair, results, out / "grid.png")
    grid_line = ", ".join(f"{n} {s:.2f} dB" for n, s in scores)

    bench = []
    for r in results:
        if r["benchmark"]:
            parts = [PartSummary(**part) for part in r["benchmark"]]
            bench += [f"**{CONDITIONS[r['condition']].label}**", "", format_table(parts), ""]
    text = [
        "# realblur-gan: DBGAN trained on five sources of blur",
        "",
        *header,
        "",
        table,
        "",
        "PSNR: DBGAN's final weights (EMA when kept) on the real-blur validation pairs (whole "
        f"frames, {len(inputs)} pairs), per-image mean; gain: PSNR minus the blurry input's "
        f"({input_psnr:.2f} dB). The benchmark columns: real GoPro blur of scenes no condition "
        "saw and camera blur of held-out photos (`realblur_gan.evaluation.generalisation`). "
        "Every condition "
        "trains DBGAN for the same number of batches; the BGAN stages of c and d are extra "
        "training those conditions need (their wall time includes it).",
        "",
        "## Validation pairs (`realblur-evaluate`)",
        "",
        val_table,
        "",
        "![PSNR per condition](results.png)  ![grid](grid.png)",
        "",
        f"grid.png: validation pair `{key}` (the most blurred of {len(inputs)}), centre crop: "
        f"input | {' | '.join(r['condition'] for r in results)} | sharp; {grid_line}.",
        "",
    ]
    if bench:
        text += ["## Generalisation benchmark, per condition", "", *bench]
    (out / "results.md").write_text("\n".join(text))
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
    conditions = "\n".join(
        f"  {c.key}  {c.experiment:<14} {c.description}" for c in CONDITIONS.values()
    )
    budgets = ", ".join(
        f"{name} ({b.dbgan} DBGAN batches; BGAN {b.pretrain_bgan} + {b.bgan}"
        f"{'; ' + ' '.join(b.overrides) if b.overrides else ''})"
        for name, b in BUDGETS.items()
    )
    parser = argparse.ArgumentParser(
        prog="python scripts/experiment.py",
        description=__doc__.splitlines()[0]
        + "\n\nconditions (conf/experiment/<file>.yaml):\n"
        + conditions,
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
        help=f"preset stage lengths and data sizes: {budgets}",
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
        help="Hydra override passed to every condition (repeatable), e.g. --set seed=1; with a "
        "prefix only to those conditions' compositions, e.g. "
        "--set b:data.synthetic_blur.kernel_size=[5,31]",
    )
    parser.add_argument(
        "--bench-data",
        type=Path,
        default=None,
        metavar="DIR",
        help="the generalisation benchmark's data (gopro_pairs_other_scenes/, natural/CBSD68/) "
        "(default: $REALBLUR_GAN_BENCH_DATA, else ../shared/data beside the checkout); absent: "
        "scored on the validation pairs only",
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
    if args.bench_data is None:
        args.bench_data = Path(os.environ.get("REALBLUR_GAN_BENCH_DATA") or SHARED_DATA)
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

    def config(condition: Condition, *more: str) -> DictConfig:
        return compose_condition(
            condition,
            args.frames,
            data_dir,
            out / condition.key,
            [*budget.overrides, *more, *sets_for(condition, args.sets)],
        )

    from realblur_gan.training.config import stage_order, validate_config

    configs: dict[str, DictConfig] = {}
    try:
        # Every condition composed and checked once up front, before any frame is rendered: a
        # bad --set (a key, or a value such as lr=nan) fails here, in one line, not after an
        # hour of training the conditions before it. a and e size the epochs below.
        for key in dict.fromkeys([*keys, "a", "e"]):
            configs[key] = config(CONDITIONS[key], "logger=none")
            validate_config(configs[key])
    except (OverrideError, UserError) as err:
        prefix = "" if isinstance(err, OverrideError) else f"condition {key}: "
        print(f"error: {prefix}{err}", file=sys.stderr)
        return 2
    # One W&B group for every run of the experiment, kept across resumed launches.
    manifest.setdefault("group", f"experiment-{stamp}")
    manifest.update(
        frames=str(args.frames), budget=args.budget, batches=args.batches, set=list(args.set)
    )
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    group = manifest["group"]
    # Epoch sizes of both training sets (synthetic pairs, real pairs): the DBGAN epoch is capped
    # by the smaller one so every condition trains DBGAN on exactly the same number of batches.
    synthetic, datamodule = epoch_batches(configs["a"])
    real, _ = epoch_batches(configs["e"])
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
    scoring = make_scoring(Path(datamodule.val_dir), args.bench_data, budget, out)

    def signature(key: str) -> dict[str, Any]:
        stages = stage_order(configs[key])
        return condition_signature(CONDITIONS[key], stages, budget, plans, args)

    for key in keys:
        condition = CONDITIONS[key]
        run_dir = out / key
        record = load_result(run_dir)
        if record is not None and not args.force:
            if record["signature"] != signature(key):
                print(
                    f"error: {run_dir} holds a result trained with other settings "
                    f"({record['signature']}); use --force to retrain it or another --out",
                    file=sys.stderr,
                )
                return 2
            log.info("%s: trained earlier (%s), not trained again", key, run_dir / RESULT_FILE)
        else:
            if args.force and run_dir.exists():
                shutil.rmtree(run_dir)
            started = run_dir / "signature.json"
            if started.exists() and json.loads(started.read_text()) != signature(key):
                print(
                    f"error: {run_dir} holds an interrupted run with other settings; use --force "
                    "to start it again or another --out",
                    file=sys.stderr,
                )
                return 2
            log.info("%s: %s (+experiment=%s)", key, condition.description, condition.experiment)
            stages = stage_order(configs[key])
            cfg = config(
                condition, *stage_overrides(stages, plans), *logger_overrides(args.logger, group)
            )
            record = train_condition(condition, cfg, run_dir, signature(key))
        if record.get("scoring") != scoring.signature:
            record = score_condition(record, scoring, run_dir)
        gains = [f"validation {_mean(record['val'], 'psnr'):.2f} dB"]
        gains += [f"{p['part']} {p['gain']:+.2f} dB" for p in record["benchmark"]]
        log.info("%s: %s; trained in %.1f min", key, ", ".join(gains), record["seconds"] / 60)

    # The report covers every condition with a result here, also from earlier launches, as long
    # as it was trained with this budget (others are named and left out).
    results = []
    for key, condition in CONDITIONS.items():
        record = load_result(out / key)
        if record is None:
            continue
        if key not in configs:
            configs[key] = config(condition, "logger=none")
        if record["signature"] != signature(key):
            log.warning("%s: trained with other settings; left out of the report", key)
            continue
        if record.get("scoring") != scoring.signature:
            record = score_condition(record, scoring, out / key)
        results.append(record)
    header = [
        f"- frames: `{args.frames}`; budget `{args.budget}` {args.batches}; overrides: "
        f"{' '.join([*budget.overrides, *args.set]) or 'none'}",
        f"- DBGAN: {plans['dbgan'].batches} batches ({plans['dbgan'].epochs} epoch(s) of "
        f"{plans['dbgan'].per_epoch}) in every condition",
    ]
    table = report(out, results, scoring, header, plans["dbgan"].batches)
    print(f"\n{table}\n\nresults in {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
