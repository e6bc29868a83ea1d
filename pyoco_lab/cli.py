"""The ``pyoco-lab`` command.

Every subcommand lives in its own module under :mod:`pyoco_lab.commands` and exposes
``register(subparsers)``; this file only discovers and dispatches them, so the CLI stays a thin
face over the library functions.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from pyoco_lab import __version__, commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyoco-lab",
        description="PYoCo Lab: video noise priors for diffusion models (Ge et al., 2023).",
    )
    parser.add_argument("--version", action="version", version=f"pyoco-lab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as error:
        # Bad input: one clear line naming the problem and the fix, no traceback.
        print(f"pyoco-lab {args.command}: error: {error}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
