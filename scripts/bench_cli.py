"""Start-up time of every command-line tool: wall seconds of ``--help``, median of a few runs.

``--help`` does nothing but import the tool and parse its arguments, so its time is what every
run of the tool pays before any work starts (a rerun that skips every finished file pays only
this). Each command runs in a fresh process with the checkout as its working directory, so
``--repo`` can time an older checkout with the same interpreter: the console scripts are called
through their ``module:function`` entry in that checkout's ``pyproject.toml``.

Usage::

    python scripts/bench_cli.py [--repeats 3] [--repo PATH] [--python PATH] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The module CLIs the README documents, besides the console scripts of pyproject.toml.
MODULES = (
    "realblur_gan",
    "realblur_gan.predict",
    "realblur_gan.evaluate",
    "realblur_gan.export",
    "realblur_gan.blind",
)


def commands(repo: Path, python: str) -> list[tuple[str, list[str]]]:
    """``(label, argv)`` of every CLI of the checkout at ``repo``, each asking for ``--help``."""
    scripts = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["scripts"]
    found = []
    for name, target in scripts.items():
        module, function = target.split(":")
        code = f"import sys; sys.argv[0] = {name!r}; from {module} import {function} as f; f()"
        found.append((name, [python, "-c", code, "--help"]))
    data_tools = sorted(
        f"data_tools.{p.stem}" for p in (repo / "data_tools").glob("*.py") if p.stem[0] != "_"
    )
    for module in (*MODULES, *data_tools):
        found.append((f"python -m {module}", [python, "-m", module, "--help"]))
    found.append(("scripts/experiment.py", [python, "scripts/experiment.py", "--help"]))
    found.append(("import realblur_gan", [python, "-c", "import realblur_gan"]))
    return found


def time_command(argv: list[str], cwd: Path, repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` runs of ``argv``; raises if one fails."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONDONTWRITEBYTECODE": "0"}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-500:]}")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per command (median shown)")
    parser.add_argument(
        "--repo", type=Path, default=ROOT, help="checkout to time (default: this one)"
    )
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter (default: the running one)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    rows = []
    print("| command | median s | min s | max s |")
    print("|---|---:|---:|---:|")
    for label, command in commands(repo, args.python):
        # One unmeasured run first: it compiles the bytecode cache and warms the file cache.
        time_command(command, repo, 1)
        times = time_command(command, repo, args.repeats)
        row = {"command": label, "median_s": statistics.median(times), "times_s": times}
        rows.append(row)
        print(f"| {label} | {row['median_s']:.2f} | {min(times):.2f} | {max(times):.2f} |")
    if args.json is not None:
        args.json.write_text(json.dumps({"repo": str(repo), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
