"""Command line: ``python -m benchmarks run {loop,refold,relax,everyday} [...]``, ``report``, ``make-starts``,
``sweep``.

Examples::

    python -m benchmarks run everyday --out benchmarks/out/everyday          # every case; --cases a,b / chignolin
    python -m benchmarks run everyday --quick --methods adam,lbfgs --out /tmp/everyday   # the tiny case only
    python -m benchmarks report everyday --out benchmarks/out/everyday
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
    run.add_argument("benchmark", choices=["loop", "refold", "relax", "everyday"])
    run.add_argument("--methods", default="gnn,linear,adam,lbfgs")
    run.add_argument("--seeds", type=int, default=None, help="number of seeds (0, 1, ... N-1; default 3, "
                                                               "1 with --quick)")
    run.add_argument("--first-seed", type=int, default=0)
    run.add_argument("--budget", type=float, default=None,
                     help="wall-time budget per method (s); default 60, none for everyday")
    run.add_argument("--out", default="benchmarks/out")
    run.add_argument("--cases", default=None,
                     help="everyday: case names or groups a,b,c,d (solvated, large, implicit, water), all, tiny")
    run.add_argument("--quick", action="store_true", help="everyday: the tiny case with one seed (smoke test)")
    run.add_argument("--n", type=int, nargs="+", default=[400], help="loop sizes")
    run.add_argument("--variants", default="bond_lj,pure_lj", help="loop variants")
    run.add_argument("--systems", default="5AWL,2JOF", help="proteins for refold/relax")
    run.add_argument("--threads", type=int, default=None,
                     help="CPU threads for OpenMM (and torch in loop/refold/relax); default 1, 2 for everyday")
    run.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--tag", default=None, help="label for runs with non-default options")

    rep = sub.add_parser("report", help="rewrite RESULTS.md and plots from stored JSON",
                         description="python -m benchmarks report OUT [BENCHMARK ...]  or  "
                                     "python -m benchmarks report [BENCHMARK ...] --out OUT")
    rep.add_argument("items", nargs="*", metavar="OUT/BENCHMARK")
    rep.add_argument("--out", default=None, help="the output folder (then every positional is a benchmark)")

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
        if args.benchmark == "everyday":
            return _run_everyday(args, argv)
        common = dict(methods=_csv(args.methods), seeds=3 if args.seeds is None else args.seeds,
                      budget=60.0 if args.budget is None else args.budget, out_dir=args.out,
                      options=_parse_options(args.option), threads=args.threads or 1, tag=args.tag,
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
        if args.out:
            out, benchmarks = args.out, args.items
        elif args.items:
            out, benchmarks = args.items[0], args.items[1:]
        else:
            parser.error("report needs the output folder: report OUT [BENCHMARK ...] or report BENCHMARK --out OUT")
        for benchmark in benchmarks or ["loop", "refold", "relax", "everyday"]:
            text = report.write_report(out, benchmark)
            if text:
                print(text)
    elif args.command == "make-starts":
        proteins.make_starts(_csv(args.systems), overwrite=args.overwrite, threads=args.threads)
    elif args.command == "sweep":
        from .sweep import run_sweep

        print(run_sweep(args.out, budget=args.budget, seeds=args.seeds, threads=args.threads))
    return 0


def _run_everyday(args, argv) -> int:
    """``run everyday``: print the environment, run the cases (JSON per case as each finishes), print the table."""
    from . import everyday
    from .runner import environment

    cases = ["tiny"] if args.quick and args.cases is None else (_csv(args.cases) if args.cases else None)
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 3)
    options = _parse_options(args.option)
    if args.budget is not None:
        options["time_budget"] = args.budget
    threads = args.threads or 2
    command = "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv)
    print(report.environment_text([{"environment": dict(environment(), command=command), "threads": threads}]),
          flush=True)
    everyday.run_everyday(cases, methods=_csv(args.methods), seeds=seeds, threads=threads, out_dir=args.out,
                          options=options, command=command)
    print(report.write_report(args.out, "everyday"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
