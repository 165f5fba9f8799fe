"""How every command-line tool formats its ``--help``.

argparse's :class:`~argparse.ArgumentDefaultsHelpFormatter` appends ``(default: None)`` to
required options and ``(default: False)`` to switches, which says nothing; this formatter shows
a default only where there is a value to show, and keeps the line breaks of the description and
of the examples in the epilog.
"""

from __future__ import annotations

import argparse

__all__ = ["HelpFormatter"]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends ``(default: X)`` to an option's help when X is a real value.

    Left out for required options, for defaults of None, False or an empty string or list, and
    where the help already names its default.

    Example:
        >>> parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
        >>> _ = parser.add_argument("--out", required=True, help="output folder")
        >>> _ = parser.add_argument("--tile", type=int, default=512, help="tile side")
        >>> "(default: None)" in parser.format_help(), "(default: 512)" in parser.format_help()
        (False, True)
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        empty = default is None or default is False or default is argparse.SUPPRESS
        empty = empty or (isinstance(default, str | list | tuple) and not default)
        optional = bool(action.option_strings) or action.nargs in (argparse.OPTIONAL, "*")
        if "%(default)" in text or empty or action.required or not optional:
            return text
        return f"{text} (default: %(default)s)"
