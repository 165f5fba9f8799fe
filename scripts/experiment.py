"""The paper's experiment in one command: one DBGAN budget, five sources of blurry training input.

Zhang et al. (CVPR 2020) argue that a deblurring net is only as good as the blur it is trained
on. This script trains the same DBGAN (same net, same number of training batches, same data,
same seed) once per condition, changing only where its blurry training input comes from. A
condition is an experiment file, ``conf/experiment/<name>.yaml``, which names its scheme and
runs alone as ``python -m realblur_gan +experiment=<name>``:

    a  naive_blur     DBGAN only; sharp frames blurred by SimpleBlur kernels
    b  camera_blur    DBGAN only; sharp frames through CameraPipelineBlur
    c  bgan_separate  pretrain_bgan -> bgan (vs the unpaired real blur) -> dbgan
    d  bgan_joint     pretrain_bgan -> joint (BGAN and DBGAN trained together)
    e  real_pairs     DBGAN only; real frame averages paired with their middle frame
                      (the oracle: what c and d try to approach without pairs)

``--conditions`` also takes the name of any other experiment file in ``conf/experiment/``: a
variant of a condition is a copy of its file with the change, compared at the same budget.

The script owns three things and no more: the **budget** (every condition's DBGAN trains on
exactly the same number of batches, laid out in whole epochs), **resume** (a condition whose
``result.json`` exists is not trained again; an interrupted one continues from its checkpoints)
and the **report**. Scores are ``realblur-evaluate``'s on the real-blur validation pairs and the
generalisation benchmark's (``realblur_gan.evaluation.generalisation``) on scenes and photos no
condition saw. ``<out>`` then holds ``results.csv`` (per validation image and condition),
``results.md`` (also printed) and ``grid.png`` (one validation crop restored by every condition).

Usage::

    python scripts/experiment.py                          # all five, --budget cpu
    python scripts/experiment.py --conditions a,e --budget smoke --logger none
    python scripts/experiment.py --budget gpu --frames /data/GOPRO_Large_all/train \\
        data.split_by=sequences data.train_stride=10     # Hydra overrides, every condition
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
        key: Its output folder and row: a letter for the five, else the file's name.
        experiment: The experiment file composed (``+experiment=``), which names the scheme.
        name: Short label for the tables and run names.
        description: One line for the table.
    """

    key: str
    experiment: str
    name: str
    description: str

    @property
    def label(self) -> str:
        """The condition's row name in the tables (``a: naive``)."""
        return f"{self.key}: {self.name}" if self.key != self.name else self.key


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


def find_condition(token: str) -> Condition:
    """A letter of the five, or the name of another file in ``conf/experiment/``.

    Raises:
        UserError: neither.
    """
    if token in CONDITIONS:
        return CONDITIONS[token]
    from realblur_gan.training.config import CONFIG_DIR

    path = Path(CONFIG_DIR) / "experiment" / f"{token}.yaml"
    if not path.is_file():
        raise UserError(
            f"--conditions: {token!r} is neither a letter of {','.join(CONDITIONS)} nor a file in "
            f"{path.parent}; add conf/experiment/{token}.yaml or fix the name"
        )
    # The file's first comment line after the package line describes it.
    comments = [line.lstrip("# ").strip() for line in path.read_text().splitlines()[1:3]]
    description = next((c for c in comments if c), token)
    return Condition(token, token, token, description[:80])


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


# cpu: all five conditions, trained and scored, in about 42 minutes on the 2-core CPU
# (docs/experiment.md). 128 px crops of 8, and the BGAN stages of the 1500-batch runs that ranked
# the conditions; lengths are multiples of the epochs there (3 synthetic, 2 real-pair batches).
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


# --------------------------------------------------------------------------------------------------
# Configs and training
# --------------------------------------------------------------------------------------------------


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
        extra: More overrides, applied last (budget, logger, the command line's).

    Returns:
        The config, ready for :func:`realblur_gan.training.runner.run`.

    Raises:
        UserError: an override the config cannot take, in one line naming it.
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
            raise UserError(
                f"condition {condition.key}: {'; '.join(lines)}. An override reaches every "
                "condition; to change only some, copy their conf/experiment/ files with the "
                "change and name the copies in --conditions"
            ) from err
    with open_dict(cfg):
        # Set here, not as overrides: a path may hold characters Hydra's grammar rejects.
        cfg.data.frames_dir = str(frames)
        # Outside @hydra.main there is no hydra:runtime to resolve the defaults from.
        cfg.paths.data_dir = str(data_dir)
        cfg.paths.output_dir = str(out_dir)
    return cfg


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


def train_condition(
    condition: Condition, cfg: DictConfig, run_dir: Path, settings: dict[str, Any]
) -> dict[str, Any]:
    """Train one condition (or finish an interrupted one) and write its ``result.json``.

    Args:
        condition: Which condition.
        cfg: Its composed config (output dir ``run_dir``).
        run_dir: ``<out>/<key>``.
        settings: What must match for the result to be reused or reported (stage plans,
            overrides, frames).

    Returns:
        The result record written, not yet scored.
    """
    from omegaconf import open_dict

    from realblur_gan.training.config import stage_order
    from realblur_gan.training.runner import run

    stages = stage_order(cfg)
    resumed = (run_dir / "checkpoints").is_dir()
    if resumed:
        # An interrupted launch: finished stages are skipped, the interrupted one continues.
        log.info("%s: resuming the interrupted run in %s", condition.key, run_dir)
        with open_dict(cfg):
            cfg.resume = str(run_dir)
    start = time.perf_counter()
    result = run(cfg)
    record = {
        "condition": condition.key,
        "experiment": condition.experiment,
        "stages": stages,
        # Of this launch only: a resumed condition's earlier launches are not counted.
        "seconds": round(time.perf_counter() - start, 2),
        "resumed": resumed,
        "checkpoint": str(result.checkpoints[stages[-1]]),
        "wandb_dirs": [str(p) for p in result.wandb_dirs],
        "settings": settings,
    }
    write_result(run_dir, record)
    return record


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


def make_scoring(val_dir: Path, bench_root: Path, budget: Budget, out: Path) -> Scoring:
    """The validation pairs, the benchmark's parts that exist, and LPIPS when its weights do."""
    from realblur_gan.evaluation.generalisation import BenchmarkData
    from realblur_gan.training.losses import LPIPSLoss
    from realblur_gan.weights.backbones import MissingPretrainedWeights

    found = BenchmarkData.from_root(bench_root)
    bench = None
    if found.gopro is not None or found.held_out_photos is not None:
        bench = dataclasses.replace(found, real=None)
    else:
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


def score_condition(
    record: dict[str, Any], condition: Condition, scoring: Scoring, run_dir: Path
) -> dict[str, Any]:
    """Score a condition's final DBGAN (EMA weights when kept) and store it in its record.

    ``record["val"]``: per-image rows of :func:`realblur_gan.evaluate.evaluate` on the whole
    validation frames; ``record["benchmark"]``: the benchmark's part summaries (none without
    its data). Both are kept in ``result.json``, so a resumed launch scores nothing again.
    """
    from realblur_gan.evaluate import model_method
    from realblur_gan.evaluation.generalisation import run_benchmark
    from realblur_gan.inference.tiling import deblur_image
    from realblur_gan.weights.checkpoints import load_generator

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
# Report: results.csv, results.md, grid.png
# --------------------------------------------------------------------------------------------------

Scored = tuple[Condition, dict[str, Any]]


def ranking_table(results: Sequence[Scored], input_psnr: float) -> str:
    """One row per condition: its scores, gains and training cost, in condition order."""
    lines = [
        "| condition | DBGAN's training blur | PSNR (dB) | gain (dB) | unseen scenes, real blur "
        "(gain) | held-out photos, camera blur (gain) | DBGAN batches | extra BGAN batches "
        "| wall (min) |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for condition, r in results:
        psnr = _mean(r["val"], "psnr")
        bench = {p["part"]: p for p in r["benchmark"]}
        cells = []
        for part in BENCH_PARTS:
            p = bench.get(part)
            cells.append("n/a" if p is None else f"{p['psnr']:.2f} ({p['gain']:+.2f})")
        plans = {s: p["per_epoch"] * p["epochs"] for s, p in r["settings"]["stages"].items()}
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


GRID_CROP = 256


def make_grid(
    blur: torch.Tensor, sharp: torch.Tensor, results: Sequence[Scored], path: Path
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
    for condition, r in results:
        net = load_generator(r["checkpoint"])  # EMA weights when the run kept them
        columns[condition.key] = crop(deblur_image(net, blur, tile=None))
    scores = [(name, score_pair(x, crop(sharp))["psnr"]) for name, x in columns.items()]
    save_image(make_panel({**columns, "sharp": crop(sharp)}), path)
    return scores


def report(out: Path, results: Sequence[Scored], scoring: Scoring, header: list[str]) -> str:
    """Write results.csv, results.md and grid.png; return the ranking table."""
    from realblur_gan.data.io import read_image
    from realblur_gan.evaluate import Method, ScoreOptions, markdown_table, write_csv
    from realblur_gan.evaluation.baselines import identity
    from realblur_gan.evaluation.generalisation import PartSummary, format_table

    blurry = Method("input (blurry)", lambda key, blur, kernel: identity(blur))
    inputs = scoring.rows(blurry)
    rows = inputs + [row for _, r in results for row in r["val"]]
    write_csv(out / "results.csv", rows)
    labels = [blurry.label, *(condition.label for condition, _ in results)]
    # Every record here was scored with this LPIPS or without it (its scoring signature says).
    val_table = markdown_table(rows, labels, ScoreOptions(), scoring.lpips_note)
    input_psnr = _mean(inputs, "psnr")
    table = ranking_table(results, input_psnr)

    worst = min(inputs, key=lambda row: float(row["psnr"]))
    key = str(worst["image"])
    pair = [
        read_image(scoring.val_dir / side / f"{key}.png")[0][None] for side in ("blur", "sharp")
    ]
    scores = make_grid(*pair, results, out / "grid.png")
    grid_line = ", ".join(f"{n} {s:.2f} dB" for n, s in scores)

    bench = []
    for condition, r in results:
        if r["benchmark"]:
            parts = [PartSummary(**part) for part in r["benchmark"]]
            bench += [f"**{condition.label}**", "", format_table(parts), ""]
    text = [
        "# realblur-gan: DBGAN trained on different sources of blur",
        "",
        *header,
        "",
        table,
        "",
        "PSNR: DBGAN's final weights (EMA when kept) on the real-blur validation pairs (whole "
        f"frames, {len(inputs)} pairs), per-image mean; gain: PSNR minus the blurry input's "
        f"({input_psnr:.2f} dB). The benchmark columns: real GoPro blur of scenes no condition "
        "saw and camera blur of held-out photos (`realblur_gan.evaluation.generalisation`). "
        "Every condition trains DBGAN for the same number of batches; the BGAN stages of c and d "
        "are extra training those conditions need (their wall time includes it).",
        "",
        "## Validation pairs (`realblur-evaluate`)",
        "",
        val_table,
        "",
        "![grid](grid.png)",
        "",
        f"grid.png: validation pair `{key}` (the most blurred of {len(inputs)}), centre crop: "
        f"input | {' | '.join(c.key for c, _ in results)} | sharp; {grid_line}.",
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
        "  python scripts/experiment.py --conditions a,e --batches dbgan=300 seed=1",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="Hydra overrides, the same for every condition (e.g. seed=1 data.crop_size=96)",
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
        "--conditions",
        default=",".join(CONDITIONS),
        help="the conditions to run: letters, or names of other conf/experiment/ files",
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
    parser.add_argument("--force", action="store_true", help="retrain the conditions named")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    # Overrides may stand on both sides of an option (`seed=1 --force data.gap=2`).
    return parser.parse_intermixed_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment; returns the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
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
        tokens = [k.strip() for k in args.conditions.split(",") if k.strip()]
        conditions = [find_condition(token) for token in dict.fromkeys(tokens)]
        if not conditions:
            raise UserError("--conditions names no condition; pass e.g. --conditions a,e")
        budget = parse_batches(args.batches, BUDGETS[args.budget])
    except (UserError, ValueError) as err:
        print(error_text(err), file=sys.stderr)
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
        return run_experiment(args, conditions, budget, out, data_dir, stamp)
    finally:
        owner.release()


def run_experiment(
    args: argparse.Namespace,
    conditions: list[Condition],
    budget: Budget,
    out: Path,
    data_dir: Path,
    stamp: str,
) -> int:
    """Everything after the command line is checked, with ``out`` owned by this launch."""
    from realblur_gan.training.config import stage_order, validate_config

    settings = {
        "frames": str(args.frames),
        "budget": args.budget,
        "batches": args.batches,
        "overrides": [*budget.overrides, *args.overrides],
    }
    manifest_path = out / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    differ = [
        f"{key} {manifest.get(key)!r} -> {value!r}"
        for key, value in settings.items()
        if manifest and manifest.get(key) != value
    ]
    if differ and not args.force:
        # Before anything is written: the results there were trained with the old settings.
        print(
            f"error: --out {out} holds an experiment launched with other settings "
            f"({'; '.join(differ)}); rerun with its settings to continue it, add --force to "
            "retrain the conditions named with these, or pass another --out",
            file=sys.stderr,
        )
        return 2

    def config(condition: Condition, *more: str) -> DictConfig:
        extra = [*budget.overrides, *more, *args.overrides]
        return compose_condition(condition, args.frames, data_dir, out / condition.key, extra)

    # Every condition composed and checked once up front, before any frame is rendered: a bad
    # override (a key, or a value such as lr=nan) fails here, in one line, not after an hour of
    # training the conditions before it. a and e size the epochs below.
    configs: dict[str, DictConfig] = {}
    try:
        for condition in dict.fromkeys([*conditions, CONDITIONS["a"], CONDITIONS["e"]]):
            configs[condition.key] = cfg = config(condition, "logger=none")
            try:
                validate_config(cfg)
            except UserError as err:
                raise UserError(f"condition {condition.key}: {err}") from err
    except UserError as err:
        print(error_text(err), file=sys.stderr)
        return 2
    # One W&B group for every run of the experiment, kept across resumed launches.
    manifest = {"group": manifest.get("group", f"experiment-{stamp}"), **settings}
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
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

    def condition_settings(key: str) -> dict[str, Any]:
        """The launch's settings and the stage plans: what a stored result must match."""
        stages = stage_order(configs[key])
        return {**settings, "stages": {s: vars(plans[stage_kind(s, stages)]) for s in stages}}

    for condition in conditions:
        key, run_dir = condition.key, out / condition.key
        record = None if args.force else load_result(run_dir)
        if record is not None:
            log.info("%s: trained earlier (%s), not trained again", key, run_dir / RESULT_FILE)
        else:
            if args.force and run_dir.exists():
                shutil.rmtree(run_dir)
            log.info("%s: %s (+experiment=%s)", key, condition.description, condition.experiment)
            stages = stage_order(configs[key])
            cfg = config(
                condition,
                *stage_overrides(stages, plans),
                *logger_overrides(args.logger, manifest["group"]),
            )
            record = train_condition(condition, cfg, run_dir, condition_settings(key))
        if record.get("scoring") != scoring.signature:
            record = score_condition(record, condition, scoring, run_dir)
        gains = [f"validation {_mean(record['val'], 'psnr'):.2f} dB"]
        gains += [f"{p['part']} {p['gain']:+.2f} dB" for p in record["benchmark"]]
        log.info("%s: %s; trained in %.1f min", key, ", ".join(gains), record["seconds"] / 60)

    # The report covers every condition with a result here, also from earlier launches, as long
    # as it was trained with these settings (others are named and left out).
    results: list[Scored] = []
    for run_dir in sorted(p.parent for p in out.glob(f"*/{RESULT_FILE}")):
        record = load_result(run_dir)
        try:
            condition = find_condition(record["condition"])
            if condition.key not in configs:
                configs[condition.key] = config(condition, "logger=none")
        except UserError as err:
            log.warning("%s: left out of the report (%s)", run_dir.name, err)
            continue
        if record.get("settings") != condition_settings(condition.key):
            log.warning("%s: trained with other settings; left out of the report", run_dir.name)
            continue
        if record.get("scoring") != scoring.signature:
            record = score_condition(record, condition, scoring, run_dir)
        results.append((condition, record))
    header = [
        f"- frames: `{args.frames}`; budget `{args.budget}` {args.batches}; overrides: "
        f"{' '.join(settings['overrides']) or 'none'}",
        f"- DBGAN: {plans['dbgan'].batches} batches ({plans['dbgan'].epochs} epoch(s) of "
        f"{plans['dbgan'].per_epoch}) in every condition",
    ]
    table = report(out, results, scoring, header)
    print(f"\n{table}\n\nresults in {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
