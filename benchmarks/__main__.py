"""Command line: ``python -m benchmarks run {loop,refold,relax} [...]``, ``report``, ``make-starts``, ``sweep``.

Examples::

    python -m benchmarks run loop --n 400 --methods gnn,linear,adam,lbfgs --seeds 3 --budget 60 --out benchmarks/out
    python -m benchmarks run refold --systems 5AWL,2JOF --seeds 5 --budget 60 --out benchmarks/out
    python -m benchmarks run relax --systems 5AWL,2JOF --seeds 3 --budget 30 --out benchmarks/out
    python -m benchmarks report benchmarks/out refold
    python -m benchmarks make-starts            # regenerate benchmarks/data (only needed once)
    python -m benchmarks sweep --out benchmarks/out/sweep --budget 20 --seeds 2

``--option key=value`` (repeatable) passes a minimizer option to every method, e.g. ``--option lr=0.003``.
"""
from __future__ import annotations

import argparse
import ast
import sys
from typing import Any, Dict, List

from . import loops, proteins, report, suites


def _parse_options(items: List[str]) -> Dict[str, Any]:
    options = {}
    for item in items or []:
        key, _, value = item.partition("=")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    return options


def _csv(text: str) -> List[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a benchmark and write JSON, RESULTS.md and PNG plots")
    run.add_argument("benchmark", choices=["loop", "refold", "relax"])
    run.add_argument("--methods", default="gnn,linear,adam,lbfgs")
    run.add_argument("--seeds", type=int, default=3, help="number of seeds (0, 1, ... N-1)")
    run.add_argument("--first-seed", type=int, default=0)
    run.add_argument("--budget", type=float, default=60.0, help="wall-time budget per method (s)")
    run.add_argument("--out", default="benchmarks/out")
    run.add_argument("--n", type=int, nargs="+", default=[400], help="loop sizes")
    run.add_argument("--variants", default="bond_lj,pure_lj", help="loop variants")
    run.add_argument("--systems", default="5AWL,2JOF", help="proteins for refold/relax")
    run.add_argument("--threads", type=int, default=1, help="CPU threads for OpenMM and torch")
    run.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--tag", default=None, help="label for runs with non-default options")

    rep = sub.add_parser("report", help="rewrite RESULTS.md and plots from stored JSON")
    rep.add_argument("out")
    rep.add_argument("benchmarks", nargs="*", default=["loop", "refold", "relax"])

    starts = sub.add_parser("make-starts", help="generate the stored native/unfolded protein PDBs")
    starts.add_argument("--systems", default=",".join(proteins.UNFOLD_THRESHOLD_ANGSTROM))
    starts.add_argument("--overwrite", action="store_true")
    starts.add_argument("--threads", type=int, default=1, help="CPU threads for the MD")

    sweep = sub.add_parser("sweep", help="small hyper-parameter sweep for gnn and linear")
    sweep.add_argument("--out", default="benchmarks/out/sweep")
    sweep.add_argument("--budget", type=float, default=20.0)
    sweep.add_argument("--seeds", type=int, default=2)
    sweep.add_argument("--threads", type=int, default=1)

    args = parser.parse_args(argv)
    if args.command == "run":
        common = dict(methods=_csv(args.methods), seeds=args.seeds, budget=args.budget, out_dir=args.out,
                      options=_parse_options(args.option), threads=args.threads, tag=args.tag,
                      first_seed=args.first_seed)
        if args.benchmark == "loop":
            for n in args.n:
                suites.run_loop(n=n, variants=_csv(args.variants), **common)
        elif args.benchmark == "refold":
            suites.run_refold(names=_csv(args.systems), **common)
        else:
            suites.run_relax(names=_csv(args.systems), **common)
        text = report.write_report(args.out, args.benchmark)
        print(text)
    elif args.command == "report":
        for benchmark in args.benchmarks:
            text = report.write_report(args.out, benchmark)
            if text:
                print(text)
    elif args.command == "make-starts":
        proteins.make_starts(_csv(args.systems), overwrite=args.overwrite, threads=args.threads)
    elif args.command == "sweep":
        from .sweep import run_sweep

        print(run_sweep(args.out, budget=args.budget, seeds=args.seeds, threads=args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
