"""The default alone on named cases, one JSON line per run, to compare two checkouts of a change that is meant to
touch few runs (a line-search rule, say): which runs changed, and by how many force evaluations and kJ/mol.

``python -m benchmarks default-runs --cases CASE[:START],...``: each case is a hard start
(:mod:`benchmarks.hard_cases`, START a seed), an everyday case (:mod:`benchmarks.everyday_cases`, START a seed) or
an external one (:mod:`benchmarks.external_cases`, START ``own`` or a perturbation seed; default ``own``). Each run
has its own CPU Context with one thread and ``DeterministicForces``, so it repeats exactly, and counts its force
evaluations (:mod:`benchmarks.evaluations`); ``--option KEY=VALUE`` passes a minimizer option to every run. No LEM
run: the suites compare with LEM; this compares checkouts::

    (cd OLD && python -c "import runpy; runpy.run_path('NEW/benchmarks/default_runs.py')['main'](['--cases', 'dimer:0'])") > old.jsonl
    python -m benchmarks default-runs --cases dimer:0 > new.jsonl
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Any, Dict, List, Optional


def run(name: str, start: Any, options: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    import openmm_reparam
    from benchmarks import hard_cases
    from benchmarks.compare import build
    from benchmarks.evaluations import EvaluationCounter
    from benchmarks.runner import make_context

    case = hard_cases.build_case(name) if name in hard_cases.resolve_cases(["all"]) else build(name)
    counter = EvaluationCounter(case.system)
    context = make_context(case.system, case.make_start(start), "CPU", threads=1)  # with DeterministicForces
    before, t0 = counter.calls, time.perf_counter()
    result = openmm_reparam.minimize(context, 10.0, **(options or {}))
    return {"case": name, "start": start, "evals": counter.calls - before, "s": round(time.perf_counter() - t0, 2),
            "E": result.final_energy, "rms": round(result.rms_force, 3), "converged": result.converged,
            "method": result.method,
            "stages": [(s.name, s.energy_evaluations, s.stop_reason) for s in result.stages]}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks default-runs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", required=True, help="CASE[:START],... (START: a seed, or own)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a minimizer option for every run (repeatable), e.g. precon_memory=20")
    args = parser.parse_args(argv)
    from benchmarks.compare import parse_variant
    _, options = parse_variant("default@" + "+".join(args.option))
    for item in args.cases.split(","):
        name, _, start = item.partition(":")
        start = int(start) if start.isdigit() else (start or "own")
        print(json.dumps(run(name, start, options)), flush=True)
    return 0
