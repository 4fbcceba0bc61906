"""Tables of the external benchmark from its JSON (``python -m benchmarks report OUT external``): one row per
(case, start) with every run side by side, the goals for the default, the ASE comparison, and what was skipped
or failed. Written to ``OUT/external/RESULTS.md``.

Goals (checked per (case, start) for ``default``): time ≤ LEM's (≤ LEM's + 25 ms where LEM takes under
0.25 s); force evaluations ≤ LEM's (≤ half of LEM's where LEM needs more than 300; where both were counted:
:mod:`benchmarks.evaluations`); final energy ≤ E_LEM + max(1 kJ/mol, 1e-5 |E_LEM|); converged. Over the (case, start) pairs where LEM
takes more than 1 s, the median time ratio ≤ 0.4. Against ASE (implicit solvent): faster than ASE's best
optimizer at an energy at or below its (with the same energy slack); ASE's best is its fastest converged run
(its lowest energy if none converged).
"""
from __future__ import annotations

import glob
import json
import os
from collections import defaultdict
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import report
from .evaluations import evaluations_allowed, evaluations_ok
from .external_cases import ALL_ORDER, GROUP_DESCRIPTIONS

BENCHMARK = "external"
LABELS = ("default", "gnn", "linear", "adam", "lbfgs", "precon", "fire")
ASE_LABELS = ("ase_fire", "ase_lbfgs", "ase_preconlbfgs")
SMALL_LEM_S, SMALL_SLACK_S = 0.25, 0.025
MEDIAN_OVER_S, MEDIAN_GOAL = 1.0, 0.4


def load(out_dir: str) -> List[Dict[str, Any]]:
    """The case records under ``out_dir/external``, by group (in the suite's order), then name."""
    records = [json.load(open(p)) for p in glob.glob(os.path.join(out_dir, BENCHMARK, "*.json"))]
    order = list(ALL_ORDER)
    return sorted(records, key=lambda c: (order.index(c.get("group")) if c.get("group") in order else len(order),
                                          c["case"]))


def energy_slack(e_lem: float) -> float:
    return max(1.0, 1e-5 * abs(e_lem))


def time_allowed(t_lem: float) -> float:
    return t_lem + SMALL_SLACK_S if t_lem < SMALL_LEM_S else t_lem


def _by_start(case: Dict[str, Any]) -> Dict[Any, Dict[str, Dict[str, Any]]]:
    starts: Dict[Any, Dict[str, Dict[str, Any]]] = defaultdict(dict)
    for r in case["runs"]:
        starts[r["start_seed"]][r["label"]] = r
    return starts


def _ok(value: Any) -> bool:
    return value is not None and np.isfinite(value)


def _diff(d: Optional[float]) -> str:
    if not _ok(d):
        return "-"
    if abs(d) >= 100:
        return f"{d:+.0f}"
    return f"{d:+.1f}" if abs(d) >= 0.1 else f"{d:+.2g}"


def _cell(r: Optional[Dict[str, Any]]) -> str:
    """``time/LEM× ΔE ✓`` (✗ not converged), ``n/a`` (not run on this System), ``error``."""
    if r is None:
        return ""
    if r.get("error"):
        return "n/a" if r["error"].startswith("NotImplementedError") else "**error**"
    ratio = f"{r['time_ratio']:.2f}×" if _ok(r.get("time_ratio")) else f"{r['wall_time']:.2f} s"
    if _ok(r.get("evaluation_ratio")):
        ratio += f" {r['evaluation_ratio']:.2f}×e"
    return f"{ratio} {_diff(r.get('energy_diff'))} {'✓' if r.get('converged') else '✗'}"


def _seconds(t: float) -> str:
    return f"{t:.2f} s" if t >= 1 else (f"{t:.3f} s" if t >= 0.01 else f"{t * 1000:.2g} ms")


def _start_name(start: Any) -> str:
    return "own" if start == "own" else f"noise {start}"


def results_table(cases: List[Dict[str, Any]]) -> str:
    header = ["case", "group", "start", "atoms", "constr.", "LEM time", "LEM evals", "E_LEM", "default (auto →)",
              *LABELS[1:],
              "best ASE"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for case in cases:
        if case.get("skipped"):
            continue
        for start, runs in _by_start(case).items():
            lem, default = runs.get("lem"), runs.get("default")
            lem_ok = lem is not None and not lem.get("error")
            chose = default.get("method", "?") if default and not default.get("error") else "-"
            best = best_ase(runs)
            row = [case["case"] + ("" if case.get("complete", True) else " (incomplete)"), case["group"],
                   _start_name(start), str(case["n_atoms"]), str(case["n_constraints"]),
                   (_seconds(lem["wall_time"]) + ("" if lem["converged"] else " ✗")) if lem_ok else "**error**",
                   str(lem.get("force_evaluations", "-")) if lem_ok else "-",
                   f"{lem['final_energy']:.6g}" if lem_ok else "-",
                   f"{chose}: {_cell(default)}", *[_cell(runs.get(label)) for label in LABELS[1:]],
                   f"{best['label'][4:]}: {_cell(best)}" if best else ""]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def goal_rows(cases: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Per (case, start): the default against LEM and whether each goal is met."""
    rows = []
    for case in cases:
        for start, runs in _by_start(case).items():
            lem, default = runs.get("lem"), runs.get("default")
            if lem is None or default is None or lem.get("error"):
                continue
            row = {"case": case["case"], "group": case["group"], "start": start, "lem": lem, "default": default,
                   "error": default.get("error")}
            if not row["error"]:
                row.update(time_ok=default["wall_time"] <= time_allowed(lem["wall_time"]),
                           evaluations_ok=evaluations_ok(default, lem),
                           energy_ok=default["energy_diff"] <= energy_slack(lem["final_energy"]),
                           converged=bool(default["converged"]))
            rows.append(row)
    return rows


def goals_table(rows: List[Dict[str, Any]]) -> str:
    header = ["case", "start", "LEM", "default", "allowed", "LEM evals", "default evals", "allowed evals",
              "E − E_LEM", "allowed ΔE", "converged", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lem, d = row["lem"], row["default"]
        if row["error"]:
            cells = ["-"] * 8 + ["**error**"]
        else:
            counted = row["evaluations_ok"] is not None
            cells = [_seconds(d["wall_time"]) + ("" if row["time_ok"] else " **slow**"),
                     _seconds(time_allowed(lem["wall_time"])),
                     str(lem["force_evaluations"]) if counted else "-",
                     (str(d["force_evaluations"]) + ("" if row["evaluations_ok"] else " **many**")) if counted
                     else "-",
                     f"{evaluations_allowed(lem['force_evaluations']):.0f}" if counted else "-",
                     _diff(d["energy_diff"]) + ("" if row["energy_ok"] else " **high**"),
                     f"{energy_slack(lem['final_energy']):.3g}", "yes" if row["converged"] else "**no**",
                     "yes" if goals_met(row) else "**no**"]
        lines.append("| " + " | ".join([row["case"], _start_name(row["start"]), _seconds(lem["wall_time"]),
                                        *cells]) + " |")
    return "\n".join(lines) + "\n"


def goals_met(row: Dict[str, Any]) -> bool:
    """Every per-case goal of a (case, start) row (evaluations only where both runs were counted)."""
    return (not row["error"] and row["time_ok"] and row["evaluations_ok"] is not False and row["energy_ok"]
            and row["converged"])


def median_line(rows: List[Dict[str, Any]]) -> str:
    ratios = [r["default"]["time_ratio"] for r in rows if r["lem"]["wall_time"] > MEDIAN_OVER_S
              and not r["error"] and _ok(r["default"].get("time_ratio"))]
    met = [r for r in rows if goals_met(r)]
    counted = [r["default"]["evaluation_ratio"] for r in rows
               if not r["error"] and _ok(r["default"].get("evaluation_ratio"))]
    text = f"Default meets every per-case goal on {len(met)} of {len(rows)} (case, start) pairs. "
    if counted:
        text += (f"Median default evaluations/LEM over the {len(counted)} counted pairs: "
                 f"{float(np.median(counted)):.2f}. ")
    if not ratios:
        return text + f"No (case, start) pair has LEM above {MEDIAN_OVER_S:g} s.\n"
    median = float(np.median(ratios))
    verdict = "met" if median <= MEDIAN_GOAL else "**not met**"
    return (text + f"Median default time/LEM over the {len(ratios)} pairs where LEM takes more than "
            f"{MEDIAN_OVER_S:g} s: {median:.2f} (goal ≤ {MEDIAN_GOAL:g}: {verdict}).\n")


def best_ase(runs: Dict[str, Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """ASE's fastest converged run of a start (its lowest energy if none converged; None if none ran)."""
    ran = [runs[label] for label in ASE_LABELS if label in runs and not runs[label].get("error")]
    converged = [r for r in ran if r.get("converged")]
    if converged:
        return min(converged, key=lambda r: r["wall_time"])
    return min(ran, key=lambda r: r["final_energy"]) if ran else None


def _ase_cell(r: Optional[Dict[str, Any]]) -> str:
    if r is None:
        return ""
    if r.get("error"):
        return "n/a" if r["error"].startswith("NotImplementedError") else "**error**"
    steps = r["stages"][0].get("iterations") if r.get("stages") else None
    return (f"{_seconds(r['wall_time'])}, {r['final_energy']:.6g}, {steps} steps "
            f"{'✓' if r.get('converged') else '✗ (' + str(r['stages'][0].get('stop_reason')) + ')'}")


def ase_table(cases: List[Dict[str, Any]]) -> Tuple[str, int, int]:
    """Markdown: per (case, start) with ASE runs, the default against each ASE optimizer and its best; returns
    (table, pairs where the default is ahead, pairs compared)."""
    header = ["case", "start", "default time, E", "ASE FIRE", "ASE LBFGS", "ASE PreconLBFGS", "default ahead"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    ahead = compared = 0
    for case in cases:
        for start, runs in _by_start(case).items():
            best, default = best_ase(runs), runs.get("default")
            if best is None or default is None or default.get("error"):
                continue
            compared += 1
            slack = energy_slack(best["final_energy"])
            faster = default["wall_time"] < best["wall_time"]
            lower = default["final_energy"] <= best["final_energy"] + slack
            ok = faster and lower and bool(default["converged"])
            ahead += ok
            verdict = "yes" if ok else "**no**" + (" (slower)" if not faster else "") + \
                (" (higher E)" if not lower else "") + ("" if default["converged"] else " (not converged)")
            lines.append("| " + " | ".join([case["case"], _start_name(start),
                                            f"{_seconds(default['wall_time'])}, {default['final_energy']:.6g}",
                                            *[_ase_cell(runs.get(label)) for label in ASE_LABELS], verdict]) + " |")
    return "\n".join(lines) + "\n", ahead, compared


def problems_text(cases: List[Dict[str, Any]]) -> str:
    """Skipped cases (with the reason) and runs that raised (with the error), as Markdown lists."""
    skipped = [f"- `{c['case']}` ({c['group']}): {c['skipped']}" for c in cases if c.get("skipped")]
    errors = [f"- `{c['case']}` {_start_name(r['start_seed'])} `{r['label']}`: {r['error']}"
              for c in cases for r in c.get("runs", []) if r.get("error")
              and not r["error"].startswith("NotImplementedError")]
    return ("Skipped:\n\n" + ("\n".join(skipped) or "- none") + "\n\nRuns that raised:\n\n" +
            ("\n".join(errors) or "- none") + "\n")


def summarize(cases: List[Dict[str, Any]]) -> str:
    """The whole Markdown report."""
    ran = [c for c in cases if not c.get("skipped")]
    groups = sorted({c["group"] for c in cases}, key=lambda g: ALL_ORDER.index(g) if g in ALL_ORDER else 99)
    rows = goal_rows(ran)
    ase, ahead, compared = ase_table(ran)
    group_text = "\n".join(f"- `{g}` ({GROUP_DESCRIPTIONS.get(g, '')}): " +
                           ", ".join(c["case"] for c in cases if c["group"] == g) for g in groups)
    return (f"# Benchmark `external`\n\nTolerance 10 kJ/mol/nm; wall times of the minimization call alone. A "
            f"method cell is `time/LEM evals/LEM×e ΔE converged` (force evaluations counted as in "
            f"benchmarks/evaluations.py; ΔE = E − E_LEM in kJ/mol; ✓ converged, ✗ not); `default` "
            f"is `openmm_reparam.minimize(context)` as is, with what `auto` chose; the methods run with "
            f"`never_worse=False`. ✗ after LEM's time: LEM did not converge.\n\n"
            f"{report.environment_text(ran or cases)}\nGroups:\n\n{group_text}\n\n{results_table(ran)}\n"
            f"Goals for the default:\n\n{goals_table(rows)}\n{median_line(rows)}\n"
            f"Against ASE (same Context; default ahead on {ahead} of {compared}):\n\n{ase}\n{problems_text(cases)}")


def write_report(out_dir: str) -> Optional[str]:
    """Write ``out_dir/external/RESULTS.md``; returns its text (None if there are no records)."""
    return report.write_summary(out_dir, BENCHMARK, load(out_dir), summarize)
