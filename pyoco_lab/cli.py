"""The ``pyoco-lab`` command.

Every subcommand lives in its own module under :mod:`pyoco_lab.commands` and exposes
``register(subparsers)``; this file only discovers and dispatches them, so the CLI stays a thin
face over the library functions.

Errors a user can fix (bad input, a missing or malformed file, a folder that cannot be written)
are printed as one line naming the problem -- and the file, when there is one -- and the fix,
with exit status 2. ``pyoco-lab --debug COMMAND ...`` shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import pkgutil
import shlex
import sys

from pyoco_lab import __version__, commands

# Where each command writes, for the fix of an error writing there.
_WRITABLE = {
    "train": "choose a writable --out (or set PYOCO_RUNS)",
    "data": "choose a writable --root (or set PYOCO_DATA)",
    "reproduce": "choose writable --figures and --cache folders",
    "evaluate": "the run folder must be writable (results go to RUN/eval.json)",
}
_FULL_DISK = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
COMMAND_DEST = "pyoco_lab_command"  # where the parser puts the subcommand's name


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyoco-lab",
        description="PYoCo Lab: video noise priors for diffusion models (Ge et al., 2023).",
    )
    parser.add_argument("--version", action="version", version=f"pyoco-lab {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an error instead of one line (put it before the command)",
    )
    # A dest no subcommand's option can take (`pretrained export --command TEXT` once overwrote "command").
    subparsers = parser.add_subparsers(dest=COMMAND_DEST, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


def describe_error(error: BaseException, command: str | None = None) -> str | None:
    """One line for an error the user can fix (naming its file and the fix), else None (a bug)."""
    if isinstance(error, json.JSONDecodeError):  # a reader that did not name its file
        return f"a file is not valid JSON ({error}); rerun as `pyoco-lab --debug ...` to see which"
    if isinstance(error, (ValueError, FileNotFoundError)):
        return str(error)  # the library's messages name the problem and the fix
    if isinstance(error, OSError):
        name = error.filename if error.filename is not None else error.filename2
        reason = error.strerror or str(error)
        if name is None:
            return f"{reason} (`pyoco-lab --debug ...` shows where)"
        where = _WRITABLE.get(command or "", "choose a writable location")
        if error.errno == errno.EROFS:
            return f"cannot write {name}: {reason}; {where}"
        if error.errno in _FULL_DISK:
            return f"cannot write {name}: {reason}; free some space there, or {where}"
        if error.errno in (errno.EACCES, errno.EPERM):
            return f"cannot access {name}: {reason}; check its permissions, or {where}"
        return f"{name}: {reason}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # What a result records as the command that made it (the run history, curves): this very invocation.
    args.command_line = "pyoco-lab " + shlex.join(sys.argv[1:] if argv is None else argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        command = getattr(args, COMMAND_DEST)
        message = None if args.debug else describe_error(error, command)
        if message is None:
            raise
        # Bad input: one clear line naming the problem and the fix, no traceback.
        one_line = " ".join(line.strip() for line in message.splitlines() if line.strip())
        print(f"pyoco-lab {command}: error: {one_line}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
