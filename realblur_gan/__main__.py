"""``python -m realblur_gan +scheme=<joint|separate> [overrides]``: train a scheme."""

from __future__ import annotations

import logging
import re
import shlex
import sys
import warnings

import hydra
from omegaconf import DictConfig

from realblur_gan.training.config import CONFIG_DIR, available_schemes

log = logging.getLogger(__name__)


def _user_error(err: BaseException) -> BaseException | None:
    """The first :class:`~realblur_gan.errors.UserError` in ``err``'s cause chain, or None.

    Those carry one-line messages naming the file or key and the fix; Hydra wraps errors raised
    while building objects, so the chain is searched. Decided by type alone: any other
    exception, wherever it was raised, is a bug and keeps its traceback.
    """
    from realblur_gan.errors import UserError

    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, UserError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def _hydra_entry(cfg: DictConfig) -> float | None:
    from realblur_gan.errors import debug_requested, error_text
    from realblur_gan.threads import use_available_cpus
    from realblur_gan.training.config import validate_config

    use_available_cpus()  # here, not before Hydra: `--help` must not wait for torch

    try:
        if "stages" not in cfg:
            from realblur_gan.training.runner import NoSchemeError

            raise NoSchemeError()
        validate_config(cfg)  # before importing Lightning (seconds): a bad number fails at once
        from realblur_gan.training.runner import format_summary, train_checked

        result = train_checked(cfg)
    except Exception as err:
        problem = _user_error(err)
        if problem is None or debug_requested():
            raise
        # The whole message: lists of bad files follow the first line, indented.
        print(error_text(problem), file=sys.stderr)
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
        if arg.startswith(("+scheme=", "++scheme=", "+experiment=", "++experiment=")):
            return None  # an experiment file names its scheme
    return f"error: no training scheme chosen; run python -m realblur_gan {choices}"


def _length_problem(argv: list[str]) -> str | None:
    """One line for a global stage length (``trainer.max_epochs=3``): each stage owns its own,
    and Hydra's own report ("not in struct, use +") would suggest the wrong fix."""
    from realblur_gan.training.config import STAGE_LENGTH_KEYS, scheme_stages

    scheme = next((a.split("=", 1)[1] for a in argv if a.startswith(("+scheme=", "++scheme="))), "")
    for arg in argv:
        key, sep, value = arg.partition("=")
        length = key.lstrip("+").removeprefix("trainer.")
        if sep and key.lstrip("+").startswith("trainer.") and length in STAGE_LENGTH_KEYS:
            stages = scheme_stages(scheme) or ["<stage>"]
            fix = " ".join(f"stages.{name}.trainer.{length}={value}" for name in stages)
            return f"error: {arg}: each stage sets its own length; type {fix}"
    return None


# Hydra's own options that take a value: the value is not an override.
_VALUE_OPTIONS = frozenset(
    {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn"}
    | {"--config-dir", "-cd", "--experimental-rerun", "--info"}
)


def _hydra_quoted(value: str) -> str:
    """``value`` as a single-quoted Hydra string.

    Hydra's escapes inside quotes: ``\\'`` for a quote, backslashes doubled only where they
    precede a quote or the closing one, ``\\${`` to keep ``${`` from interpolating.
    """
    text = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)
    text = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text)
    return "'" + text.replace("${", "\\${") + "'"


def _shell_quoted(arg: str) -> str:
    """How to type ``arg`` in a POSIX shell: in double quotes when that needs no escapes."""
    return f'"{arg}"' if not set(arg) & set('"$`\\!') else shlex.quote(arg)


def _override_problem(argv: list[str]) -> str | None:
    """One line for an override Hydra cannot parse (a path with ``( ) [ ] = '`` or a comma),
    saying how to quote it; Hydra's own report is a grammar error with no fix."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep

    parser = OverridesParser.create()
    multirun = any(a in ("-m", "--multirun") for a in argv)
    skip = False
    for arg in argv:
        if skip or arg.startswith("-"):
            skip = arg in _VALUE_OPTIONS
            continue
        key, sep, value = arg.partition("=")
        if not sep:
            continue
        try:
            (override,) = parser.parse_overrides([arg])
            if multirun or not isinstance(override.value(), ChoiceSweep):
                continue
            reason = "a comma makes it a sweep"
        except Exception as err:
            reason = " ".join(str(err).split("See https")[0].split())[:80]
        fix = _shell_quoted(f"{key}={_hydra_quoted(value)}")
        return f"error: cannot parse the override {arg!r} ({reason}); quote the value: {fix}"
    return None


def main() -> None:
    """Console entry point (``realblur-train``)."""
    # Lightning 2.6 calls a torch pytree API that torch 2.14 deprecates, once per fit: noise.
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    argv = sys.argv[1:]
    problem = _scheme_problem(argv) or _length_problem(argv) or _override_problem(argv)
    if problem:
        print(problem, file=sys.stderr)
        raise SystemExit(2)
    _hydra_entry()


if __name__ == "__main__":
    main()
