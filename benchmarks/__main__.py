"""Command line: ``python -m benchmarks COMMAND [ARGS ...]``; ``python -m benchmarks COMMAND --help`` for a
command's arguments.

Examples::

    python -m benchmarks run everyday --quick --methods adam,lbfgs --out /tmp/everyday   # the tiny case only
    python -m benchmarks run refold --systems 5AWL,2JOF --seeds 5 --budget 60 --out benchmarks/out
    python -m benchmarks report benchmarks/out refold
    python -m benchmarks run external --cases tiny --out /tmp/ext     # openmmtools test systems, side by side
    python -m benchmarks step-cost --cases bbl,bbl_pad25 --steps 40 --rounds 3 --json benchmarks/out/step_cost.json
    python -m benchmarks first-run --methods gnn,adam --engines cpp,python
    python -m benchmarks startup --repeats 5
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

#: Subcommand -> (module of benchmarks/ whose ``main(argv)`` runs it, one-line help).
COMMANDS = {
    "run": ("run", "run a benchmark {loop,refold,relax,everyday,external,hard} and write JSON, RESULTS.md and "
                   "PNG plots"),
    "report": ("report", "rewrite RESULTS.md and plots from stored JSON"),
    "make-starts": ("proteins", "generate the stored native/unfolded protein PDBs"),
    "sweep": ("sweep", "small hyper-parameter sweep for gnn and linear"),
    "step-cost": ("step_cost", "a reparametrized step against a coordinate step, and the set-up, on solvated cases"),
    "overhead": ("overhead", "per-step overhead: compiled engine vs Python engine vs one bare force evaluation"),
    "throughput": ("throughput", "structures per hour of batch minimization and relax"),
    "first-run": ("first_run", "the first minimize call of a new process against the second"),
    "precon-engines": ("precon_engines", "method precon on small molecules: Python vs compiled iteration vs OpenMM's "
                       "L-BFGS, and a profile of one minimize call"),
    "stiffness": ("minimum_stiffness", "whether each method returns a true minimum, and how sharp it is"),
    "same-path": ("same_path", "print the same minimizations exactly, to compare two checkouts' code paths"),
    "default-runs": ("default_runs", "the default alone on named cases, repeatable exactly: two checkouts "
                     "side by side, run by run"),
    "compare": ("compare", "method variants side by side with LEM on named cases (what auto's rules came from)"),
    "device-timing": ("device_timing", "the default against LEM on a GPU platform (device_check.sh's timing step)"),
    "device-parity": ("device_parity", "every method on a device platform against the host stages and the CPU "
                      "platform"),
    "fuzz": ("fuzz", "seeded mutations of the shipped structure files through openmm-reparam minimize: exit 0 with "
             "a valid structure or exit 2 with one line, never a traceback or a hang"),
    "lbfgs-reporter": ("lbfgs_reporter", "OpenMM's L-BFGS with no reporter, the plugin's C++ stop reporter and a "
                       "Python reporter"),
    "boxes": ("boxes", "flexible water, dipolar fluids, Drude and AMOEBA water boxes: LEM against the default and "
              "precon variants, force evaluations counted"),
    "startup": ("startup", "fresh processes: import openmm_reparam, import openmm alone, openmm-reparam --help and "
                "--version, the first minimize(method=\"precon\") call"),
}


def main(argv: Optional[List[str]] = None) -> int:
    """Dispatch ``argv`` (default ``sys.argv[1:]``) to the subcommand's module; returns its exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, text) in COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)  # the module's own parser reads the rest, --help too
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    module = importlib.import_module(f"{__package__ or 'benchmarks'}.{COMMANDS[args.command][0]}")
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
