"""Every command-line tool answers ``--help`` without importing torch, with a help text for every
option and no ``(default: None)``; the training app's help names the schemes and its groups.

Start-up time itself is measured by ``scripts/bench_cli.py``, not here: what is tested is the
cause of a slow start, torch or Lightning imported before the arguments are parsed.
"""

from __future__ import annotations

import argparse
import importlib
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from realblur_gan.training.config import CONFIG_DIR

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "scripts" / "experiment.py"
DATA_TOOLS = sorted(p.stem for p in (ROOT / "data_tools").glob("*.py") if p.stem[0] != "_")
MODULES = [
    "realblur_gan",
    "realblur_gan.predict",
    "realblur_gan.evaluate",
    "realblur_gan.export",
    "realblur_gan.blind",
    *(f"data_tools.{name}" for name in DATA_TOOLS),
]
HEAVY = ("torch", "lightning", "torchvision")
# The training config groups a user picks from; `stage` is the schemes' building block.
USER_GROUPS = ("data", "model", "loss", "optim", "trainer", "logger", "paths")


def _help_run(target: str) -> subprocess.CompletedProcess[str]:
    """``--help`` of a module (or the experiment script) in a fresh interpreter; it prints the
    heavy modules imported by then on its last line."""
    run = (
        f"runpy.run_path({str(EXPERIMENT)!r}, run_name='__main__')"
        if target == "experiment"
        else f"runpy.run_module({target!r}, run_name='__main__', alter_sys=True)"
    )
    code = (
        "import runpy, sys\n"
        f"sys.argv = [{target!r}, '--help']\n"
        f"try:\n    {run}\nexcept SystemExit as exit:\n    assert exit.code in (0, None)\n"
        f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("target", [*MODULES, "experiment"])
def test_help_answers_without_importing_torch(target: str) -> None:
    done = _help_run(target)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "HEAVY []"
    assert "usage" in done.stdout.lower() or "Usage" in done.stdout
    assert "(default: None)" not in done.stdout and "(default: False)" not in done.stdout


class _Parsed(Exception):
    """Raised instead of parsing: carries the parser a tool's main() built."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__()
        self.parser = parser


def _parser_of(main, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    def capture(self: argparse.ArgumentParser, *args, **kwargs):
        raise _Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_intermixed_args", capture)
    with pytest.raises(_Parsed) as caught:
        main([])
    return caught.value.parser


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _parsers(sub)
    return found


def _mains() -> dict[str, object]:
    mains = {
        name: importlib.import_module(f"realblur_gan.{name}").main
        for name in ("predict", "evaluate", "export")
    }
    mains["blind"] = importlib.import_module("realblur_gan.blind.cli").main
    for name in DATA_TOOLS:
        mains[f"data_tools.{name}"] = importlib.import_module(f"data_tools.{name}").main
    experiment = runpy.run_path(str(EXPERIMENT))  # a script, not a module
    mains["experiment"] = experiment["main"]
    return mains


@pytest.mark.parametrize("tool", ["predict", "evaluate", "export", "blind", "experiment"])
def test_every_option_has_a_help_text(tool: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _every_option_has_help(_mains()[tool], monkeypatch)


@pytest.mark.parametrize("tool", DATA_TOOLS)
def test_every_data_tool_option_has_a_help_text(tool: str, monkeypatch) -> None:
    _every_option_has_help(_mains()[f"data_tools.{tool}"], monkeypatch)


def _every_option_has_help(main, monkeypatch: pytest.MonkeyPatch) -> None:
    for parser in _parsers(_parser_of(main, monkeypatch)):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            assert action.help, f"{parser.prog}: {action.option_strings or action.dest} has no help"
        text = parser.format_help()
        assert "(default: None)" not in text and "(default: False)" not in text, parser.prog


def test_training_help_names_the_schemes_the_plus_and_every_user_choice() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "realblur_gan", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith("realblur-train") and "__main__" not in text
    for scheme in sorted(p.stem for p in (CONFIG_DIR / "scheme").glob("*.yaml")):
        assert f"+scheme={scheme}" in text
    assert "with a plus" in text and "+KEY=VALUE" in text
    # A group's line: two spaces, its name, a gap, its options (continued on indented lines).
    groups = dict(re.findall(r"^  (\w+) {2,}(.+(?:\n {4,}\S.*)*)", text, flags=re.M))
    for group in USER_GROUPS:
        for option in sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml")):
            assert re.search(rf"\b{option}\b", groups[group]), f"{group}={option} not in help"
    # The stages are not a choice a user makes: no `stage` group, none of its options.
    stages = [p.stem for p in (CONFIG_DIR / "stage").glob("*.yaml")]
    assert "pretrain_bgan" in stages and "pretrain_bgan" not in text
    assert "stage" not in groups and set(USER_GROUPS) <= set(groups)
