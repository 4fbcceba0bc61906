"""On solvated systems: what a reparametrized step costs next to a coordinate step, and what the slow modes and
the generator fit cost next to the whole run (benchmarks/RESULTS.md#step-cost).

For each everyday case (default: ``bbl`` = BBL in TIP3P with 1 nm padding, and ``bbl_pad25`` = 2.5 nm padding,
about 32k atoms), on a CPU Context with ``--threads`` threads, the start minimized for ``--warm`` coordinate steps
first (so both stages step from the same relaxed-enough point):

* ``setup``: ``build_generator`` as ``minimize(method=...)`` runs it (slow modes of the solute, the generator fit;
  waters and ions as plain coordinates, the default ``reparam_atoms="solute"``), in seconds;
* ``gnn`` / ``linear``: a reparam stage of exactly ``--steps`` Adam steps on that generator, ms per step;
* ``adam``: a coordinate Adam stage of ``--steps`` steps, ms per step;

interleaved over ``--rounds`` rounds, on the engine ``minimize`` uses by default (the compiled one when built).
The ratio ``gnn / adam`` has a goal of at most 1.25; ``setup`` is compared with the default ``minimize``
run of the everyday suite on the same case when ``--everyday DIR`` points at its JSON.

    python -m benchmarks step-cost --cases bbl,bbl_pad25 --steps 40 --rounds 3 --json benchmarks/out/step_cost.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any, Dict, List, Optional

import numpy as np

import torch  # noqa: F401  (before openmm)
import openmm
from openmm import unit

from openmm_reparam.core.bridge import EnergyBridge
from openmm_reparam.engines import AdamStageSettings, select_runners
from openmm_reparam.methods.adam import adam_settings
from openmm_reparam.run.options import MinimizerOptions
from openmm_reparam.run.recorder import RunRecorder
from openmm_reparam.reparam.build import build_generator

from . import everyday_cases


def fixed_stage(name: str, steps: int, options: MinimizerOptions) -> AdamStageSettings:
    """Exactly ``steps`` Adam steps (no early stopping), every other value from the options table."""
    lr = options.lr if name == "reparam" else options.fine_lr
    return adam_settings(options, name, lr, steps, 10 ** 9)


def per_step(engine, context: openmm.Context, start: np.ndarray, generator, name: str, steps: int,
             options: MinimizerOptions) -> float:
    """Seconds per step of one stage from ``start``."""
    context.setPositions(start * unit.nanometer)
    bridge = EnergyBridge(context, options.constraint_stiffness)
    stage = engine.adam_stage(bridge, RunRecorder(), generator, fixed_stage(name, steps, options))
    return stage.wall_time / max(1, stage.iterations)


def measure_case(name: str, steps: int, rounds: int, warm: int, threads: int) -> Dict[str, Any]:
    case = everyday_cases.build_case(name)
    platform = openmm.Platform.getPlatformByName("CPU")
    context = openmm.Context(case.system, openmm.VerletIntegrator(0.001), platform, {"Threads": str(threads)})
    options = MinimizerOptions.from_kwargs(method="gnn", progress_window=0)
    torch.set_num_threads(options.torch_threads)  # as minimize() runs every stage, the fit included
    engine = select_runners("auto", context).coordinates
    start = case.make_start(0)
    context.setPositions(start * unit.nanometer)
    per_step(engine, context, start, None, "adam", warm, options)  # a relaxed-enough common start
    start = np.array(context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer))
    row: Dict[str, Any] = {"case": name, "atoms": case.system.getNumParticles(), "engine": engine.name,
                           "threads": threads, "steps": steps, "rounds": rounds}
    generators = {}
    for method in ("gnn", "linear"):
        context.setPositions(start * unit.nanometer)
        t0 = time.perf_counter()
        generator, setup = build_generator(context, method, 0, options.generator, options.modes, start)
        row[f"{method}_setup_s"] = time.perf_counter() - t0
        row[f"{method}_setup_stages"] = {s.name: s.wall_time for s in setup}
        generators[method] = generator
    samples: Dict[str, List[float]] = {"adam": [], "gnn": [], "linear": []}
    for _ in range(rounds):
        samples["adam"].append(per_step(engine, context, start, None, "adam", steps, options))
        for method, generator in generators.items():
            state = {k: v.clone() for k, v in generator.state_dict().items()}
            samples[method].append(per_step(engine, context, start, generator, "reparam", steps, options))
            generator.load_state_dict(state)
    for key, values in samples.items():
        row[f"{key}_ms"] = 1e3 * statistics.median(values)
        row[f"{key}_ms_min"] = 1e3 * min(values)
    for method in ("gnn", "linear"):
        row[f"{method}_over_adam"] = row[f"{method}_ms"] / row["adam_ms"]
        row[f"{method}_over_adam_min"] = row[f"{method}_ms_min"] / row["adam_ms_min"]
    return row


def print_row(row: Dict[str, Any]) -> None:
    print(f"| {row['case']} | {row['atoms']} | {row['adam_ms']:.1f} | {row['gnn_ms']:.1f} | "
          f"**{row['gnn_over_adam']:.2f}×** ({row['gnn_over_adam_min']:.2f}×) | {row['linear_ms']:.1f} | "
          f"{row['linear_over_adam']:.2f}× | {row['gnn_setup_s']:.1f} | {row['linear_setup_s']:.1f} |", flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m benchmarks step-cost``: print the table row by row (and write ``--json``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks step-cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="bbl,bbl_pad25")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warm", type=int, default=100, help="coordinate steps before measuring")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    print("| case | atoms | adam ms/step | gnn ms/step | gnn / adam (min) | linear ms/step | linear / adam | "
          "gnn setup s | linear setup s |\n|---|---|---|---|---|---|---|---|---|", flush=True)
    rows = []
    for name in args.cases.split(","):
        rows.append(measure_case(name, args.steps, args.rounds, args.warm, args.threads))
        print_row(rows[-1])
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump({"command": "python -m benchmarks step-cost " + " ".join(argv),
                       "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows}, handle, indent=1)
    return 0
