"""The systems of the everyday benchmark: what people minimize before MD, prepared the way a user would.

Every case is a System plus one start per seed (deterministic cases have a single start). Solvated proteins go
through the application layer (``openmm_reparam.app.prepare``: amber14 + TIP3P, PME with a 1 nm cutoff, HBonds,
rigid water, neutralized, no added salt), starting from the cleaned native structures stored in ``data/``.

Groups (``--cases`` accepts a group name or letter as well as case names):

* ``a`` / ``solvated``: chignolin (5AWL), Trp-cage (2JOF), BBL (2WXC) in TIP3P, 1 nm padding;
* ``b`` / ``large``: the Max-DNA complex (1HLO, crystal waters removed) in TIP3P with 1 nm padding, BBL with
  2.5 nm padding (both above 30k atoms);
* ``c`` / ``implicit``: amber14 + OBC2, NoCutoff, HBonds: the native structure plus seeded Gaussian noise of
  0.02 nm per coordinate (a new noisy model per seed), and the stored unfolded starts (``*_unfolded.pdb``);
* ``d`` / ``water``: a 3 nm cube of TIP4P-Ew water (virtual sites, rigid), PME 1 nm;
* ``max_dna_pad16`` (not in ``all``): the Max-DNA complex in 1.6 nm of TIP3P, above 100,000 atoms (the scale run);
* ``tiny`` (not in ``all``): met-enkephalin (1PLW) in a 1.73 nm TIP3P box (0.4 nm padding, PME 0.7 nm, 372
  atoms), for the smoke test.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import openmm
from openmm import app, unit

from openmm_reparam.app.prepare import prepare

from . import proteins

TIP3P_CUTOFF_NM = 1.0
NOISE_NM = 0.02
WATER_BOX_NM = 3.0
#: Each PDB entry is looked for in ``data/`` first (a committed copy), then in the shared PDB directory.
LARGE_COMPLEX = "1HLO"


@dataclass
class EverydayCase:
    """One benchmark case: a System, its topology and how to get the start of a seed (positions in nm)."""

    name: str
    group: str
    kind: str  # "explicit" (periodic water box) or "implicit"
    description: str
    topology: app.Topology
    system: openmm.System
    make_start: Callable[[int], np.ndarray]
    seeded_start: bool = False  # True: every seed is a different start (noisy models)
    settings: Dict[str, Any] = field(default_factory=dict)

    @property
    def n_atoms(self) -> int:
        return self.system.getNumParticles()


def pdb_path(pdb_id: str) -> str:
    """``data/<ID>.pdb`` if the entry was copied into the repository, else the shared PDB directory."""
    local = os.path.join(proteins.DATA_DIR, f"{pdb_id}.pdb")
    return local if os.path.exists(local) else os.path.join(proteins.PDB_SOURCE_DIR, f"{pdb_id}.pdb")


def solvated_case(name: str, group: str, path: str, padding_nm: float, label: str,
                  cutoff_nm: float = TIP3P_CUTOFF_NM) -> EverydayCase:
    """A structure file prepared by ``app.prepare`` in a TIP3P box with ``padding_nm`` of water."""
    prepared = prepare(path, forcefield="amber14", solvent="tip3p", padding=padding_nm,
                       nonbonded_cutoff=cutoff_nm, constraints=app.HBonds, seed=0)
    x = np.array(prepared.positions.value_in_unit(unit.nanometer), dtype=np.float64)
    box = prepared.topology.getPeriodicBoxVectors()[0][0].value_in_unit(unit.nanometer)
    return EverydayCase(name=name, group=group, kind="explicit",
                        description=f"{label} in TIP3P, {padding_nm:g} nm padding ({box:.2f} nm box), PME "
                                    f"{cutoff_nm:g} nm, HBonds",
                        topology=prepared.topology, system=prepared.system, make_start=lambda seed: x.copy(),
                        settings={**prepared.settings, "path": os.path.relpath(path), "box_nm": box})


def implicit_case(name: str, pdb_id: str, start: str, label: str) -> EverydayCase:
    """A stored protein in amber14 + OBC2 (NoCutoff, HBonds): the native structure with seeded noise
    (``start="noisy"``, one model per seed) or the stored high-temperature-MD start (``start="unfolded"``)."""
    noisy = start == "noisy"
    base = proteins.load_case(pdb_id, start="native" if noisy else "unfolded", constraints=app.HBonds)

    def make_start(seed: int) -> np.ndarray:
        if not noisy:
            return base.start.copy()
        return proteins.load_case(pdb_id, start="native", perturb_nm=NOISE_NM, seed=seed).start

    what = f"native + {NOISE_NM:g} nm Gaussian noise (seeded)" if noisy else "stored unfolded start"
    return EverydayCase(name=name, group="c", kind="implicit",
                        description=f"{label}, {what}, amber14 + OBC2, NoCutoff, HBonds",
                        topology=base.topology, system=base.system, make_start=make_start, seeded_start=noisy,
                        settings={"pdb": pdb_id, "start": start, "noise_nm": NOISE_NM if noisy else 0.0,
                                  "forcefield": "amber14-all + implicit/obc2", "constraints": "HBonds"})


def water_box_case(name: str = "tip4pew_box", edge_nm: float = WATER_BOX_NM) -> EverydayCase:
    """A cube of TIP4P-Ew water (Modeller.addSolvent on an empty topology), rigid, PME 1 nm."""
    forcefield = app.ForceField("amber14/tip4pew.xml")
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(forcefield, model="tip4pew", boxSize=openmm.Vec3(edge_nm, edge_nm, edge_nm) * unit.nanometer,
                        neutralize=False)
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.PME,
                                     nonbondedCutoff=TIP3P_CUTOFF_NM * unit.nanometer, constraints=app.HBonds,
                                     rigidWater=True)
    x = np.array(modeller.positions.value_in_unit(unit.nanometer), dtype=np.float64)
    waters = modeller.topology.getNumResidues()
    return EverydayCase(name=name, group="d", kind="explicit",
                        description=f"{waters} TIP4P-Ew waters (virtual sites, rigid), {edge_nm:g} nm cube, PME "
                                    f"{TIP3P_CUTOFF_NM:g} nm",
                        topology=modeller.topology, system=system, make_start=lambda seed: x.copy(),
                        settings={"water": "tip4pew", "edge_nm": edge_nm, "waters": waters})


_PROTEINS = {"chignolin": ("5AWL", "chignolin (5AWL)"), "trpcage": ("2JOF", "Trp-cage (2JOF)"),
             "bbl": ("2WXC", "BBL (2WXC)"), "enkephalin": ("1PLW", "met-enkephalin (1PLW)")}


def _solvated(key: str, padding: float, group: str, name: str,
              cutoff: float = TIP3P_CUTOFF_NM) -> Callable[[], EverydayCase]:
    pdb_id, label = _PROTEINS[key]
    return lambda: solvated_case(name, group, proteins.native_path(pdb_id), padding, label, cutoff)


def _implicit(key: str, start: str) -> Callable[[], EverydayCase]:
    pdb_id, label = _PROTEINS[key]
    return lambda: implicit_case(f"{key}_{start}", pdb_id, start, label)


#: Case name -> builder (cases are built only when they run: the large ones take seconds to prepare).
CASES: Dict[str, Callable[[], EverydayCase]] = {
    "chignolin": _solvated("chignolin", 1.0, "a", "chignolin"),
    "trpcage": _solvated("trpcage", 1.0, "a", "trpcage"),
    "bbl": _solvated("bbl", 1.0, "a", "bbl"),
    "max_dna": lambda: solvated_case("max_dna", "b", pdb_path(LARGE_COMPLEX), 1.0, "Max-DNA complex (1HLO)"),
    "bbl_pad25": _solvated("bbl", 2.5, "b", "bbl_pad25"),
    # above 100,000 atoms: the scale run (not in ``all``; LEM alone takes most of an hour on 2 cores)
    "max_dna_pad16": lambda: solvated_case("max_dna_pad16", "scale", pdb_path(LARGE_COMPLEX), 1.6,
                                           "Max-DNA complex (1HLO)"),
    **{f"{key}_{start}": _implicit(key, start) for start in ("noisy", "unfolded")
       for key in ("enkephalin", "chignolin", "trpcage", "bbl")},
    "tip4pew_box": water_box_case,
    # the smoke-test case: a 1.73 nm box (372 atoms) needs a cutoff under half the box edge
    "tiny": _solvated("enkephalin", 0.4, "tiny", "tiny", cutoff=0.7),
}
GROUPS: Dict[str, List[str]] = {
    "a": ["chignolin", "trpcage", "bbl"],
    "b": ["max_dna", "bbl_pad25"],
    "c": [f"{key}_{start}" for start in ("noisy", "unfolded") for key in ("enkephalin", "chignolin", "trpcage", "bbl")],
    "d": ["tip4pew_box"],
}
GROUP_ALIASES = {"solvated": "a", "large": "b", "implicit": "c", "water": "d"}
#: ``all`` runs the large cases last: each case's JSON is written as it finishes, so a run cut short in the
#: slow 30k-85k-atom cases keeps every other case.
ALL_ORDER = "acdb"


def resolve_names(names: Optional[Sequence[str]], cases: Sequence[str], groups: Dict[str, List[str]],
                  everything: List[str], what: str, aliases: Optional[Dict[str, str]] = None) -> List[str]:
    """Case names from names, groups (and their ``aliases``) and ``all`` (``everything``), in the order given, no
    repeats; an unknown name is a one-line ValueError naming the ``what`` benchmark's choices."""
    aliases = aliases or {}
    resolved: List[str] = []
    for item in names or ["all"]:
        item = aliases.get(item, item)
        if item == "all":
            expanded = everything
        elif item in groups:
            expanded = groups[item]
        elif item in cases:
            expanded = [item]
        else:
            raise ValueError(f"unknown {what} case {item!r}; choose from {', '.join(cases)}, the groups "
                             f"{', '.join(list(groups) + list(aliases))} or all")
        resolved += [c for c in expanded if c not in resolved]
    return resolved


def resolve_cases(names: Optional[Sequence[str]]) -> List[str]:
    """Case names from names, group letters/aliases and ``all`` (every group in :data:`ALL_ORDER`, not ``tiny``),
    in the order given, no repeats."""
    return resolve_names(names, list(CASES), GROUPS, [c for group in ALL_ORDER for c in GROUPS[group]], "everyday",
                         GROUP_ALIASES)


def build_case(name: str) -> EverydayCase:
    """Prepare the named case (see :data:`CASES`)."""
    if name not in CASES:
        resolve_cases([name])  # raises the one-line error
    return CASES[name]()
