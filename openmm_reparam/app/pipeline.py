"""One structure file through preparation, minimization and its report: what ``openmm-reparam minimize`` does
for each input, whether it runs in-process (``-o``) or as one task of a batch on Dask.

``MinimizeSettings`` holds every setting that changes the result (and is recorded in the report, so that a
batch can tell whether an existing output was made with the same settings); ``minimize_file`` runs it.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Optional, Tuple

import openmm
from openmm import app, unit

from ..core.platforms import announce, fastest_safe_platform
from .outputs import atomic_path
from .prepare import (PreparationError, check_solvent_options, check_xml_files, forcefield_files, prepare,
                      split_forcefields, structure_format, write_structure)
from .restraints import DEFAULT_STIFFNESS, add_position_restraints


class SettingsError(ValueError):
    """A setting has an unknown name or a bad value (a usage error)."""


@dataclass
class MinimizeSettings:
    """Everything that decides the result of minimizing one structure (lengths nm, energies kJ/mol)."""
    method: str = "auto"
    tolerance: float = 10.0
    max_iterations: int = 0
    seed: int = 0
    platform: Optional[str] = None
    options: Dict[str, Any] = field(default_factory=dict)
    forcefield: str = "amber14"         # the main force field; a list: the main one, then extra XML files
    extra_forcefields: List[str] = field(default_factory=list)  # XML files for ligands, cofactors (after the main)
    solvent: str = "obc2"
    water: Optional[str] = None         # explicit solvent's water model (None: TIP3P)
    ph: float = 7.0
    model: int = 1
    add_missing_residues: bool = False
    keep_water: bool = False
    keep_heterogens: bool = False
    padding: float = 1.0
    ionic_strength: float = 0.0         # molar, explicit solvent (the box is neutralized in any case)
    box: str = "cube"                   # explicit solvent's box shape: cube, dodecahedron, octahedron
    constraints: str = "hbonds"
    restrain: str = "none"
    restraint_stiffness: float = DEFAULT_STIFFNESS
    stiffness_modes: int = 0

    def __post_init__(self) -> None:
        """Split a list ``forcefield`` into the main one and the extra files, and check the preparation
        settings (names, files, solvent options) before any work: a bad one is a SettingsError."""
        names = [self.forcefield or "amber14"] if isinstance(self.forcefield, (str, type(None))) \
            else list(self.forcefield)
        try:
            _, extras = split_forcefields(names + list(self.extra_forcefields or []))
            self.forcefield, self.extra_forcefields = os.fspath(names[0]), extras
            forcefield_files(self.forcefield_list(), self.solvent, self.water)
            check_solvent_options(self.solvent, self.ionic_strength, self.box)
            check_xml_files(extras)
        except PreparationError as error:
            raise SettingsError(str(error)) from None

    def forcefield_list(self) -> List[str]:
        """The main force field, then the extra XML files (what ``prepare`` takes)."""
        return [self.forcefield, *self.extra_forcefields]

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "MinimizeSettings":
        """Settings from flat keywords: the fields above, and any minimizer option (``n_modes=10``, ...)."""
        return settings_from_kwargs(cls, kwargs)


def settings_from_kwargs(cls: type, kwargs: Dict[str, Any]) -> Any:
    """``cls(**fields)`` with every minimizer-option keyword moved into ``options`` and checked."""
    from ..run.options import MinimizerOptions
    from ..run.registry import deprecated_names, method_names
    from ..run.renames import current_options

    names = {f.name for f in fields(cls)}
    own = {k: v for k, v in kwargs.items() if k in names}
    options = dict(own.pop("options", None) or {})
    options.update({k: v for k, v in kwargs.items() if k not in names})
    settings = cls(options=options, **own)
    if settings.method not in method_names() + deprecated_names():
        raise SettingsError(f"method must be one of {method_names()}, got {settings.method!r}")
    try:
        settings.options = current_options(options, MinimizerOptions.known(settings.method), stacklevel=4)
        MinimizerOptions.from_kwargs(method=settings.method, **settings.options)
    except (TypeError, ValueError) as error:
        raise SettingsError(f"bad setting: {error}") from None
    return settings



def result_settings(settings: Any) -> Dict[str, Any]:
    """The settings as plain JSON values (what a report records and a resumed batch compares): an option that is
    an object (a generator's factory or network) by its name, as ``result.options`` records it."""
    from ..run.options import plain_value
    data = asdict(settings)
    data["options"] = {name: plain_value(value) for name, value in settings.options.items()}
    return data


def make_platform(name: Optional[str], threads: Optional[int] = None, quiet: bool = False
                  ) -> Tuple[Optional[openmm.Platform], Dict]:
    """The platform called ``name`` (None: OpenMM's fastest, unless that is OpenCL on a CPU runtime, where
    OpenMM's L-BFGS crashes: then CPU, said once on stderr) and Context properties giving the CPU platform
    ``threads`` threads (None: OpenMM's default). SettingsError for an unknown name. ``quiet``: a check of the
    name only (the note is said when the platform is used)."""
    platform = None
    if name is None:
        safest, note = fastest_safe_platform()
        if note:
            if not quiet:
                announce(note)
            platform = safest
    else:
        try:
            platform = openmm.Platform.getPlatformByName(name)
        except openmm.OpenMMException:
            available = [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]
            raise SettingsError(f"unknown platform {name!r}; available: {', '.join(available)}") from None
    if threads is None:
        return platform, {}
    if platform is None:  # the fastest platform may be CPU: give every later CPU Context this many threads
        openmm.Platform.getPlatformByName("CPU").setPropertyDefaultValue("Threads", str(int(threads)))
        return platform, {}
    return platform, ({"Threads": str(int(threads))} if platform.getName() == "CPU" else {})


def run_options(settings: Any, threads: Optional[int]) -> Dict[str, Any]:
    """Minimizer options for the run: the settings' options, with torch using ``threads`` unless they say."""
    options = dict(settings.options)
    if threads is not None:
        options.setdefault("torch_threads", int(threads))
    return options


@dataclass
class StructureRun:
    """A finished minimization: its report data, the MinimizationResult and the Simulation (for MD after)."""
    data: Dict[str, Any]
    result: Any
    simulation: app.Simulation


def minimize_file(path: str, output: str, settings: MinimizeSettings, reporter: Any = None,
                  threads: Optional[int] = None, prepared_output: Optional[str] = None) -> StructureRun:
    """Prepare ``path``, minimize it, write the minimized structure to ``output`` (atomically) and return the
    report data; ``prepared_output``: also write the prepared structure (repaired, hydrogens and solvent added)
    there, before minimizing. Errors: PreparationError (bad input), NonFiniteEnergyError, OutputError,
    SettingsError."""
    from ..api.minimizer import minimize
    from .report import energy_summary, force_statistics

    start = time.perf_counter()
    prepared, restraint, groups, simulation = _prepare_simulation(path, settings, threads)
    preparation_time = time.perf_counter() - start
    if prepared_output is not None:
        write_prepared(prepared, prepared_output)
    energy_before, forces_before = energy_summary(simulation.context, groups), force_statistics(simulation.context)
    result = minimize(simulation.context, settings.tolerance, settings.max_iterations, reporter,
                      method=settings.method, seed=settings.seed, **run_options(settings, threads))
    positions = simulation.context.getState(getPositions=True).getPositions()
    with atomic_path(output) as temporary:
        write_structure(prepared.topology, positions, temporary, fmt=structure_format(output))
    data = {"input": os.path.abspath(path), "output": os.path.abspath(output), "command": "minimize",
            "prepared_output": None if prepared_output is None else os.path.abspath(prepared_output),
            "settings": _report_settings(settings, prepared, restraint, simulation),
            "preparation": _preparation(prepared, preparation_time),
            "energy_unit": "kJ/mol", "force_unit": "kJ/mol/nm",
            "energy_before": energy_before, "energy_after": energy_summary(simulation.context, groups),
            "forces_before_raw": forces_before, "forces_after_raw": force_statistics(simulation.context)}
    data.update(_result_fields(result, prepared, positions))
    if settings.stiffness_modes > 0:
        data["stiffness"] = stiffness_report(simulation.context, settings.stiffness_modes)
    return StructureRun(data=data, result=result, simulation=simulation)


def write_prepared(prepared: Any, path: str) -> None:
    """Write the prepared structure (before minimization) to ``path`` atomically, PDB or PDBx by extension."""
    with atomic_path(path) as temporary:
        write_structure(prepared.topology, prepared.positions, temporary, fmt=structure_format(path))


def _prepare_simulation(path: str, settings: MinimizeSettings, threads: Optional[int]):
    from .report import assign_force_groups

    prepared = prepare(path, forcefield=settings.forcefield_list(), solvent=settings.solvent, ph=settings.ph,
                       model=settings.model, add_missing_residues=settings.add_missing_residues,
                       keep_water=settings.keep_water, keep_heterogens=settings.keep_heterogens,
                       water=settings.water, padding=settings.padding, ionic_strength=settings.ionic_strength,
                       box=settings.box, seed=settings.seed,
                       constraints=app.HBonds if settings.constraints == "hbonds" else None)
    platform, properties = make_platform(settings.platform, threads)  # after the input checks: its note
    try:
        restraint = add_position_restraints(prepared.system, prepared.topology, prepared.positions,
                                            settings.restrain, settings.restraint_stiffness)
    except ValueError as error:
        raise SettingsError(str(error)) from None
    groups = assign_force_groups(prepared.system)
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1.0 / unit.picosecond, 2.0 * unit.femtoseconds)
    integrator.setRandomNumberSeed(settings.seed)
    simulation = app.Simulation(prepared.topology, prepared.system, integrator, platform, properties or None)
    simulation.context.setPositions(prepared.positions)
    return prepared, restraint, groups, simulation


def _preparation(prepared: Any, wall_time: float) -> Dict[str, Any]:
    topology = prepared.topology
    return {"changes": prepared.changes, "atoms": topology.getNumAtoms(), "residues": topology.getNumResidues(),
            "periodic": prepared.periodic, "wall_time": wall_time}


def _result_fields(result: Any, prepared: Any, positions: Any) -> Dict[str, Any]:
    from .report import history_iterations, package_versions, rmsd_to_reference, stage_table
    return {"method_used": getattr(result, "method", None), "rms_force": result.rms_force,
            "max_force": result.max_force, "converged": result.converged,
            "tolerance": result.tolerance,
            "rmsd_to_prepared_input": rmsd_to_reference(prepared.topology, prepared.positions, positions),
            "iterations": result.iterations, "energy_iterations": history_iterations(result.history),
            "energy_evaluations": result.energy_evaluations,
            "wall_time": result.wall_time, "stages": stage_table(result), "selected": result.selected,
            "baseline_energy": result.baseline_energy, "interrupted": result.interrupted,
            "restarts": list(getattr(result, "restarts", [])),
            "obstacles": [asdict(o) for o in result.obstacles],
            "held_back_by": result.held_back_by(prepared.topology) or None,
            "minimizer_options": result.options, "versions": package_versions()}


def _report_settings(settings: MinimizeSettings, prepared: Any, restraint: Any,
                     simulation: app.Simulation) -> Dict[str, Any]:
    """The exact settings, the preparation settings, and what they resolved to."""
    data = result_settings(settings)
    data["preparation"] = prepared.settings
    data["restrained_atoms"] = 0 if restraint is None else restraint.getNumParticles()
    data["platform_used"] = simulation.context.getPlatform().getName()
    return data


def stiffness_report(context: openmm.Context, n_modes: int) -> Dict[str, Any]:
    """The lowest ``n_modes`` stiffness modes at the minimum (``openmm_reparam.analysis.stiffness``)."""
    from ..analysis.stiffness import stiffness
    result = stiffness(context, n_modes=n_modes)
    return result.to_dict()


__all__ = ["MinimizeSettings", "SettingsError", "StructureRun", "minimize_file", "make_platform", "write_prepared",
           "settings_from_kwargs", "result_settings", "run_options", "PreparationError"]
