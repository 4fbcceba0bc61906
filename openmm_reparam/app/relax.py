"""AlphaFold-style relax of a predicted model, with our minimizer as the inner step.

The published protocol (AlphaFold's ``relax/amber_minimize.py``), with two changes said below:

1. repair the model with PDBFixer and add hydrogens; amber99sb, HBonds constraints, vacuum (no cutoff). First,
   every chain break (C(i)–N(i+1) farther than 2.5 Å, :mod:`.chain_breaks`) is made two real termini, so the
   force field does not bond across a gap and pull its two sides together;
2. harmonic restraints on every heavy atom, 10 kcal/mol/Å² (4184 kJ/mol/nm²), to the current positions;
3. minimize (AlphaFold: OpenMM's L-BFGS to 2.39 kcal/mol/nm, i.e. 10 kJ/mol/nm; here: ``minimize`` with any
   method; ``lbfgs``, OpenMM's L-BFGS, by default: on restrained near-native models it measured fastest,
   benchmarks/RESULTS.md#batch), then check for structural violations by AlphaFold's definitions
   (:mod:`.violations`: Engh & Huber bond lengths and angles with a tolerance of 12 standard deviations,
   clashes at the van der Waals radii minus 1.5 Å; a chain break is not a violation);
4. while violations remain, at most 3 outer iterations: release the violating residues (they accumulate),
   restrain the rest to the last minimized positions, and minimize again.

**Released residues are held, weakly.** AlphaFold removes their restraints entirely; here their heavy atoms
keep a restraint of ``released_stiffness`` (default 1/10 of the full stiffness: 1 kcal/mol/Å²) to their
*prepared* positions, so that a released residue can move the fraction of an Å that resolves a violation but
cannot drift (in vacuum, charged side chains with nothing holding them are pulled across the surface).
``released_stiffness=0`` is AlphaFold's full release. Measured on the noisy chain-break model of
tests/test_relax.py (1HLO chain A 3-42 without 13-14 and 31-32, 0.02 nm noise, seed 0) with restraints so stiff
(1e6 kJ/mol/nm²) that 24 of its 36 residues are released in the second round: heavy-atom RMSD to the crystal
1.75 Å with full release (largest residue displacement 7.1 Å), 0.74 Å held at 1 kcal/mol/Å² (3.0 Å), 1.45 Å at
0.1 kcal/mol/Å²; all three end with no violation. At the default stiffness that model needs one round (0.30 Å).

The report gives the chain breaks, the violations before and after, every outer iteration, the force-field
energies (restraints excluded), the heavy-atom and C-alpha RMSD to the prepared input, and each residue's
heavy-atom displacement from it (largest and RMS, Å). AlphaFold also re-adds hydrogens between outer
iterations; here they are kept, which changes nothing for standard residues.
"""
from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set

import numpy as np

import openmm
from openmm import app

from .outputs import atomic_path
from .pipeline import (SettingsError, make_platform, result_settings, run_options, settings_from_kwargs,
                       write_prepared)
from .prepare import PreparationError, heavy_atom_indices, prepare, structure_format, write_structure
from .restraints import DEFAULT_STIFFNESS, add_position_restraints, update_position_restraints
from .violations import Violations, find_violations, label

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
    released_stiffness: float = DEFAULT_STIFFNESS / 10  # kJ/mol/nm^2 on released residues (0: AlphaFold's release)
    max_outer_iterations: int = MAX_OUTER_ITERATIONS

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "RelaxSettings":
        """Settings from flat keywords: the fields above, and any minimizer option."""
        settings = settings_from_kwargs(cls, kwargs)
        if int(settings.max_outer_iterations) < 1 or not float(settings.stiffness) >= 0:
            raise SettingsError("max_outer_iterations must be >= 1 and stiffness >= 0")
        if not 0 <= float(settings.released_stiffness) <= float(settings.stiffness):
            raise SettingsError("released_stiffness must be between 0 and stiffness")
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
               threads: Optional[int] = None, prepared_output: Optional[str] = None) -> Dict[str, Any]:
    """The relax of one file (see the module docstring); returns the report data. ``prepared_output``: also
    write the prepared structure (repaired, hydrogens added; what the restraints hold) there, before relaxing."""
    from .report import energy_summary, package_versions, rmsd_to_reference

    start = time.perf_counter()
    prepared, breaks = prepare_for_relax(path, settings)
    if prepared_output is not None:
        write_prepared(prepared, prepared_output)
    topology, reference = prepared.topology, prepared.positions
    system, restraint, groups = _relax_system(topology, reference, settings.stiffness)
    context = _context(system, settings, threads)
    context.setPositions(reference)
    energy_before = energy_summary(context, groups)
    violations_before = find_violations(topology, reference)
    iterations = _outer_iterations(context, topology, reference, restraint, groups, settings, reporter, threads)
    positions = context.getState(getPositions=True).getPositions()
    if output is not None:
        with atomic_path(output) as temporary:
            write_structure(topology, positions, temporary, fmt=structure_format(output))
    last = iterations[-1]
    return {
        "input": os.path.abspath(path), "output": None if output is None else os.path.abspath(output),
        "prepared_output": None if prepared_output is None else os.path.abspath(prepared_output),
        "command": "relax", "protocol": _protocol(settings),
        "settings": dict(result_settings(settings), platform_used=context.getPlatform().getName(),
                         preparation=prepared.settings),
        "preparation": {"changes": prepared.changes, "atoms": topology.getNumAtoms(),
                        "residues": topology.getNumResidues(), "chain_breaks": breaks},
        "energy_unit": "kJ/mol", "force_unit": "kJ/mol/nm",
        "energy_before": energy_before, "energy_after": energy_summary(context, groups),
        "violations_before": violations_before.to_dict(topology), "violations_after": last["violations"],
        "outer_iterations": iterations, "converged": last["converged"], "rms_force": last["rms_force"],
        "rmsd_to_prepared_input": rmsd_to_reference(topology, reference, positions),
        "residue_displacements": residue_displacements(topology, reference, positions),
        "wall_time": time.perf_counter() - start, "versions": package_versions(),
    }


def prepare_for_relax(path: str, settings: Optional[RelaxSettings] = None):
    """PDBFixer's preparation of ``path`` (its chain breaks made termini, :mod:`.chain_breaks`); (prepared,
    breaks)."""
    settings = RelaxSettings() if settings is None else settings
    prepared = prepare(path, forcefield="amber14", solvent="none", ph=settings.ph, model=int(settings.model),
                       seed=settings.seed)
    return prepared, prepared.changes["chain_breaks"]


def residue_displacements(topology: app.Topology, reference: Any, positions: Any) -> List[Dict[str, Any]]:
    """Each residue's heavy-atom displacement between ``reference`` and ``positions`` (no superposition: the
    restraints keep the frame): ``{"residue", "max_angstrom", "rms_angstrom"}``, in topology order."""
    from ..core.units import as_positions
    moved = np.linalg.norm(as_positions(positions) - as_positions(reference), axis=1) * 10.0
    rows = []
    for residue, atoms in _heavy_atoms_by_residue(topology).items():
        distances = moved[atoms]
        rows.append({"residue": label(residue), "max_angstrom": float(distances.max()),
                     "rms_angstrom": float(np.sqrt(np.mean(distances ** 2)))})
    return rows


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


def _outer_iterations(context: openmm.Context, topology: app.Topology, reference: Any,
                      restraint: openmm.CustomExternalForce, groups: Dict[int, str], settings: RelaxSettings,
                      reporter: Any, threads: Optional[int]) -> List[Dict[str, Any]]:
    """Minimize, check, release the violating residues and minimize again, until none violate (or 3 times).
    Released residues are held to ``reference`` at ``released_stiffness`` (see the module docstring)."""
    from ..api.minimizer import minimize
    from .report import energy_summary, stage_table

    heavy_by_residue = {r.index: atoms for r, atoms in _heavy_atoms_by_residue(topology).items()}
    residues = list(topology.residues())
    weight = float(settings.released_stiffness) / float(settings.stiffness) if settings.stiffness else 0.0
    released: Set[int] = set()
    iterations: List[Dict[str, Any]] = []
    for iteration in range(int(settings.max_outer_iterations)):
        current = context.getState(getPositions=True).getPositions()
        atoms = [a for r in sorted(released) for a in heavy_by_residue.get(r, [])]
        restrained = update_position_restraints(restraint, context, current, atoms, released_weight=weight,
                                                released_reference=reference)
        if hasattr(reporter, "phase"):  # the CLI's progress display: which round is running
            reporter.phase = f"round {iteration + 1}"
        result = minimize(context, settings.tolerance, settings.max_iterations, reporter, method=settings.method,
                          seed=settings.seed, **run_options(settings, threads))
        violations: Violations = find_violations(topology, context.getState(getPositions=True).getPositions())
        iterations.append({"iteration": iteration, "released_residues": [label(residues[r]) for r in sorted(released)],
                           "restrained_atoms": restrained, "energy_after": energy_summary(context, groups),
                           "violations": violations.to_dict(topology), "converged": result.converged,
                           "rms_force": result.rms_force, "iterations": result.iterations,
                           "method_used": getattr(result, "method", None),
                           "wall_time": result.wall_time, "selected": result.selected, "stages": stage_table(result)})
        if violations.count == 0:
            break
        released |= violations.residues
    return iterations


def _heavy_atoms_by_residue(topology: app.Topology) -> Dict[app.Residue, List[int]]:
    atoms = list(topology.atoms())
    grouped: Dict[app.Residue, List[int]] = {}
    for index in heavy_atom_indices(topology):
        grouped.setdefault(atoms[index].residue, []).append(index)
    return grouped


def _protocol(settings: RelaxSettings) -> Dict[str, Any]:
    return {"forcefield": FORCEFIELD_FILE, "constraints": "HBonds", "solvent": "vacuum",
            "restraints": "heavy atoms", "stiffness_kj_mol_nm2": float(settings.stiffness),
            "released_stiffness_kj_mol_nm2": float(settings.released_stiffness),
            "violations": "AlphaFold's (Engh & Huber, 12 sigma; clashes: vdW radii - 1.5 A)",
            "chain_breaks": "C-N > 2.5 A: termini",
            "stiffness_kcal_mol_angstrom2": float(settings.stiffness) / 418.4,
            "max_outer_iterations": int(settings.max_outer_iterations), "inner_minimizer": settings.method}


__all__ = ["relax", "relax_file", "RelaxSettings", "amber99sb", "FORCEFIELD_FILE", "MAX_OUTER_ITERATIONS",
           "SettingsError", "residue_displacements", "prepare_for_relax"]
