"""Turn a PDB or PDBx/mmCIF file into a ready-to-minimize OpenMM System (PDBFixer + ForceField).

``prepare`` reads one model of the file, repairs it with PDBFixer (nonstandard residues, missing heavy atoms,
optionally missing residues, heterogens, hydrogens at a pH), and builds a System with the chosen force field and
solvent. What PDBFixer changed is recorded in ``PreparedSystem.changes`` so that reports can say so.

The System always uses ``constraints=HBonds`` by default (what ``app.Simulation`` users normally have), so the
same System can be minimized and then simulated with a 2 fs time step.
"""
from __future__ import annotations

import io
import os
import random
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import openmm
from openmm import app, unit

PathLike = Union[str, "os.PathLike[str]"]

#: Short force-field names -> (protein force-field file, water file used for explicit solvent and water templates).
FORCEFIELDS: Dict[str, Tuple[str, str]] = {
    "amber14": ("amber14-all.xml", "amber14/tip3p.xml"),
    "amber19": ("amber19-all.xml", "amber19/tip3p.xml"),
    "charmm36": ("charmm36.xml", "charmm36/water.xml"),
}
#: Implicit-solvent files shipped with OpenMM (they work with the Amber and CHARMM force fields above).
IMPLICIT_SOLVENTS: Dict[str, Optional[str]] = {"none": None, "obc2": "implicit/obc2.xml", "gbn2": "implicit/gbn2.xml"}
EXPLICIT_SOLVENTS = ("tip3p",)
SOLVENTS = tuple(IMPLICIT_SOLVENTS) + EXPLICIT_SOLVENTS

_WATER_NAMES = {"HOH", "WAT", "H2O", "TIP3", "TIP", "SOL"}
_CAPS = {"ACE", "NME", "NH2"}
_PDBX_EXTENSIONS = (".cif", ".mmcif", ".pdbx")


class PreparationError(ValueError):
    """The input structure or a preparation setting cannot be used (a user error, not a bug)."""


@dataclass
class PreparedSystem:
    """A repaired structure and its OpenMM System.

    ``positions`` is an openmm Quantity (list of Vec3 in nm); ``changes`` lists what PDBFixer did;
    ``settings`` holds the exact preparation settings (JSON-serializable) for reports.
    """
    topology: app.Topology
    system: openmm.System
    positions: Any
    forcefield: app.ForceField
    forcefield_files: List[str]
    solvent: str
    changes: Dict[str, Any] = field(default_factory=dict)
    settings: Dict[str, Any] = field(default_factory=dict)

    @property
    def periodic(self) -> bool:
        return self.system.usesPeriodicBoundaryConditions()


def forcefield_files(forcefield: str = "amber14", solvent: str = "obc2") -> List[str]:
    """The OpenMM XML files for a force-field name and a solvent.

    ``forcefield`` is a short name (``amber14``, ``amber19``, ``charmm36``) or one of their main files
    (``amber14-all.xml``, ...). The water file is always included (it only adds water/ion templates).
    """
    key = _forcefield_key(forcefield)
    if solvent not in SOLVENTS:
        raise PreparationError(f"unknown solvent {solvent!r}; choose one of {', '.join(SOLVENTS)}")
    main, water = FORCEFIELDS[key]
    files = [main, water]
    implicit = IMPLICIT_SOLVENTS.get(solvent)
    if implicit:
        files.append(implicit)
    return files


def _forcefield_key(forcefield: str) -> str:
    name = str(forcefield).strip().lower()
    for key, (main, _) in FORCEFIELDS.items():
        if name in (key, main, main[:-4]):
            return key
    raise PreparationError(f"unknown force field {forcefield!r}; choose one of {', '.join(FORCEFIELDS)} "
                           f"(or {', '.join(m for m, _ in FORCEFIELDS.values())})")


def prepare(path: PathLike, forcefield: str = "amber14-all.xml", solvent: str = "obc2", ph: float = 7.0, *,
            model: int = 1, add_missing_residues: bool = False, keep_water: bool = False,
            keep_heterogens: bool = False, padding: Any = 1.0, ionic_strength: Any = 0.0,
            constraints: Optional[object] = app.HBonds, nonbonded_cutoff: Any = 1.0,
            platform: Optional[openmm.Platform] = None, seed: int = 0) -> PreparedSystem:
    """Read, repair and parametrize a structure file.

    Args:
        path: a PDB (``.pdb``/``.ent``) or PDBx/mmCIF (``.cif``/``.mmcif``) file.
        forcefield: ``amber14`` | ``amber19`` | ``charmm36`` (or their XML file names).
        solvent: ``none`` (vacuum), ``obc2`` | ``gbn2`` (implicit) or ``tip3p`` (explicit water box, periodic, PME).
        ph: pH at which protonation states are chosen for the hydrogens PDBFixer adds.
        model: which model (1-based, in file order) of a multi-model (NMR) file to use.
        add_missing_residues: also build residues missing inside a chain (gaps from SEQRES); terminal tails are
            never built (they would be floppy, unrestrained guesses).
        keep_water: keep crystallographic waters (otherwise every heterogen is removed).
        keep_heterogens: keep ligands and other heterogens (they then need templates in the force field).
        padding: water padding around the solute for ``tip3p`` (nm or Quantity).
        ionic_strength: salt for ``tip3p`` (molar or Quantity); the box is neutralized in any case.
        constraints: OpenMM constraints for the System (default HBonds; None for none).
        nonbonded_cutoff: cutoff for the periodic (``tip3p``) System (nm or Quantity).
        seed: seeds the random numbers OpenMM's Modeller and PDBFixer use to place new atoms and ions (Python's
            global ``random`` state is restored afterwards), so preparation is reproducible.
        platform: the platform PDBFixer uses while placing hydrogens (default Reference: deterministic, unlike
            the multithreaded CPU platform, so the same input always gives the same prepared structure).

    Raises:
        PreparationError: unreadable/empty input, bad model number, unknown residue or force field, ...
    """
    saved_state = random.getstate()
    random.seed(seed)
    try:
        return _prepare(os.fspath(path), forcefield, solvent, ph, model, add_missing_residues, keep_water,
                        keep_heterogens, padding, ionic_strength, constraints, nonbonded_cutoff, platform, seed)
    finally:
        random.setstate(saved_state)


def _prepare(path: str, forcefield: str, solvent: str, ph: float, model: int, add_missing_residues: bool,
             keep_water: bool, keep_heterogens: bool, padding: Any, ionic_strength: Any,
             constraints: Optional[object], nonbonded_cutoff: Any, platform: Optional[openmm.Platform],
             seed: int) -> PreparedSystem:
    files = forcefield_files(forcefield, solvent)
    if platform is None:
        platform = openmm.Platform.getPlatformByName("Reference")
    fixer, n_models = _read_structure(path, model, platform)
    changes: Dict[str, Any] = {"models_in_file": n_models, "model_used": model}

    fixer.findMissingResidues()
    missing_residues = _select_missing_residues(fixer, add_missing_residues)
    changes["missing_residues_added"] = missing_residues
    fixer.findNonstandardResidues()
    changes["nonstandard_residues_replaced"] = [f"{_label(res)} -> {new}" for res, new in fixer.nonstandardResidues]
    fixer.replaceNonstandardResidues()
    changes["heterogens_removed"] = _remove_heterogens(fixer, keep_water, keep_heterogens)

    fixer.findMissingAtoms()
    changes["missing_atoms_added"] = {_label(res): [a.name for a in atoms] for res, atoms in fixer.missingAtoms.items()}
    changes["missing_terminals_added"] = {_label(res): list(names) for res, names in fixer.missingTerminals.items()}
    before = fixer.topology.getNumAtoms()
    fixer.addMissingAtoms(seed=seed)
    heavy_added = fixer.topology.getNumAtoms() - before

    ff = app.ForceField(*files)
    before = fixer.topology.getNumAtoms()
    try:
        fixer.addMissingHydrogens(pH=ph, forcefield=ff)
    except ValueError as error:
        raise PreparationError(f"cannot add hydrogens: {error}") from None
    changes["heavy_atoms_added"] = heavy_added
    changes["hydrogens_added"] = fixer.topology.getNumAtoms() - before

    topology, positions = fixer.topology, fixer.positions
    if solvent in EXPLICIT_SOLVENTS:
        modeller = app.Modeller(topology, positions)
        modeller.addSolvent(ff, model=solvent, padding=_quantity(padding, unit.nanometer),
                            ionicStrength=_quantity(ionic_strength, unit.molar), neutralize=True)
        changes["solvent_molecules_added"] = modeller.topology.getNumResidues() - topology.getNumResidues()
        topology, positions = modeller.topology, modeller.positions

    system = _create_system(ff, topology, solvent, constraints, nonbonded_cutoff)
    settings = {"path": path, "forcefield": _forcefield_key(forcefield), "forcefield_files": files,
                "solvent": solvent, "ph": float(ph), "model": model, "seed": seed,
                "add_missing_residues": add_missing_residues, "keep_water": keep_water,
                "keep_heterogens": keep_heterogens,
                "padding_nm": _quantity(padding, unit.nanometer).value_in_unit(unit.nanometer),
                "ionic_strength_molar": _quantity(ionic_strength, unit.molar).value_in_unit(unit.molar),
                "constraints": None if constraints is None else str(constraints),
                "nonbonded_cutoff_nm": _quantity(nonbonded_cutoff, unit.nanometer).value_in_unit(unit.nanometer)}
    return PreparedSystem(topology=topology, system=system, positions=positions, forcefield=ff,
                          forcefield_files=files, solvent=solvent, changes=changes, settings=settings)


def create_system(topology: app.Topology, forcefield: str = "amber14", solvent: str = "obc2",
                  constraints: Optional[object] = app.HBonds, nonbonded_cutoff: Any = 1.0) -> openmm.System:
    """Build a System for an already complete topology (e.g. a file written by the CLI), with the same
    force-field and solvent settings ``prepare`` uses. No repair, no added solvent."""
    ff = app.ForceField(*forcefield_files(forcefield, solvent))
    return _create_system(ff, topology, solvent, constraints, nonbonded_cutoff)


def _create_system(ff: app.ForceField, topology: app.Topology, solvent: str, constraints: Optional[object],
                   nonbonded_cutoff: Any) -> openmm.System:
    periodic = solvent in EXPLICIT_SOLVENTS
    kwargs: Dict[str, Any] = {"constraints": constraints, "rigidWater": constraints is not None}
    if periodic:
        kwargs.update(nonbondedMethod=app.PME, nonbondedCutoff=_quantity(nonbonded_cutoff, unit.nanometer))
    else:
        kwargs.update(nonbondedMethod=app.NoCutoff)
    try:
        return ff.createSystem(topology, **kwargs)
    except ValueError as error:
        message = " ".join(str(error).split())
        raise PreparationError(f"cannot build the force field System: {message}") from None


def _read_structure(path: str, model: int, platform: Optional[openmm.Platform]):
    """A PDBFixer holding the chosen model of ``path``, and the number of models in the file."""
    from pdbfixer import PDBFixer  # imported here: pdbfixer is an optional ("pdb") dependency

    if not os.path.exists(path):
        raise PreparationError(f"input file {path!r} does not exist")
    if os.path.isdir(path):
        raise PreparationError(f"input {path!r} is a directory, not a structure file")
    if int(model) < 1:
        raise PreparationError(f"model numbers start at 1, got {model}")
    try:
        with open(path, "r") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise PreparationError(f"cannot read {path!r}: {error}") from None
    if not text.strip():
        raise PreparationError(f"input file {path!r} is empty")
    is_pdbx = path.lower().endswith(_PDBX_EXTENSIONS) or text.lstrip().startswith("data_")
    try:
        if is_pdbx:
            fixer = PDBFixer(pdbxfile=io.StringIO(text), platform=platform)
            n_models = app.PDBxFile(io.StringIO(text)).getNumFrames()
            if model > n_models:
                raise PreparationError(f"{path!r} has {n_models} model(s), model {model} was asked for")
            if model > 1:
                fixer.positions = app.PDBxFile(io.StringIO(text)).getPositions(frame=model - 1)
        else:
            selected, n_models = _select_pdb_model(text, model, path)
            fixer = PDBFixer(pdbfile=io.StringIO(selected), platform=platform)
    except PreparationError:
        raise
    except Exception as error:  # any parser failure means the file is not a usable structure
        message = " ".join(str(error).split()) or type(error).__name__
        raise PreparationError(f"cannot read a structure from {path!r}: {message}") from None
    return fixer, n_models


def _select_pdb_model(text: str, model: int, path: str) -> Tuple[str, int]:
    """The PDB text with only the ``model``-th MODEL block (records outside MODEL blocks are kept)."""
    lines = text.splitlines(keepends=True)
    n_models = sum(1 for line in lines if line.startswith("MODEL"))
    if n_models == 0:
        if model != 1:
            raise PreparationError(f"{path!r} has 1 model, model {model} was asked for")
        return text, 1
    if model > n_models:
        raise PreparationError(f"{path!r} has {n_models} models, model {model} was asked for")
    kept, ordinal, inside = [], 0, False
    for line in lines:
        if line.startswith("MODEL"):
            ordinal += 1
            inside = True
            continue
        if line.startswith("ENDMDL"):
            inside = False
            continue
        if not inside or ordinal == model:
            kept.append(line)
    return "".join(kept), n_models


def _select_missing_residues(fixer, add: bool) -> List[str]:
    """Keep only internal gaps (never terminal tails) in ``fixer.missingResidues``, or none at all."""
    chains = list(fixer.topology.chains())
    selected = {}
    for (chain_index, residue_index), names in fixer.missingResidues.items():
        chain_length = len(list(chains[chain_index].residues()))
        if add and 0 < residue_index < chain_length:
            selected[(chain_index, residue_index)] = names
    fixer.missingResidues = selected
    return [f"chain {chains[c].id} before residue #{r}: {' '.join(names)}" for (c, r), names in selected.items()]


def _remove_heterogens(fixer, keep_water: bool, keep_heterogens: bool) -> List[str]:
    """Delete heterogens (everything but polymer residues, caps and, if asked, water); return their labels.

    A residue that is not a known polymer residue but sits *inside* a chain, between polymer residues, is
    not a ligand: removing it would silently cut the chain, so it is reported as an error instead.
    """
    from pdbfixer.pdbfixer import dnaResidues, proteinResidues, rnaResidues

    polymer = set(proteinResidues) | set(dnaResidues) | set(rnaResidues) | _CAPS
    for chain in fixer.topology.chains():
        residues = list(chain.residues())
        is_polymer = [r.name in polymer for r in residues]
        for i, residue in enumerate(residues):
            if is_polymer[i] or residue.name in _WATER_NAMES or keep_heterogens:
                continue
            if any(is_polymer[:i]) and any(is_polymer[i + 1:]):
                raise PreparationError(
                    f"unknown residue {_label(residue)} inside a polymer chain: no template to build it from "
                    f"(rename it to a standard residue, or give a MODRES record)")
    if keep_heterogens:
        return []
    to_delete = [r for r in fixer.topology.residues()
                 if r.name not in polymer and not (keep_water and r.name in _WATER_NAMES)]
    if to_delete:
        modeller = app.Modeller(fixer.topology, fixer.positions)
        modeller.delete(to_delete)
        fixer.topology, fixer.positions = modeller.topology, modeller.positions
    counts: Dict[str, int] = {}
    for residue in to_delete:
        counts[residue.name] = counts.get(residue.name, 0) + 1
    return [f"{name} x{count}" for name, count in sorted(counts.items())]


def _label(residue) -> str:
    return f"{residue.name} {residue.chain.id} {residue.id}{getattr(residue, 'insertionCode', '') or ''}".strip()


def _quantity(value: Any, default_unit: unit.Unit) -> unit.Quantity:
    if unit.is_quantity(value):
        return value.in_units_of(default_unit)
    return float(value) * default_unit


def heavy_atom_indices(topology: app.Topology, solute_only: bool = True) -> List[int]:
    """Indices of non-hydrogen atoms (of the solute: water and monatomic ions excluded, by default)."""
    return [a.index for a in topology.atoms()
            if a.element is not None and a.element.symbol != "H" and not (solute_only and _is_solvent(a.residue))]


def ca_indices(topology: app.Topology) -> List[int]:
    """Indices of the protein C-alpha atoms."""
    return [a.index for a in topology.atoms() if a.name == "CA" and a.element is not None
            and a.element.symbol == "C"]


def _is_solvent(residue) -> bool:
    return residue.name in _WATER_NAMES or len(list(residue.atoms())) == 1


def write_structure(topology: app.Topology, positions: Any, path: PathLike, fmt: Optional[str] = None) -> None:
    """Write PDB or PDBx/mmCIF (``fmt``, else chosen by extension) keeping chain and residue ids. Not atomic by
    itself: callers that need atomic output write to a temporary name first (see ``outputs.atomic_path``)."""
    path = os.fspath(path)
    fmt = fmt or structure_format(path)
    with open(path, "w") as handle:
        if fmt == "pdbx":
            app.PDBxFile.writeFile(topology, positions, handle, keepIds=True)
        else:
            app.PDBFile.writeFile(topology, positions, handle, keepIds=True)


def structure_format(path: PathLike) -> str:
    """``"pdb"`` or ``"pdbx"`` from a file name's extension; PreparationError for anything else."""
    lower = os.fspath(path).lower()
    if lower.endswith(_PDBX_EXTENSIONS):
        return "pdbx"
    if lower.endswith((".pdb", ".ent")):
        return "pdb"
    raise PreparationError(f"cannot tell the format of {os.fspath(path)!r}: use a .pdb or .cif extension")


__all__: Sequence[str] = ("prepare", "PreparedSystem", "PreparationError", "forcefield_files", "create_system",
                          "write_structure", "structure_format", "heavy_atom_indices", "ca_indices", "FORCEFIELDS",
                          "SOLVENTS")
