"""Benchmark realblur-gan: training steps, Lightning overhead, speed switches, inference, data.

Parts (``--parts``, comma-separated; default all):

- ``train``: median wall time of the real ``training_step`` of every stage (BlurGAN pre-training
  on synthetic pairs, BlurGAN vs real blur, DeblurGAN with a frozen BGAN, JointGAN), built from
  the composed Hydra config (``conf/train.yaml`` + ``+scheme=...``, default nets) and driven by a
  Lightning ``Trainer`` over in-memory random batches ``{"sharp", "blur_syn", "blur_real"}``.
  A callback times each batch (``on_train_batch_start`` -> ``on_train_batch_end``); the first
  ``--warmup`` batches are dropped. Peak memory: process RSS on the CPU (peak reset before each
  case through ``/proc/self/clear_refs``), ``torch.cuda.max_memory_allocated`` on a GPU.
- ``reference``: the identical DeblurGAN step as a plain PyTorch loop (same nets, objective and
  Adam optimizers; D step on detached fakes, then G step with D frozen) without Lightning, on a
  twin module whose steps are interleaved with the Lightning steps, and the median per-pair ratio
  Lightning / plain (pairs taken moments apart: robust to load from other processes).
- ``switches``: the DeblurGAN step with ``precision=bf16-mixed``, ``perf.channels_last`` and
  ``perf.compile`` (``realblur_gan.train.apply_perf_switches``), each against fp32. On the CPU
  compile warms up for about a minute per shape: it runs at the first size and batch only, and
  not with ``--quick``; its warm-up is reported, not timed.
- ``profile``: what a step spends its time on (exclusive wall time of nets, losses, backward,
  optimizer, logging, Lightning), forward calls per net per step, VGG19 passes (the perceptual
  terms timed with a randomly initialised VGG19 where the real weights are absent), host reads of
  tensor scalars (device syncs on a GPU) and copies.
- ``infer``: ``realblur_gan.inference.deblur_image`` ms per megapixel
  (``scripts/bench_predict.py``).
- ``blur``: ``realblur_gan.blur.RealisticBlur`` ms per 1280x720 image (``scripts/bench_blur.py``).
- ``data``: training dataloader images/s (``scripts/bench_data.py``).

Prints markdown tables and, with ``--json``, writes every row to a JSON file. On a shared CPU
set ``OMP_WAIT_POLICY=PASSIVE`` (or fewer ``--threads``): spinning OpenMP threads preempted by
other processes can multiply step times; the header and the ``load`` column show the load.

Usage::

    python scripts/bench.py                      # everything, 256² crops, batch 1 and 4
    python scripts/bench.py --quick              # 64² crops, batch 1: well under a minute
    python scripts/bench.py --device cuda        # on a GPU machine (CUDA timings, memory)
    python scripts/bench.py --parts train,reference --sizes 256 --batch 1,4 --repeats 5 \\
        --threads 2 --json bench.json
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import logging
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

SCRIPTS = Path(__file__).resolve().parent
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

import bench_blur  # noqa: E402
import bench_data  # noqa: E402
import bench_predict  # noqa: E402

from realblur_gan.config import CONFIG_DIR  # noqa: E402
from realblur_gan.modules import mix_synthetic  # noqa: E402
from realblur_gan.train import apply_perf_switches  # noqa: E402

PARTS = ("train", "reference", "switches", "profile", "infer", "blur", "data")
# stage -> (scheme that defines it, label)
STAGES: dict[str, tuple[str, str]] = {
    "pretrain_bgan": ("separate", "BlurGAN pre-train (synthetic pairs, cond. D)"),
    "bgan": ("separate", "BlurGAN vs real blur"),
    "dbgan": ("separate", "DeblurGAN (frozen BGAN)"),
    "joint": ("joint", "JointGAN (4 nets)"),
}
REPO_ROOT = SCRIPTS.parent
LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")


@dataclass(frozen=True)
class Variant:
    """One way of running a stage: precision and the ``perf`` switches."""

    name: str = "fp32"
    precision: str = "32-true"
    channels_last: bool = False
    compile: bool = False
    perceptual: bool = False  # random-init VGG19 in the optional perceptual terms (timing only)


FP32 = Variant()
SWITCHES = (
    Variant("bf16-mixed", precision="bf16-mixed"),
    Variant("channels_last", channels_last=True),
    Variant("compile", compile=True),
)


# ---------------------------------------------------------------------------------------------
# Device helpers
# ---------------------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    """Wait for queued device work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _current_rss_gb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return float("nan")
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e9


def reset_peak_memory(device: torch.device) -> float:
    """Start a new peak-memory window; returns the memory in use now (GB)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 1e9
    with contextlib.suppress(OSError):  # Linux: "5" resets the peak RSS (ru_maxrss, VmHWM)
        Path("/proc/self/clear_refs").write_text("5")
    return _current_rss_gb()


def peak_memory_gb(device: torch.device) -> float:
    """Peak since :func:`reset_peak_memory`: CUDA allocated, or the process RSS on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # KiB on Linux


@contextlib.contextmanager
def contention(row: dict[str, Any]) -> Iterator[None]:
    """Record the load average and this process's involuntary context switches (preemptions by
    other processes: on a shared CPU they, not the code, can dominate a timing)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - start
        switches = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw - before
        row["preemptions_per_s"] = switches / seconds if seconds > 0 else float("nan")
        row["load_average_1min"] = os.getloadavg()[0]


def stats_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Median, min and max in milliseconds."""
    if not seconds:
        return {"ms": float("nan"), "ms_min": float("nan"), "ms_max": float("nan"), "n": 0}
    ms = [1000.0 * s for s in seconds]
    return {"ms": statistics.median(ms), "ms_min": min(ms), "ms_max": max(ms), "n": len(ms)}


# ---------------------------------------------------------------------------------------------
# Config, modules and batches
# ---------------------------------------------------------------------------------------------


def compose_config(scheme: str, overrides: Sequence[str] = ()) -> DictConfig:
    """``conf/train.yaml`` + ``+scheme=<scheme>`` composed as the CLI does (logger off)."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=[f"+scheme={scheme}", "logger=none", *overrides])


def build_module(
    stage: str, variant: Variant, overrides: Sequence[str] = (), seed: int = 0
) -> L.LightningModule:
    """The stage's LightningModule from the config, with the variant's perf switches applied.

    Args:
        stage: A key of :data:`STAGES`.
        variant: Precision (set on the Trainer, not here) and perf switches.
        overrides: Extra Hydra overrides, e.g. ``["model=paper"]``.
        seed: Seeds the nets' initialisation.
    """
    overrides = list(overrides)
    if variant.perceptual:
        overrides += [
            f"+loss.{gan}.terms.perceptual.fn.random_init_for_tests=true"
            for gan in ("bgan", "dbgan")
        ]
    cfg = compose_config(STAGES[stage][0], overrides)
    torch.manual_seed(seed)
    module = instantiate(cfg.stages[stage].module)
    apply_perf_switches(
        module, {"channels_last": variant.channels_last, "compile": variant.compile}
    )
    return module


def perceptual_state(overrides: Sequence[str] = ()) -> str:
    """Whether the config's DBGAN perceptual term is active (VGG19 weights found)."""
    module = build_module("dbgan", FP32, overrides)
    return "active" if "perceptual" in module.dbgan_objective.terms else "dropped"


def random_batches(
    n: int, batch: int, size: int, channels: int = 3, seed: int = 0
) -> list[dict[str, torch.Tensor]]:
    """``n`` training batches of uniform noise in [0, 1] with the training vocabulary."""
    gen = torch.Generator().manual_seed(seed)
    keys = ("sharp", "blur_syn", "blur_real")
    return [
        {k: torch.rand(batch, channels, size, size, generator=gen) for k in keys} for _ in range(n)
    ]


class _Prebatched(torch.utils.data.Dataset):
    """A dataset whose items are whole batches (use with ``DataLoader(batch_size=None)``)."""

    def __init__(self, batches: list[dict[str, torch.Tensor]]) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.batches[index]


# ---------------------------------------------------------------------------------------------
# Lightning-driven training steps
# ---------------------------------------------------------------------------------------------


class StepTimer(L.Callback):
    """Wall time of each training batch and of the loop between batches.

    ``step_s[i]``: ``on_train_batch_start`` -> ``on_train_batch_end`` of batch ``i`` (the
    ``training_step`` with its backward passes and optimizer steps; the batch is already on the
    device). ``gap_s[i]``: end of batch ``i`` -> start of batch ``i + 1`` (Lightning's loop
    bookkeeping, fetching and transferring the next batch).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.step_s: list[float] = []
        self.gap_s: list[float] = []
        self._start = 0.0
        self._end: float | None = None
        self.listeners: list[Callable[[str, int, Any], None]] = []

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        synchronize(self.device)
        now = time.perf_counter()
        if self._end is not None:
            self.gap_s.append(now - self._end)
        for listener in self.listeners:
            listener("start", batch_idx, batch)
        self._start = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        synchronize(self.device)
        self._end = time.perf_counter()
        self.step_s.append(self._end - self._start)
        for listener in self.listeners:
            listener("end", batch_idx, batch)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence Lightning's per-fit info lines and its warnings about tiny loaders."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def fit_steps(
    module: L.LightningModule,
    batches: list[dict[str, torch.Tensor]],
    device: torch.device,
    precision: str,
    callbacks: Sequence[L.Callback] = (),
) -> StepTimer:
    """Run one epoch of ``batches`` through a Lightning Trainer; return the step timer."""
    timer = StepTimer(device)
    loader = torch.utils.data.DataLoader(_Prebatched(batches), batch_size=None, shuffle=False)
    with tempfile.TemporaryDirectory() as root, _quiet():
        trainer = L.Trainer(
            accelerator="gpu" if device.type == "cuda" else "cpu",
            devices=1,
            precision=precision,
            max_epochs=1,
            limit_train_batches=len(batches),
            limit_val_batches=0,
            num_sanity_val_steps=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=root,
            callbacks=[timer, *callbacks],
        )
        trainer.fit(module, train_dataloaders=loader)
    return timer


def run_lightning_case(
    stage: str, size: int, batch: int, variant: Variant, opts: SimpleNamespace
) -> dict[str, Any]:
    """Time ``stage``'s Lightning training step; one result row."""
    row = _row("train", stage, size, batch, variant)
    try:
        module = build_module(stage, variant, opts.overrides)
        batches = random_batches(opts.warmup + opts.repeats, batch, size)
        base = reset_peak_memory(opts.device)
        with contention(row):
            timer = fit_steps(module, batches, opts.device, variant.precision)
        row.update(stats_ms(timer.step_s[opts.warmup :]))
        row["warmup_ms"] = [round(1000 * s, 1) for s in timer.step_s[: opts.warmup]]
        row["loop_ms"] = stats_ms(timer.gap_s[opts.warmup :])["ms"]
        row["peak_mem_gb"] = peak_memory_gb(opts.device)
        row["mem_at_start_gb"] = base
        row["images_per_s"] = 1000.0 * batch / row["ms"]
    except Exception as err:  # one failing case (e.g. compile without a compiler) is a row
        row["error"] = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
    finally:
        gc.collect()
    return row


def _skip_compile(variant: Variant, size: int, batch: int, opts: SimpleNamespace) -> str:
    """Why the compile row is skipped here ('' to run it): on the CPU its warm-up takes about
    a minute per case, so it runs once (first size and batch), and not at all with --quick."""
    if not variant.compile or opts.device.type != "cpu":
        return ""
    if opts.quick:
        return "--quick on CPU (compile warm-up takes about a minute)"
    if (size, batch) != (opts.sizes[0], opts.batch[0]):
        return f"on CPU only at {opts.sizes[0]}² batch {opts.batch[0]} (warm-up ~1 min each)"
    return ""


def _row(part: str, stage: str, size: int, batch: int, variant: Variant) -> dict[str, Any]:
    return {
        "part": part,
        "stage": stage,
        "scheme": STAGES[stage][0],
        "label": STAGES[stage][1],
        "size": size,
        "batch": batch,
        **asdict(variant),
        "variant": variant.name,
    }


# ---------------------------------------------------------------------------------------------
# The plain PyTorch reference of the DeblurGAN step
# ---------------------------------------------------------------------------------------------


def plain_dbgan_step(
    nets: SimpleNamespace, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """One DeblurGAN step without Lightning: G forward once, D step, then G step with D frozen.

    Args:
        nets: ``bgan_g`` (frozen), ``g``, ``d``, ``objective``, ``opt_g``, ``opt_d``,
            ``synthetic_ratio`` and ``clip`` (max gradient norm or None).
        batch: ``sharp``, ``blur_syn``, ``blur_real`` on the nets' device.

    Returns:
        The detached D and G losses.
    """
    sharp = batch["sharp"]
    if nets.bgan_g is None:
        blur = batch["blur_syn"]
    else:
        with torch.no_grad():
            fake_blur = nets.bgan_g(sharp)
        blur = mix_synthetic(fake_blur, batch["blur_syn"], nets.synthetic_ratio)
    if hasattr(nets.g, "forward_pyramid"):  # coarse-to-fine generator: content on every scale
        pyramid = nets.g.forward_pyramid(blur)
        restored = pyramid[-1]
    else:
        pyramid, restored = None, nets.g(blur)

    loss_d = nets.objective.d_loss(nets.d(sharp), nets.d(restored.detach()))
    nets.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    if nets.clip:
        nn.utils.clip_grad_norm_(nets.d.parameters(), nets.clip)
    nets.opt_d.step()

    nets.d.requires_grad_(False)
    try:
        real_logits = nets.d(sharp).detach()
        extra = {} if pyramid is None else {"pyramid": pyramid}
        loss_g, _ = nets.objective.g_loss(real_logits, nets.d(restored), restored, sharp, **extra)
    finally:
        nets.d.requires_grad_(True)
    nets.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    if nets.clip:
        nn.utils.clip_grad_norm_(nets.g.parameters(), nets.clip)
    nets.opt_g.step()
    return loss_d.detach(), loss_g.detach()


class _InterleavedPlain(L.Callback):
    """After each Lightning batch (outside its timed region), one plain step on twin nets.

    Interleaving pairs every Lightning step with a plain step taken moments later, so load from
    other processes on a shared machine hits both sides alike and the per-pair ratio stays
    meaningful where the absolute times drift.
    """

    def __init__(
        self, nets: SimpleNamespace, batches: list[dict[str, torch.Tensor]], device: torch.device
    ) -> None:
        self.nets = nets
        self.batches = batches
        self.device = device
        self.step_s: list[float] = []

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        synchronize(self.device)
        start = time.perf_counter()
        plain_dbgan_step(self.nets, self.batches[batch_idx])
        synchronize(self.device)
        self.step_s.append(time.perf_counter() - start)


def plain_nets(module: L.LightningModule) -> SimpleNamespace:
    """The nets, objective and fresh optimizers of a DeblurGAN module for the plain loop."""
    return SimpleNamespace(
        bgan_g=module.bgan_g,
        g=module.dbgan_g,
        d=module.dbgan_d,
        objective=module.dbgan_objective,
        opt_g=module.optim["generator"](module.dbgan_g.parameters()),
        opt_d=module.optim["discriminator"](module.dbgan_d.parameters()),
        synthetic_ratio=module.synthetic_ratio,
        clip=module.optim.get("gradient_clip_val"),
    )


def run_reference_case(size: int, batch: int, opts: SimpleNamespace) -> dict[str, Any]:
    """Plain-PyTorch DeblurGAN steps paired with Lightning steps of an identical twin module.

    Both sides are built from the same config with the same seed (same nets, objective and
    optimizer settings) and see the same batches. Returns the plain row, with the Lightning
    median and the median of the per-pair ratios Lightning / plain.
    """
    row = _row("reference", "dbgan", size, batch, Variant("plain PyTorch"))
    module = build_module("dbgan", FP32, opts.overrides)
    twin = build_module("dbgan", FP32, opts.overrides).to(opts.device).train()
    nets = plain_nets(twin)
    batches = random_batches(opts.warmup + opts.repeats, batch, size)
    on_device = [{k: v.to(opts.device) for k, v in b.items()} for b in batches]
    plain = _InterleavedPlain(nets, on_device, opts.device)
    with contention(row):
        timer = fit_steps(module, batches, opts.device, "32-true", callbacks=[plain])
    lightning_s, plain_s = timer.step_s[opts.warmup :], plain.step_s[opts.warmup :]
    row.update(stats_ms(plain_s))
    row["images_per_s"] = 1000.0 * batch / row["ms"]
    row["lightning_ms"] = stats_ms(lightning_s)["ms"]
    row["paired_ratios"] = [a / b for a, b in zip(lightning_s, plain_s, strict=True)]
    row["lightning_over_plain"] = statistics.median(row["paired_ratios"])
    row["note"] = "plain steps interleaved with the Lightning steps of a twin module"
    if twin.optim.get("ema_decay") is not None:
        row["note"] += "; EMA update not in the plain step"
    del module, twin, nets, plain
    gc.collect()
    return row


# ---------------------------------------------------------------------------------------------
# Profile: where a step's time goes
# ---------------------------------------------------------------------------------------------

# Module methods timed (instance-level wrappers) and how they are reported.
_METHODS = {
    "training_step": "training_step (rest: batch unpacking, mixing, EMA)",
    "make_blur": "training_step (rest: batch unpacking, mixing, EMA)",
    "d_step": "adversarial losses and D-step glue",
    "manual_backward": "backward passes",
    "_step": "zero_grad + clip + optimizer steps",
    "finish_step": "finish_step (logging, LR tensors, panels)",
    "update_ema": "EMA update",
}


class StepProbe:
    """Exclusive wall time per region, forward calls per net and scalar reads, per step.

    Regions nest (a D forward inside ``discriminator_step`` inside ``training_step``); each
    region's time excludes the regions inside it, so the regions add up to the step.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.active = False
        self._stack: list[list[Any]] = []  # [label, start, child_seconds]
        self.current: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.inputs: list[tuple[str, int, tuple[int, ...]]] = []
        self.scalar_reads: Counter[str] = Counter()
        self.steps: list[dict[str, Any]] = []
        self.handles: list[Any] = []
        self.batch_keys: dict[int, str] = {}

    # regions --------------------------------------------------------------------------------
    def enter(self, label: str) -> None:
        if self.active:
            synchronize(self.device)
            self._stack.append([label, time.perf_counter(), 0.0])

    def exit(self, label: str) -> None:
        if not self.active or not self._stack or self._stack[-1][0] != label:
            return
        synchronize(self.device)
        name, start, children = self._stack.pop()
        elapsed = time.perf_counter() - start
        self.current[name] += elapsed - children
        if self._stack:
            self._stack[-1][2] += elapsed

    def wrap_method(self, obj: Any, method: str, label: str) -> None:
        original = getattr(obj, method)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.enter(label)
            try:
                return original(*args, **kwargs)
            finally:
                self.exit(label)

        setattr(obj, method, timed)

    def watch_net(self, net: nn.Module, name: str, kind: str) -> None:
        """Time and count ``net``'s forward calls; remember which tensor each call got."""

        def pre(mod: nn.Module, args: tuple[Any, ...]) -> None:
            if not self.active:
                return
            grad = "" if torch.is_grad_enabled() else ", no grad"
            label = f"{kind}: {name}{grad}"
            mod._bench_label = label  # type: ignore[attr-defined]
            self.calls[name] += 1
            if args and isinstance(args[0], torch.Tensor):
                x = args[0]
                self.inputs.append((name, x.untyped_storage().data_ptr(), tuple(x.shape)))
            self.enter(label)

        def post(mod: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            self.exit(getattr(mod, "_bench_label", ""))

        self.handles.append(net.register_forward_pre_hook(pre))
        self.handles.append(net.register_forward_hook(post))

    def watch_perceptual(self, loss: nn.Module, name: str) -> None:
        """Count VGG19 passes of a PerceptualLoss and the images they ran on."""
        self.watch_net(loss, name, "perceptual loss (VGG19)")

        def pass_hook(mod: nn.Module, args: tuple[Any, ...]) -> None:
            if self.active:
                self.calls[f"{name}: VGG19 passes"] += 1

        def target_hook(mod: nn.Module, args: tuple[Any, ...]) -> None:
            if self.active and len(args) > 1 and isinstance(args[1], torch.Tensor):
                target = args[1]
                self.inputs.append(
                    ("VGG19 target", target.untyped_storage().data_ptr(), tuple(target.shape))
                )

        self.handles.append(loss.features.register_forward_pre_hook(pass_hook))
        self.handles.append(loss.register_forward_pre_hook(target_hook))

    # scalar reads (device syncs on a GPU) -----------------------------------------------------
    @contextlib.contextmanager
    def count_scalar_reads(self) -> Iterator[None]:
        """Count ``.item()``/``int()``/``float()``/``bool()`` on tensors, by calling line."""
        names = ("item", "__int__", "__float__", "__bool__", "__index__")
        originals = {n: getattr(torch.Tensor, n) for n in names}

        def make(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
            def counted(t: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
                if self.active:
                    self.scalar_reads[f"{_caller()} [{name}, {t.device.type}]"] += 1
                return fn(t, *args, **kwargs)

            return counted

        for name, fn in originals.items():
            setattr(torch.Tensor, name, make(name, fn))
        try:
            yield
        finally:
            for name, fn in originals.items():
                setattr(torch.Tensor, name, fn)

    # per step ----------------------------------------------------------------------------------
    def on_batch(self, event: str, batch_idx: int, batch: Any) -> None:
        if event == "start":
            self.batch_keys = {
                v.untyped_storage().data_ptr(): k
                for k, v in batch.items()
                if isinstance(v, torch.Tensor)
            }
            self.current = defaultdict(float)
            self.calls = Counter()
            self.inputs = []
            self.scalar_reads = Counter()
            self._stack = []
            self.active = True
        else:
            self.active = False
            self.steps.append(
                {
                    "regions": dict(self.current),
                    "calls": dict(self.calls),
                    "inputs": list(self.inputs),
                    "batch_keys": dict(self.batch_keys),
                    "scalar_reads": dict(self.scalar_reads),
                }
            )

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _caller() -> str:
    """Where a scalar was read: the reading line and, inside torch, the first caller outside."""
    frame = sys._getframe(2)  # skip the counting wrapper
    torch_dir = str(Path(torch.__file__).parent)
    inner = _where(frame) if frame is not None else "?"
    if frame is None or not frame.f_code.co_filename.startswith(torch_dir):
        return inner
    while frame is not None and frame.f_code.co_filename.startswith(torch_dir):
        frame = frame.f_back
    return f"{inner} via {_where(frame)}" if frame is not None else inner


def _where(frame: Any) -> str:
    path = frame.f_code.co_filename
    for marker in ("site-packages/", str(REPO_ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{frame.f_lineno} {frame.f_code.co_name}"


class _ProfileWindow(L.Callback):
    """Runs ``torch.profiler`` over the last ``n`` batches of the epoch."""

    def __init__(self, first: int, device: torch.device) -> None:
        self.first = first
        activities = [torch.profiler.ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        self.profiler = torch.profiler.profile(activities=activities)
        self.steps = 0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, i: int) -> None:
        if i == self.first:
            self.profiler.__enter__()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, i: int
    ) -> None:
        if i >= self.first:
            self.steps += 1
        if i == trainer.num_training_batches - 1 and self.steps:
            self.profiler.__exit__(None, None, None)


def profile_case(
    stage: str, size: int, batch: int, variant: Variant, opts: SimpleNamespace
) -> dict[str, Any]:
    """Time the regions of ``stage``'s step and profile its ops; one result dict."""
    module = build_module(stage, variant, opts.overrides)
    probe = StepProbe(opts.device)
    for name in ("bgan_g", "bgan_d", "dbgan_g", "dbgan_d"):
        net = getattr(module, name, None)
        if isinstance(net, nn.Module):
            probe.watch_net(net, name, "G forward" if name.endswith("_g") else "D forward")
    objectives = {
        n: getattr(module, f"{n}_objective", None) for n in ("bgan", "dbgan")
    }  # BlurGAN keeps its objective as bgan_objective
    for gan, objective in objectives.items():
        if objective is None:
            continue
        for term, fn in objective.terms.items():
            if term == "perceptual":
                probe.watch_perceptual(fn, f"{gan} perceptual ({fn.layer})")
            else:
                probe.watch_net(fn, f"{gan} {term}", "content losses")
    for method, label in _METHODS.items():
        if hasattr(module, method):
            probe.wrap_method(module, method, label)
    for adversary in module.adversaries:
        probe.wrap_method(adversary, "g_loss", "adversarial losses and D-step glue")

    measured = max(2, min(opts.repeats, 3))
    profiled = 1
    n = opts.warmup + measured + profiled
    window = _ProfileWindow(opts.warmup + measured, opts.device)
    timer = StepTimer(opts.device)
    timer.listeners.append(probe.on_batch)
    loader_batches = random_batches(n, batch, size)
    loader = torch.utils.data.DataLoader(
        _Prebatched(loader_batches), batch_size=None, shuffle=False
    )
    with tempfile.TemporaryDirectory() as root, _quiet(), probe.count_scalar_reads():
        trainer = L.Trainer(
            accelerator="gpu" if opts.device.type == "cuda" else "cpu",
            devices=1,
            precision=variant.precision,
            max_epochs=1,
            limit_train_batches=n,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=root,
            callbacks=[timer, window],
        )
        trainer.fit(module, train_dataloaders=loader)
    probe.remove()
    steps = probe.steps[opts.warmup : opts.warmup + measured]
    step_ms = stats_ms(timer.step_s[opts.warmup : opts.warmup + measured])["ms"]
    return {
        "stage": stage,
        "label": STAGES[stage][1],
        "variant": variant.name,
        "size": size,
        "batch": batch,
        "step_ms": step_ms,
        "regions_ms": _mean_regions(steps, step_ms),
        "calls_per_step": _mean_counter(s["calls"] for s in steps),
        "repeated_inputs": _repeated_inputs(steps[-1]) if steps else {},
        "scalar_reads_per_step": _mean_counter(s["scalar_reads"] for s in steps),
        "profiler": _profiler_summary(window.profiler, window.steps, opts.device),
    }


def _mean_regions(steps: list[dict[str, Any]], step_ms: float) -> dict[str, float]:
    total: dict[str, float] = defaultdict(float)
    for step in steps:
        for label, seconds in step["regions"].items():
            total[label] += 1000.0 * seconds / len(steps)
    inside = sum(total.values())
    total["Lightning outside training_step (hooks, optimizer wrappers' loop)"] = max(
        0.0, step_ms - inside
    )
    return dict(sorted(total.items(), key=lambda kv: -kv[1]))


def _mean_counter(counters: Iterator[dict[str, int]]) -> dict[str, float]:
    items = list(counters)
    total: Counter[str] = Counter()
    for c in items:
        total.update(c)
    return {k: v / max(1, len(items)) for k, v in sorted(total.items())}


def _repeated_inputs(step: dict[str, Any]) -> dict[str, int]:
    """``net <- tensor`` pairs seen more than once in one step (same storage and shape).

    Batch tensors are named by their key; others (a generator's output and its detached view
    share storage) are numbered in order of appearance.
    """
    inputs, keys = step["inputs"], step["batch_keys"]
    order = list(dict.fromkeys(ptr for _, ptr, _ in inputs if ptr not in keys))
    seen = Counter((name, ptr, shape) for name, ptr, shape in inputs)
    out = {}
    for (name, ptr, shape), count in seen.items():
        if count > 1:
            what = f"batch['{keys[ptr]}']" if ptr in keys else f"intermediate #{order.index(ptr)}"
            out[f"{name} on {what} {list(shape)}"] = count
    return out


def _profiler_summary(
    profiler: torch.profiler.profile, steps: int, device: torch.device
) -> dict[str, Any]:
    if not steps:
        return {}
    events = profiler.key_averages()
    counts = {e.key: e.count / steps for e in events}
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:10]
    summary: dict[str, Any] = {
        "steps": steps,
        "top_self_cpu_ms_per_step": {
            e.key: round(e.self_cpu_time_total / 1000.0 / steps, 2) for e in top
        },
        "scalar_reads_per_step (aten::_local_scalar_dense)": counts.get(
            "aten::_local_scalar_dense", 0.0
        ),
        "copies_per_step (aten::copy_)": counts.get("aten::copy_", 0.0),
        "dtype/device conversions_per_step (aten::_to_copy)": counts.get("aten::_to_copy", 0.0),
    }
    if device.type == "cuda":
        summary["memcpy_per_step"] = {
            k: v for k, v in counts.items() if k.startswith(("Memcpy", "cudaMemcpy"))
        }
    return summary


# ---------------------------------------------------------------------------------------------
# Inference, blur, data (the colleagues' benchmarks)
# ---------------------------------------------------------------------------------------------


def run_infer(opts: SimpleNamespace) -> list[dict[str, Any]]:
    """``bench_predict.run_case`` for 1280x720 (whole and tiled) and 3840x2160 (tiled)."""
    cases = bench_predict.CASES
    if opts.quick:
        cases = [("640×360", 360, 640, None), ("1280×720", 720, 1280, 256)]
    rows = []
    for label, height, width, tile in cases:
        reset_peak_memory(torch.device("cpu"))
        result = bench_predict.run_case(height, width, tile, opts.infer_repeats, opts.device.type)
        rows.append(
            {
                "part": "infer",
                "image": label,
                "height": height,
                "width": width,
                "tile": tile,
                "overlap": 32 if tile else None,
                "ms_per_mp": result["ms_per_mp"],
                "ms": result["ms_per_mp"] * height * width / 1e6,
                "peak_rss_gb": result["peak_rss_gb"],
                "repeats": opts.infer_repeats,
            }
        )
    return rows


def run_blur(opts: SimpleNamespace) -> list[dict[str, Any]]:
    """``RealisticBlur`` (bench_blur's full pipeline) on one 1280x720 RGB image, on the CPU."""
    kernel_size = 33 if opts.quick else 65
    image = bench_blur.photo_like(720, 1280)
    gen = torch.Generator().manual_seed(0)
    pipeline = bench_blur.realistic_blur(kernel_size)
    ms = bench_blur.median_ms(lambda: pipeline(image, gen), opts.repeats, warmup=opts.warmup)
    return [
        {
            "part": "blur",
            "operation": f"RealisticBlur full pipeline, {kernel_size}-px kernel, 1280×720",
            "ms": ms,
            "repeats": opts.repeats,
        }
    ]


def run_data(opts: SimpleNamespace) -> list[dict[str, Any]]:
    """``bench_data.bench``: images/s of the folders datamodule for 0 and 2 workers."""
    crop = opts.sizes[0]
    batch = max(opts.batch)
    folders = SimpleNamespace(sharp=None, real=None, crop=crop)
    sharp, real, source = bench_data.data_folders(folders)
    dm = bench_data.build_datamodule(sharp, real, crop, batch, None)
    workers = [0] if opts.quick else [0, 2]
    batches = 3 if opts.quick else 8
    epochs = 1 if opts.quick else 2
    rows = []
    for n in workers:
        torch.manual_seed(0)
        rates = bench_data.bench(dm, n, epochs, 0 if opts.quick else 1, batches)
        rows.append(
            {
                "part": "data",
                "source": source,
                "workers": n,
                "crop": crop,
                "batch": batch,
                "batches_per_epoch": batches,
                "images_per_s": statistics.median(rates),
                "min": min(rates),
                "max": max(rates),
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def header(opts: SimpleNamespace, perceptual: str) -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info: dict[str, Any] = {
        "device": str(opts.device),
        "cuda_available": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(opts.device) if opts.device.type == "cuda" else None,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset (OpenMP spins)"),
        "load_average_1min": os.getloadavg()[0],
        "torch": torch.__version__,
        "lightning": L.__version__,
        "python": platform.python_version(),
        "sizes": opts.sizes,
        "batch": opts.batch,
        "repeats": opts.repeats,
        "warmup": opts.warmup,
        "quick": opts.quick,
        "overrides": opts.overrides,
        "perceptual_terms": perceptual,
        "memory": "CUDA max_memory_allocated" if opts.device.type == "cuda" else "process RSS",
    }
    return info


def format_header(info: dict[str, Any]) -> str:
    if info["device"].startswith("cuda"):
        where = f"device **{info['device']}** ({info['gpu']})"
    else:
        gpu = (
            "a CUDA device is visible but not used"
            if info["cuda_available"]
            else "no GPU on this machine: GPU rows not measured (run with --device cuda there)"
        )
        where = f"device **cpu** ({info['cpu']}, {info['cpu_count']} logical CPUs; {gpu})"
    lines = [
        f"# realblur-gan benchmark — {where}",
        "",
        f"torch {info['torch']}, lightning {info['lightning']}, python {info['python']}; "
        f"**{info['torch_threads']} torch threads**; 1-min load average at start "
        f"{info['load_average_1min']:.1f}; median of {info['repeats']} steps after "
        f"{info['warmup']} warm-up; memory = {info['memory']} (peak per case); "
        f"OMP_WAIT_POLICY {info['omp_wait_policy']}.",
    ]
    extra = " ".join(info["overrides"])
    lines.append(
        "Modules built from the composed Hydra config (`conf/train.yaml` + `+scheme=...`"
        + (f", overrides `{extra}`" if extra else ", default nets of `conf/model/default.yaml`")
        + "), random-noise batches, logger and progress bar off."
    )
    busy = info["load_average_1min"] + info["torch_threads"]
    if info["device"] == "cpu" and info["cpu_count"] and busy > info["cpu_count"] + 0.5:
        lines.append(
            f"**Shared CPU**: load {info['load_average_1min']:.1f} + {info['torch_threads']} "
            f"threads > {info['cpu_count']} CPUs: other processes preempt the step's threads "
            "(see the 'load' column and `preemptions_per_s` in the JSON); with the default "
            "spinning OpenMP this can multiply step times, `OMP_WAIT_POLICY=PASSIVE` or fewer "
            "threads avoid most of it."
        )
    if info["perceptual_terms"] == "dropped":
        lines.append(
            "Perceptual (VGG19) terms: **dropped** — no VGG19 weights here (optional in the "
            "config), so the default rows train without them; the profile times them with a "
            "randomly initialised VGG19."
        )
    return "\n".join(lines)


def _fmt(x: Any, spec: str = ".1f") -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "–"
    return format(x, spec)


def format_train(rows: list[dict[str, Any]]) -> str:
    """The training-step table, with Lightning / plain and switch / fp32 ratios."""
    key = {
        (r["size"], r["batch"]): r
        for r in rows
        if r["stage"] == "dbgan" and r["variant"] == "fp32" and "ms" in r
    }
    out = [
        "| stage | scheme | variant | crop | batch | step ms (median) | min–max | "
        "loop ms | img/s | peak GB | load | Lightning ÷ plain | ÷ fp32 |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            out.append(
                f"| {r['label']} | {r['scheme']} | {r['variant']} | {r['size']}² | "
                f"{r['batch']} | {r['error']} | | | | | | | |"
            )
            continue
        if "skipped" in r:
            out.append(
                f"| {r['label']} | {r['scheme']} | {r['variant']} | {r['size']}² | "
                f"{r['batch']} | skipped: {r['skipped']} | | | | | | | |"
            )
            continue
        at = (r["size"], r["batch"])
        ratio_plain = r.get("lightning_over_plain")
        ratio_fp32 = r["ms"] / key[at]["ms"] if r["part"] == "switches" and at in key else None
        label = r["label"] if r["part"] != "reference" else "DeblurGAN step, plain PyTorch"
        variant = r["variant"]
        if r["compile"] and r.get("warmup_ms"):
            variant += f" (warm-up {sum(r['warmup_ms']) / 1000:.0f} s)"
        out.append(
            f"| {label} | {r['scheme']} | {variant} | {r['size']}² | {r['batch']} | "
            f"{_fmt(r['ms'])} | {_fmt(r['ms_min'], '.0f')}–{_fmt(r['ms_max'], '.0f')} | "
            f"{_fmt(r.get('loop_ms'))} | {_fmt(r['images_per_s'])} | "
            f"{_fmt(r.get('peak_mem_gb'), '.2f')} | {_fmt(r.get('load_average_1min'))} | "
            f"{_fmt(ratio_plain, '.2f')} | "
            f"{_fmt(ratio_fp32, '.2f')} |"
        )
    return "\n".join(out)


def format_profile(results: list[dict[str, Any]]) -> str:
    """Region breakdown per profiled case and the counts behind the findings."""
    out = []
    for p in results:
        out.append(
            f"\n**{p['label']}**, {p['variant']}, {p['size']}² batch {p['batch']}: "
            f"step {p['step_ms']:.1f} ms (instrumented)\n"
        )
        out.append("| region (exclusive) | ms / step | share |")
        out.append("|---|---:|---:|")
        for label, ms in p["regions_ms"].items():
            share = 100.0 * ms / p["step_ms"] if p["step_ms"] else float("nan")
            out.append(f"| {label} | {ms:.1f} | {share:.0f}% |")
        calls = ", ".join(f"{k} ×{v:g}" for k, v in p["calls_per_step"].items())
        out.append(f"\n- forward calls per step: {calls}")
        if p["repeated_inputs"]:
            reps = "; ".join(f"{k} ×{v}" for k, v in p["repeated_inputs"].items())
            out.append(f"- same tensor through the same net more than once: {reps}")
        reads = p["scalar_reads_per_step"]
        total = sum(reads.values())
        out.append(
            f"- tensor scalar reads per step (a device→host sync on a GPU when the tensor lives "
            f"there; Adam's step counters stay on the CPU): {total:g}"
            + (": " + "; ".join(f"{k} ×{v:g}" for k, v in reads.items()) if reads else "")
        )
        prof = p.get("profiler") or {}
        if prof:
            top = ", ".join(
                f"{k} {v:.1f}" for k, v in list(prof["top_self_cpu_ms_per_step"].items())[:6]
            )
            out.append(f"- torch.profiler, top self-CPU ms/step: {top}")
            out.append(
                "- per step: aten::_local_scalar_dense "
                f"×{prof['scalar_reads_per_step (aten::_local_scalar_dense)']:g}, aten::copy_ "
                f"×{prof['copies_per_step (aten::copy_)']:g}, aten::_to_copy "
                f"×{prof['dtype/device conversions_per_step (aten::_to_copy)']:g}"
                + (f", memcpy {prof['memcpy_per_step']}" if "memcpy_per_step" in prof else "")
            )
    return "\n".join(out)


def format_infer(rows: list[dict[str, Any]]) -> str:
    out = ["| image | tiling | ms / MP | ms / image | peak RSS GB |", "|---|---|---:|---:|---:|"]
    for r in rows:
        tiling = f"{r['tile']} px tiles, overlap {r['overlap']}" if r["tile"] else "whole image"
        out.append(
            f"| {r['image']} | {tiling} | {r['ms_per_mp']:.0f} | {r['ms']:.0f} | "
            f"{r['peak_rss_gb']:.2f} |"
        )
    return "\n".join(out)


def format_blur(rows: list[dict[str, Any]]) -> str:
    out = ["| operation (CPU) | median ms |", "|---|---:|"]
    out += [f"| {r['operation']} | {r['ms']:.1f} |" for r in rows]
    return "\n".join(out)


def format_data(rows: list[dict[str, Any]]) -> str:
    out = [
        "| source | crop | batch | workers | images/s (median) | min–max |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['source']} | {r['crop']} | {r['batch']} | {r['workers']} | "
            f"{r['images_per_s']:.1f} | {r['min']:.1f}–{r['max']:.1f} |"
        )
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: Sequence[str] | None = None) -> SimpleNamespace:
    """Parse the command line and fill the ``--quick`` defaults."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    parser.add_argument("--stages", default=",".join(STAGES), help="stages for the train part")
    parser.add_argument("--sizes", type=_ints, default=None, help="crop sides (default 256)")
    parser.add_argument("--batch", type=_ints, default=None, help="batch sizes (default 1,4)")
    parser.add_argument("--repeats", type=int, default=None, help="measured steps (default 3)")
    parser.add_argument("--warmup", type=int, default=None, help="dropped steps (default 2)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--json", type=Path, default=None, help="write all rows here")
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        help="Hydra override for the training config, repeatable (e.g. model=paper)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and few steps; compile skipped on CPU"
    )
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {','.join(PARTS)}")
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if set(stages) - set(STAGES):
        parser.error(f"unknown stage(s) {sorted(set(stages) - set(STAGES))}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available here")
    quick = args.quick
    repeats = args.repeats if args.repeats is not None else (2 if quick else 3)
    return SimpleNamespace(
        parts=parts,
        stages=stages,
        sizes=args.sizes or ([64] if quick else [256]),
        batch=args.batch or ([1] if quick else [1, 4]),
        repeats=repeats,
        warmup=args.warmup if args.warmup is not None else (1 if quick else 2),
        # A 3840x2160 pass takes ~15 s on a 2-core CPU: one timed pass there.
        infer_repeats=1 if quick or args.device == "cpu" else max(1, min(repeats, 3)),
        threads=args.threads,
        device=torch.device(args.device),
        json=args.json,
        quick=quick,
        overrides=args.override,
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the chosen parts, print the tables and return (and optionally write) the results.

    Thread count, cuDNN autotuning and the levels of the loggers it quiets are restored on
    return, so tests can call it in-process.
    """
    opts = parse_args(argv)
    # Lightning's per-fit info lines, and the "perceptual term dropped" warning that would
    # repeat for every case (the header states it once).
    quiet = ("realblur_gan.objective", "realblur_gan.losses", *LIGHTNING_LOGGERS)
    levels = {name: logging.getLogger(name).level for name in quiet}
    threads, cudnn_benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
    try:
        torch.set_num_threads(opts.threads)
        for name in quiet:
            logging.getLogger(name).setLevel(logging.ERROR)
        if opts.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        return run(opts)
    finally:
        torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = cudnn_benchmark
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def run(opts: SimpleNamespace) -> dict[str, Any]:
    """Run the parts of ``opts`` (see :func:`parse_args`); print and return the results."""
    info = header(opts, perceptual_state(opts.overrides))
    print(format_header(info))
    result: dict[str, Any] = {"meta": info, "rows": [], "profile": []}
    train_rows: list[dict[str, Any]] = []

    def emit_train(row: dict[str, Any]) -> None:
        row["device"] = str(opts.device)
        train_rows.append(row)
        result["rows"].append(row)
        shown = row.get("ms", float("nan"))
        print(
            f"  {row['part']:9s} {row['stage']:13s} {row['variant']:13s} {row['size']}² "
            f"b{row['batch']}: {shown:.1f} ms {row.get('error', '')}",
            file=sys.stderr,
        )

    for size in opts.sizes:
        for batch in opts.batch:
            if "train" in opts.parts:
                for stage in opts.stages:
                    emit_train(run_lightning_case(stage, size, batch, FP32, opts))
            if "reference" in opts.parts:
                emit_train(run_reference_case(size, batch, opts))
            if "switches" in opts.parts:
                if not ("train" in opts.parts and "dbgan" in opts.stages):
                    emit_train(run_lightning_case("dbgan", size, batch, FP32, opts))
                for variant in SWITCHES:
                    skip = _skip_compile(variant, size, batch, opts)
                    if skip:
                        row = _row("switches", "dbgan", size, batch, variant)
                        row["skipped"] = skip
                        emit_train(row)
                        continue
                    row = run_lightning_case("dbgan", size, batch, variant, opts)
                    row["part"] = "switches"
                    emit_train(row)

    if train_rows:
        print("\n## Training step (Lightning Trainer, real training_step)\n")
        print(format_train(train_rows))
        refs = [r for r in train_rows if r["part"] == "reference"]
        if refs:
            result["lightning_overhead_ratio"] = [r["lightning_over_plain"] for r in refs]
            pairs = ", ".join(
                f"×{r['lightning_over_plain']:.3f} ({r['size']}² b{r['batch']}: Lightning "
                f"{r['lightning_ms']:.1f} ms vs plain {r['ms']:.1f} ms)"
                for r in refs
            )
            print(
                "\nLightning overhead, DeblurGAN step via the Trainer ÷ the same step in plain "
                f"PyTorch (median of per-step ratios, steps interleaved): {pairs}. "
                "'loop ms': Lightning's time between batches (fetch, transfer, bookkeeping), "
                "outside the step."
            )

    if "profile" in opts.parts:
        size, batch = opts.sizes[0], opts.batch[0]
        # JointGAN +perceptual covers both perceptual layers (BGAN relu5_4, DBGAN relu3_4).
        cases = [("dbgan", FP32), ("joint", FP32)]
        cases += [("joint", Variant("+perceptual", perceptual=True))]
        for stage, variant in cases:
            print(f"  profile   {stage} {variant.name} {size}² b{batch}", file=sys.stderr)
            result["profile"].append(profile_case(stage, size, batch, variant, opts))
        print("\n## Profile of the training step\n")
        print(
            "Instrumented run (timers around nets and module methods; a synchronize per region "
            "on a GPU); perceptual variants use a randomly initialised VGG19 (timing only)."
        )
        print(format_profile(result["profile"]))

    if "infer" in opts.parts:
        rows = run_infer(opts)
        result["rows"] += rows
        print(
            f"\n## Inference (deblur_image, default DBGAN, {opts.device.type}, median of "
            f"{opts.infer_repeats} after 1 warm-up)\n"
        )
        print(format_infer(rows))
    if "blur" in opts.parts:
        rows = run_blur(opts)
        result["rows"] += rows
        print("\n## Blur synthesis\n")
        print(format_blur(rows))
    if "data" in opts.parts:
        rows = run_data(opts)
        result["rows"] += rows
        print("\n## Training dataloader (conf/data/folders.yaml)\n")
        print(format_data(rows))

    if opts.json is not None:
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(json.dumps(result, indent=2, default=str))
        print(f"\nJSON: {opts.json}")
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    main()
