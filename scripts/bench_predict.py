"""Inference speed against this machine's float32 matmul rate, and peak memory.

Times :func:`realblur_gan.inference.tiling.deblur_image` (what ``realblur-deblur`` and
``realblur-evaluate`` run) on the packaged DBGAN, or on ``--net-config`` (any generator config,
random weights: the time does not depend on them), for each runtime, tiling and thread count.

The floor is a plain 2048² float32 matmul timed in the same process right before and right
after every timed pass: on a CPU shared with other jobs both slow down together, so the ratio
``(useful FLOPs / time) / matmul FLOP rate`` says how close the pass is to what this CPU can do
at that moment. Useful FLOPs are those of one pass over the (stride-padded) image, counted by
``torch.utils.flop_counter`` (a multiply-add is 2 FLOPs): tiles' overlaps are overhead, not work.
Each case runs in its own process, so its peak resident memory (RSS, including the ~0.5 GB of
the imported libraries) is its own. Medians over ``--repeats`` passes after a warm-up pass.

Cases (``--cases``, comma-separated names; default: all but ``compile``):

- ``before``: the path before this benchmark's changes, eager torch on NCHW tensors, 512 px tiles.
- ``default``: what ``realblur-deblur`` runs now: ``--runtime auto --tile auto`` (a 1280x720
  frame in one pass, onnxruntime when installed).
- ``torch-*``: eager torch with channels-last input (``--runtime torch``).
- ``ort-*``: onnxruntime (``--runtime onnxruntime``; what ``auto`` picks when it is installed).
- ``*-whole`` / ``*-t512`` / ...: the whole frame in one pass, or tiles of that side.
- ``ort-1thread``: onnxruntime on one thread; ``*-spin``: spinning waits (OpenMP's for torch,
  onnxruntime's own), where the default is sleeping ones; ``bf16``: torch with bf16 autocast
  (CPUs with
  native bf16; not within 1e-4 of float32); ``ensemble``: the default with ``--self-ensemble``.
- ``12mp``: a 4000x3000 photo with the defaults (512 px tiles); ``12mp-before`` as before.
- ``cli-720p``, ``cli-12mp``: the whole ``realblur-deblur`` command on a JPEG photo of that size
  (start-up, reading, writing included): wall time and peak RSS (the target: a 12 MP photo in at
  most 1.5 GB).
- ``compile``: ``torch.compile`` (inductor), its warm-up reported; not run by default.

``--interleave`` runs the chosen cases in one process instead, one pass of each in turn: on a
shared CPU the fairest comparison of close options (no memory column).

Usage::

    python scripts/bench_predict.py [--cases before,ort-whole,12mp] [--repeats 3] [--interleave]
        [--threads N] [--device cpu] [--net-config conf/model/nafnet.yaml] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# What the commands do (realblur_gan/threads.py), before torch loads OpenMP: sleeping waits.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from bench.floor import MATMUL_N, matmul_gflops  # noqa: E402


@dataclass(frozen=True)
class Case:
    """One timed configuration of ``deblur_image``."""

    name: str
    height: int = 720
    width: int = 1280
    tile: int | str | None = "auto"
    runtime: str = "auto"
    threads: int | None = None  # None: the command's --threads
    bf16: bool = False
    ensemble: bool = False
    compile: bool = False
    wait_policy: str | None = None  # OMP_WAIT_POLICY of the case's process; None: the default


CASES = [
    Case("before", tile=512, runtime="before"),
    Case("default"),
    Case("torch-whole", tile=None, runtime="torch"),
    Case("torch-t512", tile=512, runtime="torch"),
    Case("ort-whole", tile=None, runtime="onnxruntime"),
    Case("ort-t512", tile=512, runtime="onnxruntime"),
    Case("ort-t768", tile=768, runtime="onnxruntime"),
    Case("ort-t1024", tile=1024, runtime="onnxruntime"),
    Case("ort-1thread", tile=None, runtime="onnxruntime", threads=1),
    Case("torch-spin", tile=None, runtime="torch", wait_policy="ACTIVE"),
    Case("ort-spin", tile=None, runtime="onnxruntime", wait_policy="ACTIVE"),
    Case("bf16", tile=None, runtime="torch", bf16=True),
    Case("ensemble", ensemble=True),
    Case("12mp", height=3000, width=4000),
    Case("12mp-before", height=3000, width=4000, tile=512, runtime="before"),
    Case("12mp-t768", height=3000, width=4000, tile=768),
    Case("compile", tile=None, runtime="torch", compile=True),
]
# Not run by default: compile takes ~25 s to warm up, 12mp-t768 shows only why tiles are 512.
DEFAULT_CASES = [c.name for c in CASES if c.name not in ("compile", "12mp-t768")]
DEFAULT_CASES += ["cli-720p", "cli-12mp"]


def load_net(net_config: Path | None, device: torch.device) -> nn.Module:
    """The packaged DBGAN, or the ``dbgan_g`` (or only net) of ``net_config``, random weights."""
    from realblur_gan.weights.checkpoints import load_generator
    from realblur_gan.weights.model_zoo import packaged_model
    from realblur_gan.weights.net_configs import build_net, read_net_config

    if net_config is None:
        net = load_generator(packaged_model())
    else:
        torch.manual_seed(0)
        net = build_net(read_net_config(net_config, "dbgan_g"), net_config, "dbgan_g").eval()
    return net.to(device)


def pass_gflop(net: nn.Module, height: int, width: int) -> float:
    """FLOPs of one forward pass over an image of this size padded to the net's stride (meta
    tensors: nothing is computed), GFLOP."""
    from realblur_gan.nets.init import net_channels

    stride = int(getattr(net, "stride", 1))
    h, w = (-(-height // stride) * stride, -(-width // stride) * stride)
    meta = copy.deepcopy(net).to("meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(torch.empty(1, net_channels(net), h, w, device="meta"))
    return counter.get_total_flops() / 1e9


def _before(deblur_image: Callable[..., torch.Tensor], *args: Any, **kwargs: Any) -> torch.Tensor:
    """``deblur_image`` with the forward pass it had before this benchmark's changes (eager
    torch on NCHW tensors), for the ``before`` cases."""
    import realblur_gan.inference.tiling as inference

    def plain(net: nn.Module, device: torch.device, runtime: str, bf16: bool) -> Callable:
        return lambda x: net(x.to(device)).float()

    current = inference.forward_runner
    inference.forward_runner = plain
    try:
        return deblur_image(*args, **kwargs)
    finally:
        inference.forward_runner = current


def prepare(case: Case, net: nn.Module, dev: torch.device) -> tuple[Callable[[], None], float]:
    """One pass of ``case`` as a call, after its set-up (export, compile, warm-up), and the
    useful GFLOP of a pass."""
    import realblur_gan.inference.tiling as inference
    from realblur_gan.inference.runtime import forward_runner

    runtime = "torch" if case.runtime == "before" else case.runtime
    if case.compile:
        net = torch.compile(net)
    image = torch.rand(1, 3, case.height, case.width, generator=torch.Generator().manual_seed(0))
    gflop = pass_gflop(net if not case.compile else net._orig_mod, case.height, case.width)
    if case.ensemble:
        gflop *= 8
    if case.runtime != "before":
        forward_runner(net, dev, runtime, case.bf16)  # the export (once per net) is set-up
        deblur_image = inference.deblur_image
    else:
        deblur_image = functools.partial(_before, inference.deblur_image)

    def once() -> None:
        deblur_image(
            net, image, case.tile, 32, bf16=case.bf16, self_ensemble=case.ensemble,
            runtime=runtime,
        )  # fmt: skip
        if dev.type == "cuda":
            torch.cuda.synchronize()

    return once, gflop


def timed_pass(once: Callable[[], None], gflop: float, dev: torch.device) -> dict[str, float]:
    """One pass between two matmul timings: seconds, CPU seconds, matmul rate, ratio."""
    before = matmul_gflops(dev)
    start, cpu = time.perf_counter(), time.process_time()
    once()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    floor = (before + matmul_gflops(dev)) / 2
    return {"s": seconds, "cpu_s": cpu, "floor": floor, "ratio": gflop / seconds / floor}


def run_case(case: Case, repeats: int, device: str, net_config: Path | None) -> dict:
    """Time ``case`` in this process: ms, GFLOP, matmul rate, ratio, peak RSS."""
    dev = torch.device(device)
    once, gflop = prepare(case, load_net(net_config, dev), dev)
    start = time.perf_counter()
    once()  # oneDNN/cuDNN kernel choice, onnxruntime's memory plan, compilation
    warmup_s = time.perf_counter() - start
    passes = [timed_pass(once, gflop, dev) for _ in range(repeats)]
    times = [p["s"] for p in passes]
    return {
        "ms": 1000 * statistics.median(times),
        "ms_all": [round(1000 * t) for t in times],
        "cpu_s": statistics.median(p["cpu_s"] for p in passes),
        "gflop": gflop,
        "gflops": gflop / statistics.median(times),
        "matmul_gflops": statistics.median(p["floor"] for p in passes),
        "ratio": statistics.median(p["ratio"] for p in passes),
        "ratio_all": [round(p["ratio"], 3) for p in passes],
        "warmup_s": warmup_s,
        # ru_maxrss is in KiB on Linux.
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,
        "peak_cuda_gb": torch.cuda.max_memory_allocated(dev) / 1e9 if dev.type == "cuda" else None,
        "threads": torch.get_num_threads(),
    }


def run_interleaved(
    cases: list[Case], repeats: int, device: str, net_config: Path | None
) -> dict[str, dict]:
    """Time ``cases`` in one process, one pass of each in turn, ``repeats`` rounds: on a shared
    CPU the load then falls on all of them alike, the fairest comparison of close options."""
    dev = torch.device(device)
    net = load_net(net_config, dev)
    prepared = {c.name: prepare(c, net, dev) for c in cases}
    for once, _ in prepared.values():
        once()  # warm-up
    passes: dict[str, list[dict[str, float]]] = {name: [] for name in prepared}
    for _ in range(repeats):
        for name, (once, gflop) in prepared.items():
            passes[name].append(timed_pass(once, gflop, dev))
    return {
        name: {
            "ms": 1000 * statistics.median(p["s"] for p in runs),
            "cpu_s": statistics.median(p["cpu_s"] for p in runs),
            "ratio": statistics.median(p["ratio"] for p in runs),
            "ratio_all": [round(p["ratio"], 2) for p in runs],
            "matmul_gflops": statistics.median(p["floor"] for p in runs),
        }
        for name, runs in passes.items()
    }


# The whole command on a photo of this size (height, width).
CLI_CASES = {"cli-720p": (720, 1280), "cli-12mp": (3000, 4000)}


def run_cli(height: int, width: int, threads: int | None) -> dict:
    """``realblur-deblur`` on one generated JPEG photo: wall time, peak RSS of the command."""
    from PIL import Image

    from realblur_gan.data.demo import make_scene

    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.jpg"
        make_scene(7, 1000).resize((width, height), Image.BICUBIC).save(photo, quality=92)
        out = Path(tmp) / "out"
        command = [sys.executable, "-m", "realblur_gan.predict", str(photo), "--out", str(out)]
        env = dict(os.environ)
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        floor = matmul_gflops()
        with (Path(tmp) / "stderr.txt").open("w+") as err:
            start = time.perf_counter()
            child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env)
            _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the others'
            seconds = time.perf_counter() - start
            err.seek(0)
            problem = err.read().strip().splitlines()
        if status != 0 or not (out / "photo.jpg").is_file():
            raise RuntimeError(problem[-1] if problem else f"exit status {status}")
        return {
            "ms": 1000 * seconds,
            "matmul_gflops": (floor + matmul_gflops()) / 2,
            "peak_rss_gb": usage.ru_maxrss * 1024 / 1e9,
        }


def describe(case: Case) -> str:
    runtime = {"before": "torch NCHW (before)", "torch": "torch channels-last"}.get(
        case.runtime, case.runtime
    )
    if case.tile is None or case.tile == "auto":
        tiling = "whole image" if case.tile is None else "tile auto"
    else:
        tiling = f"{case.tile} px tiles"
    extra = [x for x, on in (("bf16", case.bf16), ("self-ensemble ×8", case.ensemble)) if on]
    extra += ["torch.compile"] if case.compile else []
    extra += [f"OMP_WAIT_POLICY={case.wait_policy} (spinning waits)"] if case.wait_policy else []
    return ", ".join([runtime, tiling, *extra])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="default: available cores")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--net-config", type=Path, default=None, help="a model/net config")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="time the cases in one process, one pass of each in turn (fair under load; no "
        "memory column; cases with their own threads or waits are left out)",
    )
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from realblur_gan.threads import use_available_cpus

    by_name: dict[str, Case] = {c.name: c for c in CASES}
    by_name |= {n: Case(n, height=h, width=w) for n, (h, w) in CLI_CASES.items()}
    if args.case is not None:
        case = by_name[args.case]
        use_available_cpus(case.threads or args.threads)
        result = run_case(case, args.repeats, args.device, args.net_config)
        print(json.dumps(result))
        return
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"error: --cases {','.join(unknown)}: choose from {', '.join(by_name)}")
    if args.device == "cuda":  # onnxruntime, thread and OpenMP-wait cases are CPU cases
        names = [n for n in names if not n.startswith("ort") and not n.endswith("spin")]
    net = args.net_config or "packaged DBGAN (U-Net w24 d3)"
    threads = use_available_cpus(args.threads)
    if args.interleave:
        chosen = [by_name[n] for n in names if n not in CLI_CASES]
        chosen = [c for c in chosen if c.threads is None and c.wait_policy is None]
        print(
            f"# deblur_image on {args.device}, {net}, {threads} threads, the cases in turn in "
            f"one process, {args.repeats} rounds after a warm-up; ratio = useful GFLOP/s ÷ "
            f"{MATMUL_N}² float32 matmul GFLOP/s timed around each pass\n"
        )
        print("| case | image | path | ms / image (median) | CPU s / image | matmul GFLOP/s "
              "| ÷ matmul (median) | ÷ matmul, each round |")  # fmt: skip
        print("|---|---|---|---:|---:|---:|---:|---|")
        results = run_interleaved(chosen, args.repeats, args.device, args.net_config)
        for case in chosen:
            r = results[case.name]
            print(
                f"| {case.name} | {case.width}×{case.height} | {describe(case)} | {r['ms']:.0f} "
                f"| {r['cpu_s']:.2f} | {r['matmul_gflops']:.0f} | {100 * r['ratio']:.0f} % | "
                f"{', '.join(f'{100 * x:.0f}' for x in r['ratio_all'])} |"
            )
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return
    print(
        f"# deblur_image on {args.device}, {net}, {threads} threads by default, median of "
        f"{args.repeats} after 1 warm-up; ratio = useful GFLOP/s ÷ {MATMUL_N}² float32 matmul "
        "GFLOP/s timed around each pass\n"
    )
    memory = "peak CUDA GB" if args.device == "cuda" else "peak RSS GB"
    print(
        "| case | image | path | ms / image | ms / MP | GFLOP | GFLOP/s | matmul GFLOP/s "
        f"| ÷ matmul | threads | {memory} |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for name in names:
        case = by_name[name]
        if name in CLI_CASES:
            r = run_cli(case.height, case.width, args.threads)
            rows.append({"case": asdict(case), **r})
            print(
                f"| {name} | {case.width}×{case.height} | realblur-deblur (a JPEG photo, "
                f"start-up, reading and writing included) | {r['ms']:.0f} | | | | "
                f"{r['matmul_gflops']:.0f} | | {threads} | {r['peak_rss_gb']:.2f} |",
                flush=True,
            )
            continue
        command = [sys.executable, __file__, "--case", name, "--repeats", str(args.repeats)]
        command += ["--device", args.device]
        if args.threads:
            command += ["--threads", str(args.threads)]
        if args.net_config:
            command += ["--net-config", str(args.net_config)]
        env = dict(os.environ)
        if case.wait_policy:
            env["OMP_WAIT_POLICY"] = case.wait_policy
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["?"])[-1]
            print(f"| {name} | | {describe(case)} | failed: {last[:120]} | | | | | | | |")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append({"case": asdict(case), **r})
        mp = case.height * case.width / 1e6
        print(
            f"| {name} | {case.width}×{case.height} | {describe(case)} | {r['ms']:.0f} | "
            f"{r['ms'] / mp:.0f} | {r['gflop']:.0f} | {r['gflops']:.0f} | "
            f"{r['matmul_gflops']:.0f} | {100 * r['ratio']:.0f} % | {r['threads']} | "
            f"{r['peak_cuda_gb'] if args.device == 'cuda' else r['peak_rss_gb']:.2f} |",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
