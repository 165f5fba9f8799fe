"""``python -m realblur_gan +scheme=<joint|separate> [overrides]``: train a scheme."""

from __future__ import annotations

import logging
import sys
import warnings

import hydra
from omegaconf import DictConfig

from realblur_gan.config import CONFIG_DIR, available_schemes, register_resolvers

log = logging.getLogger(__name__)


def _user_error(err: BaseException) -> BaseException | None:
    """The first error in ``err``'s cause chain that is about the user's input or config.

    Those carry one-line messages naming the file and the fix; Hydra wraps errors raised while
    building objects, so the chain is searched. ValueErrors count only when raised by this
    package (a ValueError deep inside torch is a bug to report with its traceback).
    """
    from realblur_gan.checkpoints import CheckpointError
    from realblur_gan.data.io import ImageFolderError, ImageReadError
    from realblur_gan.pretrained import MissingPretrainedWeights

    user = (CheckpointError, ImageFolderError, ImageReadError, MissingPretrainedWeights)
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, (*user, FileNotFoundError)):
            return seen
        if isinstance(seen, ValueError):
            tb = seen.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            if tb is not None and "realblur_gan" in tb.tb_frame.f_code.co_filename:
                return seen
        seen = seen.__cause__ or seen.__context__
    return None


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def _hydra_entry(cfg: DictConfig) -> float | None:
    from realblur_gan.train import format_summary, run

    try:
        result = run(cfg)
    except Exception as err:
        problem = _user_error(err)
        if problem is None:
            raise
        print(f"error: {str(problem).strip().splitlines()[0]}", file=sys.stderr)
        raise SystemExit(1) from None
    if result.rank_zero:
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
    # Lightning 2.6 calls a torch pytree API that torch 2.14 deprecates, once per fit: noise.
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    register_resolvers()
    problem = _scheme_problem(sys.argv[1:])
    if problem:
        print(problem, file=sys.stderr)
        raise SystemExit(2)
    _hydra_entry()


if __name__ == "__main__":
    main()
