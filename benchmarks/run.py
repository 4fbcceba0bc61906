"""``python -m benchmarks run {loop,refold,relax,everyday} [...]``: run a benchmark suite, write its JSON,
RESULTS.md and (paper benchmarks) PNG plots.

    python -m benchmarks run everyday --out benchmarks/out/everyday          # every case; --cases a,b / chignolin
    python -m benchmarks run everyday --quick --methods adam,lbfgs --out /tmp/everyday   # the tiny case only
    python -m benchmarks run loop --n 400 --methods gnn,linear,adam,lbfgs --seeds 3 --budget 60 --out benchmarks/out
    python -m benchmarks run refold --systems 5AWL,2JOF --seeds 5 --budget 60 --out benchmarks/out
    python -m benchmarks run relax --systems 5AWL,2JOF --seeds 3 --budget 30 --out benchmarks/out

``--option key=value`` (repeatable) passes a minimizer option to every method, e.g. ``--option lr=0.003``.
"""
from __future__ import annotations

import argparse
import ast
import sys
from typing import Any, Dict, List, Optional

from . import report, suites


def parse_options(items: List[str]) -> Dict[str, Any]:
    """``key=value`` strings as a dict; values are Python literals where they parse as one, else strings."""
    options = {}
    for item in items or []:
        key, _, value = item.partition("=")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    return options


def csv(text: str) -> List[str]:
    """The non-empty, stripped items of a comma-separated list."""
    return [t.strip() for t in text.split(",") if t.strip()]


def build_parser() -> argparse.ArgumentParser:
    run = argparse.ArgumentParser(prog="python -m benchmarks run", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
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
    return run


def main(argv: Optional[List[str]] = None) -> int:
    """Parse ``argv`` (the arguments after ``run``), run the benchmark, print its report."""
    args = build_parser().parse_args(argv)
    if args.benchmark == "everyday":
        return _run_everyday(args, argv)
    common = dict(methods=csv(args.methods), seeds=3 if args.seeds is None else args.seeds,
                  budget=60.0 if args.budget is None else args.budget, out_dir=args.out,
                  options=parse_options(args.option), threads=args.threads or 1, tag=args.tag,
                  first_seed=args.first_seed)
    if args.benchmark == "loop":
        for n in args.n:
            suites.run_loop(n=n, variants=csv(args.variants), **common)
    elif args.benchmark == "refold":
        suites.run_refold(names=csv(args.systems), **common)
    else:
        suites.run_relax(names=csv(args.systems), **common)
    text = report.write_report(args.out, args.benchmark)
    print(text)
    return 0


def _run_everyday(args, argv) -> int:
    """``run everyday``: print the environment, run the cases (JSON per case as each finishes), print the table."""
    from . import everyday
    from .runner import environment

    cases = ["tiny"] if args.quick and args.cases is None else (csv(args.cases) if args.cases else None)
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 3)
    options = parse_options(args.option)
    if args.budget is not None:
        options["time_budget"] = args.budget
    threads = args.threads or 2
    command = "python -m benchmarks run " + " ".join(sys.argv[2:] if argv is None else argv)
    print(report.environment_text([{"environment": dict(environment(), command=command), "threads": threads}]),
          flush=True)
    everyday.run_everyday(cases, methods=csv(args.methods), seeds=seeds, threads=threads, out_dir=args.out,
                          options=options, command=command)
    print(report.write_report(args.out, "everyday"))
    return 0
