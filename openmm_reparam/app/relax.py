"""AlphaFold-style relax of a predicted model, with our minimizer as the inner step.

The published protocol (AlphaFold's ``relax/amber_minimize.py``):

1. repair the model with PDBFixer and add hydrogens; amber99sb, HBonds constraints, vacuum (no cutoff);
2. harmonic restraints on every heavy atom, 10 kcal/mol/Å² (4184 kJ/mol/nm²), to the current positions;
3. minimize (AlphaFold: OpenMM's L-BFGS to 2.39 kcal/mol/nm, i.e. 10 kJ/mol/nm; here: ``minimize`` with any
   method; ``lbfgs``, OpenMM's L-BFGS, by default: on restrained near-native models it measured fastest,
   benchmarks/RESULTS.md section 8), then check for structural violations (:mod:`.violations`: clashes, bond
   lengths, bond angles);
4. while violations remain, at most 3 outer iterations: release the restraints on the violating residues
   (they accumulate), restrain the rest to the last minimized positions, and minimize again.

The report gives the violations before and after, every outer iteration, the force-field energies (restraints
excluded) and the heavy-atom and C-alpha RMSD to the prepared input. AlphaFold also re-adds hydrogens between
outer iterations; here they are kept, which changes nothing for standard residues.
"""
from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set

import openmm
from openmm import app

from .outputs import atomic_path
from .pipeline import SettingsError, make_platform, result_settings, run_options, settings_from_kwargs
from .prepare import PreparationError, heavy_atom_indices, prepare, structure_format, write_structure
from .restraints import DEFAULT_STIFFNESS, add_position_restraints, update_position_restraints
from .violations import Violations, find_violations

FORCEFIELD_FILE = "amber99sb.xml"
MAX_OUTER_ITERATIONS = 3


@dataclass
class RelaxSettings:
    """Everything that decides the result of one relax (lengths nm, energies kJ/mol)."""
    method: str = "lbfgs"               # the inner minimizer (what measured fastest for relax; see the docstring)
    tolerance: float = 10.0             # kJ/mol/nm: AlphaFold's 2.39 kcal/mol/nm
    max_iterations: int = 0
    seed: int = 0
    platform: Optional[str] = None
    options: Dict[str, Any] = field(default_factory=dict)
    ph: float = 7.0
    model: int = 1
    stiffness: float = DEFAULT_STIFFNESS  # kJ/mol/nm^2 (10 kcal/mol/A^2)
    max_outer_iterations: int = MAX_OUTER_ITERATIONS

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "RelaxSettings":
        """Settings from flat keywords: the fields above, and any minimizer option."""
        settings = settings_from_kwargs(cls, kwargs)
        if int(settings.max_outer_iterations) < 1 or not float(settings.stiffness) >= 0:
            raise SettingsError("max_outer_iterations must be >= 1 and stiffness >= 0")
        return settings


@functools.lru_cache(maxsize=None)
def amber99sb() -> app.ForceField:
    """The relax force field, loaded once per process (batch workers keep it)."""
    return app.ForceField(FORCEFIELD_FILE)


def relax(path: str, output: Optional[str] = None, *, report: Optional[str] = None, reporter: Any = None,
          threads: Optional[int] = None, **settings: Any) -> Dict[str, Any]:
    """Relax the structure file ``path`` (PDB or mmCIF) by the AlphaFold protocol; write the result to ``output``
    and the JSON report to ``report`` when given; return the report data. ``settings``: the fields of
    :class:`RelaxSettings` and any minimizer option (``method="lbfgs"``, ``n_modes=10``, ...)."""
    data = relax_file(path, output, RelaxSettings.from_kwargs(**settings), reporter=reporter, threads=threads)
    if report is not None:
        from .report import write_json
        write_json(report, data)
    return data


def relax_file(path: str, output: Optional[str], settings: RelaxSettings, reporter: Any = None,
               threads: Optional[int] = None) -> Dict[str, Any]:
    """The relax of one file (see the module docstring); returns the report data."""
    from .report import energy_summary, package_versions, rmsd_to_reference

    start = time.perf_counter()
    prepared = prepare(path, forcefield="amber14", solvent="none", ph=settings.ph, model=settings.model,
                       seed=settings.seed)
    topology, reference = prepared.topology, prepared.positions
    system, restraint, groups = _relax_system(topology, reference, settings.stiffness)
    context = _context(system, settings, threads)
    context.setPositions(reference)
    energy_before = energy_summary(context, groups)
    violations_before = find_violations(topology, reference, system)
    iterations = _outer_iterations(context, topology, system, restraint, groups, settings, reporter, threads)
    positions = context.getState(getPositions=True).getPositions()
    if output is not None:
        with atomic_path(output) as temporary:
            write_structure(topology, positions, temporary, fmt=structure_format(output))
    last = iterations[-1]
    return {
        "input": os.path.abspath(path), "output": None if output is None else os.path.abspath(output),
        "command": "relax", "protocol": _protocol(settings),
        "settings": dict(result_settings(settings), platform_used=context.getPlatform().getName(),
                         preparation=prepared.settings),
        "preparation": {"changes": prepared.changes, "atoms": topology.getNumAtoms(),
                        "residues": topology.getNumResidues()},
        "energy_unit": "kJ/mol", "force_unit": "kJ/mol/nm",
        "energy_before": energy_before, "energy_after": energy_summary(context, groups),
        "violations_before": violations_before.to_dict(topology), "violations_after": last["violations"],
        "outer_iterations": iterations, "converged": last["converged"], "rms_force": last["rms_force"],
        "rmsd_to_prepared_input": rmsd_to_reference(topology, reference, positions),
        "wall_time": time.perf_counter() - start, "versions": package_versions(),
    }


def _relax_system(topology: app.Topology, reference: Any, stiffness: float):
    """amber99sb in vacuum with HBonds constraints, heavy-atom restraints, one force group per force."""
    from .report import assign_force_groups
    try:
        system = amber99sb().createSystem(topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds)
    except ValueError as error:
        raise PreparationError(f"cannot build the {FORCEFIELD_FILE} System: {' '.join(str(error).split())}") \
            from None
    restraint = add_position_restraints(system, topology, reference, "heavy", stiffness)
    if restraint is None:
        raise PreparationError("the structure has no heavy atoms to restrain")
    return system, restraint, assign_force_groups(system)


def _context(system: openmm.System, settings: RelaxSettings, threads: Optional[int]) -> openmm.Context:
    platform, properties = make_platform(settings.platform, threads)
    integrator = openmm.VerletIntegrator(0.001)
    if platform is None:
        return openmm.Context(system, integrator)
    return openmm.Context(system, integrator, platform, properties)


def _outer_iterations(context: openmm.Context, topology: app.Topology, system: openmm.System,
                      restraint: openmm.CustomExternalForce, groups: Dict[int, str], settings: RelaxSettings,
                      reporter: Any, threads: Optional[int]) -> List[Dict[str, Any]]:
    """Minimize, check, release the violating residues and minimize again, until none violate (or 3 times)."""
    from ..api.minimizer import minimize
    from .report import energy_summary, stage_table

    heavy_by_residue = _heavy_atoms_by_residue(topology)
    released: Set[int] = set()
    iterations: List[Dict[str, Any]] = []
    for iteration in range(int(settings.max_outer_iterations)):
        current = context.getState(getPositions=True).getPositions()
        atoms = [a for r in sorted(released) for a in heavy_by_residue.get(r, [])]
        restrained = update_position_restraints(restraint, context, current, atoms)
        result = minimize(context, settings.tolerance, settings.max_iterations, reporter, method=settings.method,
                          seed=settings.seed, **run_options(settings, threads))
        violations: Violations = find_violations(topology, context.getState(getPositions=True).getPositions(),
                                                 system)
        residues = list(topology.residues())
        iterations.append({"iteration": iteration, "released_residues": [_label(residues[r]) for r in sorted(released)],
                           "restrained_atoms": restrained, "energy_after": energy_summary(context, groups),
                           "violations": violations.to_dict(topology), "converged": result.converged,
                           "rms_force": result.rms_force, "iterations": result.iterations,
                           "method_used": getattr(result, "method", None),
                           "wall_time": result.wall_time, "selected": result.selected, "stages": stage_table(result)})
        if violations.count == 0:
            break
        released |= violations.residues
    return iterations


def _heavy_atoms_by_residue(topology: app.Topology) -> Dict[int, List[int]]:
    atoms = list(topology.atoms())
    grouped: Dict[int, List[int]] = {}
    for index in heavy_atom_indices(topology):
        grouped.setdefault(atoms[index].residue.index, []).append(index)
    return grouped


def _protocol(settings: RelaxSettings) -> Dict[str, Any]:
    return {"forcefield": FORCEFIELD_FILE, "constraints": "HBonds", "solvent": "vacuum",
            "restraints": "heavy atoms", "stiffness_kj_mol_nm2": float(settings.stiffness),
            "stiffness_kcal_mol_angstrom2": float(settings.stiffness) / 418.4,
            "max_outer_iterations": int(settings.max_outer_iterations), "inner_minimizer": settings.method}


def _label(residue: app.Residue) -> str:
    return f"{residue.name} {residue.chain.id} {residue.id}".strip()


__all__ = ["relax", "relax_file", "RelaxSettings", "amber99sb", "FORCEFIELD_FILE", "MAX_OUTER_ITERATIONS",
           "SettingsError"]
