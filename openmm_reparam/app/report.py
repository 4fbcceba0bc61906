"""What a command-line run reports: energy terms, forces, RMSD to the input, stages, settings, versions; and the
energy-history plot.

Energy terms come from giving every Force its own force group (``assign_force_groups``) before the Context is
made; minimization still uses all groups, the groups only let the report split the total.
"""
from __future__ import annotations

import json
import math
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np
import openmm
from openmm import app, unit

from .outputs import atomic_path
from .prepare import ca_indices, heavy_atom_indices
from .restraints import RESTRAINT_FORCE_NAME
from ..core.atoms import force_norms, movable_mask
from ..core.units import as_positions

_KJ = unit.kilojoule_per_mole


def assign_force_groups(system: openmm.System) -> Dict[int, str]:
    """Put force i in force group i and return {group: unique force name}. Call before creating a Context."""
    if system.getNumForces() > 32:
        raise ValueError("more than 32 forces: they cannot each have their own force group")
    names: Dict[int, str] = {}
    seen: Dict[str, int] = {}
    for index, force in enumerate(system.getForces()):
        force.setForceGroup(index)
        name = force.getName() or type(force).__name__
        seen[name] = seen.get(name, 0) + 1
        names[index] = name if seen[name] == 1 else f"{name}#{seen[name]}"
    return names


def energy_terms(context: openmm.Context, groups: Mapping[int, str]) -> Dict[str, float]:
    """Potential energy (kJ/mol) of each force group, by force name."""
    return {name: context.getState(getEnergy=True, groups={group}).getPotentialEnergy().value_in_unit(_KJ)
            for group, name in groups.items()}


def energy_summary(context: openmm.Context, groups: Mapping[int, str]) -> Dict[str, Any]:
    """Total energy, the total without positional restraints (the force-field energy), and the terms."""
    terms = energy_terms(context, groups)
    total = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(_KJ)
    restraint = sum(e for name, e in terms.items() if name.startswith(RESTRAINT_FORCE_NAME))
    return {"total": total, "total_without_restraints": total - restraint, "terms": terms}


def force_statistics(context: openmm.Context) -> Dict[str, float]:
    """RMS (‖F‖₂/√N, OpenMM's convergence measure) and largest per-atom force (kJ/mol/nm) over the movable atoms
    (:func:`~openmm_reparam.core.atoms.movable_mask`: not virtual sites, not massless).

    Raw forces: on constrained atoms they include components along the constraints, which a minimizer cannot
    remove, so these can exceed the minimizer's own (projected) numbers.
    """
    forces = context.getState(getForces=True).getForces(asNumpy=True).value_in_unit(_KJ / unit.nanometer)
    rms, largest = force_norms(np.asarray(forces), movable_mask(context.getSystem()))
    return {"rms_force": rms, "max_force": largest}


def rmsd_to_reference(topology: app.Topology, reference_positions: Any, positions: Any) -> Dict[str, Optional[float]]:
    """RMSD in Å after optimal superposition (mdtraj), over solute heavy atoms and over C-alpha atoms."""
    import mdtraj  # optional ("pdb") dependency

    md_topology = mdtraj.Topology.from_openmm(topology)
    reference = mdtraj.Trajectory(as_positions(reference_positions)[None], md_topology)
    moved = mdtraj.Trajectory(as_positions(positions)[None], md_topology)
    result: Dict[str, Optional[float]] = {}
    for key, atoms in (("heavy_angstrom", heavy_atom_indices(topology)), ("ca_angstrom", ca_indices(topology))):
        if len(atoms) < 2:
            result[key] = None
            continue
        rmsd_nm = mdtraj.rmsd(moved, reference, 0, atom_indices=np.asarray(atoms))[0]
        result[key] = float(rmsd_nm) * 10.0
    return result


def package_versions() -> Dict[str, Optional[str]]:
    """Versions of the packages a result depends on (None when one is not installed)."""
    versions: Dict[str, Optional[str]] = {}
    for name in ("openmm", "torch", "openmm_reparam", "pdbfixer", "mdtraj", "numpy"):
        try:
            module = __import__(name)
            versions[name] = str(getattr(module, "__version__", None) or _distribution_version(name))
        except ImportError:
            versions[name] = None
    return versions


def _distribution_version(name: str) -> Optional[str]:
    from importlib import metadata
    try:
        return metadata.version(name.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return None


def stage_table(result: Any) -> List[Dict[str, Any]]:
    """Iterations, energy evaluations, wall time and energies of every stage of a MinimizationResult."""
    return [{"name": s.name, "iterations": s.iterations, "energy_evaluations": s.energy_evaluations,
             "wall_time": s.wall_time, "initial_energy": s.initial_energy, "final_energy": s.final_energy}
            for s in result.stages]


def write_json(path: str, data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON, atomically; non-finite floats become null (valid JSON)."""
    with atomic_path(path) as temporary:
        with open(temporary, "w") as handle:
            json.dump(_finite(data), handle, indent=2, sort_keys=False)
            handle.write("\n")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return _finite(value.item())
    return value


def plot_history(history: Sequence[Any], path: str, title: str = "") -> None:
    """PNG of energy vs iteration (left) and vs wall time (right), one line per stage, written atomically."""
    import matplotlib
    matplotlib.use("Agg")  # no display needed; must precede pyplot's import
    import matplotlib.pyplot as plt

    by_stage: Dict[str, List[Any]] = {}
    for point in history:
        by_stage.setdefault(point.stage, []).append(point)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for stage, points in by_stage.items():
        iterations = [p.iteration for p in points]
        times = [p.time for p in points]
        energies = [p.energy for p in points]
        style = dict(marker="." if len(points) < 3 else None, label=stage)
        left.plot(iterations, energies, **style)
        right.plot(times, energies, **style)
    for axis, label in ((left, "iteration (all stages)"), (right, "wall time (s)")):
        axis.set_xlabel(label)
        axis.set_ylabel("potential energy (kJ/mol)")
        axis.grid(alpha=0.3)
        if by_stage:
            axis.legend(fontsize="small")
    _clip_energy_axis(left, [p.energy for p in history])
    _clip_energy_axis(right, [p.energy for p in history])
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, format="png", dpi=100)
    finally:
        plt.close(figure)


def _clip_energy_axis(axis: Any, energies: Iterable[float]) -> None:
    """Start energies can be huge (clashes) and would flatten everything else: cap the axis at 20 times the
    median's distance above the minimum, which keeps ordinary starts in view."""
    values = np.array([e for e in energies if math.isfinite(e)])
    if len(values) < 3:
        return
    low = float(values.min())
    high = min(float(values.max()), low + 20.0 * (float(np.median(values)) - low) + 1.0)
    pad = 0.05 * (high - low)
    axis.set_ylim(low - pad, high + pad)


__all__ = ["assign_force_groups", "energy_terms", "energy_summary", "force_statistics", "rmsd_to_reference",
           "package_versions", "stage_table", "write_json", "plot_history"]
