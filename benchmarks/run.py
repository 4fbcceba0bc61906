"""``python -m benchmarks run {loop,refold,relax,everyday,external,hard} [...]``: run a benchmark suite, write its
JSON, RESULTS.md and (paper benchmarks) PNG plots.

    python -m benchmarks run everyday --out benchmarks/out/everyday          # every case; --cases a,b / chignolin
    python -m benchmarks run everyday --quick --methods adam,lbfgs --out /tmp/everyday   # the tiny case only
    python -m benchmarks run loop --n 400 --methods gnn,linear,adam,lbfgs --seeds 3 --budget 60 --out benchmarks/out
    python -m benchmarks run refold --systems 5AWL,2JOF --seeds 5 --budget 60 --out benchmarks/out
    python -m benchmarks run relax --systems 5AWL,2JOF --seeds 3 --budget 30 --out benchmarks/out
    python -m benchmarks run external --out benchmarks/out     # every openmmtools test system, rough starts
    python -m benchmarks run external --cases tiny --seeds 1 --out /tmp/ext   # the smoke test's three systems
    python -m benchmarks run external --cases implicit,WaterBox --methods adam,precon,ase --out /tmp/ext
    python -m benchmarks run hard --out benchmarks/out        # severe clashes: LEM and the default, every engine
    python -m benchmarks run hard --cases far_atom --engines python,cpp --out /tmp/hard   # the smoke test's case

``--option key=value`` (repeatable) passes a minimizer option to every method, e.g. ``--option lr=0.003``.
"""
from __future__ import annotations

import argparse
import ast
import sys
from typing import Any, Dict, List, Optional

from . import report, suites


DEFAULT_METHODS = "gnn,linear,adam,lbfgs"


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


def method_list(text: str) -> List[str]:
    """The methods a side-by-side benchmark's ``--methods`` names; ``none`` (or an empty list: ``""``, ``,``):
    none, only LEM and the default."""
    return [m for m in csv(text) if m != "none"]


def build_parser() -> argparse.ArgumentParser:
    run = argparse.ArgumentParser(prog="python -m benchmarks run", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("benchmark", choices=["loop", "refold", "relax", "everyday", "external", "hard"])
    run.add_argument("--methods", default=None, help="default gnn,linear,adam,lbfgs; external: every method but "
                                                     "auto, and ase (ASE's optimizers on implicit solvent); "
                                                     "'none' (or ''): only LEM and the default")
    run.add_argument("--seeds", type=int, default=None, help="number of seeds (0, 1, ... N-1; default 3, "
                                                               "1 with --quick); external: perturbed starts "
                                                               "besides the system's own (default 1)")
    run.add_argument("--first-seed", type=int, default=0)
    run.add_argument("--budget", type=float, default=None,
                     help="wall-time budget per method (s); default 60, none for everyday")
    run.add_argument("--out", default="benchmarks/out")
    run.add_argument("--cases", default=None,
                     help="everyday: case names or groups a,b,c,d (solvated, large, implicit, water), all, tiny; "
                          "external: test-system classes, rough starts, groups (toy, vacuum, implicit, custom, "
                          "fluid, explicit, amoeba, large, rough, other), tiny, all; hard: case names, implicit, "
                          "explicit, all")
    run.add_argument("--engines", default="python,cpp,opencl",
                     help="hard: the engines the default runs on (python, cpp, opencl: the device stages)")
    run.add_argument("--device-cases", default=None,
                     help="hard: the cases the opencl engine runs on (default far_atom,dimer,ligand,collapsed; all)")
    run.add_argument("--precision", default="single", help="hard: the OpenCL Context's precision")
    run.add_argument("--counter-check", action="store_true",
                     help="hard: also LEM without the evaluation counter, to show what counting costs")
    run.add_argument("--quick", action="store_true", help="everyday: the tiny case with one seed (smoke test)")
    run.add_argument("--n", type=int, nargs="+", default=[400], help="loop sizes")
    run.add_argument("--variants", default="bond_lj,pure_lj", help="loop variants")
    run.add_argument("--systems", default="5AWL,2JOF", help="proteins for refold/relax")
    run.add_argument("--threads", type=int, default=None,
                     help="CPU threads for OpenMM (and torch in loop/refold/relax); default 1, 2 for everyday "
                          "and external")
    run.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--tag", default=None, help="label for runs with non-default options")
    return run


def main(argv: Optional[List[str]] = None) -> int:
    """Parse ``argv`` (the arguments after ``run``), run the benchmark, print its report."""
    args = build_parser().parse_args(argv)
    if args.benchmark in ("everyday", "external", "hard"):
        return _run_side_by_side(args, argv)
    common = dict(methods=csv(args.methods or DEFAULT_METHODS), seeds=3 if args.seeds is None else args.seeds,
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


def _run_side_by_side(args, argv) -> int:
    """``run everyday`` / ``run external`` / ``run hard``: print the environment, run the cases (JSON per case as each
    finishes), print the tables."""
    from .runner import environment

    cases = ["tiny"] if args.quick and args.cases is None else (csv(args.cases) if args.cases else None)
    options = parse_options(args.option)
    if args.budget is not None:
        options["time_budget"] = args.budget
    threads = args.threads or 2
    command = "python -m benchmarks run " + " ".join(sys.argv[2:] if argv is None else argv)
    print(report.environment_text([{"environment": dict(environment(), command=command), "threads": threads}]),
          flush=True)
    if args.benchmark == "hard":
        from . import hard, hard_cases

        device_cases = (hard.DEVICE_CASES if args.device_cases is None else
                        hard_cases.resolve_cases(csv(args.device_cases)))
        hard.run_hard(cases, engines=csv(args.engines), seeds=1 if args.seeds is None else args.seeds,
                      threads=threads, out_dir=args.out, command=command, device_cases=device_cases,
                      precision=args.precision, counter_check=args.counter_check)
    elif args.benchmark == "external":
        from . import external

        external.run_external(cases, methods=None if args.methods is None else method_list(args.methods),
                              seeds=1 if args.seeds is None else args.seeds, threads=threads, out_dir=args.out,
                              options=options, command=command)
    else:
        from . import everyday

        everyday.run_everyday(cases, methods=method_list(DEFAULT_METHODS if args.methods is None else args.methods),
                              seeds=args.seeds if args.seeds is not None else (1 if args.quick else 3),
                              threads=threads, out_dir=args.out, options=options, command=command)
    print(report.write_report(args.out, args.benchmark))
    return 0
