"""The commands on a CPU that other jobs share: before and after passive waits and core counts.

Starts ``--load`` busy processes (plain Python loops, one core each), then runs every command
twice on the same inputs:

- ``before``: as the commands ran before: torch imported before the package can ask OpenMP for
  sleeping waits (so libgomp's default applies: spin, then sleep), torch's default thread count,
  and OMP_* variables unset;
- ``after``: the command as shipped (``realblur_gan.threads``: passive waits, threads from the
  cores the process may use).

Commands: ``realblur-deblur`` on a 1280x720 photo; ``realblur-evaluate --shift 5`` on
``--pairs`` restored/sharp pairs; ``python -m realblur_gan.blind map`` and ``selfdeblur`` on a
255x255 gray photo with a short budget. A command that runs past ``--timeout`` is stopped and
shown as such. The float32 matmul rate is timed before the load starts and under it, as the
floor of this moment.

Then, in this process and without the load, the ``--shift`` search alone: the per-shift loop
that ``score_pair`` ran before against :func:`realblur_gan.evaluation.metrics.ssim_at_shifts` and
:func:`~realblur_gan.evaluation.metrics.psnr_at_shifts`, on the same images.

Usage::

    python scripts/bench_load.py [--load 2] [--commands deblur,evaluate,map,selfdeblur]
        [--timeout 180] [--pairs 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This process times the shift search itself: with the waits the commands now have.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))

from bench.floor import matmul_gflops  # noqa: E402

# What the old commands left to the OpenMP runtime and torch: nothing set.
_OMP_VARIABLES = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT", "MKL_NUM_THREADS")


def make_inputs(root: Path, pairs: int) -> dict[str, list[str]]:
    """The inputs under ``root``, and each command's module and arguments."""
    from PIL import Image, ImageFilter

    from realblur_gan.data.demo import make_scene

    photo = root / "photo.jpg"
    make_scene(11, 720).resize((1280, 720), Image.BICUBIC).save(photo, quality=92)
    gray = root / "gray.png"
    scene = make_scene(12, 255).convert("L")
    scene.filter(ImageFilter.GaussianBlur(2)).save(gray)
    for i in range(pairs):
        sharp = make_scene(20 + i, 480).resize((480, 320), Image.BICUBIC)
        (root / "sharp").mkdir(exist_ok=True)
        (root / "restored").mkdir(exist_ok=True)
        sharp.save(root / "sharp" / f"{i}.png")
        sharp.filter(ImageFilter.GaussianBlur(1)).save(root / "restored" / f"{i}.png")
    out = str(root / "out")
    return {
        "deblur": ["realblur_gan.predict", str(photo), "--out", out, "--overwrite"],
        "evaluate": [
            "realblur_gan.evaluate",
            "--sharp",
            str(root / "sharp"),
            "--restored",
            str(root / "restored"),
            "--shift",
            "5",
            "--no-lpips",
            "--out",
            out,
        ],
        "map": ["realblur_gan.blind", "map", str(gray), "--out", out, "--iterations", "300"],
        "selfdeblur": [
            "realblur_gan.blind",
            "selfdeblur",
            str(gray),
            "--out",
            out,
            "--iterations",
            "100",
        ],
    }


def run_command(module: str, args: list[str], mode: str, timeout: float) -> float | None:
    """Seconds ``python -m module args`` took in ``mode`` (None: stopped at ``timeout``)."""
    env = {k: v for k, v in os.environ.items() if k not in _OMP_VARIABLES}
    if mode == "before":
        launcher = (
            "import sys, runpy, torch; "  # torch (and OpenMP) loads before the package
            f"sys.argv = [{module!r}, *sys.argv[1:]]; "
            f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
        )
        command = [sys.executable, "-c", launcher, *args]
    else:
        command = [sys.executable, "-m", module, *args]
    start = time.perf_counter()
    try:
        subprocess.run(
            command, env=env, timeout=timeout, check=True, capture_output=True, text=True
        )
    except subprocess.TimeoutExpired:
        return None
    except subprocess.CalledProcessError as err:
        last = (err.stderr.strip().splitlines() or ["?"])[-1]
        raise SystemExit(f"error: {module} ({mode}) failed: {last}") from None
    return time.perf_counter() - start


def shift_search(pairs: int, shift: int = 5) -> tuple[float, float]:
    """Seconds of the per-shift loop and of the vectorised search over ``pairs`` 480x320 RGB
    pairs, with the same results (checked here)."""
    from realblur_gan.evaluation.metrics import (
        psnr,
        psnr_at_shifts,
        shift_grid,
        shift_overlap,
        ssim,
        ssim_at_shifts,
    )

    gen = torch.Generator().manual_seed(0)
    images = [(torch.rand(1, 3, 320, 480, generator=gen),) * 2 for _ in range(pairs)]
    images = [(p.roll(2, -1) * 0.9, t) for p, t in images]
    start = time.perf_counter()
    loop = [
        [
            (float(psnr(*shift_overlap(p, t, dy, dx))), float(ssim(*shift_overlap(p, t, dy, dx))))
            for dy, dx in shift_grid(shift)
        ]
        for p, t in images
    ]
    loop_s = time.perf_counter() - start
    start = time.perf_counter()
    fast = [(psnr_at_shifts(p, t, shift), ssim_at_shifts(p, t, shift)) for p, t in images]
    fast_s = time.perf_counter() - start
    for old, (new_psnr, new_ssim) in zip(loop, fast, strict=True):
        assert torch.allclose(new_psnr[0], torch.tensor([o[0] for o in old]), atol=1e-3)
        assert torch.allclose(new_ssim[0], torch.tensor([o[1] for o in old]), atol=1e-5)
    return loop_s, fast_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load", type=int, default=2, help="busy processes competing")
    parser.add_argument("--commands", default="deblur,evaluate,map,selfdeblur")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per command")
    parser.add_argument("--pairs", type=int, default=4, help="image pairs for evaluate")
    parser.add_argument("--no-shift-search", action="store_true")
    args = parser.parse_args()
    from realblur_gan.threads import available_cpus

    quiet = matmul_gflops()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    try:
        time.sleep(1.0)
        loaded = matmul_gflops()
        with tempfile.TemporaryDirectory() as tmp:
            commands = make_inputs(Path(tmp), args.pairs)
            names = [n.strip() for n in args.commands.split(",") if n.strip()]
            print(
                f"# Commands under a competing load: {args.load} busy processes on "
                f"{available_cpus()} available cores (load average {os.getloadavg()[0]:.1f}); "
                f"matmul {quiet:.0f} GFLOP/s before the load, {loaded:.0f} under it\n"
            )
            print("| command | before (spinning waits, s) | after (s) | before ÷ after |")
            print("|---|---:|---:|---:|")
            for name in names:
                module, *rest = commands[name]
                times = {m: run_command(module, rest, m, args.timeout) for m in ("before", "after")}
                shown = {
                    m: f"> {args.timeout:.0f} (stopped)" if t is None else f"{t:.1f}"
                    for m, t in times.items()
                }
                before, after = times["before"], times["after"]
                ratio = "–" if after is None else f"{(before or args.timeout) / after:.1f}"
                ratio = f"≥ {ratio}" if before is None and after is not None else ratio
                label = f"{name} ({rest[-1]} iterations)" if name in ("map", "selfdeblur") else name
                print(f"| {label} | {shown['before']} | {shown['after']} | {ratio} |", flush=True)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    if not args.no_shift_search:
        loop_s, fast_s = shift_search(args.pairs)
        print(
            f"\n--shift 5 search (PSNR + SSIM at 121 shifts) on {args.pairs} 480×320 RGB pairs, "
            f"no competing load: per-shift loop {loop_s:.1f} s, vectorised {fast_s:.1f} s "
            f"({loop_s / fast_s:.0f}x); results equal (PSNR within 1e-3 dB, SSIM within 1e-5)"
        )


if __name__ == "__main__":
    main()
