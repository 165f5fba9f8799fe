"""Benchmark realblur-gan: training steps per stage and profiler range against the matmul
floor, speed switches, inference, blur synthesis, data loading, the data side of a step.

Run it as ``python scripts/bench.py`` (or ``python scripts/bench``); ``--help`` lists the
options. Parts (``--parts``, comma-separated; default all):

- ``train``: every stage of the shipped schemes, built by
``realblur_gan.training.runner.build_stage``
  from the composed Hydra config exactly as a training run builds it, and trained by a Lightning
  ``Trainer`` made from the stage's own trainer settings over in-memory random batches. The
  median step comes from steps run without the profiler; the steps after them, and the
  validation batches after those, run under ``torch.profiler``, which attributes their time to
  the ranges the modules open (:data:`bench.ranges.RANGES`, whichever of them appear).
- ``switches``: the DeblurGAN stage again with ``trainer.precision=bf16-mixed``,
  ``perf.channels_last=false`` (channels-last is the default) and ``perf.compile=true``, each
  typed as a Hydra override.
- ``infer``, ``blur``, ``data``: the sibling scripts ``bench_predict.py``, ``bench_blur.py``
  and ``bench_data.py``, run with this command's sizes.
- ``feed``: the data side of a DeblurGAN step on its real datamodule (the demo; ``data=folders``
  over generated 4000x3000 photos): the wait for each batch and the CPU time of making one, as
  shares of the step (:mod:`bench.feed`).

Every train row also has the FLOPs of one step (``torch.utils.flop_counter``, forward, backward
and optimiser steps) and their rate next to a float32 matmul's timed around the case
(``gflop_per_step``, ``gflops``, ``matmul_gflops``, ``floor_ratio``; :mod:`bench.floor`).

JSON (``--json``): ``{"meta": {...}, "rows": [...]}``. A ``train``/``switches`` row has

- what ran: ``part``, ``stage``, ``scheme``, ``module`` (the class ``build_stage`` made),
  ``target`` (the stage config's ``_target_``), ``nets`` (the nets ``build_stage`` recorded),
  ``variant``, ``switch``, ``precision``, ``channels_last``, ``compile``, ``size``, ``batch``,
  ``device``;
- times: ``ms``/``ms_min``/``ms_max`` over ``n`` measured steps (after ``warmup_ms``),
  ``loop_ms`` (Lightning between batches), ``images_per_s``, ``peak_mem_gb``,
  ``mem_at_start_gb``, ``load_average_1min``, ``preemptions_per_s``;
- the profile: ``profiled_steps``, ``profiled_step_ms``, ``ranges_ms`` (ms per step of each
  range found in the training steps), ``ranges_device_ms`` (their GPU kernel time, CUDA only),
  ``outside_ranges_ms`` (the rest of the step: generator forwards, logging, Lightning),
  ``val_batches``, ``val_batch_ms``, ``val_ranges_ms`` (ms per validation batch),
  ``ranges_absent``, ``scalar_reads_per_step`` (device syncs on a GPU), ``top_ops_ms``;
- or ``error`` (the case failed) or ``skipped`` (why it did not run).
"""

import os

# Before torch starts its thread pool and profiler: busy-waiting OpenMP threads slow small steps
# by up to 10x on a shared CPU, and Kineto prints start/stop lines (and a "no GPU" error on a
# CPU-only machine) for every profile. Both stay overridable from the environment.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("KINETO_LOG_LEVEL", "6")
