"""The hard-start benchmark: ``openmm_reparam.minimize`` against OpenMM's ``LocalEnergyMinimizer`` (LEM) from
severe clashes (see :mod:`benchmarks.hard_cases`), on every engine.

Per case and start, with the everyday suite's machinery (:func:`benchmarks.everyday.run_plan_on_case`: one
Context, CPU platform named explicitly with ``threads`` threads, the same start put back before every run, the
same records, ratios and JSON):

* ``lem``: ``openmm.LocalEnergyMinimizer.minimize(context, 10 kJ/mol/nm)``;
* ``default/python`` and ``default/cpp``: ``openmm_reparam.minimize(context, engine=...)``, the default method
  (``auto``) with the iterations in Python or in the compiled plugin (``auto``'s engine when it is built);
* ``default/opencl``: the default on a second Context of the same System on the OpenCL platform (pocl on a CPU:
  the device stages, for correctness, not timing), started from the same positions; its final positions are put
  back into the CPU Context, where its energy and forces are measured as every other run's;
* ``lem_uncounted`` (``--counter-check``): LEM on a third Context without the counter below, to show what the
  counter costs LEM (time) and whether it changes its path (energy).

**Force evaluations** are counted for every run, LEM's line searches included (OpenMM reports none of them), as
in every side-by-side suite (:mod:`benchmarks.evaluations`): the calls of a zero ``openmm.PythonForce`` during the
timed call alone.

Goals (checked per start by :func:`goal_rows`): every default run ends finite and converged, at an energy no
higher than LEM's + max(1, 1e-5 |E_LEM|) kJ/mol, in no more force evaluations than LEM (at most half where LEM
needs more than 300), and (CPU engines) in less time than LEM. One JSON file per case,
``<out>/hard/<case>.json``, rewritten after every run; ``<out>/hard/RESULTS.md`` holds the tables.
"""
from __future__ import annotations

import glob
import json
import os
import sys
import time
from dataclasses import asdict
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import openmm
from openmm import app

from . import everyday, hard_cases, report
from .evaluations import COUNTER_GROUP, evaluations_allowed, evaluations_ok
from .external_report import energy_slack
from .runner import context_energy, environment

BENCHMARK = "hard"
ENGINES = ("python", "cpp", "opencl")
#: The OpenCL runs (pocl on 2 cores is slow) by default only on these cases.
DEVICE_CASES = ("far_atom", "dimer", "ligand", "collapsed")
DEVICE_PLATFORM = "OpenCL"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _explained(run, topology: app.Topology):
    """A runner: ``run(context, tolerance)``'s record plus, when it did not converge, ``held_back_by``: the atoms
    that hold it back (force evaluations and their ratio to LEM's are counted for every run of the suite)."""
    def runner(context: openmm.Context, tolerance: float, previous: List[Dict[str, Any]]) -> Dict[str, Any]:
        from openmm_reparam.core.bridge import EnergyBridge
        from openmm_reparam.core.obstacles import Obstacle, describe_obstacles, find_obstacles

        record = run(context, tolerance)
        if "obstacles" not in record and not record.get("converged", True):  # LEM's: measured here
            record["obstacles"] = [asdict(o) for o in find_obstacles(EnergyBridge(context))]
        if record.get("obstacles"):
            record["held_back_by"] = describe_obstacles([Obstacle(**o) for o in record["obstacles"]], topology)
        return record
    return runner


def _lem(context: openmm.Context, tolerance: float) -> Dict[str, Any]:
    """LEM, with the start's RMS and largest force (measured before the count starts)."""
    from openmm_reparam.core.bridge import EnergyBridge

    rms, largest = EnergyBridge(context).force_norms()
    return {**everyday.run_lem(context, tolerance), "start_rms_force": rms, "start_max_force": largest}


def _default_on(engine: str):
    def run(context: openmm.Context, tolerance: float) -> Dict[str, Any]:
        return everyday.run_ours(context, "default", 0, tolerance, default_options={"engine": engine})
    return run


class _OtherContext:
    """A second Context of the case's System (on ``platform``, or without the counter), made on first use; a run
    on it starts from the CPU Context's positions and leaves its result there, to be measured as every run is."""

    def __init__(self, system: openmm.System, platform: str, properties: Dict[str, str]):
        self.system, self.platform, self.properties = system, platform, properties
        self.context: Optional[openmm.Context] = None

    def take_start(self, context: openmm.Context) -> openmm.Context:
        if self.context is None:
            self.context = openmm.Context(self.system, openmm.VerletIntegrator(0.001),
                                          openmm.Platform.getPlatformByName(self.platform), self.properties)
        state = context.getState(getPositions=True)
        if self.system.usesPeriodicBoundaryConditions():
            self.context.setPeriodicBoxVectors(*state.getPeriodicBoxVectors())
        self.context.setPositions(state.getPositions(asNumpy=True))
        return self.context

    def give_back(self, context: openmm.Context, tolerance: float, record: Dict[str, Any]) -> Dict[str, Any]:
        """The CPU Context gets the final positions; RMS force, convergence and (not converged) what holds it back
        measured there (the other Context's own are kept as ``own_*``)."""
        from openmm_reparam.core.bridge import EnergyBridge
        from openmm_reparam.core.obstacles import find_obstacles

        context.setPositions(self.context.getState(getPositions=True).getPositions(asNumpy=True))
        bridge = EnergyBridge(context)
        rms, largest = bridge.force_norms()
        own = {f"own_{key}": record.get(key) for key in ("rms_force", "max_force", "converged", "obstacles")}
        own["own_final_energy"] = context_energy(self.context)
        obstacles = [] if rms <= tolerance else [asdict(o) for o in find_obstacles(bridge)]
        return {**record, **own, "rms_force": rms, "max_force": largest, "converged": bool(rms <= tolerance),
                "obstacles": obstacles}


def _on_device(other: _OtherContext):
    def run(context: openmm.Context, tolerance: float) -> Dict[str, Any]:
        device = other.take_start(context)
        record = everyday.run_ours(device, "default", 0, tolerance)
        record["platform"] = other.platform
        return other.give_back(context, tolerance, record)
    return run


def _uncounted_lem(other: _OtherContext):
    def run(context: openmm.Context, tolerance: float, previous: List[Dict[str, Any]]) -> Dict[str, Any]:
        record = _lem(other.take_start(context), tolerance)
        record.pop("force_evaluations", None)  # its System has no counter: nothing was counted
        record["platform"] = "CPU, no counter"
        return other.give_back(context, tolerance, record)
    return run


def plan_labels(case_name: str, engines: Sequence[str], device_cases: Sequence[str],
                counter_check: bool = False) -> List[str]:
    """The run labels of a case, in the order they run (LEM first: the others' ratios refer to it)."""
    labels = ["lem"] + (["lem_uncounted"] if counter_check else [])
    return labels + [f"default/{e}" for e in engines if e != "opencl" or case_name in device_cases]


def run_case(name: str, engines: Sequence[str] = ENGINES, seeds: int = 1, threads: int = 2,
             out_dir: Optional[str] = None, env: Optional[Dict[str, Any]] = None,
             device_cases: Sequence[str] = DEVICE_CASES, precision: str = "single",
             counter_check: bool = False) -> Dict[str, Any]:
    """Build case ``name`` and run LEM and the default on every engine from each start; returns the record."""
    t0 = time.perf_counter()
    case = hard_cases.build_case(name)
    prepare_time = time.perf_counter() - t0
    plain = openmm.XmlSerializer.clone(case.system) if counter_check else None
    _log(f"[hard] {name}: {case.n_atoms} atoms, {case.description} (prepared in {prepare_time:.1f} s)")
    device = _OtherContext(case.system, DEVICE_PLATFORM, {"Precision": precision})
    runners = {"lem": _explained(_lem, case.topology),
               **{f"default/{e}": _explained(_default_on(e), case.topology) for e in ("python", "cpp")},
               "default/opencl": _explained(_on_device(device), case.topology)}
    if plain is not None:
        runners["lem_uncounted"] = _uncounted_lem(_OtherContext(plain, "CPU", {"Threads": str(threads)}))
    labels = plan_labels(name, engines, device_cases, counter_check)
    plan = [(seed, label, seed) for seed in range(seeds) for label in labels]
    extra = {"engines": list(engines), "device_precision": precision, "counter_group": COUNTER_GROUP}
    return everyday.run_plan_on_case(case, plan, threads, out_dir, None, env or environment(), prepare_time,
                                     BENCHMARK, runners, extra)


def run_hard(cases: Optional[Sequence[str]] = None, engines: Sequence[str] = ENGINES, seeds: int = 1,
             threads: int = 2, out_dir: Optional[str] = None, command: Optional[str] = None,
             device_cases: Sequence[str] = DEVICE_CASES, precision: str = "single",
             counter_check: bool = False) -> List[Dict[str, Any]]:
    """Run the named cases (names, ``implicit``, ``explicit``, ``all``; default all) one after another."""
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        raise ValueError(f"unknown engine(s) {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    names = hard_cases.resolve_cases(cases)
    env = dict(environment(), command=command)
    return [run_case(name, engines, seeds, threads, out_dir, env, device_cases, precision, counter_check)
            for name in names]


# ---- the report -----------------------------------------------------------------------------------------------
def load(out_dir: str) -> List[Dict[str, Any]]:
    """The case records under ``out_dir/hard``, in the suite's case order."""
    order = list(hard_cases.CASES)
    records = [json.load(open(p)) for p in glob.glob(os.path.join(out_dir, BENCHMARK, "*.json"))]
    return sorted(records, key=lambda c: (order.index(c["case"]) if c["case"] in order else len(order), c["case"]))


def goal_rows(cases: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Per (case, start, default run): what each goal asks and whether it is met (``None``: not a goal there)."""
    rows = []
    for case in cases:
        lem = {r["start_seed"]: r for r in case["runs"] if r["label"] == "lem"}
        for r in case["runs"]:
            if not r["label"].startswith("default/"):
                continue
            ref = lem.get(r["start_seed"])
            finite = not r.get("error") and bool(np.isfinite(r["final_energy"]))
            row = {"case": case["case"], "start": r["start_seed"], "label": r["label"], "run": r, "lem": ref,
                   "finite": finite, "converged": finite and bool(r.get("converged"))}
            if ref is not None and finite and not ref.get("error"):
                row["energy_ok"] = r["final_energy"] <= ref["final_energy"] + energy_slack(ref["final_energy"])
                row["time_ok"] = None if r["label"] == "default/opencl" else r["wall_time"] < ref["wall_time"]
                row["evaluations_ok"] = evaluations_ok(r, ref)
            else:
                row["energy_ok"] = row["time_ok"] = row["evaluations_ok"] = False
            row["met"] = (row["finite"] and row["converged"] and row["energy_ok"] and row["time_ok"] is not False
                          and row["evaluations_ok"] is not False)
            rows.append(row)
    return rows


def goals_table(rows: List[Dict[str, Any]]) -> str:
    header = ["case", "start", "run", "method", "LEM s", "time s", "time/LEM", "LEM evals", "evals",
              "allowed evals", "E − E_LEM", "allowed ΔE", "RMS F", "finite", "converged", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        r, lem = row["run"], row["lem"] or {}
        ratio = r.get("time_ratio")
        time_cell = "-" if ratio is None else f"{ratio:.2f}" + ("" if row["time_ok"] is not False else " **slow**")
        if row["time_ok"] is None:
            time_cell += " (not timed)"
        diff = r.get("energy_diff")
        counted = row.get("evaluations_ok") is not None and lem.get("force_evaluations")
        evaluation_cells = ([str(lem["force_evaluations"]),
                             f"{r['force_evaluations']}" + ("" if row["evaluations_ok"] else " **many**"),
                             f"{evaluations_allowed(lem['force_evaluations']):.0f}"] if counted else ["-"] * 3)
        lines.append("| " + " | ".join([
            row["case"], str(row["start"]), row["label"], str(r.get("method", "-")),
            f"{lem.get('wall_time', float('nan')):.2f}", f"{r['wall_time']:.2f}", time_cell, *evaluation_cells,
            "-" if diff is None else f"{diff:+.1f}" + ("" if row["energy_ok"] else " **high**"),
            f"{energy_slack(lem['final_energy']):.3g}" if lem else "-", f"{r.get('rms_force', float('nan')):.3g}",
            "yes" if row["finite"] else "**no**", "yes" if row["converged"] else "**no**",
            "yes" if row["met"] else "**no**"]) + " |")
    return "\n".join(lines) + "\n"


def summarize(cases: List[Dict[str, Any]]) -> str:
    """The whole Markdown report: environment, cases (start energy and forces), results, goals."""
    def start_line(c: Dict[str, Any]) -> str:
        lem = next((r for r in c["runs"] if r["label"] == "lem"), {})
        forces = (f"; start E {lem['initial_energy']:.3g} kJ/mol, RMS F {lem['start_rms_force']:.3g}, max F "
                  f"{lem['start_max_force']:.3g} kJ/mol/nm" if "start_max_force" in lem else "")
        return f"- `{c['case']}` ({c['n_atoms']} atoms, {c['n_constraints']} constraints): {c['description']}{forces}"

    rows = goal_rows(cases)
    met = sum(row["met"] for row in rows)
    held = [f"- `{c['case']}` start {r['start_seed']} `{r['label']}`: {r['held_back_by']}" for c in cases
            for r in c["runs"] if r.get("held_back_by")]
    return (f"# Benchmark `hard`\n\nTolerance {cases[0].get('tolerance', 10)} kJ/mol/nm; wall times of the "
            f"minimization call alone; `lem` is OpenMM's LocalEnergyMinimizer, `default/<engine>` is "
            f"`openmm_reparam.minimize(context, engine=...)` (`auto`; method as chosen), `default/opencl` the "
            f"default on an OpenCL Context (device stages; not timed), measured on the CPU Context. Force evals: "
            f"every force evaluation of the Context during the call, LEM's line searches included.\n\n"
            f"{report.environment_text(cases)}\n" + "\n".join(start_line(c) for c in cases) +
            f"\n\n{report.results_table(cases)}\nGoals (finite, converged, E ≤ E_LEM + max(1, 1e-5 |E_LEM|), "
            f"faster than LEM on the CPU engines, no more force evaluations than LEM and at most half of LEM's where "
            f"LEM needs more than 300): met by {met} of {len(rows)} runs.\n\n{goals_table(rows)}" +
            ("\nRuns that did not converge, and what holds them back (measured on the CPU Context):\n\n" +
             "\n".join(held) + "\n" if held else ""))


def write_report(out_dir: str) -> Optional[str]:
    """Write ``out_dir/hard/RESULTS.md``; returns its text (None if there are no records)."""
    return report.write_summary(out_dir, BENCHMARK, load(out_dir), summarize)
