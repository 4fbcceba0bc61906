"""A small one-factor-at-a-time hyper-parameter sweep for ``gnn`` and ``linear``, to pick defaults that work
across systems (not per-system tuning): 5AWL refolding and the Bond+LJ loop (n = 400), a few seeds, a short
budget. Each configuration is tagged; the summary ranks configurations by their median energy gap to the best
run of each system, normalized by that system's energy scale, so both systems count equally.

    python -m benchmarks sweep --out benchmarks/out/sweep --budget 20 --seeds 2
"""
from __future__ import annotations

import argparse
import os
from collections import defaultdict
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import report, suites

#: (tag, method, options). The library defaults at the time of the sweep: lr 1e-3, n_modes 30, hidden 32.
CONFIGS: List[Tuple[str, str, Dict[str, Any]]] = [
    ("base", "gnn", {}),
    ("lr3e-3", "gnn", {"lr": 3e-3}),
    ("lr1e-2", "gnn", {"lr": 1e-2}),
    ("modes10", "gnn", {"n_modes": 10}),
    ("hidden16", "gnn", {"hidden": 16}),
    ("base", "linear", {}),
    ("lr3e-3", "linear", {"lr": 3e-3}),
    ("lr1e-2", "linear", {"lr": 1e-2}),
    ("modes10", "linear", {"n_modes": 10}),
]


def run_sweep(out_dir: str, budget: float = 15.0, seeds: int = 2, threads: int = 1,
              loop_n: int = 400, protein: str = "5AWL") -> str:
    """Run every configuration on both systems (plus adam and lbfgs once, for scale); returns Markdown."""
    records: List[Dict[str, Any]] = []
    for tag, method, options in CONFIGS:
        records += suites.run_refold(names=[protein], methods=[method], seeds=seeds, budget=budget,
                                     out_dir=out_dir, options=options, threads=threads, tag=tag)
        records += suites.run_loop(n=loop_n, variants=["bond_lj"], methods=[method], seeds=seeds, budget=budget,
                                   out_dir=out_dir, options=options, threads=threads, tag=tag)
    for method in ("adam", "lbfgs"):
        records += suites.run_refold(names=[protein], methods=[method], seeds=seeds, budget=budget,
                                     out_dir=out_dir, threads=threads)
        records += suites.run_loop(n=loop_n, variants=["bond_lj"], methods=[method], seeds=seeds,
                                   budget=budget, out_dir=out_dir, threads=threads)
    text = summarize_sweep(records)
    with open(os.path.join(out_dir, "SWEEP.md"), "w") as handle:
        handle.write(text)
    for benchmark in ("refold", "loop"):
        report.write_report(out_dir, benchmark)
    return text


def summarize_sweep(records: List[Dict[str, Any]]) -> str:
    """Median final energy per (configuration, case) and a cross-system score (lower is better)."""
    by_case: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_case[r["case"]].append(r)
    scores: Dict[str, List[float]] = defaultdict(list)
    cells: Dict[Tuple[str, str], str] = {}
    for case, rs in by_case.items():
        finals = np.array([r["final_energy"] for r in rs])
        best, scale = finals.min(), max(np.median(np.abs(finals - finals.min())), 1e-12)
        groups: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
        for r in rs:
            groups[report.method_label(r)].append(r)
        for label, grs in groups.items():
            med = float(np.median([r["final_energy"] for r in grs]))
            scores[label].append((med - best) / scale)
            metric = grs[0]["metrics"]
            key = "contacts_formed" if "contacts_formed" in metric else "ca_rmsd"
            cells[(label, case)] = (f"{med:.5g} ({key} {np.median([r['metrics'][key] for r in grs]):.2f}, "
                                    f"{np.median([r['wall_time'] for r in grs]):.0f} s)")
    cases = sorted(by_case)
    lines = ["| config | " + " | ".join(f"{c}: median final E (metric, wall)" for c in cases) +
             " | score (lower is better) |", "|---|" + "---|" * (len(cases) + 1)]
    for label in sorted(scores, key=lambda k: np.mean(scores[k])):
        lines.append(f"| {label} | " + " | ".join(cells.get((label, c), "-") for c in cases) +
                     f" | {np.mean(scores[label]):.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m benchmarks sweep [--out DIR] [--budget S] [--seeds N] [--threads T]``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks sweep",
                                     description="small hyper-parameter sweep for gnn and linear")
    parser.add_argument("--out", default="benchmarks/out/sweep")
    parser.add_argument("--budget", type=float, default=20.0)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    print(run_sweep(args.out, budget=args.budget, seeds=args.seeds, threads=args.threads))
    return 0
