"""What ``data.validate_files=true`` costs at setup: the header check vs the full decode.

The setup check reads every training file once. Without validation only the headers are read
(``check_files(verify=False)``, which still finds empty, non-image and unreadable files);
``data.validate_files=true`` decodes every image in full with the reader training uses, which
also finds truncated and corrupt image data. This script times both over the first ``--limit``
images of a folder (default: the shared natural photos, else generated demo images), optionally
re-encoded as JPEG first (``--as-jpeg``, the usual format of photo collections). The first pass
over the files warms the page cache and is not timed.

Example::

    python scripts/bench_validate.py --limit 600
    python scripts/bench_validate.py --limit 600 --as-jpeg
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from PIL import Image

from realblur_gan.data.datamodule import check_files
from realblur_gan.data.demo import ensure_demo
from realblur_gan.data.io import list_images

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "natural"


def image_paths(folder: Path | None, limit: int) -> tuple[list[Path], str]:
    """The first ``limit`` images of ``folder`` (or of the shared photos, or of demo images)."""
    if folder is None and SHARED.is_dir():
        folder = SHARED
    if folder is None:
        folder = (
            ensure_demo(
                Path(tempfile.gettempdir()) / "realblur_bench", n_sharp=limit, n_real=2, n_val=2
            )
            / "sharp"
        )
    paths = list_images(folder)[:limit]
    return paths, folder.name


def as_jpeg(paths: list[Path], folder: Path) -> list[Path]:
    """Copies of ``paths`` as quality-90 JPEGs in ``folder``."""
    out = []
    for i, path in enumerate(paths):
        target = folder / f"{i:05d}.jpg"
        with Image.open(path) as image:
            image.convert("RGB").save(target, quality=90)
        out.append(target)
    return out


def timed(paths: list[Path], verify: bool) -> tuple[float, int]:
    start = time.perf_counter()
    sizes, bad = check_files(paths, verify=verify)
    return time.perf_counter() - start, len(sizes) + len(bad)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=None, help="images to check")
    parser.add_argument("--limit", type=int, default=600, help="how many images")
    parser.add_argument("--as-jpeg", action="store_true", help="re-encode them as JPEG first")
    args = parser.parse_args()
    paths, label = image_paths(args.folder, args.limit)
    with tempfile.TemporaryDirectory() as scratch:
        if args.as_jpeg:
            paths, label = as_jpeg(paths, Path(scratch)), f"{label} as JPEG q90"
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        pixels = 0
        for path in paths:
            with Image.open(path) as image:
                pixels += image.width * image.height
        timed(paths, verify=False)  # page cache
        print(f"{len(paths)} images of {label}: {megabytes:.1f} MB, {pixels / 1e6:.1f} Mpixel")
        print("| check | seconds | ms / image |")
        print("|---|---|---|")
        for name, verify in (("headers (validate_files=false)", False), ("full decode", True)):
            seconds, count = timed(paths, verify)
            print(f"| {name} | {seconds:.2f} | {1000 * seconds / count:.2f} |")


if __name__ == "__main__":
    main()
