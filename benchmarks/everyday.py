"""The everyday benchmark: the minimization people run before MD, ``openmm_reparam.minimize`` against OpenMM's
``LocalEnergyMinimizer`` (LEM), as a user would swap one for the other.

For every case (see :mod:`benchmarks.everyday_cases`), in this one process, one after another on the same
System, the same Context and the same start positions:

* ``lem``: ``openmm.LocalEnergyMinimizer.minimize(context, 10 kJ/mol/nm)``;
* ``default``: ``openmm_reparam.minimize(context)`` with no method and no options: whatever the package's
  default is when the suite runs;
* each named method (default gnn, linear, adam, lbfgs) with ``never_worse=False`` and tolerance 10 kJ/mol/nm.

Recorded per run: wall time of the call alone (preparation, Context creation and the start energy are outside
it), final energy (kJ/mol, the Context's, evaluated the same way for every run), RMS force as the package
measures it (``result.rms_force``; for LEM the same ``EnergyBridge.force_norms``), converged flag, per-stage
times, the force evaluations of the call (:mod:`benchmarks.evaluations`, LEM's line searches included), and the
ratios to the LEM run from the same start: ``time_ratio`` = wall / LEM wall, ``evaluation_ratio`` and
``energy_diff`` = E - E_LEM. No reporter is attached (a Python reporter can change which engine the package picks).

Seeds: a noisy-model case makes a new start per seed (noise seed k) and runs every method once on it with
``seed=k``; a case with one start runs LEM and the default once, the seeded methods (gnn, linear) with seeds
0..N-1 and the deterministic ones (adam, lbfgs) once. One JSON file per case, ``<out>/everyday/<case>.json``, is
rewritten after every run (``complete`` says whether the case finished), so a cut run keeps what it did.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from dataclasses import asdict
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import openmm
from openmm import unit

from . import everyday_cases
from .evaluations import EvaluationCounter, counting, timed
from .runner import context_energy, environment, json_default, make_context

DEFAULT_METHODS: Tuple[str, ...] = ("gnn", "linear", "adam", "lbfgs")
#: Methods whose result does not depend on ``seed`` (the seed only initializes the gnn/linear generators).
DETERMINISTIC_METHODS = frozenset({"adam", "lbfgs", "precon", "fire"})
TOLERANCE = 10.0  # kJ/mol/nm, OpenMM's default
METHOD_OPTIONS: Dict[str, Any] = {"never_worse": False}
BENCHMARK = "everyday"
HISTORY_POINTS = 2000  # at most this many energy-history points per run are stored
#: A run other than LEM or the package's: ``runner(context, tolerance, runs)`` -> the run's record fields;
#: ``runs`` are the case's records so far (e.g. for the LEM time of the same start).
Runner = Callable[[openmm.Context, float, List[Dict[str, Any]]], Dict[str, Any]]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_plan(case: everyday_cases.EverydayCase, methods: Sequence[str], seeds: int) -> List[Tuple[int, str, int]]:
    """(start seed, label, method seed) for every run of a case, in the order they run."""
    plan = []
    for start_seed in (range(seeds) if case.seeded_start else [0]):
        plan += [(start_seed, "lem", start_seed), (start_seed, "default", start_seed)]
        for method in methods:
            if case.seeded_start or method in DETERMINISTIC_METHODS:
                plan.append((start_seed, method, start_seed))
            else:
                plan += [(start_seed, method, seed) for seed in range(seeds)]
    return plan


def reset(context: openmm.Context, system: openmm.System, start: np.ndarray) -> float:
    """Put the start (and the System's box) back into the Context, virtual sites placed from their parents;
    returns its energy (which also warms up the platform before the timed call)."""
    if system.usesPeriodicBoundaryConditions():
        context.setPeriodicBoxVectors(*system.getDefaultPeriodicBoxVectors())
    context.setPositions(start * unit.nanometer)
    context.computeVirtualSites()
    return context_energy(context)


def run_lem(context: openmm.Context, tolerance: float = TOLERANCE) -> Dict[str, Any]:
    """OpenMM's L-BFGS to ``tolerance``; RMS force measured as the package measures it."""
    from openmm_reparam.core.bridge import EnergyBridge

    _, wall, evaluations = timed(lambda: openmm.LocalEnergyMinimizer.minimize(context, tolerance, 0))
    rms, largest = EnergyBridge(context).force_norms()
    return {"method": "lbfgs (LocalEnergyMinimizer)", "wall_time": wall, "rms_force": float(rms),
            "max_force": float(largest), "converged": bool(rms <= tolerance), "tolerance": tolerance,
            "stages": [{"name": "lem", "wall_time": wall}], "selected": None, "engine": "openmm",
            **_evaluations(evaluations)}


def _evaluations(count: Optional[int]) -> Dict[str, Any]:
    """The record field of a counted run (nothing when the run was not counted)."""
    return {} if count is None else {"force_evaluations": int(count)}


def run_ours(context: openmm.Context, label: str, seed: int, tolerance: float = TOLERANCE,
             options: Optional[Dict[str, Any]] = None,
             default_options: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """``minimize(context, **default_options)`` (``label="default"``; none: as is) or ``minimize(context,
    tolerance, method=label, seed=seed, never_worse=False, **options)``."""
    from openmm_reparam import minimize
    from openmm_reparam.run.registry import options_used

    run_options = {**METHOD_OPTIONS, **(options or {})}
    if label == "default":
        result, wall, evaluations = timed(lambda: minimize(context, **(default_options or {})))
    else:
        result, wall, evaluations = timed(lambda: minimize(context, tolerance, method=label, seed=seed,
                                                           **options_used(label, run_options)))
    stages = [{"name": s.name, "wall_time": s.wall_time, "iterations": s.iterations,
               "energy_evaluations": s.energy_evaluations, "final_energy": s.final_energy,
               "stop_reason": s.stop_reason, "collapsed": s.collapsed} for s in result.stages]
    return {"method": result.method, "wall_time": wall, "rms_force": float(result.rms_force),
            "max_force": float(result.max_force), "converged": bool(result.converged),
            "tolerance": float(result.tolerance), "stages": stages, "selected": result.selected,
            "engine": result.engine, "interrupted": bool(result.interrupted),
            "obstacles": [asdict(o) for o in result.obstacles],
            "package_final_energy": float(result.final_energy), "options_given": dict(default_options or {})
            if label == "default" else run_options, "options": result.options, "history": thin_history(result.history),
            **_evaluations(evaluations)}


def thin_history(history: Sequence[Any], limit: int = HISTORY_POINTS) -> List[List[Any]]:
    """``[stage, iteration, time, energy]`` points, evenly thinned to about ``limit`` (the last point of every
    stage is kept)."""
    points = [[h.stage, int(h.iteration), round(float(h.time), 4), float(h.energy)] for h in history]
    if len(points) <= limit:
        return points
    step = math.ceil(len(points) / limit)
    return [p for i, p in enumerate(points)
            if i % step == 0 or i == len(points) - 1 or points[i + 1][0] != p[0]]


def run_one(context: openmm.Context, case: everyday_cases.EverydayCase, start: np.ndarray, label: str,
            start_seed: Any, seed: int, tolerance: float, options: Optional[Dict[str, Any]],
            runner: Optional[Runner] = None, previous: Sequence[Dict[str, Any]] = ()) -> Dict[str, Any]:
    """One timed run from ``start``; a failure is recorded (``error``) instead of ending the suite.
    ``runner(context, tolerance, previous)``, if given, is the run instead of LEM or the package (another
    optimizer); ``previous``: the case's runs so far."""
    initial = reset(context, case.system, start)
    record: Dict[str, Any] = {"label": label, "start_seed": start_seed,
                              "seed": None if label in ("lem", "default") or runner else seed,
                              "initial_energy": initial}
    try:
        if runner is not None:
            record.update(runner(context, tolerance, list(previous)))
        else:
            record.update(run_lem(context, tolerance) if label == "lem" else
                          run_ours(context, label, seed, tolerance, options))
        record["final_energy"] = context_energy(context)
    except Exception as error:  # noqa: BLE001 - one failing method must not lose the other runs
        record.update(error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc(limit=5),
                      final_energy=float("nan"), wall_time=float("nan"), converged=False)
    return record


def add_ratios(runs: List[Dict[str, Any]]) -> None:
    """``time_ratio``, ``energy_diff`` and (where both were counted) ``evaluation_ratio`` of every run against the
    LEM run from the same start."""
    lem = {r["start_seed"]: r for r in runs if r["label"] == "lem"}
    for r in runs:
        ref = lem.get(r["start_seed"])
        if ref is None or not np.isfinite(ref["wall_time"]) or not ref["wall_time"] > 0:
            r["time_ratio"] = r["energy_diff"] = None
            continue
        r["lem_wall_time"], r["lem_energy"] = ref["wall_time"], ref["final_energy"]
        r["time_ratio"] = r["wall_time"] / ref["wall_time"]
        r["energy_diff"] = r["final_energy"] - ref["final_energy"]
        if r.get("force_evaluations") is not None and ref.get("force_evaluations"):
            r["lem_force_evaluations"] = ref["force_evaluations"]
            r["evaluation_ratio"] = r["force_evaluations"] / ref["force_evaluations"]


def case_record(case: everyday_cases.EverydayCase, runs: List[Dict[str, Any]], complete: bool,
                env: Dict[str, Any], threads: int, prepare_time: float, benchmark: str = BENCHMARK) -> Dict[str, Any]:
    system = case.system
    return {"benchmark": benchmark, "case": case.name, "group": case.group, "kind": case.kind,
            "description": case.description, "n_atoms": case.n_atoms,
            "n_constraints": system.getNumConstraints(),
            "n_virtual_sites": sum(system.isVirtualSite(i) for i in range(system.getNumParticles())),
            "settings": case.settings, "platform": "CPU", "threads": threads, "tolerance": TOLERANCE,
            "prepare_time": prepare_time, "complete": complete, "environment": env, "runs": runs}


def save_case(record: Dict[str, Any], out_dir: str) -> str:
    """Write ``<out_dir>/<benchmark>/<case>.json`` (``everyday`` unless the record names another benchmark)
    atomically (a cut run never leaves half a file)."""
    directory = os.path.join(out_dir, record.get("benchmark", BENCHMARK))
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{record['case']}.json")
    with open(path + ".part", "w") as handle:
        json.dump(record, handle, indent=1, default=json_default)
    os.replace(path + ".part", path)
    return path


def run_case(name: str, methods: Sequence[str] = DEFAULT_METHODS, seeds: int = 3, threads: int = 2,
             out_dir: Optional[str] = None, options: Optional[Dict[str, Any]] = None,
             env: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Prepare case ``name`` and run LEM, the default and every method on it; returns the case record."""
    t0 = time.perf_counter()
    case = everyday_cases.build_case(name)
    prepare_time = time.perf_counter() - t0
    _log(f"[everyday] {name}: {case.n_atoms} atoms, {case.description} (prepared in {prepare_time:.1f} s)")
    return run_plan_on_case(case, run_plan(case, methods, seeds), threads, out_dir, options,
                            env or environment(), prepare_time)


def run_plan_on_case(case: everyday_cases.EverydayCase, plan: Sequence[Tuple[Any, str, int]], threads: int,
                     out_dir: Optional[str], options: Optional[Dict[str, Any]], env: Dict[str, Any],
                     prepare_time: float, benchmark: str = BENCHMARK,
                     runners: Optional[Dict[str, Runner]] = None,
                     extra: Optional[Dict[str, Any]] = None, count_evaluations: bool = True) -> Dict[str, Any]:
    """Run ``plan`` ((start seed, label, method seed) triples) on one Context of the case's System, with ratios
    to LEM, saving the case record (plus ``extra`` fields) after every run; returns the record. ``runners``:
    label -> :data:`Runner` for labels that are neither LEM nor a package method. ``count_evaluations``: count
    every run's force evaluations (:mod:`benchmarks.evaluations`; the counter is added to the case's System)."""
    counter = EvaluationCounter(case.system) if count_evaluations else None
    starts: Dict[Any, np.ndarray] = {}
    first = plan[0][0] if plan else 0
    context = make_context(case.system, starts.setdefault(first, case.make_start(first)), "CPU", threads)
    runs: List[Dict[str, Any]] = []

    def record(complete: bool) -> Dict[str, Any]:
        return {**case_record(case, runs, complete, env, threads, prepare_time, benchmark),
                "evaluations_counted": counter is not None, **(extra or {})}

    for start_seed, label, seed in plan:
        start = starts.setdefault(start_seed, case.make_start(start_seed))
        with counting(counter):
            run = run_one(context, case, start, label, start_seed, seed, TOLERANCE, options,
                          (runners or {}).get(label), runs)
        runs.append(run)
        add_ratios(runs)
        _log(_run_line(case.name, run, benchmark))
        if out_dir:
            save_case(record(False), out_dir)
    final = record(True)
    if out_dir:
        save_case(final, out_dir)
    return final


def _run_line(case: str, r: Dict[str, Any], benchmark: str = BENCHMARK) -> str:
    if r.get("error"):
        return f"[{benchmark}] {case} {r['label']} start {r['start_seed']}: FAILED {r['error']}"
    ratio = f", {r['time_ratio']:.2f}x LEM, E - E_LEM {r['energy_diff']:+.1f}" if r.get("time_ratio") else ""
    if r.get("force_evaluations") is not None:
        ratio = f", {r['force_evaluations']} force evaluations" + ratio
    seed = "" if r["seed"] is None else f" seed {r['seed']}"
    return (f"[{benchmark}] {case} {r['label']}{seed} start {r['start_seed']}: E {r['initial_energy']:.6g} -> "
            f"{r['final_energy']:.6g} in {r['wall_time']:.2f} s, RMS F {r['rms_force']:.3g}"
            f"{'' if r['converged'] else ' (NOT converged)'}{ratio}")


def run_everyday(cases: Optional[Sequence[str]] = None, methods: Sequence[str] = DEFAULT_METHODS, seeds: int = 3,
                 threads: int = 2, out_dir: Optional[str] = None,
                 options: Optional[Dict[str, Any]] = None, command: Optional[str] = None) -> List[Dict[str, Any]]:
    """Run the named cases (default: all but ``tiny``) one after another; returns their records.
    ``command``: the command line, stored with every record."""
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    names = everyday_cases.resolve_cases(cases)
    env = dict(environment(), command=command)
    return [run_case(name, methods, seeds, threads, out_dir, options, env) for name in names]
