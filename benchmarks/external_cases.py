"""The systems of the external benchmark: every ``openmmtools.testsystems`` class (a peer's test systems, built
with their defaults) and rough starts users bring, rebuilt by PDBFixer.

Test systems: every public subclass of ``openmmtools.testsystems.TestSystem`` is a case named after its class;
a class that fails to build, or is larger than ``DHFRExplicit`` (23,558 atoms, the largest that runs in
reasonable time on 2 cores), is recorded as skipped with the reason. ``IdealGasNoForces`` is ``IdealGas`` with
every Force removed (nothing at all to minimize). Starts: ``own`` (the class's positions) and, per seed k,
``own`` + Gaussian noise of :data:`NOISE_NM` per coordinate (``numpy.random.default_rng(k)``) on the real atoms
(virtual sites and massless particles untouched; virtual sites are placed from their parents when the start is
set).

Rough starts (group ``rough``, start ``own`` only: PDBFixer's seed-0 rebuild), from the deposited entries in
the shared PDB directory, model 1, through ``openmm_reparam.app.prepare`` (amber14 + OBC2, NoCutoff, HBonds,
hydrogens at pH 7): ``*_cb``: every side chain cut back to Cβ and every hydrogen removed, then rebuilt by
PDBFixer (missing heavy atoms, hydrogens); ``*_loop``: residues deleted inside the chain (SEQRES kept), then
rebuilt by PDBFixer's missing-residue modelling (``add_missing_residues=True``).

Groups (``--cases`` takes case names, group names, ``tiny`` and ``all``): see :data:`GROUPS`. A class that is
not in any group list (a newer openmmtools) goes to ``other``.
"""
from __future__ import annotations

import inspect
import os
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import openmm
from openmm import app, unit

from .everyday_cases import EverydayCase, pdb_path

NOISE_NM = 0.01
MAX_ATOMS = 23558  # DHFRExplicit
BACKBONE_AND_CB = {"N", "CA", "C", "O", "OXT", "CB"}

#: Group -> the test-system classes in it (by kind of System), then the rough starts.
GROUPS: Dict[str, List[str]] = {
    "toy": ["HarmonicOscillator", "PowerOscillator", "Diatom", "ConstraintCoupledHarmonicOscillator",
            "HarmonicOscillatorArray", "LennardJonesPair", "LennardJonesCluster", "IdealGas", "IdealGasNoForces"],
    "vacuum": ["AlanineDipeptideVacuum", "AlchemicalAlanineDipeptide", "TolueneVacuum", "HostGuestVacuum",
               "WaterCluster", "MolecularIdealGas"],
    "implicit": ["AlanineDipeptideImplicit", "TolueneImplicit", "TolueneImplicitHCT", "TolueneImplicitOBC1",
                 "TolueneImplicitOBC2", "TolueneImplicitGBn", "TolueneImplicitGBn2", "HostGuestImplicit",
                 "HostGuestImplicitHCT", "HostGuestImplicitOBC1", "HostGuestImplicitOBC2", "HostGuestImplicitGBn",
                 "HostGuestImplicitGBn2", "LysozymeImplicit", "SrcImplicit"],
    "custom": ["CustomExternalForcesTestSystem", "CustomGBForceSystem", "CustomLennardJonesFluidMixture",
               "WCAFluid", "DoubleWellDimer_WCAFluid", "DoubleWellChain_WCAFluid"],
    "fluid": ["LennardJonesFluid", "LennardJonesFluidTruncated", "LennardJonesFluidSwitched", "LennardJonesGrid",
              "DiatomicFluid", "UnconstrainedDiatomicFluid", "DipolarFluid", "UnconstrainedDipolarFluid",
              "SodiumChlorideCrystal", "FlexibleWaterBox", "FlexibleReactionFieldWaterBox",
              "FlexiblePMEWaterBox", "FlexibleDischargedWaterBox"],
    "explicit": ["WaterBox", "PMEWaterBox", "FourSiteWaterBox", "FiveSiteWaterBox", "DischargedWaterBox",
                 "DischargedWaterBoxHsites", "AlchemicalWaterBox", "ConstrainedDiatomicFluid",
                 "ConstrainedDipolarFluid", "AlanineDipeptideExplicit", "HostGuestExplicit", "MethanolBox"],
    "amoeba": ["AMOEBAIonBox", "AMOEBAProteinBox"],
    "large": ["GiantFlexibleWaterBox", "GiantFlexibleDischargedWaterBox", "DNADodecamerExplicit",
              "SrcExplicit", "SrcExplicitReactionField", "DHFRExplicit"],
    "rough": ["chignolin_cb", "trpcage_cb", "bbl_cb", "trpcage_loop", "bbl_loop"],
}
TINY = ["HarmonicOscillator", "LennardJonesCluster", "AlanineDipeptideVacuum"]
GROUP_DESCRIPTIONS = {
    "toy": "analytic toys, clusters and a gas with nothing to minimize (no periodic box)",
    "vacuum": "small molecules in vacuum", "implicit": "implicit solvent (GB), ASE compared here",
    "custom": "Custom*Force systems", "fluid": "periodic, no constraints (LJ fluids, flexible water)",
    "explicit": "periodic with constraints (rigid water, solvated solutes)", "amoeba": "AMOEBA polarizable",
    "large": "large periodic systems (up to DHFRExplicit)", "rough": "PDBFixer rebuilds, amber14 + OBC2",
    "other": "test systems in no list above (a newer openmmtools)",
}
#: ``all`` runs the groups in this order (the large ones last: each case's JSON is written as it finishes).
ALL_ORDER = ("toy", "vacuum", "implicit", "custom", "fluid", "explicit", "rough", "amoeba", "other", "large")
#: Rough starts: name -> (PDB entry, label, residues to delete (chain index of the first, count) or None).
ROUGH: Dict[str, Tuple[str, str, Optional[Tuple[int, int]]]] = {
    "chignolin_cb": ("5AWL", "chignolin (5AWL)", None), "trpcage_cb": ("2JOF", "Trp-cage (2JOF)", None),
    "bbl_cb": ("2WXC", "BBL (2WXC)", None), "trpcage_loop": ("2JOF", "Trp-cage (2JOF)", (8, 4)),
    "bbl_loop": ("2WXC", "BBL (2WXC)", (20, 4)),
}


def _testsystems_module():
    """``openmmtools.testsystems``, imported without the banner pymbar prints on import (JAX missing)."""
    import contextlib
    import io
    import warnings

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from openmmtools import testsystems
    return testsystems


def testsystem_classes() -> Dict[str, type]:
    """Every public ``TestSystem`` subclass of ``openmmtools.testsystems`` by name (not the base class)."""
    testsystems = _testsystems_module()

    return {name: cls for name, cls in inspect.getmembers(testsystems, inspect.isclass)
            if issubclass(cls, testsystems.TestSystem) and cls is not testsystems.TestSystem
            and not name.startswith("_") and not inspect.isabstract(cls)}


def group_of(name: str) -> str:
    return next((group for group, names in GROUPS.items() if name in names), "other")


def all_cases() -> List[str]:
    """Every case name in :data:`ALL_ORDER` (test-system classes, the no-force variant, the rough starts)."""
    classes = set(testsystem_classes()) | {"IdealGasNoForces"} | set(ROUGH)
    other = sorted(classes - {name for names in GROUPS.values() for name in names})
    return [name for group in ALL_ORDER for name in (other if group == "other" else GROUPS[group])
            if name in classes]


def resolve_cases(items: Optional[Sequence[str]]) -> List[str]:
    """Case names from names, group names, ``tiny`` and ``all``, in the order given, no repeats."""
    everything = all_cases()
    resolved: List[str] = []
    for item in items or ["all"]:
        if item == "all":
            expanded = everything
        elif item == "tiny":
            expanded = TINY
        elif item in GROUPS or item == "other":
            expanded = [c for c in everything if group_of(c) == item]
        elif item in everything:
            expanded = [item]
        else:
            raise ValueError(f"unknown external case {item!r}; choose a test-system class, a rough start "
                             f"({', '.join(ROUGH)}), a group ({', '.join(GROUPS)}, other), tiny or all")
        resolved += [c for c in expanded if c not in resolved]
    return resolved


def perturbed(system: openmm.System, x: np.ndarray, seed: int, sigma: float = NOISE_NM) -> np.ndarray:
    """``x`` (nm) plus seeded Gaussian noise on every particle with mass that is not a virtual site."""
    real = np.array([not system.isVirtualSite(i) and system.getParticleMass(i).value_in_unit(unit.dalton) > 0
                     for i in range(system.getNumParticles())])
    noise = np.random.default_rng(seed).normal(0.0, sigma, size=x.shape)
    return x + noise * real[:, None]


def _topology(testsystem) -> Optional[app.Topology]:
    topology = getattr(testsystem, "topology", None)
    return topology.to_openmm() if hasattr(topology, "to_openmm") else topology


def testsystem_case(name: str) -> EverydayCase:
    """The test system ``name`` built with its defaults; starts ``own`` and perturbed seeds."""
    cls = testsystem_classes()[name[:-len("NoForces")] if name == "IdealGasNoForces" else name]
    testsystem = cls()
    system = testsystem.system
    if name == "IdealGasNoForces":
        while system.getNumForces():
            system.removeForce(0)
    x = np.array(testsystem.positions.value_in_unit(unit.nanometer), dtype=np.float64).reshape(-1, 3)

    def make_start(start: Any) -> np.ndarray:
        return x.copy() if start == "own" else perturbed(system, x, int(start))

    forces = sorted({type(f).__name__ for f in system.getForces()})
    periodic = system.usesPeriodicBoundaryConditions()
    description = (f"openmmtools.testsystems.{cls.__name__}(){' with its Forces removed' if forces == [] else ''}"
                   f", {'periodic' if periodic else 'non-periodic'}, forces: {', '.join(forces) or 'none'}")
    return EverydayCase(name=name, group=group_of(name), kind="periodic" if periodic else "non-periodic",
                        description=description, topology=_topology(testsystem), system=system,
                        make_start=make_start, seeded_start=True,
                        settings={"class": cls.__name__, "forces": forces, "noise_nm": NOISE_NM})


# ---- rough starts -------------------------------------------------------------------------------------------
def _atom_fields(line: str) -> Tuple[str, str, str]:
    """(atom name, residue key chain+number+insertion, element) of an ATOM/HETATM record."""
    name = line[12:16].strip()
    element = line[76:78].strip() or name.lstrip("0123456789")[:1]
    return name, line[21:27], element.upper()


def model_one(text: str) -> List[str]:
    """The lines of a PDB file outside MODEL blocks and inside the first one (MODEL/ENDMDL dropped)."""
    kept, model, inside = [], 0, False
    for line in text.splitlines(keepends=True):
        if line.startswith("MODEL"):
            model, inside = model + 1, True
        elif line.startswith("ENDMDL"):
            inside = False
        elif not inside or model == 1:
            kept.append(line)
    return kept


def cut_side_chains(lines: List[str]) -> List[str]:
    """Protein ATOM records cut back to the backbone and Cβ, hydrogens removed (other records kept)."""
    def keep(line: str) -> bool:
        if not line.startswith("ATOM"):
            return True
        name, _, element = _atom_fields(line)
        return element != "H" and name in BACKBONE_AND_CB
    return [line for line in lines if keep(line)]


def delete_residues(lines: List[str], first: int, count: int) -> List[str]:
    """The ATOM records of ``count`` residues from the ``first``-th (0-based, in file order) removed."""
    order: List[str] = []
    for line in lines:
        if line.startswith("ATOM"):
            key = _atom_fields(line)[1]
            if key not in order:
                order.append(key)
    if first <= 0 or first + count >= len(order):
        raise ValueError(f"residues {first}..{first + count - 1} are not inside the chain ({len(order)} residues)")
    gone = set(order[first:first + count])
    return [line for line in lines if not (line.startswith("ATOM") and _atom_fields(line)[1] in gone)]


def rough_case(name: str) -> EverydayCase:
    """A rough start (see :data:`ROUGH`), rebuilt by PDBFixer through ``app.prepare``."""
    from openmm_reparam.app.prepare import prepare

    pdb_id, label, deleted = ROUGH[name]
    lines = model_one(open(pdb_path(pdb_id)).read())
    lines = cut_side_chains(lines) if deleted is None else delete_residues(lines, *deleted)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, f"{name}.pdb")
        with open(path, "w") as handle:
            handle.writelines(lines)
        prepared = prepare(path, forcefield="amber14", solvent="obc2", add_missing_residues=deleted is not None,
                           seed=0)
    x = np.array(prepared.positions.value_in_unit(unit.nanometer), dtype=np.float64)
    what = ("side chains cut back to CB, rebuilt by PDBFixer" if deleted is None else
            f"{deleted[1]} residues deleted from residue #{deleted[0] + 1}, rebuilt by PDBFixer "
            f"(add_missing_residues)")
    changes = {k: v for k, v in prepared.changes.items() if k in ("missing_residues_added", "heavy_atoms_added",
                                                                  "hydrogens_added")}
    return EverydayCase(name=name, group="rough", kind="non-periodic",
                        description=f"{label}, model 1, {what}; amber14 + OBC2, NoCutoff, HBonds",
                        topology=prepared.topology, system=prepared.system, make_start=lambda start: x.copy(),
                        seeded_start=False, settings={**prepared.settings, "path": f"{pdb_id}.pdb (cut)",
                                                      "pdb": pdb_id, "changes": changes})


def build_case(name: str) -> EverydayCase:
    """Build the named case; raises whatever the test system raises (the suite records it as skipped)."""
    return rough_case(name) if name in ROUGH else testsystem_case(name)

