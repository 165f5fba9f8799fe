"""The command line: which parts, stages, sizes and switches to run; print and save the results.

Usage::

    python scripts/bench.py                      # everything, 256² crops, batch 1 and 4
    python scripts/bench.py --quick              # 64² crops, batch 1: about a minute on a CPU
    python scripts/bench.py --device cuda        # on a GPU machine (CUDA timings and memory)
    python scripts/bench.py --parts train,switches --sizes 256 --batch 1,4 --repeats 5 \\
        --threads 2 --json bench.json --override model=nafnet
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.errors import HydraException

from realblur_gan.errors import UserError, error_text

from . import delegated, report
from .feed import feed_cases, time_feed
from .machine import describe
from .stages import SWITCHES, Case, stage_schemes
from .steps import Budget, Notes, time_case

PARTS = ("train", "switches", "infer", "blur", "data", "feed")
# Parts of the old single-file script that are gone, and where their numbers are now.
REMOVED_PARTS = {
    "profile": "every train row now carries its torch.profiler ranges (ranges_ms)",
    "reference": "it timed a hand copy of the DeblurGAN step; the train rows time the real "
    "step, and outside_ranges_ms/loop_ms show what lies outside the modules' ranges",
}
SWITCH_STAGE = "dbgan"


@dataclass(frozen=True)
class Options:
    """The parsed command line, ``--quick`` defaults filled in."""

    parts: list[str]
    stages: dict[str, str]  # stage -> scheme that trains it, for the train part
    switch_scheme: str  # the scheme that trains SWITCH_STAGE
    sizes: list[int]
    batch: list[int]
    budget: Budget
    threads: int
    json: Path | None
    quick: bool


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Parse ``argv`` into :class:`Options`.

    Raises:
        realblur_gan.errors.UserError: An unknown or removed part, an unknown stage, a count
            out of range, or ``--device cuda`` where there is no CUDA device.
    """
    parser = argparse.ArgumentParser(
        description="Benchmark realblur-gan: training steps per stage and profiler range, "
        "speed switches, inference, blur synthesis, data loading (scripts/bench/__init__.py)."
    )
    parser.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    parser.add_argument("--stages", default=None, help="stages for the train part (default all)")
    parser.add_argument("--sizes", type=_ints, default=None, help="crop sides (default 256)")
    parser.add_argument("--batch", type=_ints, default=None, help="batch sizes (default 1,4)")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps (default 3)")
    parser.add_argument("--warmup", type=int, default=None, help="dropped steps (default 2)")
    parser.add_argument(
        "--profile-steps", type=int, default=None, help="profiled steps after those (default 2)"
    )
    parser.add_argument(
        "--val-batches", type=int, default=None, help="profiled validation batches (default 2)"
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--json", type=Path, default=None, help="write all rows here")
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        help="Hydra override of the training config, repeatable (e.g. model=paper)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and few steps; compile skipped on CPU"
    )
    args = parser.parse_args(argv)

    parts = _names(args.parts)
    for part in parts:
        if part in REMOVED_PARTS:
            raise UserError(f"--parts {part}: removed, {REMOVED_PARTS[part]}")
        if part not in PARTS:
            raise UserError(f"--parts {part}: no such part; choose from {','.join(PARTS)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available here; use --device cpu")
    schemes = stage_schemes(args.override)
    chosen = _names(args.stages) if args.stages else list(schemes)
    for stage in [*chosen, *([SWITCH_STAGE] if "switches" in parts else [])]:
        if stage not in schemes:
            raise UserError(f"--stages {stage}: no scheme trains it; choose from {list(schemes)}")
    quick = args.quick
    counts = {
        "repeats": args.repeats if args.repeats is not None else (2 if quick else 3),
        "warmup": args.warmup if args.warmup is not None else (1 if quick else 2),
        "profile_steps": args.profile_steps or (1 if quick else 2),
        "val_batches": args.val_batches if args.val_batches is not None else (1 if quick else 2),
    }
    for name, value in counts.items():
        low = 1 if name in ("repeats", "profile_steps") else 0
        if value < low:
            raise UserError(f"--{name.replace('_', '-')} {value}: must be >= {low}")
    return Options(
        parts=parts,
        stages={stage: schemes[stage] for stage in chosen},
        switch_scheme=schemes.get(SWITCH_STAGE, ""),
        sizes=args.sizes or ([64] if quick else [256]),
        batch=args.batch or ([1] if quick else [1, 4]),
        budget=Budget(**counts, device=torch.device(args.device), overrides=args.override),
        threads=args.threads,
        json=args.json,
        quick=quick,
    )


def plan(opts: Options) -> list[Case]:
    """The cases to time, per size and batch: each chosen stage, then the switches."""
    train = list(opts.stages) if "train" in opts.parts else []
    cases = []
    for size in opts.sizes:
        for batch in opts.batch:
            cases += [Case(s, opts.stages[s], size, batch) for s in train]
            if "switches" in opts.parts:
                scheme = opts.switch_scheme
                if SWITCH_STAGE not in train:
                    cases.append(Case(SWITCH_STAGE, scheme, size, batch))  # the ÷ base
                cases += [Case(SWITCH_STAGE, scheme, size, batch, sw) for sw in SWITCHES]
    return cases


def skip_reason(case: Case, opts: Options) -> str:
    """Why a case does not run ('' when it does): on the CPU, compiling takes about a minute
    per shape, so the compile switch runs once (first size and batch), not at all with
    ``--quick``."""
    if case.switch is None or case.switch.name != "compile" or opts.budget.device.type != "cpu":
        return ""
    if opts.quick:
        return "--quick on CPU (compile warm-up takes about a minute)"
    if (case.size, case.batch) != (opts.sizes[0], opts.batch[0]):
        return f"on CPU only at {opts.sizes[0]}² batch {opts.batch[0]} (warm-up ~1 min each)"
    return ""


def run(opts: Options) -> dict[str, Any]:
    """Run the parts of ``opts``; print the tables and return (and optionally write) the
    results (``{"meta": ..., "rows": [...]}``, see the package docstring)."""
    budget = opts.budget
    meta = describe(budget.device) | {
        "stages": opts.stages | ({SWITCH_STAGE: opts.switch_scheme} if opts.switch_scheme else {}),
        "sizes": opts.sizes,
        "batch": opts.batch,
        "repeats": budget.repeats,
        "warmup": budget.warmup,
        "profile_steps": budget.profile_steps,
        "val_batches": budget.val_batches,
        "quick": opts.quick,
        "overrides": list(budget.overrides),
    }
    print(report.header(meta))
    result: dict[str, Any] = {"meta": meta, "rows": []}
    notes = Notes()
    steps = []
    for case in plan(opts):
        skip = skip_reason(case, opts)
        if skip:
            row = {"part": "switches", "stage": case.stage, "scheme": case.scheme}
            row |= {"switch": case.switch.name, "size": case.size, "batch": case.batch}
            row["skipped"] = skip
        else:
            row = time_case(case, budget, notes)
        steps.append(row)
        print(
            f"  {row['part']:8s} {case.stage:13s} {row.get('variant', row['switch']):22s} "
            f"{case.size}² b{case.batch}: {row.get('ms', float('nan')):.1f} ms "
            f"{row.get('error', '')}",
            file=sys.stderr,
        )
    result["rows"] += steps
    if steps:
        print("\n## Training step (Lightning Trainer, the stage's real training_step)\n")
        print(report.steps_table(steps))
        print("\n## Where the step goes (torch.profiler ranges, ms per step, share)\n")
        print(report.ranges_table(steps))
    if notes.messages:
        print("\nLogged while building the stages (once each):")
        print("\n".join(f"- {message}" for message in notes.messages))

    if "infer" in opts.parts:
        # A 1280x720 pass takes ~2 s on 2 cores: up to 3 timed passes, one with --quick.
        repeats = 1 if opts.quick else min(budget.repeats, 3)
        rows = delegated.run_infer(opts.quick, repeats, budget.device)
        result["rows"] += rows
        print(f"\n## Inference (deblur_image, packaged DBGAN, median of {repeats} after 1)\n")
        print(report.infer_table(rows))
    if "blur" in opts.parts:
        rows = delegated.run_blur(opts.quick, budget.repeats, budget.warmup)
        result["rows"] += rows
        print("\n## Blur synthesis\n")
        print(report.blur_table(rows))
    if "data" in opts.parts:
        rows = delegated.run_data(opts.quick, opts.sizes[0], max(opts.batch))
        result["rows"] += rows
        print("\n## Training dataloader (conf/data/folders.yaml)\n")
        print(report.data_table(rows))

    if "feed" in opts.parts:
        cache = Path(tempfile.gettempdir()) / "realblur_bench"
        cases = feed_cases(cache, opts.quick)
        rows = [time_feed(case, budget, notes, batches=2 if opts.quick else 4) for case in cases]
        result["rows"] += rows
        print("\n## The data side of a DeblurGAN step (its real datamodule and Trainer)\n")
        print(report.feed_table(rows))

    if opts.json is not None:
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(json.dumps(result, indent=2, default=str))
        print(f"\nJSON: {opts.json}")
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse ``argv``, run and return the results; the torch thread count is restored after.

    A problem the user can fix (an option, an override the config refuses) exits with status 2
    and one line ``error: ...``.
    """
    threads = torch.get_num_threads()
    try:
        opts = parse_args(argv)
        torch.set_num_threads(opts.threads)
        return run(opts)
    except (UserError, HydraException) as err:
        print(error_text(err).splitlines()[0], file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        torch.set_num_threads(threads)
