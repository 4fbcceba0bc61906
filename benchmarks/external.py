"""The external benchmark: ``openmm_reparam.minimize`` against OpenMM's ``LocalEnergyMinimizer`` (LEM) on a peer's
test systems (every ``openmmtools.testsystems`` class that runs in reasonable time on 2 cores) and on rough
starts rebuilt by PDBFixer (see :mod:`benchmarks.external_cases`).

Per case, on one Context (CPU platform named explicitly, ``threads`` threads) and per start (``own``, then the
seeded perturbed ones), one after another from the same positions, with the everyday suite's machinery
(:func:`benchmarks.everyday.run_plan_on_case`: same timing, records, ratios to LEM and JSON):

* ``lem``: ``openmm.LocalEnergyMinimizer.minimize(context, 10 kJ/mol/nm)``;
* ``default``: ``openmm_reparam.minimize(context)`` as is (``method="auto"``; what it chose is ``method``);
* each method (default: every method the package names but ``auto``) with ``never_worse=False``, seed 0;
* on the implicit-solvent cases (groups ``implicit`` and ``rough``), with ``ase`` among the methods, ASE's FIRE,
  LBFGS and PreconLBFGS (Exp) on the same Context (see :mod:`benchmarks.ase_runs`).

A case that fails to build or is larger than ``DHFRExplicit`` is recorded as skipped with the reason; a run that
raises is recorded as an error row (the suite goes on). One JSON file per case, ``<out>/external/<case>.json``,
rewritten after every run. ``openmmtools`` (and ``ase``) are benchmark dependencies, imported only here.
"""
from __future__ import annotations

import sys
import time
import traceback
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import everyday, external_cases
from .runner import environment

BENCHMARK = "external"
ASE_GROUPS = frozenset({"implicit", "rough"})
ASE_LABELS = ("ase_fire", "ase_lbfgs", "ase_preconlbfgs")


def default_methods() -> List[str]:
    """Every method the package names but ``auto`` (that is ``default``), then ``ase``."""
    from openmm_reparam import method_names

    return [m for m in method_names() if m != "auto"] + ["ase"]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def starts_of(case, seeds: int) -> List[Any]:
    """``own`` and, for cases with seeded starts, the perturbation seeds 0..seeds-1."""
    return ["own"] + (list(range(seeds)) if case.seeded_start else [])


def run_plan(case, methods: Sequence[str], seeds: int) -> List[Tuple[Any, str, int]]:
    """(start, label, method seed 0) for every run of a case: per start LEM, the default, the methods and, on
    implicit-solvent cases with ``ase`` among the methods, the ASE optimizers."""
    labels = ["lem", "default"] + [m for m in methods if m != "ase"]
    if "ase" in methods and case.group in ASE_GROUPS:
        labels += list(ASE_LABELS)
    return [(start, label, 0) for start in starts_of(case, seeds) for label in labels]


def skipped_record(name: str, reason: str, env: Dict[str, Any], detail: Optional[str] = None) -> Dict[str, Any]:
    return {"benchmark": BENCHMARK, "case": name, "group": external_cases.group_of(name), "skipped": reason,
            "detail": detail, "complete": True, "environment": env, "runs": []}


def run_case(name: str, methods: Sequence[str], seeds: int = 1, threads: int = 2, out_dir: Optional[str] = None,
             options: Optional[Dict[str, Any]] = None, env: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Build case ``name`` and run its plan; a case that cannot be built (or is too large) is a skipped record."""
    env = env or environment()
    t0 = time.perf_counter()
    try:
        case = external_cases.build_case(name)
    except Exception as error:  # noqa: BLE001 - a test system that needs what is not here is reported, not fatal
        record = skipped_record(name, f"cannot build: {type(error).__name__}: {error}", env,
                                traceback.format_exc(limit=5))
        return _save(record, out_dir)
    prepare_time = time.perf_counter() - t0
    if case.n_atoms > external_cases.MAX_ATOMS:
        reason = f"{case.n_atoms} atoms, more than DHFRExplicit's {external_cases.MAX_ATOMS}"
        return _save(skipped_record(name, reason, env), out_dir)
    _log(f"[external] {name} ({case.group}): {case.n_atoms} atoms, {case.system.getNumConstraints()} "
         f"constraints, {case.description} (built in {prepare_time:.1f} s)")
    from . import ase_runs

    runners = {label: ase_runs.runner(label, case.topology) for label in ASE_LABELS}
    extra = {"group_description": external_cases.GROUP_DESCRIPTIONS.get(case.group, ""),
             "starts": starts_of(case, seeds), "methods": list(methods)}
    return everyday.run_plan_on_case(case, run_plan(case, methods, seeds), threads, out_dir, options, env,
                                     prepare_time, BENCHMARK, runners, extra)


def _save(record: Dict[str, Any], out_dir: Optional[str]) -> Dict[str, Any]:
    _log(f"[external] {record['case']}: skipped ({record['skipped']})")
    if out_dir:
        everyday.save_case(record, out_dir)
    return record


def run_external(cases: Optional[Sequence[str]] = None, methods: Optional[Sequence[str]] = None, seeds: int = 1,
                 threads: int = 2, out_dir: Optional[str] = None, options: Optional[Dict[str, Any]] = None,
                 command: Optional[str] = None) -> List[Dict[str, Any]]:
    """Run the named cases (names, groups, ``tiny``, ``all``; default all) one after another; returns their
    records. ``methods``: default :func:`default_methods` (``[]``: only LEM and the default); ``seeds``: perturbed
    starts per test system (0: only their own positions)."""
    import torch  # noqa: F401 - before the OpenMM plugins (openmmtools imports openmm)

    if seeds < 0:
        raise ValueError(f"seeds must be >= 0, got {seeds}")
    names = external_cases.resolve_cases(cases)
    methods = default_methods() if methods is None else list(methods)
    unknown = sorted(set(methods) - set(default_methods()))
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(default_methods())}")
    env = dict(environment(), command=command, openmmtools=_version("openmmtools"), ase=_version("ase"))
    return [run_case(name, methods, seeds, threads, out_dir, options, env) for name in names]


def _version(name: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
