"""``python -m realblur_gan +scheme=<joint|separate> [overrides]``: train a scheme."""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from realblur_gan.config import CONFIG_DIR, available_schemes, register_resolvers

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def _hydra_entry(cfg: DictConfig) -> float | None:
    from realblur_gan.train import format_summary, run

    result = run(cfg)
    print(format_summary(result), flush=True)
    # Returned for Hydra sweepers (e.g. Optuna) that optimise a number.
    return result.metrics.get("val/psnr")


def _scheme_problem(argv: list[str]) -> str | None:
    """One-line complaint when no scheme is chosen (checked before Hydra makes a run dir)."""
    if any(a in {"-h", "--help", "--hydra-help", "--info"} or a.startswith("--cfg") for a in argv):
        return None
    names = available_schemes()
    choices = " or ".join(f"+scheme={n}" for n in names)
    for arg in argv:
        if arg.startswith("scheme="):
            return f"error: write '+{arg}' (with a plus): scheme is chosen, not overridden"
        if arg.startswith(("+scheme=", "++scheme=")) or arg.startswith("stage_order="):
            return None
    return f"error: no training scheme chosen; run python -m realblur_gan {choices}"


def main() -> None:
    """Console entry point (``realblur-train``)."""
    register_resolvers()
    problem = _scheme_problem(sys.argv[1:])
    if problem:
        print(problem, file=sys.stderr)
        raise SystemExit(2)
    _hydra_entry()


if __name__ == "__main__":
    main()
