"""``python -m benchmarks report OUT [BENCHMARK ...]``: summaries of benchmark runs, from their JSON: a Markdown
table per benchmark and energy-versus-time plots per case for the paper benchmarks (loop, refold, relax), and the
everyday tables.

Paper benchmarks: per (case, method) the table gives the median over seeds (and [min, max]) of the final energy,
wall time, energy evaluations and structure metrics, the fraction converged, the time to first reach the RMS-force
tolerance ("t to tol", converged runs only), and the time each run needed to reach the
final energy of OpenMM's L-BFGS on the same case and seed (starts may differ per seed; the median over seeds
when that seed has no L-BFGS run) ("t to L-BFGS E"; "-" when it never got there).
Plots show, per method, the best energy found so far against wall time: median over seeds as a line, the
min-max spread over seeds as a band.

Everyday: one row per (case, run label): ``lem`` (OpenMM's LocalEnergyMinimizer), ``default``
(``minimize(context)`` as is), then each method. With several runs a cell shows the median and [min, max];
``time/LEM`` and ``E - E_LEM`` compare every run with the LEM run from the same start, then take the median. A
second table checks the default against the goals of the everyday suite (see :func:`time_goal`).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
from collections import defaultdict
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

METRIC_COLUMNS = {
    "loop": [("contacts_formed", "contacts formed", "{:.2f}"), ("contacts_collapsed", "collapsed", "{:.3f}")],
    "refold": [("ca_rmsd", "Ca-RMSD (A)", "{:.2f}"), ("heavy_rmsd", "heavy RMSD (A)", "{:.2f}")],
    "relax": [("ca_rmsd", "Ca-RMSD (A)", "{:.2f}"), ("heavy_rmsd", "heavy RMSD (A)", "{:.2f}")],
}
METHOD_ORDER = ("gnn", "linear", "adam", "lbfgs")
EVERYDAY = "everyday"
LABEL_ORDER = ("lem", "default", "gnn", "linear", "adam", "lbfgs")
#: "At or below LEM's energy" allows for the CPU platform's summation noise (kJ/mol).
ENERGY_SLACK = 1e-2


def load_records(out_dir: str, benchmark: str) -> List[Dict[str, Any]]:
    paths = sorted(glob.glob(os.path.join(out_dir, benchmark, "*", "*.json")))
    return [json.load(open(p)) for p in paths]


def method_label(record: Dict[str, Any]) -> str:
    return record["method"] + (f"[{record['tag']}]" if record.get("tag") else "")


def best_so_far(history: Sequence[Sequence[Any]]) -> Tuple[np.ndarray, np.ndarray]:
    """Times and running-minimum energies of a recorded history (NaN energies skipped)."""
    t = np.array([p[0] for p in history], dtype=float)
    e = np.array([p[1] for p in history], dtype=float)
    keep = np.isfinite(e)
    t, e = t[keep], e[keep]
    order = np.argsort(t, kind="stable")
    return t[order], np.minimum.accumulate(e[order])


def time_to_reach(history: Sequence[Sequence[Any]], target: float) -> Optional[float]:
    """First wall time at which the energy is at or below ``target`` (None if never)."""
    t, e = best_so_far(history)
    slack = 1e-9 * max(1.0, abs(target))
    hit = np.nonzero(e <= target + slack)[0]
    return float(t[hit[0]]) if len(hit) else None


def _median_range(values: List[float], fmt: str) -> str:
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "-"
    med = fmt.format(float(np.median(values)))
    if len(values) == 1:
        return med
    return f"{med} [{fmt.format(min(values))}, {fmt.format(max(values))}]"


def _energy_format(records: List[Dict[str, Any]]) -> str:
    scale = max(abs(r["final_energy"]) for r in records) if records else 1.0
    return "{:.1f}" if scale >= 100 else "{:.5f}"


def summarize(records: List[Dict[str, Any]], benchmark: str) -> str:
    """The Markdown table of one benchmark's records."""
    by_case: Dict[str, Dict[str, List[Dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        by_case[r["case"]][method_label(r)].append(r)
    metric_cols = METRIC_COLUMNS.get(benchmark, [])
    header = ["case", "method", "runs", "initial E", "final E (median [min, max])", "wall s", "energy evals",
              "converged", "t to tol (s)"] + [label for _, label, _ in metric_cols] + \
        ["t to L-BFGS E (s)", "reached"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for case in sorted(by_case):
        methods = by_case[case]
        lbfgs = methods.get("lbfgs", [])
        target = float(np.median([r["final_energy"] for r in lbfgs])) if lbfgs else None
        # starts differ per seed for loops and perturbed structures: compare with L-BFGS of the same seed
        seed_target = {r["seed"]: r["final_energy"] for r in lbfgs}
        efmt = _energy_format([r for rs in methods.values() for r in rs])
        ordered = sorted(methods, key=lambda m: (METHOD_ORDER.index(m.split("[")[0])
                                                 if m.split("[")[0] in METHOD_ORDER else 99, m))
        for m in ordered:
            rs = methods[m]
            times = [time_to_reach(r["history"], seed_target.get(r["seed"], target)) for r in rs] \
                if target is not None else []
            reached = [t for t in times if t is not None]
            row = [case, m, str(len(rs)), _median_range([r["initial_energy"] for r in rs], efmt),
                   _median_range([r["final_energy"] for r in rs], efmt),
                   _median_range([r["wall_time"] for r in rs], "{:.1f}"),
                   _median_range([r["energy_evaluations"] for r in rs], "{:.0f}"),
                   f"{sum(r['converged'] for r in rs)}/{len(rs)}",
                   _median_range([r.get("time_to_tolerance") for r in rs], "{:.2f}")]
            row += [_median_range([r["metrics"].get(key) for r in rs], fmt) for key, _, fmt in metric_cols]
            row += [_median_range(reached, "{:.1f}") if reached else "-",
                    f"{len(reached)}/{len(rs)}" if target is not None else "-"]
            lines.append("| " + " | ".join(row) + " |")
    extra = []
    refs = {r["case"]: r.get("reference_energy") for r in records if r.get("reference_energy") is not None}
    if refs:
        extra.append("")
        extra.append("L-BFGS-minimized native energy (reference): " +
                     ", ".join(f"{c}: {e:.1f} kJ/mol" for c, e in sorted(refs.items())))
    return "\n".join(lines + extra) + "\n"


def plot_case(records: List[Dict[str, Any]], path: str, title: str) -> None:
    """Best energy so far vs wall time: median line and min-max band over seeds, one colour per method.
    Left panel: the whole descent; right panel: zoomed onto the final energies (where methods differ)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_method: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_method[method_label(r)].append(r)
    t_max = max(r["wall_time"] for r in records)
    t_min = max(1e-3, min(min(p[0] for p in r["history"] if p[0] > 0) for r in records
                          if any(p[0] > 0 for p in r["history"])))
    grid = np.geomspace(t_min, max(t_max, 2 * t_min), 300)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = plt.get_cmap("tab10" if len(by_method) <= 10 else "tab20").colors
    for k, m in enumerate(sorted(by_method)):
        curves = []
        for r in by_method[m]:
            t, e = best_so_far(r["history"])
            idx = np.searchsorted(t, grid, side="right") - 1
            curves.append(np.where(idx >= 0, e[np.clip(idx, 0, None)], e[0]))
        curves = np.array(curves)
        for ax in axes:
            ax.plot(grid, np.median(curves, axis=0), color=colors[k % len(colors)],
                    label=f"{m} (n={len(curves)})")
            if len(curves) > 1:
                ax.fill_between(grid, curves.min(axis=0), curves.max(axis=0), color=colors[k % len(colors)],
                                alpha=0.2)
    ref = records[0].get("reference_energy")
    finals = [r["final_energy"] for r in records]
    lo = min(finals + ([ref] if ref is not None else []))
    hi_all = max(r["initial_energy"] for r in records)
    hi_zoom = max(finals) + max(max(finals) - lo, 1e-12)
    for ax, hi in zip(axes, (hi_all, hi_zoom)):
        if ref is not None:
            ax.axhline(ref, color="k", ls=":", lw=1, label="minimized native")
        span = max(hi - lo, 1e-12)
        ax.set_ylim(lo - 0.05 * span, hi + 0.05 * span)
        ax.set_xscale("log")
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel("best energy so far" + (" (kJ/mol)" if ref is not None else " (reduced units)"))
    axes[0].set_title(f"{title}: whole run")
    axes[1].set_title("zoom on the final energies")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(out_dir: str, benchmark: str) -> Optional[str]:
    """Write ``out_dir/benchmark/RESULTS.md`` and one PNG per case; returns the Markdown (None if no runs).
    The everyday, external and hard benchmarks have their own tables (:func:`write_everyday_report`,
    :func:`benchmarks.external_report.write_report`, :func:`benchmarks.hard.write_report`) and no plots."""
    if benchmark == EVERYDAY:
        return write_everyday_report(out_dir)
    if benchmark == "external":
        from . import external_report

        return external_report.write_report(out_dir)
    if benchmark == "hard":
        from . import hard

        return hard.write_report(out_dir)
    records = load_records(out_dir, benchmark)
    if not records:
        return None
    table = summarize(records, benchmark)
    by_case: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_case[r["case"]].append(r)
    images = []
    for case, rs in sorted(by_case.items()):
        png = os.path.join(out_dir, benchmark, f"{case}.png")
        plot_case(rs, png, f"{benchmark}: {case}")
        images.append(f"![{case}]({case}.png)")
    env = records[0].get("environment", {})
    budgets = sorted({r.get("budget") for r in records}, key=lambda b: (b is None, b))
    text = (f"# Benchmark `{benchmark}`\n\n"
            f"Budget per method (s): {', '.join(str(b) for b in budgets)}. "
            f"Environment: {json.dumps(env)}\n\n{table}\n" + "\n".join(images) + "\n")
    with open(os.path.join(out_dir, benchmark, "RESULTS.md"), "w") as handle:
        handle.write(text)
    return text


# ---- everyday -------------------------------------------------------------------------------------------------
def load_cases(out_dir: str) -> List[Dict[str, Any]]:
    """The case records under ``out_dir/everyday``, in the suite's case order."""
    from .everyday_cases import CASES

    order = list(CASES)
    records = [json.load(open(p)) for p in glob.glob(os.path.join(out_dir, EVERYDAY, "*.json"))]
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
    """Markdown: case, atoms, method, runs, time s, time/LEM, (force evals, evals/LEM, where runs counted them,)
    E, E - E_LEM, RMS F, converged, stage times. A label ``default`` or ``default/<engine>`` shows the method
    ``auto`` chose."""
    counted = any("force_evaluations" in r for case in cases for r in case["runs"])
    header = ["case", "atoms", "method", "runs", "time s", "time/LEM"] + \
        (["force evals", "evals/LEM"] if counted else []) + \
        ["E (kJ/mol)", "E − E_LEM", "RMS F", "converged", "stage times (s, median)"]
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
            default = label.split("/")[0] == "default"
            shown = f"{label} ({resolved.pop()})" if default and len(resolved) == 1 else label
            row = [name, str(case["n_atoms"]), shown, str(len(runs)) + (f" ({failed} failed)" if failed else ""),
                   _cell([r["wall_time"] for r in runs], "{:.2f}"),
                   _cell([r.get("time_ratio") for r in runs], "{:.2f}")]
            if counted:
                row += [_cell([r.get("force_evaluations") for r in runs], "{:.0f}"),
                        _cell([r.get("evaluation_ratio", 1.0 if r["label"] == "lem" else None) for r in runs],
                              "{:.2f}")]
            row += [_cell([r["final_energy"] for r in runs], "{:.1f}"),
                   _cell([r.get("energy_diff") for r in runs], "{:.1f}", signed=True),
                   _cell([r.get("rms_force") for r in runs], "{:.2f}"),
                   f"{sum(bool(r.get('converged')) for r in runs)}/{len(runs)}", _stages_cell(runs)]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def goals_table(cases: List[Dict[str, Any]]) -> str:
    """Markdown: per case, the default's worst time/LEM and E - E_LEM against the goal, and whether it is met
    (every run converged, at or below LEM's energy and within the time goal)."""
    header = ["case", "atoms", "solvent", "goal time/LEM", "default time/LEM (worst)",
              "default evals/LEM (worst)", "E − E_LEM (worst)", "converged", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for case in cases:
        runs = [r for r in case["runs"] if r["label"] == "default"]
        ratios = _finite([r.get("time_ratio") for r in runs])
        diffs = _finite([r.get("energy_diff") for r in runs])
        evaluations = _finite([r.get("evaluation_ratio") for r in runs])
        if not runs or len(ratios) < len(runs) or len(diffs) < len(runs):
            met = "no data"
        else:
            ok = (max(ratios) <= time_goal(case) and max(diffs) <= ENERGY_SLACK
                  and all(r.get("converged") for r in runs))
            met = "yes" if ok else "**no**"
        lines.append("| " + " | ".join([
            case["case"], str(case["n_atoms"]), case["kind"], f"{time_goal(case):g}",
            f"{max(ratios):.2f}" if ratios else "-", f"{max(evaluations):.2f}" if evaluations else "-",
            f"{max(diffs):+.1f}" if diffs else "-",
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
            f"Goals for the default:\n\n{goals_table(cases)}")


def write_summary(out_dir: str, benchmark: str, records: Sequence[Any], summarize: Callable[[Any], str]
                  ) -> Optional[str]:
    """Write ``summarize(records)`` to ``out_dir/benchmark/RESULTS.md``; returns it (None if there are no records)."""
    if not records:
        return None
    text = summarize(records)
    with open(os.path.join(out_dir, benchmark, "RESULTS.md"), "w") as handle:
        handle.write(text)
    return text


def write_everyday_report(out_dir: str) -> Optional[str]:
    """Write ``out_dir/everyday/RESULTS.md``; returns its text (None if there are no runs)."""
    return write_summary(out_dir, EVERYDAY, load_cases(out_dir), summarize_everyday)


def main(argv: Optional[List[str]] = None) -> int:
    """``report OUT [BENCHMARK ...]`` or ``report [BENCHMARK ...] --out OUT``: rewrite the reports (all six
    benchmarks by default: those with records) and print them."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks report",
                                     description="python -m benchmarks report OUT [BENCHMARK ...]  or  "
                                                 "python -m benchmarks report [BENCHMARK ...] --out OUT")
    parser.add_argument("items", nargs="*", metavar="OUT/BENCHMARK")
    parser.add_argument("--out", default=None, help="the output folder (then every positional is a benchmark)")
    args = parser.parse_args(argv)
    if args.out:
        out, benchmarks = args.out, args.items
    elif args.items:
        out, benchmarks = args.items[0], args.items[1:]
    else:
        parser.error("report needs the output folder: report OUT [BENCHMARK ...] or report BENCHMARK --out OUT")
    for benchmark in benchmarks or ["loop", "refold", "relax", EVERYDAY, "external", "hard"]:
        text = write_report(out, benchmark)
        if text:
            print(text)
    return 0
