"""The generalisation benchmark in one command: a deblurrer on blur and content it never saw.

    python scripts/bench_generalise.py                        # the packaged model
    python scripts/bench_generalise.py --checkpoint run/checkpoints/joint/last.ckpt
    python scripts/bench_generalise.py --data path/to/data --parts gopro,synthetic --limit 5

Parts (see :mod:`realblur_gan.evaluation.generalisation`): real GoPro blur of unseen scenes (whole
1280x720 frames), synthetic camera blur (5-65 px) of held-out photos (CBSD68) at native size, and
real blurry photos without ground truth (a no-reference blur score, and a grid of crops:
input | model | blind MAP). Prints one table, writes ``OUT/metrics.csv`` (per image),
``OUT/summary.json``, ``OUT/table.md`` and ``OUT/grid.png``. ``--data`` is a folder laid out as
the project's shared data (``gopro_pairs_other_scenes/``, ``natural/CBSD68/``, ``real_blur/``);
it defaults to ``$REALBLUR_GAN_BENCH_DATA``, else ``../shared/data`` beside the repository.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Five photos of ../shared/data/real_blur whose blur differs in size and kind.
GRID = (
    "lai2016_real_even/butchershop",
    "lai2016_real_even/boy_statue",
    "lai2016_real_even/text5",
    "lai2016_real_even/street4",
    "srn_testing_set/01",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--checkpoint",
        help="a .ckpt from training or an exported .safetensors (default: the packaged model)",
    )
    parser.add_argument(
        "--identity", action="store_true", help="score the blurry input itself (a sanity row)"
    )
    parser.add_argument(
        "--data",
        default=os.environ.get("REALBLUR_GAN_BENCH_DATA", str(REPO.parent / "shared" / "data")),
        help="folder with gopro_pairs_other_scenes/, natural/CBSD68/, real_blur/",
    )
    parser.add_argument("--out", default="outputs/generalise", help="output folder")
    parser.add_argument(
        "--parts", default="gopro,synthetic,real", help="comma-separated subset of the parts"
    )
    parser.add_argument("--limit", type=int, help="score only the first N images of each part")
    parser.add_argument("--self-ensemble", action="store_true", help="average the 8 flips")
    parser.add_argument("--tile", type=int, default=512, help="inference tile side (px)")
    parser.add_argument(
        "--grid", default=",".join(GRID), help="real photos in the grid (empty: no grid)"
    )
    parser.add_argument(
        "--map-iterations",
        type=int,
        default=2000,
        help="blind MAP's budget per grid crop (0: no MAP column); crops are cached in OUT",
    )
    parser.add_argument(
        "--no-ema", action="store_true", help="a .ckpt's raw weights, not its EMA copy"
    )
    parser.add_argument("--label", help="name of the model's column (default: from the file)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import logging

    from realblur_gan.errors import UserError, error_text
    from realblur_gan.evaluation.generalisation import BenchmarkData, format_table, run_benchmark
    from realblur_gan.inference.tiling import deblur_image
    from realblur_gan.weights.checkpoints import load_generator
    from realblur_gan.weights.model_zoo import packaged_model

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.identity:
            label = "identity"

            def restore(blurry):
                return blurry

        else:
            path = Path(args.checkpoint) if args.checkpoint else packaged_model()
            net = load_generator(path, ema=not args.no_ema)
            label = args.label or path.stem

            def restore(blurry):
                return deblur_image(net, blurry, args.tile, self_ensemble=args.self_ensemble)

        data = BenchmarkData.from_root(args.data)
        result = run_benchmark(
            restore,
            data,
            args.out,
            parts=[p for p in args.parts.split(",") if p],
            limit=args.limit,
            grid_names=[g for g in args.grid.split(",") if g],
            map_iterations=args.map_iterations or None,
        )
    except UserError as err:
        print(error_text(err), file=sys.stderr)
        return 1
    table = format_table(result.parts, label)
    Path(args.out, "table.md").write_text(table + "\n")
    print(table)
    if result.grid is not None:
        print(f"grid: {result.grid}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
