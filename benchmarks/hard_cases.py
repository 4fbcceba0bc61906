"""The starts of the hard-start benchmark: severe clashes, built from the deposited PDB entries with plain
OpenMM and PDBFixer.

Every structure is model 1 of its entry (the way :func:`benchmarks.everyday_cases.pdb_path` finds it: a copy in
``data/`` first, then the shared PDB directory), repaired and parametrized by ``openmm_reparam.app.prepare``
(PDBFixer: heterogens and water removed, missing atoms and hydrogens at pH 7; amber14, HBonds, seed 0), in OBC2
implicit solvent (NoCutoff) unless the case says TIP3P. The clash is then made by moving atoms, with
``numpy.random.default_rng(seed)`` wherever a random number is drawn, so a start is the same on every run.

Implicit solvent: amber14's OBC2 (``implicit/obc2.xml``) is a ``CustomGBForce``; here it is replaced by the
``GBSAOBCForce`` with the same parameters (:func:`with_gbsaobc`: the same OBC2 energy and surface term, equal to
5e-9 relative on the rough start), OpenMM's own kernel, about 9x faster on the CPU platform (1.6 s against
0.17 s an evaluation on 2,011 atoms, 2 loaded cores): with the custom form LEM alone would take hours here.

* ``dimer``: two copies of Trp-cage (2JOF), the second turned by a random rotation about its centre and its centre
  put 1 nm from the first's along a random direction: the two chains interpenetrate.
* ``dimer_threaded``: the same with the centres 0.3 nm apart: bonds of one chain end up through rings of the
  other (seed 0: the second copy's Gly 11 N–CA through the first copy's Trp 6 five-membered ring and its Ser 14
  CA–CB through Tyr 3's ring, stretched to 0.29-0.32 nm), a knot no minimizer undoes, so every run ends strained
  (bond energy 10,000-11,000 kJ/mol against about 100 unknotted) in whichever knotted state its path finds.
* ``collapsed``: BBL (2WXC) with every side-chain atom but Cβ (hydrogens included) moved onto its residue's Cβ,
  plus Gaussian noise of 0.02 nm per coordinate (coincident atoms would have no finite energy).
* ``through_water``: chignolin (5AWL) in TIP3P (1 nm padding, PME 1 nm, HBonds, rigid water), the protein (and
  the ions) moved 1.2 nm through the box along a random direction, into the water that was beside it.
* ``rough``: a large rough model: the Max–DNA complex (1HLO) cut to one protein chain on its DNA duplex (chains
  A, C, D: 2,011 atoms), every atom moved by Gaussian noise of :data:`ROUGH_NOISE_NM` per coordinate.
* ``ligand``: met-enkephalin (1PLW, 75 atoms: a ligand-sized peptide) turned at random and its centre put on
  BBL's centre: dropped inside the protein.
* ``far_atom``: Trp-cage with the side-chain oxygen OD1 of Asp 9 moved 3 nm from its place along a random
  direction (within 10 nm of other atoms, as every start must be). The smallest case: the smoke test's.

``--cases`` takes case names, ``implicit``, ``explicit`` and ``all`` (every case, smallest first).
"""
from __future__ import annotations

import os
import tempfile
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import openmm
from openmm import app, unit

from openmm_reparam.app.prepare import PreparedSystem, create_system, prepare

from .everyday_cases import EverydayCase, pdb_path, resolve_names
from .external_cases import model_one

DIMER_OFFSET_NM = 1.0
THREADED_OFFSET_NM = 0.3
COLLAPSE_NOISE_NM = 0.02
WATER_SHIFT_NM = 1.2
ROUGH_NOISE_NM = 0.042
ROUGH_CHAINS = "ACD"
FAR_ATOM = ("ASP", 9, "OD1")
FAR_DISTANCE_NM = 3.0
GB_OFFSET_NM = 0.009  # obc2.xml's dielectric offset
IMPLICIT = "OBC2 (GBSAOBCForce), HBonds"
BACKBONE = frozenset({"N", "H", "H1", "H2", "H3", "CA", "HA", "HA2", "HA3", "C", "O", "OXT", "CB"})
SETTINGS = {"forcefield": "amber14-all", "constraints": "HBonds", "prepare_seed": 0}


def _prepared(pdb_id: str, solvent: str = "obc2", chains: Optional[str] = None) -> PreparedSystem:
    """Model 1 of ``pdb_id`` through ``app.prepare`` (only ``chains``, if given)."""
    path = pdb_path(pdb_id)
    if chains is None:
        return prepare(path, forcefield="amber14", solvent=solvent, padding=1.0, constraints=app.HBonds, seed=0)
    lines = [line for line in model_one(open(path).read())
             if not (line.startswith(("ATOM", "HETATM", "ANISOU", "TER")) and line[21] not in chains)]
    with tempfile.TemporaryDirectory() as directory:
        cut = os.path.join(directory, f"{pdb_id}_{chains}.pdb")
        with open(cut, "w") as handle:
            handle.writelines(lines)
        return prepare(cut, forcefield="amber14", solvent=solvent, constraints=app.HBonds, seed=0)


def with_gbsaobc(system: openmm.System) -> openmm.System:
    """``system`` with amber14's OBC2 ``CustomGBForce`` (per-particle charge, offset radius ``or`` and scaled
    offset radius ``sr``; offset 0.009 nm) replaced by the equivalent ``GBSAOBCForce`` (radius or + 0.009,
    scale sr / or, solvent dielectric 78.5, solute 1, the same ACE surface term), in place; returns it."""
    index, custom = next((i, f) for i, f in enumerate(system.getForces()) if isinstance(f, openmm.CustomGBForce))
    obc = openmm.GBSAOBCForce()
    obc.setNonbondedMethod(openmm.GBSAOBCForce.NoCutoff)
    obc.setSoluteDielectric(1.0)
    obc.setSolventDielectric(78.5)
    obc.setForceGroup(custom.getForceGroup())
    for i in range(custom.getNumParticles()):
        charge, offset_radius, scaled = custom.getParticleParameters(i)
        obc.addParticle(charge, offset_radius + GB_OFFSET_NM, scaled / offset_radius)
    system.removeForce(index)
    system.addForce(obc)
    return system


def _implicit_system(topology: app.Topology) -> openmm.System:
    return with_gbsaobc(create_system(topology, solvent="obc2", constraints=app.HBonds))


def _nm(prepared: PreparedSystem) -> np.ndarray:
    return np.array(prepared.positions.value_in_unit(unit.nanometer), dtype=np.float64)


def _rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation matrix (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _direction(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def _combined(parts: Sequence[PreparedSystem]) -> app.Modeller:
    """One topology holding every part's chains, in order (positions are set by the case's start)."""
    modeller = app.Modeller(parts[0].topology, parts[0].positions)
    for part in parts[1:]:
        modeller.add(part.topology, part.positions)
    return modeller


def _case(name: str, description: str, topology: app.Topology, system, make_start: Callable[[int], np.ndarray],
          kind: str = "implicit", **settings) -> EverydayCase:
    return EverydayCase(name=name, group=kind, kind=kind, description=description, topology=topology,
                        system=system, make_start=make_start, seeded_start=True, settings={**SETTINGS, **settings})


def dimer_case(name: str = "dimer", offset_nm: float = DIMER_OFFSET_NM) -> EverydayCase:
    part = _prepared("2JOF")
    modeller = _combined([part, part])
    x = _nm(part)
    system = _implicit_system(modeller.topology)

    def make_start(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        centre = x.mean(axis=0)
        second = (x - centre) @ _rotation(rng).T + centre + offset_nm * _direction(rng)
        return np.concatenate([x, second])

    return _case(name, f"two copies of Trp-cage (2JOF), the second turned at random, centres {offset_nm:g} nm "
                 f"apart; {IMPLICIT}", modeller.topology, system, make_start, pdb="2JOF", offset_nm=offset_nm,
                 solvent="obc2")


def collapsed_case() -> EverydayCase:
    prepared = _prepared("2WXC")
    x = _nm(prepared)
    moved, onto = [], []
    for residue in prepared.topology.residues():
        cb = next((a.index for a in residue.atoms() if a.name == "CB"), None)
        if cb is None:
            continue
        for atom in residue.atoms():
            if atom.name not in BACKBONE:
                moved.append(atom.index)
                onto.append(cb)
    moved_index, onto_index = np.array(moved), np.array(onto)

    def make_start(seed: int) -> np.ndarray:
        start = x.copy()
        noise = np.random.default_rng(seed).normal(0.0, COLLAPSE_NOISE_NM, size=(len(moved_index), 3))
        start[moved_index] = x[onto_index] + noise
        return start

    return _case("collapsed", f"BBL (2WXC), {len(moved)} side-chain atoms moved onto their Cβ + "
                 f"{COLLAPSE_NOISE_NM:g} nm noise; {IMPLICIT}", prepared.topology, with_gbsaobc(prepared.system),
                 make_start, pdb="2WXC", moved_atoms=len(moved), noise_nm=COLLAPSE_NOISE_NM, solvent="obc2")


def through_water_case() -> EverydayCase:
    prepared = _prepared("5AWL", solvent="tip3p")
    x = _nm(prepared)
    solute = np.array([a.index for a in prepared.topology.atoms() if a.residue.name != "HOH"])
    box = prepared.topology.getPeriodicBoxVectors()[0][0].value_in_unit(unit.nanometer)

    def make_start(seed: int) -> np.ndarray:
        start = x.copy()
        start[solute] += WATER_SHIFT_NM * _direction(np.random.default_rng(seed))
        return start

    return _case("through_water", f"chignolin (5AWL) in TIP3P ({box:.2f} nm box, 1 nm padding, PME 1 nm, "
                 f"HBonds, rigid water), protein and ions moved {WATER_SHIFT_NM:g} nm through the water",
                 prepared.topology, prepared.system, make_start, kind="explicit", pdb="5AWL",
                 shift_nm=WATER_SHIFT_NM, box_nm=box, solvent="tip3p", **{"cutoff_nm": 1.0})


def rough_case() -> EverydayCase:
    prepared = _prepared("1HLO", chains=ROUGH_CHAINS)
    x = _nm(prepared)

    def make_start(seed: int) -> np.ndarray:
        return x + np.random.default_rng(seed).normal(0.0, ROUGH_NOISE_NM, size=x.shape)

    return _case("rough", f"Max–DNA complex (1HLO) chains {', '.join(ROUGH_CHAINS)} + {ROUGH_NOISE_NM:g} nm "
                 f"Gaussian noise; {IMPLICIT}", prepared.topology, with_gbsaobc(prepared.system), make_start,
                 pdb="1HLO", chains=ROUGH_CHAINS, noise_nm=ROUGH_NOISE_NM, solvent="obc2")


def ligand_case() -> EverydayCase:
    protein, ligand = _prepared("2WXC"), _prepared("1PLW")
    modeller = _combined([protein, ligand])
    system = _implicit_system(modeller.topology)
    x, y = _nm(protein), _nm(ligand)

    def make_start(seed: int) -> np.ndarray:
        placed = (y - y.mean(axis=0)) @ _rotation(np.random.default_rng(seed)).T + x.mean(axis=0)
        return np.concatenate([x, placed])

    return _case("ligand", "met-enkephalin (1PLW, 75 atoms) turned at random and dropped on the centre of BBL "
                 f"(2WXC); {IMPLICIT}", modeller.topology, system, make_start, pdb="2WXC+1PLW", solvent="obc2")


def far_atom_case() -> EverydayCase:
    prepared = _prepared("2JOF")
    x = _nm(prepared)
    residue_name, number, atom_name = FAR_ATOM
    atom = next(a.index for a in prepared.topology.atoms() if a.residue.name == residue_name
                and int(a.residue.id) == number and a.name == atom_name)

    def make_start(seed: int) -> np.ndarray:
        start = x.copy()
        start[atom] += FAR_DISTANCE_NM * _direction(np.random.default_rng(seed))
        return start

    return _case("far_atom", f"Trp-cage (2JOF), {residue_name} {number} {atom_name} moved {FAR_DISTANCE_NM:g} nm "
                 f"from its place; {IMPLICIT}", prepared.topology, with_gbsaobc(prepared.system), make_start,
                 pdb="2JOF", atom=atom, distance_nm=FAR_DISTANCE_NM, solvent="obc2")


#: Case name -> builder, smallest first (built only when they run: each ``prepare`` takes seconds).
CASES: Dict[str, Callable[[], EverydayCase]] = {
    "far_atom": far_atom_case, "dimer": dimer_case,
    "dimer_threaded": lambda: dimer_case("dimer_threaded", THREADED_OFFSET_NM), "collapsed": collapsed_case,
    "ligand": ligand_case, "rough": rough_case, "through_water": through_water_case,
}
GROUPS: Dict[str, List[str]] = {"implicit": ["far_atom", "dimer", "dimer_threaded", "collapsed", "ligand", "rough"],
                                "explicit": ["through_water"]}
SMALLEST = "far_atom"


def resolve_cases(names: Optional[Sequence[str]]) -> List[str]:
    """Case names from names, groups and ``all``, in the order given, no repeats."""
    return resolve_names(names, list(CASES), GROUPS, list(CASES), "hard")


def build_case(name: str) -> EverydayCase:
    """Build the named case (see :data:`CASES`)."""
    if name not in CASES:
        resolve_cases([name])  # raises the one-line error
    return CASES[name]()
