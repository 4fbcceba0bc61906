"""The cost of the first minimization in a new process (a command-line run, a batch worker, a script).

Each method runs in a fresh Python process: import openmm_reparam, build a small System (met-enkephalin 1PLW from
``openmm_reparam.testing.load_peptide``, amber14 + OBC2, NoCutoff, no constraints, 0.02 nm of seeded noise), then
time two ``minimize`` calls from the same start, the first and the second of the process. The difference is what a
new process pays once (lazy imports, first torch calls). It also reports whether ``torch._dynamo`` got imported:
``torch.optim.Adam``'s first construction imports it.

    python -m benchmarks first-run [--methods gnn,adam,precon] [--engines cpp,python] [--repeats 3] [--json F]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import sys, time
import torch  # noqa: F401
from openmm_reparam.testing import load_peptide, make_context, perturbed
import openmm_reparam
_, system, positions = load_peptide("1plw")
start = perturbed(positions, 0.02)
times = []
for _ in range(2):
    context = make_context(system, start)
    t0 = time.perf_counter()
    result = openmm_reparam.minimize(context, method={method!r}, engine={engine!r}, seed=0)
    times.append(time.perf_counter() - t0)
print(times[0], times[1], result.final_energy, "torch._dynamo" in sys.modules)
"""


def run_once(method: str, engine: str) -> dict:
    code = CHILD.format(method=method, engine=engine)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    first, second, energy, dynamo = out.stdout.split()[-4:]
    return {"first": float(first), "second": float(second), "energy": float(energy), "dynamo": dynamo == "True"}


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m benchmarks first-run``: print the table (and write ``--json``)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks first-run", description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="gnn,adam,precon")
    parser.add_argument("--engines", default="cpp,python")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    rows = []
    print("| method | engine | first call s | second call s | first − second s | torch._dynamo imported |")
    print("|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        for engine in args.engines.split(","):
            runs = [run_once(method, engine) for _ in range(args.repeats)]
            first = statistics.median(r["first"] for r in runs)
            second = statistics.median(r["second"] for r in runs)
            extra = statistics.median(r["first"] - r["second"] for r in runs)
            dynamo = any(r["dynamo"] for r in runs)
            rows.append({"method": method, "engine": engine, "runs": runs})
            print(f"| {method} | {engine} | {first:.2f} | {second:.2f} | {extra:+.2f} | {'yes' if dynamo else 'no'} |",
                  flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)
    return 0
