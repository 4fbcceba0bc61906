"""The timing step of the device check (``benchmarks/device_check.sh`` runs it on a GPU machine):
``openmm_reparam.minimize(context)`` (the default, no options) against ``openmm.LocalEnergyMinimizer`` on a device
platform (CUDA), on the everyday suite's solvated chignolin (``chignolin``) and the 85k-atom Max-DNA complex
(``max_dna``, ../shared/data/pdb/1HLO in TIP3P), from the same start on the same Context, side by side; plus the
cost of one device Adam step against one bare force evaluation. Appends a subsection to the device section of
RESULTS.md (``benchmarks/RESULTS.md#device``).

    python -m benchmarks device-timing --platform CUDA --cases chignolin,max_dna --results benchmarks/RESULTS.md
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import openmm
from openmm import unit

from openmm_reparam.core.platforms import openmm_lbfgs_blocker

from . import everyday, everyday_cases
from .results_file import insert_at_end_of_section, replace_in_heading
from .runner import environment, json_default

SECTION = "device"  # the anchor of the device section in RESULTS.md


def step_cost(context: openmm.Context, start: np.ndarray, steps: int = 50) -> Dict[str, float]:
    """Seconds per device Adam step (``runDeviceAdamStage``, ``steps`` steps, no early stop) and per bare force
    evaluation (``timeForceEvaluation``) on ``context`` from ``start``; empty when no device stage is there."""
    from openmm_reparam.engines import compiled
    from openmm_reparam.engines.device import device_adam_available

    plugin = compiled.plugin()
    context.setPositions(start * unit.nanometer)
    if not device_adam_available(context, plugin):
        return {}
    bare = float(plugin.timeForceEvaluation(context, 20))
    values = dict(name="adam", lr=1e-3, clip_norm=1e3, rel_tol=1e-4, collapse_distance=0.07, spike_factor=1e3,
                  constraint_stiffness=1e5, torch_threads=1, max_steps=steps, patience=10 * steps,
                  progress_window=0, progress_fraction=0.0, time_limit=-1.0)
    settings = compiled.fill_cpp_settings(plugin.AdamStageSettings(), values)
    plugin.runDeviceAdamStage(context, settings)  # compiles the kernels
    context.setPositions(start * unit.nanometer)
    outcome = plugin.runDeviceAdamStage(context, settings)
    per_step = float(outcome.wallTime) / max(1, int(outcome.iterations))
    return {"bare_force_s": bare, "device_adam_step_s": per_step, "step_over_bare": per_step / bare}


def time_case(name: str, platform: str, precision: str) -> Dict[str, Any]:
    """LEM and the default from the case's start on one Context of ``platform``; the runs with ratios."""
    t0 = time.perf_counter()
    case = everyday_cases.build_case(name)
    prepare = time.perf_counter() - t0
    start = case.make_start(0)
    properties = {"Precision": precision} if precision else {}
    context = openmm.Context(case.system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform),
                             properties)
    context.setPositions(start * unit.nanometer)
    blocker = openmm_lbfgs_blocker(context)
    if blocker:  # the LEM run would crash the process
        raise SystemExit(f"device_timing: {blocker}")
    runs: List[Dict[str, Any]] = []
    for label in ("lem", "default"):
        runs.append(everyday.run_one(context, case, start, label, 0, 0, everyday.TOLERANCE, None))
        everyday.add_ratios(runs)
    return {"case": name, "n_atoms": case.n_atoms, "platform": platform, "precision": precision or "default",
            "device": _property(context, "DeviceName"), "prepare_s": prepare, "runs": runs,
            "step_cost": step_cost(context, start)}


def _property(context: openmm.Context, name: str) -> str:
    try:
        return context.getPlatform().getPropertyValue(context, name)
    except openmm.OpenMMException:
        return ""


def header(record: Dict[str, Any], env: Dict[str, Any]) -> str:
    """The subsection's title and table head (RESULTS.md)."""
    return "\n".join([
        f"\n### Run of {env['date_utc']} UTC: {record['platform']} on {record['device'] or '?'} (precision "
        f"{record['precision']}; commit {env.get('git_commit', '?')})\n",
        "Goals: the default at most 0.5x LEM's time at an energy at most LEM's; a device step at most "
        "1.2x a bare force evaluation.\n",
        "| case | atoms | LEM s | LEM kJ/mol | default s | default kJ/mol | time / LEM | E - E_LEM | engine: stages | "
        "device Adam step / bare force |", "|---|---|---|---|---|---|---|---|---|---|"])


def row(record: Dict[str, Any]) -> str:
    """One case: LEM and the default side by side."""
    lem, ours = record["runs"][0], record["runs"][1]
    stages = ", ".join(f"{s['name']} {s['wall_time']:.2f} s" for s in ours.get("stages", []))
    cost = record["step_cost"]
    ratio = (f"{cost['step_over_bare']:.2f} ({cost['device_adam_step_s'] * 1e3:.2f} / "
             f"{cost['bare_force_s'] * 1e3:.2f} ms)") if cost else "no device stage"
    nan = float("nan")
    return (f"| {record['case']} | {record['n_atoms']} | {lem['wall_time']:.2f} | {lem['final_energy']:.1f} | "
            f"{ours['wall_time']:.2f} | {ours['final_energy']:.1f} | {ours.get('time_ratio') or nan:.2f} | "
            f"{ours.get('energy_diff') or nan:.1f} | {ours.get('engine', ours.get('error', '?'))}: {stages} | {ratio} |")


def append_results(path: str, text: str, new_paragraph: bool = True) -> None:
    """Add ``text`` at the end of the device section of RESULTS.md (a further table row with
    ``new_paragraph=False``) and mark the GPU check there as run."""
    insert_at_end_of_section(path, SECTION, text, new_paragraph)
    replace_in_heading(path, SECTION, "*the GPU check has not run*", "*the GPU check ran (see its runs below)*")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks device-timing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--platform", default="CUDA")
    parser.add_argument("--precision", default="", help="the platform's Precision property (default: its own)")
    parser.add_argument("--cases", default="chignolin,max_dna")
    parser.add_argument("--results", default="", help="RESULTS.md to append to (default: print only)")
    parser.add_argument("--json", default="", help="write the records here too")
    args = parser.parse_args(argv)
    env = environment()
    records: List[Dict[str, Any]] = []
    for name in [name for name in args.cases.split(",") if name]:  # written case by case: a cut run keeps them
        records.append(time_case(name, args.platform, args.precision))
        text = (header(records[0], env) + "\n" if len(records) == 1 else "") + row(records[-1])
        print(text, flush=True)
        if args.results:
            append_results(args.results, text, new_paragraph=len(records) == 1)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump({"environment": env, "records": records}, handle, indent=1, default=json_default)
    return 0

