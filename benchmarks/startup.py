"""Start-up time: what a new process pays before openmm-reparam does any work.

Each row runs ``--repeats`` fresh processes of this Python, with this checkout first on ``PYTHONPATH``, and
reports the median wall time of the whole process (interpreter start included): ``python -c pass``, ``import
openmm`` alone (the floor: openmm-reparam always needs it), ``import openmm_reparam``, ``openmm-reparam --help``
and ``--version`` (the console script beside this Python, else ``python -m openmm_reparam``). The last row is the
first ``minimize(method="precon")`` call of a process (met-enkephalin 1PLW, amber14 + OBC2, 0.02 nm of seeded
noise), timed inside the process around that call alone. Each row also says whether torch was imported.

    python -m benchmarks startup [--repeats 5] [--json F]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_CHECK = "; import sys; print('torch' in sys.modules)"
FIRST_PRECON = r"""
import sys, time
from openmm_reparam.testing import load_peptide, make_context, perturbed
import openmm_reparam
_, system, positions = load_peptide("1plw")
context = make_context(system, perturbed(positions, 0.02))
t0 = time.perf_counter()
result = openmm_reparam.minimize(context, method="precon", seed=0)
print(time.perf_counter() - t0, result.final_energy, "torch" in sys.modules)
"""


def console_script() -> List[str]:
    """The ``openmm-reparam`` command of this Python's environment, or ``python -m openmm_reparam``."""
    script = os.path.join(os.path.dirname(sys.executable), "openmm-reparam")
    return [script] if os.access(script, os.X_OK) else [sys.executable, "-m", "openmm_reparam"]


def commands() -> Dict[str, List[str]]:
    """Row name -> the command line of one process."""
    cli = console_script()
    return {"python -c pass": [sys.executable, "-c", "pass"],
            "import openmm": [sys.executable, "-c", "import openmm" + TORCH_CHECK],
            "import openmm_reparam": [sys.executable, "-c", "import openmm_reparam" + TORCH_CHECK],
            "openmm-reparam --help": cli + ["--help"],
            "openmm-reparam --version": cli + ["--version"]}


def environment() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def time_process(command: List[str]) -> Dict[str, object]:
    """One fresh process: its wall time and its last line of output."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=environment(), capture_output=True, text=True, check=True)
    return {"seconds": time.perf_counter() - started, "last_line": (done.stdout.strip().splitlines() or [""])[-1]}


def first_precon() -> Dict[str, object]:
    """One fresh process's first minimize(method="precon"), timed around the call."""
    done = subprocess.run([sys.executable, "-c", FIRST_PRECON], cwd=ROOT, env=environment(), capture_output=True,
                          text=True, check=True)
    seconds, energy, torch = done.stdout.split()[-3:]
    return {"seconds": float(seconds), "energy": float(energy), "torch": torch == "True"}


def row(name: str, runs: List[Dict[str, object]], torch: str) -> Dict[str, object]:
    seconds = [float(run["seconds"]) for run in runs]
    print(f"| {name} | {statistics.median(seconds):.2f} | {min(seconds):.2f} | {max(seconds):.2f} | {torch} |",
          flush=True)
    return {"name": name, "median": statistics.median(seconds), "runs": runs, "torch": torch}


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m benchmarks startup``: print the table (and write ``--json``)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks startup", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per row (default 5)")
    parser.add_argument("--json", help="also write the runs here")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    print(f"{args.repeats} fresh processes each; {' '.join(console_script())}")
    print("| process | median s | min s | max s | torch imported |")
    print("|---|---|---|---|---|")
    rows = []
    for name, command in commands().items():
        runs = [time_process(command) for _ in range(args.repeats)]
        torch = {"True": "yes", "False": "no"}.get(str(runs[-1]["last_line"]), "-")
        rows.append(row(name, runs, torch))
    runs = [first_precon() for _ in range(args.repeats)]
    rows.append(row('first minimize(method="precon") call', runs, "yes" if runs[-1]["torch"] else "no"))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"python": sys.version.split()[0], "rows": rows}, handle, indent=1)
    return 0
