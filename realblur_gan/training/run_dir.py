"""A run dir of its own for every training launch: a Hydra callback (``conf/hydra/default.yaml``).

Hydra names the run dir after the second the run started and creates it with ``exist_ok``, so
two launches in the same second would share one folder: both write ``.hydra/``, the log and
the checkpoints there. :class:`ClaimRunDir` runs before Hydra touches the folder and creates it
itself, atomically (:func:`realblur_gan.ownership.new_folder`): a launch that finds its name
taken gets ``<name>_2``. A folder named on the command line (``hydra.run.dir=...``) is used as
given; the training run then locks it (:func:`realblur_gan.ownership.claim_folder`), so a second
live writer is refused. A folder that cannot be written stops the launch with one ``error:``
line instead of Hydra's traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

from realblur_gan.errors import UserError, writable_dir
from realblur_gan.ownership import new_folder


def _typed(config: DictConfig, key: str) -> bool:
    """Whether ``key`` (e.g. ``hydra.run.dir``) was set on the command line."""
    overrides = config.hydra.overrides.get("hydra") or []
    return any(str(o).lstrip("+").split("=", 1)[0] == key for o in overrides)


def _quoted(value: str) -> str:
    """``value`` as a single-quoted Hydra override value."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ClaimRunDir(Callback):
    """Create the run (or sweep) dir before Hydra does: unique when named by default, checked
    writable either way."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._claim(config, "run")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._claim(config, "sweep")

    @staticmethod
    def _claim(config: DictConfig, mode: str) -> None:
        key = f"hydra.{mode}.dir"
        folder = Path(str(config.hydra[mode].dir))
        try:
            if not _typed(config, key):
                folder = new_folder(folder)
            writable_dir(folder, key)
        except (OSError, UserError) as err:
            reason = (
                str(err)
                if isinstance(err, UserError)
                else (
                    f"{key} {folder}: cannot create it ({err.strerror or err}); pass a writable "
                    f"folder as {key}=..."
                )
            )
            # Before Hydra's job starts, so not through the task's error handling: one line here.
            print(f"error: {reason}", file=sys.stderr)
            raise SystemExit(1) from None
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra[mode].dir = str(folder)
            if mode == "sweep":
                # The launcher composes each job's config again from the overrides.
                config.hydra.overrides.hydra.append(f"{key}={_quoted(str(folder))}")
