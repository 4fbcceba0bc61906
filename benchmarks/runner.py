"""Run one minimization method on one benchmark case and record everything as a JSON-ready dict.

Every method goes through ``openmm_reparam.minimize`` with the same ``time_budget``, which bounds the whole run,
its polish and method ``lbfgs`` included (runs recorded in RESULTS.md before 2026-12-06 had the polish on top of
the budget and ``lbfgs`` unbounded). A reporter records (wall time since the call, energy,
stage, RMS of the gradient it is given) at every iteration of every stage, the same way for every method, so the
energy-versus-time curves are comparable; it also stops a run that exceeds a hard time limit.
"""
from __future__ import annotations

import json
import os
import platform as _platform
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import openmm
from openmm import unit

# Benchmark run settings: the wall-time budget is what limits the reparametrized and fine stages, not step
# counts, so the step caps are raised far above what fits in a budget (early stopping by patience still applies).
# ``never_worse`` is off so that each method is measured on its own (lbfgs is run as a method of its own); the
# relax suite turns it on, to measure the guarantee that the result is never worse than L-BFGS's.
BENCHMARK_OPTIONS: Dict[str, Any] = {"steps": 1_000_000, "fine_steps": 1_000_000, "adam_steps": 1_000_000,
                                     "never_worse": False}


class HistoryReporter(openmm.MinimizationReporter):
    """Records (time, energy, stage) at every iteration; stops the run past ``hard_limit`` seconds."""

    def __init__(self, hard_limit: Optional[float] = None, every: int = 1):
        super().__init__()
        self.start = time.perf_counter()
        self.hard_limit = hard_limit
        self.every = max(1, int(every))
        self.points: List[List[Any]] = []
        self.calls = 0

    def report(self, iteration, x, grad, args):
        self.calls += 1
        elapsed = time.perf_counter() - self.start
        energy = float(args.get("system energy", float("nan")))
        g = np.asarray(grad, dtype=np.float64).ravel()
        rms = float(np.linalg.norm(g) / np.sqrt(len(g) / 3)) if len(g) else float("nan")
        if self.calls % self.every == 0 or not self.points or energy < self.points[-1][1]:
            self.points.append([elapsed, energy, str(args.get("stage", "lbfgs")), rms])
        return bool(self.hard_limit is not None and elapsed > self.hard_limit)


def make_context(system: openmm.System, positions: np.ndarray, platform_name: str = "CPU",
                 threads: int = 1) -> openmm.Context:
    """A Context on the named platform (CPU with a fixed thread count, for comparable timings, and
    ``DeterministicForces``: without it OpenMM's CPU PME spreads charges in its threads' order, and two LEM runs
    from one start part at once, benchmarks/RESULTS.md#external-suite-2026-12-07-quiet)."""
    platform = openmm.Platform.getPlatformByName(platform_name)
    properties = {"Threads": str(threads), "DeterministicForces": "true"} if platform_name == "CPU" else {}
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), platform, properties)
    context.setPositions(np.asarray(positions, dtype=np.float64))
    return context


def context_positions(context: openmm.Context) -> np.ndarray:
    return context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)


def context_energy(context: openmm.Context) -> float:
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


def run_method(system: openmm.System, start: np.ndarray, method: str, seed: int, budget: Optional[float],
               tolerance: float, metrics: Callable[[np.ndarray], Dict[str, float]],
               options: Optional[Dict[str, Any]] = None, platform_name: str = "CPU", threads: int = 1,
               max_iterations: int = 0, hard_limit: Optional[float] = None) -> Dict[str, Any]:
    """Minimize ``start`` with ``method`` and return a record: result dict, history, metrics, timings."""
    import torch

    from openmm_reparam import minimize
    from openmm_reparam.run.registry import options_used

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    context = make_context(system, start, platform_name, threads)
    run_options = dict(BENCHMARK_OPTIONS)
    run_options.update(options or {})
    if hard_limit is None and budget is not None:
        hard_limit = 3.0 * budget + 30.0
    reporter = HistoryReporter(hard_limit=hard_limit)
    initial_energy = context_energy(context)
    t0 = time.perf_counter()
    reporter.start = t0
    run_options = options_used(method, {"time_budget": budget, **run_options})  # each method takes its own
    result = minimize(context, tolerance=tolerance, maxIterations=max_iterations, reporter=reporter,
                      method=method, seed=seed, **run_options)
    wall = time.perf_counter() - t0
    x = context_positions(context)
    final_energy = context_energy(context)
    history = [[0.0, initial_energy, "start", float("nan")]] + reporter.points + \
        [[wall, final_energy, "final", float(result.rms_force)]]
    record = {
        "method": method, "seed": seed, "budget": budget, "tolerance": tolerance, "options": run_options,
        "wall_time": wall, "initial_energy": initial_energy, "final_energy": final_energy,
        "energy_evaluations": int(result.energy_evaluations),
        "converged": bool(result.converged), "rms_force": float(result.rms_force),
        "max_force": float(result.max_force), "selected": getattr(result, "selected", "method"),
        "hard_limit_hit": bool(hard_limit is not None and reporter.points
                               and reporter.points[-1][0] > hard_limit),
        "metrics": metrics(x), "history": history, "result": result.to_dict(),
        "time_to_tolerance": time_to_tolerance(history, tolerance) if result.converged else None,
    }
    record["result"].pop("history", None)  # the reporter's history above is the one used (same for all methods)
    return record


def time_to_tolerance(history: List[List[Any]], tolerance: float) -> Optional[float]:
    """First recorded time whose gradient RMS (OpenMM's ||F||/sqrt(N)) is at or below ``tolerance``.

    Stages that optimize generator parameters report the coordinate gradient too, so this is comparable across
    methods; with constraints the reported gradient is only approximate, so the final (exact) value is used for
    the last point."""
    for point in history:
        if len(point) > 3 and np.isfinite(point[3]) and point[3] <= tolerance:
            return float(point[0])
    return None


def environment() -> Dict[str, Any]:
    """Versions and machine description stored with every run."""
    import torch

    import openmm_reparam

    return {"openmm": openmm.__version__, "openmm_reparam": openmm_reparam.__version__,
            "git_commit": _git_commit(), "torch": torch.__version__, "numpy": np.__version__,
            "pdbfixer": _package_version("pdbfixer"), "openmmtorch": _package_version("openmmtorch"),
            "python": _platform.python_version(), "machine": _platform.machine(),
            "processor": _platform.processor() or _cpu_model(), "cpu_model": _cpu_model(),
            "cpu_count": os.cpu_count(), "hostname": _platform.node(),
            "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}


def _package_version(name: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> Optional[str]:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _git_commit() -> Optional[str]:
    """The repository's HEAD commit, with ``+dirty`` when tracked files differ from it (None outside git)."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def save_record(record: Dict[str, Any], out_dir: str, benchmark: str, case: str) -> str:
    """Write one run as JSON under ``out_dir/benchmark/case/method_seed<seed>.json``; returns the path."""
    directory = os.path.join(out_dir, benchmark, case)
    os.makedirs(directory, exist_ok=True)
    tag = record.get("tag")
    name = f"{record['method']}{'_' + tag if tag else ''}_seed{record['seed']}.json"
    path = os.path.join(directory, name)
    with open(path, "w") as handle:
        json.dump(record, handle, indent=1, default=json_default)
    return path


def json_default(value):
    """JSON encoding of numpy scalars and arrays (anything else as its ``str``)."""
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
