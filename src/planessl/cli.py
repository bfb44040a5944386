"""The ``planessl`` command line: one subcommand per module in ``planessl.commands``.

Each command module defines ``register(subparsers)`` that adds its parser and sets
``func`` to a callable taking the parsed arguments and returning an exit status. Heavy
imports (torch, Lightning) happen inside those callables, so ``planessl --help`` is fast.
User errors (:class:`planessl.errors.PlaneSSLError`) print one line and exit with 2; output
piped into a reader that stops early (``| head``) ends quietly with status 141.
"""

from __future__ import annotations

import argparse
import importlib
import os
import stat
import sys
from typing import Sequence

from planessl import __version__
from planessl.errors import PlaneSSLError

#: Command modules under planessl.commands, in the order shown by --help.
COMMAND_MODULES = (
    "demo",
    "phantom",
    "ingest",
    "summary",
    "check",
    "lines",
    "pretrain",
    "finetune",
    "predict",
    "plan",
    "plan_calibrate",
    "evaluate",
    "experiment",
    "export",
    "export_dataset",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="planessl",
        description="Self-supervised learning on MR images acquired in anatomy-oriented planes.")
    parser.add_argument("--version", action="version", version=f"planessl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"planessl.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _dispatch(argv)
        finally:
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except BrokenPipeError:
        if not _stdout_is_pipe():
            raise  # not our output's reader: a real error elsewhere
        return _stdout_closed()


def _dispatch(argv: Sequence[str] | None) -> int:
    """Parse the arguments and run the command (user errors: one line, status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PlaneSSLError as exc:
        print(f"planessl: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("planessl: interrupted", file=sys.stderr)
        return 130


def _stdout_is_pipe() -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(sys.stdout.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


def _stdout_closed() -> int:
    """The reader of our output went away (``planessl summary CACHE | head``): end quietly.

    Python's documented recipe: point stdout at devnull so that the final flush at exit
    does not raise again, and exit like a process killed by SIGPIPE (128 + 13).
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141


if __name__ == "__main__":
    sys.exit(main())
