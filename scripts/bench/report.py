"""Markdown tables of the results, as printed by the command."""

from __future__ import annotations

import math
from typing import Any

from .ranges import RANGES


def _fmt(x: Any, spec: str = ".1f") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return format(x, spec)


def header(meta: dict[str, Any]) -> str:
    """What was measured on what, and how much to trust it on a shared machine."""
    if meta["device"].startswith("cuda"):
        where = f"device **{meta['device']}** ({meta['gpu']})"
    else:
        gpu = (
            "a CUDA device is visible but not used"
            if meta["cuda_available"]
            else "no GPU on this machine: run with --device cuda on one"
        )
        where = f"device **cpu** ({meta['cpu']}, {meta['cpu_count']} logical CPUs; {gpu})"
    lines = [
        f"# realblur-gan benchmark — {where}",
        "",
        f"torch {meta['torch']}, lightning {meta['lightning']}, python {meta['python']}; "
        f"**{meta['torch_threads']} torch threads**; 1-min load average at start "
        f"{meta['load_average_1min']:.1f}; median of {meta['repeats']} steps after "
        f"{meta['warmup']} warm-up, then {meta['profile_steps']} step(s) and "
        f"{meta['val_batches']} validation batch(es) under torch.profiler; memory = "
        f"{meta['memory']} (peak per case); OMP_WAIT_POLICY {meta['omp_wait_policy']}.",
        "Stages built by `realblur_gan.training.runner.build_stage` from `conf/train.yaml` + "
        "`+scheme=...`"
        + (f" + `{' '.join(meta['overrides'])}`" if meta["overrides"] else "")
        + " and trained by the stage's own Trainer settings over random-noise batches; "
        "logger, checkpoints and progress bar off.",
    ]
    busy = meta["load_average_1min"] + meta["torch_threads"]
    if meta["device"] == "cpu" and meta["cpu_count"] and busy > meta["cpu_count"] + 0.5:
        lines.append(
            f"**Shared CPU**: load {meta['load_average_1min']:.1f} + {meta['torch_threads']} "
            f"threads > {meta['cpu_count']} CPUs: other processes preempt the step's threads "
            "(see the 'load' column and `preemptions_per_s` in the JSON)."
        )
    return "\n".join(lines)


def steps_table(rows: list[dict[str, Any]]) -> str:
    """Step times per case; switch rows also as a ratio to the same case without the switch."""
    base = {(r["stage"], r["size"], r["batch"]): r for r in rows if r["switch"] is None}
    out = [
        "| stage | module | variant | crop | batch | step ms (median) | min–max | loop ms | "
        "img/s | GFLOP/step | GFLOP/s | matmul GFLOP/s | ÷ matmul | peak GB | load | ÷ base |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        variant = r.get("variant", r["switch"])
        if r.get("compile") and r.get("warmup_ms"):
            variant += f" (warm-up {sum(r['warmup_ms']) / 1000:.0f} s)"
        lead = (
            f"| {r['stage']} | {r.get('module', '–')} | {variant} | {r['size']}² | {r['batch']} |"
        )
        if "error" in r or "skipped" in r:
            why = r.get("error") or f"skipped: {r['skipped']}"
            out.append(f"{lead} {why} |" + " |" * 10)
            continue
        ref = base.get((r["stage"], r["size"], r["batch"]), {})
        ratio = r["ms"] / ref["ms"] if r["switch"] and ref.get("ms") else None
        out.append(
            f"{lead} {_fmt(r['ms'])} | "
            f"{_fmt(r['ms_min'], '.0f')}–{_fmt(r['ms_max'], '.0f')} | {_fmt(r['loop_ms'])} | "
            f"{_fmt(r['images_per_s'])} | {_fmt(r.get('gflop_per_step'))} | "
            f"{_fmt(r.get('gflops'), '.0f')} | {_fmt(r.get('matmul_gflops'), '.0f')} | "
            f"{_fmt(100 * r.get('floor_ratio', float('nan')), '.0f')} % | "
            f"{_fmt(r['peak_mem_gb'], '.2f')} | "
            f"{_fmt(r['load_average_1min'])} | {_fmt(ratio, '.2f')} |"
        )
    return "\n".join(out)


def ranges_table(rows: list[dict[str, Any]]) -> str:
    """Milliseconds per profiled step of each range the modules opened (share of the step),
    and per validation batch; ranges no row has are named below the table."""
    rows = [r for r in rows if r.get("profiled_steps")]
    if not rows:
        return "No step was profiled."
    train = [n for n in RANGES if any(n in r["ranges_ms"] for r in rows)]
    val = [n for n in RANGES if any(n in r["val_ranges_ms"] for r in rows)]
    heads = [*train, "outside ranges", "val batch", *(f"{n} (val)" for n in val)]
    out = [
        "| stage | variant | crop | batch | step ms | " + " | ".join(heads) + " |",
        "|---|---|---:|---:|---:|" + "---:|" * len(heads),
    ]
    for r in rows:
        step = r["profiled_step_ms"]
        cells = [r["ranges_ms"].get(n) for n in train] + [r["outside_ranges_ms"]]
        shown = [
            "–" if ms is None else f"{_fmt(ms)} ({_fmt(100 * ms / step, '.0f')}%)" for ms in cells
        ]
        shown.append(_fmt(r["val_batch_ms"]))
        shown += [_fmt(r["val_ranges_ms"].get(n)) for n in val]
        out.append(
            f"| {r['stage']} | {r['variant']} | {r['size']}² | {r['batch']} | {_fmt(step)} | "
            + " | ".join(shown)
            + " |"
        )
    absent = [n for n in RANGES if n not in train and n not in val]
    if absent:
        out.append(f"\nRanges no module opened here: {', '.join(absent)}.")
    return "\n".join(out)


def infer_table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| case | image | path | ms / image | ms / MP | GFLOP/s | matmul GFLOP/s | ÷ matmul "
        "| peak RSS GB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['case']} | {r['image']} | {r['path']} | {r['ms']:.0f} | {r['ms_per_mp']:.0f} | "
            f"{r['gflops']:.0f} | {r['matmul_gflops']:.0f} | {100 * r['ratio']:.0f} % | "
            f"{r['peak_rss_gb']:.2f} |"
        )
    return "\n".join(out)


def blur_table(rows: list[dict[str, Any]]) -> str:
    out = ["| operation (CPU) | median ms |", "|---|---:|"]
    return "\n".join(out + [f"| {r['operation']} | {r['ms']:.1f} |" for r in rows])


def data_table(rows: list[dict[str, Any]]) -> str:
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


def feed_table(rows: list[dict[str, Any]]) -> str:
    """Step time, the wait for the next batch and the CPU time of making one, per data config."""
    out = [
        "| data | crop | batch | workers | step ms | wait ms (share) | data CPU ms / batch "
        "(÷ step) | first epoch | matmul GFLOP/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lead = f"| {r['data']} | {r.get('crop', '–')} | {r.get('batch', '–')} | "
        lead += f"{r.get('workers', '–')} |"
        if "error" in r:
            out.append(f"{lead} {r['error']} | | | | |")
            continue
        out.append(
            f"{lead} {_fmt(r['ms'], '.0f')} | {_fmt(r['wait_ms'], '.0f')} "
            f"({_fmt(100 * r['wait_share'], '.0f')} %) | {_fmt(r['data_cpu_ms'], '.0f')} "
            f"({_fmt(100 * r['data_cpu_share'], '.0f')} %) | "
            f"{_fmt(r['data_cpu_first_epoch_ms'], '.0f')} | {_fmt(r['matmul_gflops'], '.0f')} |"
        )
    return "\n".join(out)
