"""Tables of the everyday benchmark, from the per-case JSON files under ``<out>/everyday/``.

One row per (case, run label): ``lem`` (OpenMM's LocalEnergyMinimizer), ``default`` (``minimize(context)`` as
is), then each method. With several runs a cell shows the median and [min, max]; ``time/LEM`` and ``E - E_LEM``
compare every run with the LEM run from the same start, then take the median. A second table checks the default
against the goals of issue 10 (see :func:`time_goal`).
"""
from __future__ import annotations

import glob
import json
import os
from collections import defaultdict
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

BENCHMARK = "everyday"
LABEL_ORDER = ("lem", "default", "gnn", "linear", "adam", "lbfgs")
#: "At or below LEM's energy" allows for the CPU platform's summation noise (kJ/mol).
ENERGY_SLACK = 1e-2


def load_cases(out_dir: str) -> List[Dict[str, Any]]:
    """The case records under ``out_dir/everyday``, in the suite's case order."""
    from .everyday_cases import CASES

    order = list(CASES)
    records = [json.load(open(p)) for p in glob.glob(os.path.join(out_dir, BENCHMARK, "*.json"))]
    return sorted(records, key=lambda c: (order.index(c["case"]) if c["case"] in order else len(order), c["case"]))


def time_goal(case: Dict[str, Any]) -> float:
    """The default's allowed wall time as a multiple of LEM's: 0.5 for explicit solvent of 5k atoms or more,
    1.5 for implicit solvent under 1k atoms, otherwise 1.0 (faster than LEM on every case)."""
    if case["kind"] == "explicit" and case["n_atoms"] >= 5000:
        return 0.5
    if case["kind"] == "implicit" and case["n_atoms"] < 1000:
        return 1.5
    return 1.0


def _finite(values: Sequence[Any]) -> List[float]:
    return [float(v) for v in values if v is not None and np.isfinite(v)]


def _cell(values: Sequence[Any], fmt: str, signed: bool = False) -> str:
    values = _finite(values)
    if not values:
        return "-"
    f = (lambda v: ("+" if v > 0 else "") + fmt.format(v)) if signed else fmt.format
    if len(values) == 1:
        return f(values[0])
    return f"{f(float(np.median(values)))} [{f(min(values))}, {f(max(values))}]"


def _stages_cell(runs: List[Dict[str, Any]]) -> str:
    times: Dict[str, List[float]] = defaultdict(list)
    for r in runs:
        for stage in r.get("stages", []):
            times[stage["name"]].append(stage["wall_time"])
    return ", ".join(f"{name} {np.median(t):.2f}" for name, t in times.items())


def _ordered(labels) -> List[str]:
    return sorted(labels, key=lambda m: (LABEL_ORDER.index(m) if m in LABEL_ORDER else len(LABEL_ORDER), m))


def results_table(cases: List[Dict[str, Any]]) -> str:
    """Markdown: case, atoms, method, runs, time s, time/LEM, E, E - E_LEM, RMS F, converged, stage times."""
    header = ["case", "atoms", "method", "runs", "time s", "time/LEM", "E (kJ/mol)", "E − E_LEM", "RMS F",
              "converged", "stage times (s, median)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for case in cases:
        by_label: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
        for r in case["runs"]:
            by_label[r["label"]].append(r)
        for label in _ordered(by_label):
            runs = by_label[label]
            failed = sum(1 for r in runs if r.get("error"))
            name = case["case"] + ("" if case.get("complete", True) else " (incomplete)")
            resolved = {r.get("method") for r in runs if not r.get("error")}
            shown = f"{label} ({resolved.pop()})" if label == "default" and len(resolved) == 1 else label
            row = [name, str(case["n_atoms"]), shown, str(len(runs)) + (f" ({failed} failed)" if failed else ""),
                   _cell([r["wall_time"] for r in runs], "{:.2f}"),
                   _cell([r.get("time_ratio") for r in runs], "{:.2f}"),
                   _cell([r["final_energy"] for r in runs], "{:.1f}"),
                   _cell([r.get("energy_diff") for r in runs], "{:.1f}", signed=True),
                   _cell([r.get("rms_force") for r in runs], "{:.2f}"),
                   f"{sum(bool(r.get('converged')) for r in runs)}/{len(runs)}", _stages_cell(runs)]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def goals_table(cases: List[Dict[str, Any]]) -> str:
    """Markdown: per case, the default's worst time/LEM and E - E_LEM against the goal, and whether it is met
    (every run converged, at or below LEM's energy and within the time goal)."""
    header = ["case", "atoms", "solvent", "goal time/LEM", "default time/LEM (worst)", "E − E_LEM (worst)",
              "converged", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for case in cases:
        runs = [r for r in case["runs"] if r["label"] == "default"]
        ratios = _finite([r.get("time_ratio") for r in runs])
        diffs = _finite([r.get("energy_diff") for r in runs])
        if not runs or len(ratios) < len(runs) or len(diffs) < len(runs):
            met = "no data"
        else:
            ok = (max(ratios) <= time_goal(case) and max(diffs) <= ENERGY_SLACK
                  and all(r.get("converged") for r in runs))
            met = "yes" if ok else "**no**"
        lines.append("| " + " | ".join([
            case["case"], str(case["n_atoms"]), case["kind"], f"{time_goal(case):g}",
            f"{max(ratios):.2f}" if ratios else "-", f"{max(diffs):+.1f}" if diffs else "-",
            f"{sum(bool(r.get('converged')) for r in runs)}/{len(runs)}", met]) + " |")
    return "\n".join(lines) + "\n"


def environment_text(cases: List[Dict[str, Any]]) -> str:
    """Machine, date, command, threads and package versions of the runs (one line per distinct environment)."""
    seen, lines = set(), []
    for case in cases:
        env = case.get("environment", {})
        key = json.dumps({k: v for k, v in env.items() if k != "date_utc"}, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        lines.append(
            f"- {env.get('date_utc', '?')} UTC on {env.get('cpu_model') or env.get('processor') or '?'} "
            f"({env.get('cpu_count', '?')} CPUs, host {env.get('hostname', '?')}), CPU platform with "
            f"{case.get('threads', '?')} threads; openmm {env.get('openmm')}, openmm-reparam "
            f"{env.get('openmm_reparam')} ({env.get('git_commit')}), torch {env.get('torch')}, numpy "
            f"{env.get('numpy')}, pdbfixer {env.get('pdbfixer')}, python {env.get('python')}"
            + (f"; command: `{env['command']}`" if env.get("command") else ""))
    return "\n".join(lines) + "\n"


def summarize_everyday(cases: List[Dict[str, Any]]) -> str:
    """The whole Markdown report: environment, cases, results, goals."""
    described = "\n".join(f"- `{c['case']}` ({c['n_atoms']} atoms): {c['description']}" for c in cases)
    return (f"# Benchmark `everyday`\n\nTolerance {cases[0].get('tolerance', 10)} kJ/mol/nm; wall times of the "
            f"minimization call alone; `lem` is OpenMM's LocalEnergyMinimizer, `default` is "
            f"`openmm_reparam.minimize(context)` with no options, the methods run with `never_worse=False`.\n\n"
            f"{environment_text(cases)}\n{described}\n\n{results_table(cases)}\n"
            f"Goals for the default (issue 10):\n\n{goals_table(cases)}")


def write_everyday_report(out_dir: str) -> Optional[str]:
    """Write ``out_dir/everyday/RESULTS.md``; returns its text (None if there are no runs)."""
    cases = load_cases(out_dir)
    if not cases:
        return None
    text = summarize_everyday(cases)
    with open(os.path.join(out_dir, BENCHMARK, "RESULTS.md"), "w") as handle:
        handle.write(text)
    return text
