"""Method ``precon`` on small molecules: the Python iteration against the compiled one (``engine="cpp"``) against
OpenMM's ``LocalEnergyMinimizer``, and where the rest of a ``minimize`` call's time goes.

Cases (CPU platform, 1 thread, tolerance 10 kJ/mol/nm, every run from the same start: the structure with
``--noise`` nm of seeded Gaussian noise): 1PLW (75 atoms) and 5AWL (chignolin, 166) in amber14 + OBC2 from
:mod:`openmm_reparam.testing`, and, when openmmtools is importable, AlanineDipeptideVacuum / Implicit (22 atoms)
and TolueneVacuum (15). Per case and round (interleaved): ``minimize(method="precon", engine=...)`` for both
engines and ``LocalEnergyMinimizer.minimize(context, 10, 0)``, wall time of the call on a fresh Context (Context
creation not timed), final energy, the precon stage's iterations and ms per iteration. Medians over rounds.

``--profile CASE``: the stages' wall times of one ``minimize`` call on that case (result.stages) and the time
outside them (bridge creation, start checks, result), plus cProfile's top entries over ``--profile-calls`` calls.

    python -m benchmarks precon-engines --rounds 5 [--json out.json] [--profile alanine_vacuum]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch  # noqa: F401  (before openmm)
import openmm
from openmm import unit

from openmm_reparam import minimize
from openmm_reparam.testing import load_peptide, make_context, perturbed

TOLERANCE = 10.0


def cases() -> Dict[str, Callable[[], Tuple[openmm.System, np.ndarray]]]:
    """name -> () -> (System, positions in nm)."""
    found: Dict[str, Callable] = {"1plw_obc2": lambda: load_peptide("1plw")[1:],
                                  "5awl_obc2": lambda: load_peptide("5awl")[1:]}
    try:
        from openmmtools import testsystems
    except Exception:  # noqa: BLE001 - optional
        return found

    def wrap(cls):
        def build():
            test = cls()
            return test.system, np.array(test.positions.value_in_unit(unit.nanometer))
        return build
    found.update({"alanine_vacuum": wrap(testsystems.AlanineDipeptideVacuum),
                  "alanine_implicit": wrap(testsystems.AlanineDipeptideImplicit),
                  "toluene_vacuum": wrap(testsystems.TolueneVacuum)})
    return found


def energy(context: openmm.Context) -> float:
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


def run_once(kind: str, system: openmm.System, start: np.ndarray) -> Dict[str, float]:
    """One timed call on a fresh CPU Context: kind "python"/"cpp" (minimize precon) or "lem"."""
    context = make_context(system, start, "CPU")
    energy(context)  # the Context's first evaluation (kernel set-up) is not the minimizer's
    begin = time.perf_counter()
    if kind == "lem":
        openmm.LocalEnergyMinimizer.minimize(context, TOLERANCE, 0)
        wall = time.perf_counter() - begin
        return {"wall": wall, "energy": energy(context), "iterations": float("nan"), "ms_per_iter": float("nan")}
    result = minimize(context, TOLERANCE, method="precon", engine=kind)
    wall = time.perf_counter() - begin
    stage = next((s for s in result.stages if s.name == "precon"), None)
    iterations = stage.iterations if stage is not None else 0
    return {"wall": wall, "energy": result.final_energy, "iterations": iterations,
            "ms_per_iter": 1e3 * stage.wall_time / iterations if iterations else float("nan"),
            "engine": result.engine}


def lem_iterations(system: openmm.System, start: np.ndarray) -> int:
    """LocalEnergyMinimizer's iteration count from the start (an untimed run with a counting reporter)."""
    class Count(openmm.MinimizationReporter):
        count = 0

        def report(self, iteration, x, grad, args):
            Count.count += 1
            return False
    context = make_context(system, start, "CPU")
    openmm.LocalEnergyMinimizer.minimize(context, TOLERANCE, 0, Count())
    return Count.count


def bare_evaluation_ms(system: openmm.System, start: np.ndarray) -> float:
    """One energy + forces evaluation on the CPU Context, timed in C++ (the plugin's timeForceEvaluation)."""
    from openmm_reparam.engines.compiled import plugin
    context = make_context(system, start, "CPU")
    return 1e3 * plugin().timeForceEvaluation(context, 200)


def compare(names: List[str], rounds: int, noise: float) -> Dict[str, Dict]:
    """Interleaved rounds of python / cpp / lem per case; medians."""
    table = {}
    builders = cases()
    for name in names:
        system, positions = builders[name]()
        start = perturbed(positions, noise, seed=1)
        runs: Dict[str, List[Dict]] = {"python": [], "cpp": [], "lem": []}
        for kind in runs:  # warm-up (imports, first Context of the kind)
            run_once(kind, system, start)
        for _ in range(rounds):
            for kind in runs:
                runs[kind].append(run_once(kind, system, start))
        row = {"atoms": system.getNumParticles(), "lem_count": lem_iterations(system, start),
               "force_eval_ms": bare_evaluation_ms(system, start)}
        for kind, values in runs.items():
            for key in ("wall", "energy", "iterations", "ms_per_iter"):
                row[f"{kind}_{key}"] = statistics.median(v[key] for v in values)
            row[f"{kind}_wall_min"] = min(v["wall"] for v in values)
        row["cpp_engine"] = runs["cpp"][0].get("engine")
        row["python/cpp"] = row["python_wall"] / row["cpp_wall"]
        row["cpp/lem"] = row["cpp_wall"] / row["lem_wall"]
        row["python/lem"] = row["python_wall"] / row["lem_wall"]
        row["cpp/lem (min)"] = row["cpp_wall_min"] / row["lem_wall_min"]
        row["python/lem (min)"] = row["python_wall_min"] / row["lem_wall_min"]
        row["lem_ms_per_iter"] = 1e3 * row["lem_wall"] / max(1, row["lem_count"])
        table[name] = row
        print(name, json.dumps(row), flush=True)
    return table


def profile(name: str, calls: int, noise: float, engine: str) -> Dict:
    """Stage wall times of ``minimize`` on ``name`` (medians over ``calls``, no profiler), the rest, and
    cProfile's top entries over another ``calls`` calls."""
    system, positions = cases()[name]()
    start = perturbed(positions, noise, seed=1)
    run_once(engine, system, start)
    totals, stages = [], {}
    profiler = cProfile.Profile()
    for call in range(2 * calls):
        context = make_context(system, start, "CPU")
        energy(context)
        if call >= calls:
            profiler.enable()
        begin = time.perf_counter()
        result = minimize(context, TOLERANCE, method="precon", engine=engine)
        total = time.perf_counter() - begin
        profiler.disable()
        if call < calls:
            totals.append(total)
            for stage in result.stages:
                stages.setdefault(stage.name, []).append(stage.wall_time)
    out = {"total_ms": 1e3 * statistics.median(totals),
           "stages_ms": {k: 1e3 * statistics.median(v) for k, v in stages.items()},
           "stage_iterations": {s.name: s.iterations for s in result.stages}}
    out["outside_stages_ms"] = out["total_ms"] - sum(out["stages_ms"].values())
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(45)
    out["cprofile"] = text.getvalue()
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks precon-engines", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(cases()))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--noise", type=float, default=0.02)
    parser.add_argument("--profile", default=None, help="a case to profile (e.g. alanine_vacuum)")
    parser.add_argument("--profile-calls", type=int, default=20)
    parser.add_argument("--profile-engine", default="cpp")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    out: Dict = {}
    if args.cases:
        out["compare"] = compare(args.cases.split(","), args.rounds, args.noise)
    if args.profile:
        out["profile"] = profile(args.profile, args.profile_calls, args.noise, args.profile_engine)
        print(json.dumps({k: v for k, v in out["profile"].items() if k != "cprofile"}, indent=1))
        print(out["profile"]["cprofile"])
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(out, handle, indent=1)
    return 0

