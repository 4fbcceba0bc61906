"""Turn a PDB or PDBx/mmCIF file into a ready-to-minimize OpenMM System (PDBFixer + ForceField).

``prepare`` reads one model of the file, repairs it with PDBFixer (nonstandard residues, missing heavy atoms,
optionally missing residues, heterogens, hydrogens at a pH), and builds a System with the chosen force field and
solvent. What PDBFixer changed is recorded in ``PreparedSystem.changes`` so that reports can say so.

The System always uses ``constraints=HBonds`` by default (what ``app.Simulation`` users normally have), so the
same System can be minimized and then simulated with a 2 fs time step.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
import openmm
from openmm import app, unit

from .chain_breaks import describe_breaks, find_chain_breaks, split_chains
from .private_random import seeded_random
from .structure_file import PreparationError, load_fixer, residue_label, structure_format

PathLike = Union[str, "os.PathLike[str]"]

#: Short force-field names -> (main force-field file, the TIP3P water file: water and ion templates for implicit
#: solvent, vacuum and crystallographic waters).
FORCEFIELDS: Dict[str, Tuple[str, str]] = {
    "amber14": ("amber14-all.xml", "amber14/tip3p.xml"),
    "amber19": ("amber19-all.xml", "amber19/tip3p.xml"),
    "charmm36": ("charmm36.xml", "charmm36/water.xml"),
}
#: Implicit-solvent files shipped with OpenMM (they work with the Amber and CHARMM force fields above).
IMPLICIT_SOLVENTS: Dict[str, Optional[str]] = {"none": None, "obc2": "implicit/obc2.xml", "gbn2": "implicit/gbn2.xml"}
#: ``explicit``: a periodic water box of the ``water`` model; ``tip3p``: the same with TIP3P (the older spelling).
EXPLICIT_SOLVENTS = ("explicit", "tip3p")
SOLVENTS = tuple(IMPLICIT_SOLVENTS) + EXPLICIT_SOLVENTS
#: Explicit water models -> the pre-equilibrated box ``Modeller.addSolvent`` fills with (a 3-site box serves every
#: 3-site model, TIP4P-Ew's serves the 4-site ones; the force field's own template then places the virtual site).
WATER_MODELS: Dict[str, str] = {"tip3p": "tip3p", "tip3pfb": "tip3p", "spce": "spce", "tip4pew": "tip4pew",
                                "opc": "tip4pew"}
DEFAULT_WATER = "tip3p"
#: ``Modeller.addSolvent``'s box shapes (cube, rhombic dodecahedron, truncated octahedron).
BOX_SHAPES = ("cube", "dodecahedron", "octahedron")


_WATER_NAMES = {"HOH", "WAT", "H2O", "TIP3", "TIP", "SOL"}
_CAPS = {"ACE", "NME", "NH2"}


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


def forcefield_files(forcefield: Union[str, Sequence[str]] = "amber14", solvent: str = "obc2",
                     water: Optional[str] = None) -> List[str]:
    """The OpenMM XML files for a force field, a solvent and (explicit solvent) a water model.

    ``forcefield`` is a short name (``amber14``, ``amber19``, ``charmm36``) or one of their main files
    (``amber14-all.xml``, ...), or a list whose first entry is one of those and whose others are extra XML files
    (paths, or files shipped with OpenMM) with templates and parameters for ligands and cofactors; they come last.
    The water file is always included (it only adds water/ion templates): the ``water`` model's with explicit
    solvent, TIP3P's otherwise.
    """
    key, extras = split_forcefields(forcefield)
    if solvent not in SOLVENTS:
        raise PreparationError(f"unknown solvent {solvent!r}; choose one of {', '.join(SOLVENTS)}")
    model = water_model(solvent, water)
    main, water_file = FORCEFIELDS[key]
    files = [main, water_file if model is None else _water_file(key, model)]
    implicit = IMPLICIT_SOLVENTS.get(solvent)
    if implicit:
        files.append(implicit)
    return files + extras


def split_forcefields(forcefield: Union[str, Sequence[str]]) -> Tuple[str, List[str]]:
    """(the main force field's short name, the extra XML files): paths made absolute, OpenMM's own names kept.
    PreparationError for an unknown main force field or an extra file that does not exist."""
    names = [forcefield] if isinstance(forcefield, (str, os.PathLike)) else list(forcefield)
    if not names:
        raise PreparationError("no force field given")
    first = os.fspath(names[0])
    if first.strip().lower() not in _MAIN_NAMES and first.lower().endswith(".xml"):
        raise PreparationError(f"the first force field names the main one ({', '.join(FORCEFIELDS)}), got "
                               f"{first!r}; give extra XML files after it")
    return _forcefield_key(first), [_extra_file(os.fspath(name)) for name in names[1:]]


def _extra_file(name: str) -> str:
    if os.path.isfile(name):
        return os.path.abspath(name)
    if not os.path.isabs(name) and any(os.path.isfile(os.path.join(d, name)) for d in _data_directories()):
        return name
    if os.path.isdir(name):
        raise PreparationError(f"force-field file {name!r} is a directory")
    raise PreparationError(f"force-field file {name!r} does not exist (nor is it a file shipped with OpenMM)")


def _data_directories() -> List[str]:
    from openmm.app import forcefield as forcefield_module
    return list(forcefield_module._getDataDirectories())


def water_model(solvent: str, water: Optional[str]) -> Optional[str]:
    """The explicit water model of ``solvent`` and ``water`` (None for implicit solvent and vacuum)."""
    if water is not None and water not in WATER_MODELS:
        raise PreparationError(f"unknown water model {water!r}; choose one of {', '.join(WATER_MODELS)}")
    if solvent not in EXPLICIT_SOLVENTS:
        if water is not None:
            raise PreparationError(f"water model {water!r} applies to explicit solvent (--solvent explicit), "
                                   f"not {solvent!r}")
        return None
    if solvent == "tip3p" and water not in (None, "tip3p"):
        raise PreparationError(f"solvent 'tip3p' means TIP3P water; for {water!r} use solvent 'explicit'")
    return water or DEFAULT_WATER


def _water_file(key: str, model: str) -> str:
    """The water XML of ``model`` in force-field family ``key`` (CHARMM's TIP3P is ``charmm36/water.xml``)."""
    name = FORCEFIELDS[key][1] if model == "tip3p" else f"{key}/{model}.xml"
    if not any(os.path.isfile(os.path.join(d, name)) for d in _data_directories()):
        shipped = [m for m in WATER_MODELS if m == "tip3p" or
                   any(os.path.isfile(os.path.join(d, f"{key}/{m}.xml")) for d in _data_directories())]
        raise PreparationError(f"force field {key} ships no {model} water ({name}); choose one of "
                               f"{', '.join(shipped)}")
    return name


def check_solvent_options(solvent: str, ionic_strength: Any = 0.0, box: str = "cube") -> None:
    """PreparationError for a box shape or ionic strength that cannot apply: both are explicit solvent's."""
    if box not in BOX_SHAPES:
        raise PreparationError(f"unknown box shape {box!r}; choose one of {', '.join(BOX_SHAPES)}")
    molar = _quantity(ionic_strength, unit.molar).value_in_unit(unit.molar)
    if not molar >= 0:
        raise PreparationError(f"ionic strength must be >= 0 molar, got {molar:g}")
    if solvent not in EXPLICIT_SOLVENTS and (molar > 0 or box != "cube"):
        given = f"ionic strength {molar:g} M" if molar > 0 else f"box {box!r}"
        raise PreparationError(f"{given} applies to explicit solvent (--solvent explicit), not {solvent!r}")


def check_xml_files(files: Sequence[str]) -> None:
    """PreparationError naming the first of ``files`` (those on disk) that is not well-formed force-field XML."""
    import xml.etree.ElementTree as ElementTree
    for name in files:
        if not os.path.isfile(name):
            continue
        try:
            root = ElementTree.parse(name).getroot()
        except (ElementTree.ParseError, OSError) as error:
            raise PreparationError(f"cannot read force-field file {name!r}: {' '.join(str(error).split())}") \
                from None
        if root.tag != "ForceField":
            raise PreparationError(f"force-field file {name!r} is XML but not an OpenMM force field (its root "
                                   f"element is <{root.tag}>, not <ForceField>)")


def load_forcefield(files: Sequence[str]) -> app.ForceField:
    """``app.ForceField(*files)``; PreparationError naming the file when one is not valid force-field XML."""
    check_xml_files(files)
    try:
        return app.ForceField(*files)
    except Exception as error:  # a well-formed file OpenMM cannot use (unknown atom type, bad attribute, ...)
        message = " ".join(str(error).split()) or type(error).__name__
        raise PreparationError(f"cannot load the force field from {', '.join(files)}: "
                               f"{type(error).__name__}: {message}") from None


def _forcefield_key(forcefield: str) -> str:
    name = str(forcefield).strip().lower()
    for key, (main, _) in FORCEFIELDS.items():
        if name in (key, main, main[:-4]):
            return key
    raise PreparationError(f"unknown force field {forcefield!r}; choose one of {', '.join(FORCEFIELDS)} "
                           f"(or {', '.join(m for m, _ in FORCEFIELDS.values())})")


_MAIN_NAMES = {name for key, (main, _) in FORCEFIELDS.items() for name in (key, main, main[:-4])}


def prepare(path: PathLike, forcefield: Union[str, Sequence[str]] = "amber14-all.xml", solvent: str = "obc2",
            ph: float = 7.0, *, model: int = 1, add_missing_residues: bool = False, keep_water: bool = False,
            keep_heterogens: bool = False, water: Optional[str] = None, padding: Any = 1.0,
            ionic_strength: Any = 0.0, box: str = "cube", constraints: Optional[object] = app.HBonds,
            nonbonded_cutoff: Any = 1.0, platform: Optional[openmm.Platform] = None, seed: int = 0) -> PreparedSystem:
    """Read, repair and parametrize a structure file.

    Args:
        path: a PDB (``.pdb``/``.ent``) or PDBx/mmCIF (``.cif``/``.mmcif``) file, plain or gzip-compressed (``.gz``).
        forcefield: ``amber14`` | ``amber19`` | ``charmm36`` (or their XML file names), or a list of that name
            followed by extra XML files (templates and parameters for ligands, cofactors): see
            :func:`forcefield_files`.
        solvent: ``none`` (vacuum), ``obc2`` | ``gbn2`` (implicit), ``explicit`` (a periodic box of ``water``,
            PME) or ``tip3p`` (the same as ``explicit`` with TIP3P water).
        ph: pH at which protonation states are chosen for the hydrogens PDBFixer adds.
        model: which model (1-based, in file order) of a multi-model (NMR) file to use.
        add_missing_residues: build the residues missing inside a chain (gaps known from SEQRES); terminal tails
            are never built (they would be floppy, unrestrained guesses). A chain break that is not built is made
            two termini (:mod:`.chain_breaks`), never bonded shut.
        keep_water: keep crystallographic waters (otherwise every heterogen is removed).
        keep_heterogens: keep ligands and other heterogens (they then need templates in the force field).
        water: explicit solvent's water model (:data:`WATER_MODELS`; default TIP3P), from the force field's
            family (``amber14/tip4pew.xml``, ...); 4-site models get their virtual sites from its templates.
        padding: water padding around the solute for explicit solvent (nm or Quantity).
        ionic_strength: Na+/Cl- for explicit solvent (molar or Quantity); the box is neutralized in any case.
        box: the explicit water box's shape: ``cube``, ``dodecahedron`` (rhombic) or ``octahedron`` (truncated).
        constraints: OpenMM constraints for the System (default HBonds; None for none).
        nonbonded_cutoff: cutoff for the periodic (``tip3p``) System (nm or Quantity).
        seed: seeds the random numbers OpenMM's Modeller and PDBFixer use to place new atoms and ions, from a
            generator private to this call (:mod:`.private_random`) and PDBFixer's integrator
            (:func:`integrator_seed`), so preparation is reproducible whatever else the process does.
        platform: the platform PDBFixer uses while placing hydrogens (default Reference: deterministic, unlike
            the multithreaded CPU platform, so the same input always gives the same prepared structure).

    Raises:
        PreparationError: unreadable/empty input, bad coordinates, bad model number, unknown residue or force
            field, ... (one line, naming what is wrong).
    """
    with seeded_random(seed):
        return _prepare(os.fspath(path), forcefield, solvent, water, ph, model, add_missing_residues, keep_water,
                        keep_heterogens, padding, ionic_strength, box, constraints, nonbonded_cutoff, platform, seed)


def _prepare(path: str, forcefield: Union[str, Sequence[str]], solvent: str, water: Optional[str], ph: float,
             model: int, add_missing_residues: bool, keep_water: bool, keep_heterogens: bool, padding: Any,
             ionic_strength: Any, box: str, constraints: Optional[object], nonbonded_cutoff: Any,
             platform: Optional[openmm.Platform], seed: int) -> PreparedSystem:
    files = forcefield_files(forcefield, solvent, water)
    check_solvent_options(solvent, ionic_strength, box)
    water = water_model(solvent, water)
    ff = load_forcefield(files)
    if platform is None:
        platform = openmm.Platform.getPlatformByName("Reference")
    for attempt in range(PLACEMENT_ATTEMPTS):  # the random numbers go on: each attempt places atoms anew
        fixer, n_models = load_fixer(path, model, platform)
        given = {_atom_key(atom) for atom in fixer.topology.atoms()}
        changes: Dict[str, Any] = {"models_in_file": n_models, "model_used": model}
        try:
            _repair(fixer, ff, changes, add_missing_residues, keep_water, keep_heterogens, ph, seed + attempt)
        except PreparationError:
            raise
        except Exception as error:  # PDBFixer failing on what the file holds is a problem of the input
            message = " ".join(str(error).split()) or type(error).__name__
            raise PreparationError(f"cannot repair {path!r} with PDBFixer: {type(error).__name__}: {message}") \
                from None
        contact = _added_atom_contact(fixer.topology, fixer.positions, given)
        if contact is None:
            break
    else:
        raise PreparationError(f"{path!r}: {contact}; check the input's records there")
    changes["placement_attempts"] = attempt + 1
    topology, positions = fixer.topology, fixer.positions
    if water is not None:
        topology, positions = _add_solvent(ff, topology, positions, water, padding, ionic_strength, box, changes)

    if water is not None:
        _check_box(topology, nonbonded_cutoff, padding, box)
    system = _create_system(ff, topology, solvent, constraints, nonbonded_cutoff)
    if not system.usesPeriodicBoundaryConditions():
        topology.setPeriodicBoxVectors(None)  # an input's CRYST1 means nothing to a non-periodic run: never written
    key, extras = split_forcefields(forcefield)
    settings = {"path": path, "forcefield": key, "extra_forcefields": extras, "forcefield_files": files,
                "solvent": solvent, "water": water, "ph": float(ph), "model": model, "seed": seed,
                "add_missing_residues": add_missing_residues, "keep_water": keep_water,
                "keep_heterogens": keep_heterogens,
                "padding_nm": _quantity(padding, unit.nanometer).value_in_unit(unit.nanometer),
                "box": box if water is not None else None,
                "ionic_strength_molar": _quantity(ionic_strength, unit.molar).value_in_unit(unit.molar),
                "constraints": None if constraints is None else str(constraints),
                "nonbonded_cutoff_nm": _quantity(nonbonded_cutoff, unit.nanometer).value_in_unit(unit.nanometer)}
    return PreparedSystem(topology=topology, system=system, positions=positions, forcefield=ff,
                          forcefield_files=files, solvent=solvent, changes=changes, settings=settings)


def _add_solvent(ff: app.ForceField, topology: app.Topology, positions: Any, water: str, padding: Any,
                 ionic_strength: Any, box: str, changes: Dict[str, Any]) -> Tuple[app.Topology, Any]:
    """A periodic box of ``water`` around the structure, with Na+/Cl- (neutralizing, plus ``ionic_strength``).
    Virtual sites of 4-site models (and of crystallographic waters kept) come from the force field's
    templates (``Modeller.addExtraParticles``, as OpenMM-Setup does)."""
    modeller = app.Modeller(topology, positions)
    try:
        modeller.addSolvent(ff, model=WATER_MODELS[water], padding=_quantity(padding, unit.nanometer),
                            boxShape=box, ionicStrength=_quantity(ionic_strength, unit.molar),
                            positiveIon="Na+", negativeIon="Cl-", neutralize=True)
        if WATER_MODELS[water] != "tip3p" and WATER_MODELS[water] != "spce":
            modeller.addExtraParticles(ff)
    except ValueError as error:
        raise PreparationError(f"cannot add {water} water: {' '.join(str(error).split())}") from None
    residues = list(modeller.topology.residues())[topology.getNumResidues():]
    changes["solvent_molecules_added"] = len(residues)
    changes["ions_added"] = {name: sum(r.name == name for r in residues) for name in ("NA", "CL")}
    return modeller.topology, modeller.positions


def _check_box(topology: app.Topology, cutoff: Any, padding: Any, box: str) -> None:
    """PreparationError when the water box is too small for the cutoff (OpenMM needs every periodic width, the
    reduced box's diagonal, at least twice the cutoff)."""
    vectors = topology.getPeriodicBoxVectors().value_in_unit(unit.nanometer)
    width = min(vectors[0][0], vectors[1][1], vectors[2][2])
    cutoff_nm = _quantity(cutoff, unit.nanometer).value_in_unit(unit.nanometer)
    if width < 2 * cutoff_nm:
        padding_nm = _quantity(padding, unit.nanometer).value_in_unit(unit.nanometer)
        raise PreparationError(f"the {box} water box ({width:.2f} nm across at its narrowest, padding "
                               f"{padding_nm:g} nm) is smaller than twice the {cutoff_nm:g} nm cutoff: use a larger "
                               "--padding")


def integrator_seed(seed: int) -> int:
    """The random number seed of the Langevin integrator with which PDBFixer shakes apart rebuilt heavy atoms that
    land too close together: ``seed`` mapped into OpenMM's seeds 1 .. 2**31 - 2. OpenMM takes a seed of 0 to mean
    "a new seed for each Context", so seed 0 passed as it is gave a different structure on every call."""
    return 1 + seed % (2 ** 31 - 2)


def _repair(fixer, ff: app.ForceField, changes: Dict[str, Any], add_missing_residues: bool, keep_water: bool,
            keep_heterogens: bool, ph: float, seed: int) -> None:
    """PDBFixer's repairs, in its order, each recorded in ``changes``; chain breaks not built become termini.
    ``ff`` places the hydrogens."""
    fixer.findMissingResidues()
    missing_residues = _select_missing_residues(fixer, add_missing_residues)
    changes["missing_residues_added"] = missing_residues
    gaps = GapsToBuild(fixer)
    fixer.findNonstandardResidues()
    changes["nonstandard_residues_replaced"] = [f"{residue_label(res)} -> {new}"
                                                for res, new in fixer.nonstandardResidues]
    fixer.replaceNonstandardResidues()
    gaps.after_edit(fixer.topology)
    changes["heterogens_removed"] = _remove_heterogens(fixer, keep_water, keep_heterogens, gaps)
    changes["chain_breaks"] = _split_chain_breaks(fixer, gaps)
    fixer.missingResidues = gaps.keys(fixer.topology)

    fixer.findMissingAtoms()
    changes["missing_atoms_added"] = {residue_label(res): [a.name for a in atoms]
                                      for res, atoms in fixer.missingAtoms.items()}
    changes["missing_terminals_added"] = {residue_label(res): list(names)
                                          for res, names in fixer.missingTerminals.items()}
    before = fixer.topology.getNumAtoms()
    fixer.addMissingAtoms(seed=integrator_seed(seed))
    heavy_added = fixer.topology.getNumAtoms() - before

    before = fixer.topology.getNumAtoms()
    try:
        fixer.addMissingHydrogens(pH=ph, forcefield=ff)
    except ValueError as error:
        raise PreparationError(_missing_template(error, fixer.topology) or
                               f"cannot add hydrogens: {' '.join(str(error).split())}") from None
    changes["heavy_atoms_added"] = heavy_added
    changes["hydrogens_added"] = fixer.topology.getNumAtoms() - before


#: nm: an atom the preparation added this close to another sits in a force-field singularity (the package's
#: collapse distance: no covalent bond is shorter than ~0.09 nm).
ADDED_ATOM_CONTACT = 0.07
#: How often the preparation places missing atoms and hydrogens anew when an added atom lands on another.
PLACEMENT_ATTEMPTS = 5


def _atom_key(atom) -> Tuple[str, str, str, str]:
    residue = atom.residue
    return residue.chain.id, residue.id, residue.insertionCode or "", atom.name


def _added_atom_contact(topology: app.Topology, positions: Any, given: Set[Tuple[str, str, str, str]]
                        ) -> Optional[str]:
    """What is wrong when an atom that PDBFixer or Modeller added (a rebuilt heavy atom, a hydrogen) lies on top of
    another atom, else None. Minimizing from there falls into the singularity (the energy goes to -infinity).
    It happens by chance: PDBFixer rebuilds a missing heavy atom from its template's rotamer (a missing THR OG1
    can land 0.09 nm from CG2), and Modeller's random placement then relaxes OG1's hydrogen onto CG2 in about
    half of its seeds; the preparation tries again with other random numbers (:data:`PLACEMENT_ATTEMPTS`)."""
    from scipy.spatial import cKDTree
    atoms = list(topology.atoms())
    xyz = np.asarray(positions.value_in_unit(unit.nanometer))
    for i, j in sorted(cKDTree(xyz).query_pairs(ADDED_ATOM_CONTACT)):
        added = [a for a in (atoms[i], atoms[j]) if _atom_key(a) not in given]
        if added:
            other = atoms[j] if added[0] is atoms[i] else atoms[i]
            return (f"the preparation placed {added[0].name} of {residue_label(added[0].residue)} "
                    f"{float(np.linalg.norm(xyz[i] - xyz[j])):.3g} nm from {other.name} of "
                    f"{residue_label(other.residue)} in each of {PLACEMENT_ATTEMPTS} attempts (an added atom on top of "
                    "another: a force-field singularity)")
    return None


class GapsToBuild:
    """The internal gaps PDBFixer will build (``fixer.missingResidues``, keyed by chain index and position in
    the chain), followed by residue through the edits made before they are built: replacing nonstandard residues
    (same residues, same order), deleting heterogens, splitting chains. ``keys`` gives them back as PDBFixer
    keys of the topology then."""

    def __init__(self, fixer):
        residues = list(fixer.topology.residues())
        chains = [list(chain.residues()) for chain in fixer.topology.chains()]
        self.names = {chains[c][r].index: names for (c, r), names in fixer.missingResidues.items()}
        self.ordinals = [residue.index for residue in residues]  # each residue's index before any edit, in order

    def after_edit(self, topology: app.Topology, deleted: Sequence[int] = ()) -> None:
        """Follow an edit that deleted the residues at positions ``deleted`` (of the topology before it)."""
        gone = set(deleted)
        self.ordinals = [o for position, o in enumerate(self.ordinals) if position not in gone]
        if len(self.ordinals) != topology.getNumResidues():  # an edit that reordered residues: nothing to follow
            self.names, self.ordinals = {}, [r.index for r in topology.residues()]

    def starts(self) -> Set[int]:
        """Indices (in the topology now) of the residues a gap will be built before."""
        return {position for position, o in enumerate(self.ordinals) if o in self.names}

    def keys(self, topology: app.Topology) -> Dict[Tuple[int, int], List[str]]:
        """The gaps as ``fixer.missingResidues`` keys of ``topology`` (the topology after the last edit)."""
        residues = list(topology.residues())
        keys = {}
        for position, ordinal in enumerate(self.ordinals):
            if ordinal in self.names:
                residue = residues[position]
                chain = list(residue.chain.residues())
                keys[(residue.chain.index, chain.index(residue))] = self.names[ordinal]
        return keys


def _split_chain_breaks(fixer, gaps: GapsToBuild) -> List[Dict[str, Any]]:
    """Make each chain break that no built gap fills two termini (:mod:`.chain_breaks`); return the breaks."""
    built = gaps.starts()
    breaks = [b for b in find_chain_breaks(fixer.topology, fixer.positions) if b[1] not in built]
    if breaks:
        rows = describe_breaks(fixer.topology, breaks)
        fixer.topology = split_chains(fixer.topology, [after for _, after, _ in breaks])
        gaps.after_edit(fixer.topology)
        return rows
    return []


def preparation_notes(changes: Dict[str, Any]) -> List[str]:
    """What the preparation changed in the structure's science, one line each (for the console): chain breaks
    made termini, residues built or replaced, heterogens removed, heavy atoms added. Hydrogens are not listed:
    adding them is what preparation is for."""
    notes = []
    breaks = changes.get("chain_breaks") or []
    if breaks:
        notes.append(f"{len(breaks)} chain break(s) made termini, not bonded across the gap: " + ", ".join(
            f"{b['after']} | {b['before']} ({b['c_n_angstrom']:.1f} A)" for b in breaks))
    if changes.get("missing_residues_added"):
        notes.append("missing residues built: " + "; ".join(changes["missing_residues_added"]))
    if changes.get("nonstandard_residues_replaced"):
        notes.append("nonstandard residues replaced: " + ", ".join(changes["nonstandard_residues_replaced"]))
    if changes.get("heterogens_removed"):
        notes.append("removed waters, ions and ligands: " + ", ".join(changes["heterogens_removed"]))
    missing = changes.get("missing_atoms_added") or {}
    if missing:
        count = sum(len(names) for names in missing.values())
        notes.append(f"{count} missing heavy atom(s) added in {len(missing)} residue(s): " +
                     ", ".join(sorted(missing)))
    return notes


def create_system(topology: app.Topology, forcefield: Union[str, Sequence[str]] = "amber14",
                  solvent: str = "obc2", constraints: Optional[object] = app.HBonds, nonbonded_cutoff: Any = 1.0,
                  water: Optional[str] = None) -> openmm.System:
    """Build a System for an already complete topology (e.g. a file written by the CLI), with the same
    force-field and solvent settings ``prepare`` uses. No repair, no added solvent."""
    ff = load_forcefield(forcefield_files(forcefield, solvent, water))
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
        raise PreparationError(_missing_template(error, topology) or
                               f"cannot build the force field System: {message}") from None


def _missing_template(error: Exception, topology: app.Topology) -> Optional[str]:
    """OpenMM's "No template found for residue N (NAME)" said with the residue's chain and number, and what to
    do about it; None for any other error."""
    import re
    found = re.search(r"No template found for residue (\d+) \((\S+)\)", str(error))
    if found is None:
        return None
    residues = list(topology.residues())
    index = int(found.group(1))
    named = [r for r in residues[max(0, index - 1):index + 1] if r.name == found.group(2)]
    where = residue_label(named[-1]) if named else found.group(2)
    return (f"the force field has no template for residue {where}: give an XML file with its template and "
            "parameters as a further --forcefield (or leave out --keep-heterogens to remove it)")


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


def _remove_heterogens(fixer, keep_water: bool, keep_heterogens: bool, gaps: "GapsToBuild") -> List[str]:
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
                    f"unknown residue {residue_label(residue)} inside a polymer chain: no template to build it from "
                    f"(rename it to a standard residue, or give a MODRES record)")
    if keep_heterogens:
        return []
    to_delete = [r for r in fixer.topology.residues()
                 if r.name not in polymer and not (keep_water and r.name in _WATER_NAMES)]
    if to_delete:
        modeller = app.Modeller(fixer.topology, fixer.positions)
        modeller.delete(to_delete)
        fixer.topology, fixer.positions = modeller.topology, modeller.positions
        gaps.after_edit(fixer.topology, [r.index for r in to_delete])
    counts: Dict[str, int] = {}
    for residue in to_delete:
        counts[residue.name] = counts.get(residue.name, 0) + 1
    return [f"{name} x{count}" for name, count in sorted(counts.items())]


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


__all__: Sequence[str] = ("prepare", "preparation_notes", "PreparedSystem", "PreparationError", "forcefield_files",
                          "create_system", "write_structure", "structure_format", "heavy_atom_indices",
                          "ca_indices", "FORCEFIELDS", "SOLVENTS", "WATER_MODELS", "BOX_SHAPES",
                          "split_forcefields", "water_model", "check_solvent_options", "load_forcefield")
