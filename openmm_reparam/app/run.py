"""``openmm-reparam run [--method M] [--option KEY=VALUE ...] [--quiet] SCRIPT.py [ARGS...]`` (or
``python -m openmm_reparam run ...``: the same command).

Runs an unmodified OpenMM script as ``__main__`` (``sys.argv`` = ``[SCRIPT.py, ARGS...]``, the script's folder
first on ``sys.path``, as ``python SCRIPT.py ARGS...`` would) under :func:`~openmm_reparam.app.patch.patch`: its
``Simulation.minimizeEnergy`` and ``LocalEnergyMinimizer.minimize`` calls go to openmm-reparam, each printing a
one-line summary on stderr. Options: ``$OPENMM_REPARAM_OPTIONS``, then ``--method`` and ``--option``. The exit
status is the script's; 2 for a usage error (no such script, a bad option), reported before the script starts.
"""
from __future__ import annotations

import argparse
import os
import runpy
import sys
from typing import Any, Dict, Optional, Sequence

from .patch import PatchError, option_value, patch

PROG = "openmm-reparam run"
HELP = "run an OpenMM script with its energy minimizations done by openmm-reparam"


def build_parser() -> argparse.ArgumentParser:
    """The ``run`` argument parser: our options, then the script and everything after it, untouched."""
    parser = argparse.ArgumentParser(prog=PROG, description=HELP[:1].upper() + HELP[1:] + ".")
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``run`` arguments on ``parser`` (this module's own parser, or the ``openmm-reparam`` subcommand's)."""
    parser.add_argument("--method", help="minimizer method (default: $OPENMM_REPARAM_OPTIONS, else auto)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a minimizer option (repeatable), e.g. never_worse=true")
    parser.add_argument("--quiet", action="store_true", help="no summary line per minimization")
    parser.add_argument("script", help="the Python script to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")


def run_options(args: argparse.Namespace) -> Dict[str, Any]:
    """``--method`` and ``--option KEY=VALUE`` as minimizer keywords."""
    options: Dict[str, Any] = {}
    if args.method:
        options["method"] = args.method
    for item in args.option:
        key, separator, value = item.partition("=")
        if not separator or not key.strip():
            raise PatchError(f"--option needs KEY=VALUE, got {item!r}")
        options[key.strip().replace("-", "_")] = option_value(value.strip())
    return options


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the script under the patch; returns its exit status."""
    args = build_parser().parse_args(argv)
    script = os.path.abspath(args.script)
    if not os.path.isfile(script):
        print(f"{PROG}: error: no such script: {args.script}", file=sys.stderr)
        return 2
    try:
        handle = patch(quiet=args.quiet, **run_options(args))
    except PatchError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [args.script, *args.args]
    sys.path.insert(0, os.path.dirname(script))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exit_:
        return _exit_status(exit_.code)
    finally:
        handle.close()
        sys.argv, sys.path[:] = saved_argv, saved_path
    return 0


def _exit_status(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


__all__ = ["main", "build_parser", "add_arguments", "run_options", "PROG", "HELP"]
