"""The three benchmarks (loop, refold, relax): which cases, which starts, which metrics.

Each suite runs every (case, method, seed) one after the other in this process, writes one JSON per run and
returns the records. Seeds: for loops a seed picks both the random start and the method's randomness (all
methods share the start of a seed); for proteins the start is the stored one and the seed drives the method
(and, for the perturbed relax case, the perturbation).
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, Iterable, List, Optional

from . import loops, proteins
from .runner import environment, run_method, save_record

DEFAULT_METHODS = ("gnn", "linear", "adam", "lbfgs")
#: RMS-force tolerance for the loops (reduced units): their averaged forces are tiny, so the runs are limited
#: by the budget and by the optimizers' own stopping, not by this.
LOOP_TOLERANCE = 1e-6
PROTEIN_TOLERANCE = 10.0  # kJ/mol/nm, OpenMM's default
RELAX_PERTURBATION_NM = 0.02


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run_all(benchmark: str, case_name: str, make_case, metrics_of, methods: Iterable[str], seeds: int,
             budget: Optional[float], tolerance: float, out_dir: Optional[str], options: Dict[str, Any],
             threads: int, extra: Dict[str, Any], tag: Optional[str] = None,
             first_seed: int = 0) -> List[Dict[str, Any]]:
    records = []
    env = environment()
    for seed in range(first_seed, first_seed + seeds):
        system, start, context_data = make_case(seed)
        for method in methods:
            record = run_method(system, start, method, seed, budget, tolerance, metrics_of(context_data),
                                options=options, threads=threads)
            record.update(benchmark=benchmark, case=case_name, environment=env, tag=tag, **extra)
            records.append(record)
            if out_dir:
                save_record(record, out_dir, benchmark, case_name)
            _log(f"[{benchmark}] {case_name} {method}{'/' + tag if tag else ''} seed {seed}: "
                 f"E {record['initial_energy']:.6g} -> {record['final_energy']:.6g} in {record['wall_time']:.1f} s; "
                 f"{ {k: round(v, 4) for k, v in record['metrics'].items() if isinstance(v, float)} }")
    return records


def run_loop(n: int = 400, variants: Iterable[str] = loops.VARIANTS, methods: Iterable[str] = DEFAULT_METHODS,
             seeds: int = 3, budget: Optional[float] = 60.0, out_dir: Optional[str] = None,
             options: Optional[Dict[str, Any]] = None, threads: int = 1, tag: Optional[str] = None,
             tolerance: float = LOOP_TOLERANCE, first_seed: int = 0) -> List[Dict[str, Any]]:
    """Bond+LJ and pure-LJ loops of ``n`` particles from random starts; metric: designed contacts formed.

    The minimizer's collapse guard (atoms closer than 0.07 nm mean a force-field singularity, so fall back on
    L-BFGS) is meant for molecular force fields; here particles may legitimately overlap (the averaged
    repulsion between non-bonded particles is tiny and finite), so it is switched off."""
    options = {"collapse_distance": 0.0, **(options or {})}
    records = []
    for variant in variants:
        def make_case(seed, variant=variant):
            case = loops.load_case(n, variant, seed)
            return case.system, case.start, case.contacts

        records += _run_all("loop", f"{variant}_n{n}", make_case, _loop_metrics_with_positions,
                            methods, seeds, budget, tolerance, out_dir, options or {}, threads,
                            {"n": n, "variant": variant, "lj_minimum": loops.lj_minimum()}, tag, first_seed)
    return records


def _loop_metrics_with_positions(contacts):
    """Loop metrics plus the final positions (small), so metrics can be recomputed from the JSON later."""
    def metrics(x):
        values = loops.loop_metrics(x, contacts)
        values["final_positions"] = [[round(float(c), 5) for c in row] for row in x]
        return values
    return metrics


def reference_energy(name: str, out_dir: Optional[str]) -> float:
    """L-BFGS-minimized native energy of a protein (cached as reference.json next to the runs)."""
    path = os.path.join(out_dir, "reference", f"{name}.json") if out_dir else None
    if path and os.path.exists(path):
        return json.load(open(path))["minimized_native_energy"]
    energy = proteins.minimized_native_energy(proteins.load_case(name, start="native"))
    if path:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        json.dump({"case": name, "minimized_native_energy": energy}, open(path, "w"))
    return energy


def _protein_suite(benchmark: str, names: Iterable[str], start: str, perturb_nm: float,
                   methods, seeds, budget, out_dir, options, threads, tag, first_seed) -> List[Dict[str, Any]]:
    records = []
    for name in names:
        ref = reference_energy(name, out_dir)
        label = name if benchmark == "refold" else f"{name}_{start}{'_perturbed' if perturb_nm else ''}"

        def make_case(seed, name=name):
            case = proteins.load_case(name, start=start, perturb_nm=perturb_nm, seed=seed)
            return case.system, case.start, case

        records += _run_all(benchmark, label, make_case,
                            lambda case: (lambda x: proteins.structure_metrics(case.topology, x, case.native)),
                            methods, seeds, budget, PROTEIN_TOLERANCE, out_dir, options or {}, threads,
                            {"protein": name, "reference_energy": ref, "start": start,
                             "perturbation_nm": perturb_nm}, tag, first_seed)
    return records


def run_refold(names: Iterable[str] = ("5AWL", "2JOF"), methods: Iterable[str] = DEFAULT_METHODS, seeds: int = 3,
               budget: Optional[float] = 60.0, out_dir: Optional[str] = None,
               options: Optional[Dict[str, Any]] = None, threads: int = 1, tag: Optional[str] = None,
               first_seed: int = 0) -> List[Dict[str, Any]]:
    """Minimize the stored high-temperature-MD starts; metrics: RMSD to native, energy vs minimized native."""
    return _protein_suite("refold", names, "unfolded", 0.0, methods, seeds, budget, out_dir, options, threads,
                          tag, first_seed)


def run_relax(names: Iterable[str] = ("5AWL", "2JOF"), methods: Iterable[str] = DEFAULT_METHODS, seeds: int = 3,
              budget: Optional[float] = 30.0, out_dir: Optional[str] = None,
              options: Optional[Dict[str, Any]] = None, threads: int = 1, tag: Optional[str] = None,
              first_seed: int = 0, perturbation_nm: float = RELAX_PERTURBATION_NM) -> List[Dict[str, Any]]:
    """The everyday case: the native structure as deposited, and with seeded Gaussian noise of 0.02 nm."""
    options = {"never_worse": True, **(options or {})}  # the opt-in guarantee: never worse than L-BFGS
    records = _protein_suite("relax", names, "native", 0.0, methods, seeds, budget, out_dir, options, threads,
                             tag, first_seed)
    records += _protein_suite("relax", names, "native", perturbation_nm, methods, seeds, budget, out_dir,
                              options, threads, tag, first_seed)
    return records
